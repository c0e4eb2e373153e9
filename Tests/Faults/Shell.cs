using System.Diagnostics;
using System.Runtime.InteropServices;

namespace KvReplica.Tests.Faults;

/// <summary>Runs a system command (iproute2's <c>ip</c>, <c>sh</c>) to completion and sends signals.</summary>
internal static class Shell
{
    // Linux signal numbers (the same on x86-64 and arm64). The suite needs Linux anyway: network
    // namespaces, and SIGSTOP, which .NET's Process has no call for.
    private const int SigInterrupt = 2;
    private const int SigTerminate = 15;
    private const int SigCont = 18;
    private const int SigStop = 19;

    public sealed record Result(int ExitCode, string Output, string Errors);

    /// <summary>Runs <paramref name="file"/> with <paramref name="args"/>; throws <see cref="InvalidOperationException"/> (with its stderr) unless it exits 0.</summary>
    public static async Task<string> RunAsync(string file, params string[] args)
    {
        var result = await TryRunAsync(file, args);
        return result.ExitCode == 0
            ? result.Output
            : throw new InvalidOperationException($"`{file} {string.Join(' ', args)}` exited with {result.ExitCode}: {result.Errors.Trim()}");
    }

    /// <summary>Runs <paramref name="file"/> with <paramref name="args"/> and returns whatever happened; fails only if it cannot be started or takes over 30 s.</summary>
    public static async Task<Result> TryRunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {file}");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"`{file} {string.Join(' ', args)}` did not finish within 30 s");
        }
        return new Result(process.ExitCode, await output, await errors);
    }

    /// <summary>SIGSTOP: the process freezes with its sockets open, as in a long GC pause or a stalled VM.</summary>
    public static void Stop(int pid) => Signal(pid, SigStop, "SIGSTOP");

    /// <summary>SIGCONT: a stopped process runs again from where it was.</summary>
    public static void Continue(int pid) => Signal(pid, SigCont, "SIGCONT");

    /// <summary>SIGTERM: what a service manager sends to stop a process.</summary>
    public static void Terminate(int pid) => Signal(pid, SigTerminate, "SIGTERM");

    /// <summary>SIGINT: what Ctrl+C in a terminal sends.</summary>
    public static void Interrupt(int pid) => Signal(pid, SigInterrupt, "SIGINT");

    /// <summary>Whether a process with this id exists (possibly a reused id: callers check more than this).</summary>
    public static bool IsAlive(int pid) => Directory.Exists($"/proc/{pid}");

    private static void Signal(int pid, int signal, string name)
    {
        if (SendSignal(pid, signal) != 0)
        {
            throw new InvalidOperationException($"{name} to process {pid} failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    // DllImport rather than LibraryImport: the latter needs unsafe code enabled in the test
    // project, and two ints need no marshalling code anyway.
    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);
}
