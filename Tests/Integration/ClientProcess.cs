using System.Diagnostics;
using System.Text;
using NUnit.Framework;

namespace KvReplica.Tests.Integration;

/// <summary>Runs the real <c>client</c> executable in batch or one-shot mode.</summary>
internal static class ClientProcess
{
    public sealed record Result(int ExitCode, IReadOnlyList<string> Lines, string Stderr);

    /// <summary>
    /// Feeds <paramref name="commands"/> on standard input (batch mode) and returns the result
    /// lines. Fails the test if the client has not exited by <paramref name="deadline"/>.
    /// </summary>
    public static async Task<Result> RunAsync(string configPath, IEnumerable<string> commands, TimeSpan deadline, params string[] options)
    {
        var start = new ProcessStartInfo(BuiltExecutables.Client, [configPath, .. options])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardInputEncoding = new UTF8Encoding(false),
            StandardOutputEncoding = Encoding.UTF8,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        foreach (string command in commands)
        {
            await process.StandardInput.WriteLineAsync(command);
        }
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(deadline);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"client did not finish within {deadline.TotalSeconds:0} s; stdout so far:\n{await stdout}\nstderr:\n{await stderr}");
        }
        string output = await stdout;
        string errors = await stderr;
        if (errors.Length > 0)
        {
            TestContext.Progress.WriteLine($"[client stderr] {errors}");
        }
        var lines = output.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        if (lines.Count > 0 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
        }
        return new Result(process.ExitCode, lines, errors);
    }
}
