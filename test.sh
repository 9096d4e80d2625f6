#!/usr/bin/env bash
# The one command that runs every test (README: "Run the tests").
# Builds in Release because the simulator's seed sweeps and the crash tests run real code paths at speed.
set -euo pipefail
cd "$(dirname "$0")"
results_dir="$(mktemp -d)"
trap 'rm -rf "$results_dir"' EXIT
# One test project at a time (-m:1): the process-level cluster tests wait on real elections, and on 2 cores
# they should not compete with the simulator's seed sweep.
dotnet test RaftLedger.slnx -c Release -m:1 --logger "trx;LogFilePrefix=results" --results-directory "$results_dir" "$@"
# A plain totals line over every test project, read from the TRX files the runs wrote.
passed=0; failed=0; skipped=0
for trx in "$results_dir"/*.trx; do
    [ -e "$trx" ] || continue
    counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
    p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters"); f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
    n=$(sed -n 's/.* notExecuted="\([0-9]*\)".*/\1/p' <<<"$counters")
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${n:-0}))
done
echo "tests: $passed passed, $failed failed, $skipped skipped"
