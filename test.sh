#!/usr/bin/env bash
# The one command that runs every test (README: "Run the tests").
# Builds in Release because the simulator's seed sweeps and the crash tests run real code paths at speed.
set -euo pipefail
cd "$(dirname "$0")"
results_dir="$(mktemp -d)"
trap 'rm -rf "$results_dir"' EXIT
# One test project at a time (-m:1): the process-level cluster tests wait on real elections, and on 2 cores
# they should not compete with the simulator's seed sweep.
# A process that dies on a signal (a test host, or a node a test started) leaves a crash report: the runtime's own
# createdump writes the stack of every thread, managed frames by name, and the summary below prints the crashed one.
# Without it a native crash in a test host shows only as "Test process crashed with exit code 139".
crash_dir="$results_dir/crashes"
mkdir -p "$crash_dir"
export DOTNET_DbgEnableMiniDump=1 DOTNET_DbgMiniDumpType=1 DOTNET_EnableCrashReport=1 DOTNET_DbgMiniDumpName="$crash_dir/%e.%p"
status=0
dotnet test RaftLedger.slnx -c Release -m:1 --logger "trx;LogFilePrefix=results" --results-directory "$results_dir" "$@" || status=$?
for report in "$crash_dir"/*.crashreport.json; do
    [ -e "$report" ] || continue
    echo "crash report $(basename "$report"): the crashed thread, innermost frame first"
    python3 - "$report" <<'PY' || grep -o '"\(method_name\|unmanaged_name\|native_module\)": "[^"]*"' "$report" | head -60
import json, sys
threads = json.load(open(sys.argv[1]))["payload"]["threads"]
for thread in (t for t in threads if t.get("crashed") == "true"):
    for frame in thread["stack_frames"][:40]:
        print("   ", frame.get("native_module") or frame.get("filename") or "?", frame.get("method_name") or frame.get("unmanaged_name") or frame.get("native_image_offset", ""))
# A crash on a native background thread (RocksDB's flushes) has no managed frames: name the tests running meanwhile.
running = {f["method_name"] for t in threads for f in t["stack_frames"] if ".Tests." in f.get("method_name", "")}
print("    tests on other threads:", *sorted(running), sep="\n      ")
PY
done
# A plain totals line over every test project, read from the TRX files the runs wrote.
passed=0; failed=0; skipped=0
for trx in "$results_dir"/*.trx; do
    [ -e "$trx" ] || continue
    counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
    p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters"); f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
    n=$(sed -n 's/.* notExecuted="\([0-9]*\)".*/\1/p' <<<"$counters")
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${n:-0}))
done
crashed=$(find "$crash_dir" -name '*.crashreport.json' | wc -l)
echo "tests: $passed passed, $failed failed, $skipped skipped; processes crashed: $crashed"
exit "$status"
