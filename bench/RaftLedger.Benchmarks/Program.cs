using BenchmarkDotNet.Running;

namespace RaftLedger.Benchmarks;

/// <summary>Runs the benchmarks picked on the command line, e.g. <c>--filter *Ledger*</c>.</summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
