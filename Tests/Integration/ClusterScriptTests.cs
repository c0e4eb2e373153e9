using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using NUnit.Framework;

namespace KvReplica.Tests.Integration;

/// <summary>
/// cluster.sh, run as a person runs it: a second run over the data directories of a running
/// cluster refuses, names the cluster that holds them and leaves it (and its logs) alone.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed partial class ClusterScriptTests
{
    // cluster.sh runs ./build.sh first; on a shared, busy machine an up-to-date build still takes a while.
    private static readonly TimeSpan StartDeadline = TimeSpan.FromMinutes(5);

    private string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = Directory.CreateTempSubdirectory("kvreplica-script-").FullName;

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_directory, recursive: true);

    [Test]
    public async Task A_second_cluster_sh_refuses_and_leaves_the_running_cluster_and_its_logs_alone()
    {
        var ports = LocalCluster.FreePorts(3);
        string config = Path.Combine(_directory, "cluster.json");
        await File.WriteAllTextAsync(config, $$"""
            {
              "clusterName": "script-{{Path.GetFileName(_directory)}}",
              "replicas": [{{string.Join(",", ports.Select((port, i) => $$"""{ "id": {{i + 1}}, "host": "127.0.0.1", "port": {{port}} }"""))}}],
              "fsync": "none"
            }
            """);

        using var first = ScriptProcess.Start(config);
        try
        {
            string running = await first.WaitForErrorLineAsync("replicas running", StartDeadline);
            string logDir = Path.Combine(BuiltExecutables.RepositoryRoot, LogDirectory().Match(running).Groups[1].Value);
            var logsBefore = Enumerable.Range(1, 3).ToDictionary(id => id, id => File.ReadAllText(Path.Combine(logDir, $"node-{id}.log")));
            Assert.That(logsBefore.Values, Has.All.Contain(" listening on "), "each log has the replica's start");

            using var second = ScriptProcess.Start(config);
            second.CloseInput();
            int secondExit = await second.WaitForExitAsync(StartDeadline);
            string refusal = second.Errors;

            Assert.That(secondExit, Is.EqualTo(1), refusal);
            for (int id = 1; id <= 3; id++)
            {
                Assert.That(refusal, Does.Match($@"data/replica-{id} is in use by process \d+ \([^)]*node {id} {Regex.Escape(config)}\), started by cluster\.sh \(pid {first.Id}\), logging to {Regex.Escape(logDir)}/"));
            }
            Assert.That(refusal, Does.Not.Contain("replicas running"));

            // The first cluster still serves through its own client, and its logs were only ever appended to.
            string answers = await first.AskAsync("PUT k v\nGET k\n", expectedLines: 2, StartDeadline);
            Assert.That(answers, Is.EqualTo("OK\nv\n"));
            for (int id = 1; id <= 3; id++)
            {
                Assert.That(File.ReadAllText(Path.Combine(logDir, $"node-{id}.log")), Does.StartWith(logsBefore[id]), $"replica {id}'s log kept whole");
            }
        }
        finally
        {
            first.CloseInput();
            await first.WaitForExitAsync(TimeSpan.FromSeconds(60));
        }
    }

    [GeneratedRegex(@"logs in (\S+?)/?\)")]
    private static partial Regex LogDirectory();

    /// <summary>One <c>cluster.sh</c> run with its stdin held open (its client reads it) and its output kept.</summary>
    private sealed class ScriptProcess : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _errors = new();
        private readonly StringBuilder _output = new();

        private ScriptProcess(Process process) => _process = process;

        public int Id => _process.Id;

        public string Errors
        {
            get
            {
                lock (_errors)
                {
                    return _errors.ToString();
                }
            }
        }

        public static ScriptProcess Start(string config)
        {
            var process = new Process
            {
                StartInfo = new ProcessStartInfo("bash", [Path.Combine(BuiltExecutables.RepositoryRoot, "cluster.sh"), config])
                {
                    RedirectStandardInput = true,
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                },
            };
            var script = new ScriptProcess(process);
            process.ErrorDataReceived += (_, e) => script.Keep(script._errors, e.Data, "stderr");
            process.OutputDataReceived += (_, e) => script.Keep(script._output, e.Data, "stdout");
            process.Start();
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            return script;
        }

        private void Keep(StringBuilder into, string? line, string stream)
        {
            if (line is null)
            {
                return;
            }
            lock (into)
            {
                into.Append(line).Append('\n');
            }
            TestContext.Progress.WriteLine($"[cluster.sh {_process.Id} {stream}] {line}");
        }

        public async Task<string> WaitForErrorLineAsync(string text, TimeSpan deadline)
        {
            var clock = Stopwatch.StartNew();
            while (true)
            {
                string line = Errors.Split('\n').FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal)) ?? "";
                if (line.Length > 0)
                {
                    return line;
                }
                if (_process.HasExited)
                {
                    Assert.Fail($"cluster.sh exited ({_process.ExitCode}) before '{text}':\n{Errors}");
                }
                Assert.That(clock.Elapsed, Is.LessThan(deadline), $"no '{text}' from cluster.sh within {deadline}:\n{Errors}");
                await Task.Delay(100);
            }
        }

        /// <summary>Sends <paramref name="commands"/> to the script's client and waits for that many result lines.</summary>
        public async Task<string> AskAsync(string commands, int expectedLines, TimeSpan deadline)
        {
            await _process.StandardInput.WriteAsync(commands);
            await _process.StandardInput.FlushAsync();
            var clock = Stopwatch.StartNew();
            while (true)
            {
                string output;
                lock (_output)
                {
                    output = _output.ToString();
                }
                if (output.Count(c => c == '\n') >= expectedLines)
                {
                    return output;
                }
                Assert.That(clock.Elapsed, Is.LessThan(deadline), $"the client answered only '{output}' within {deadline}");
                await Task.Delay(50);
            }
        }

        public void CloseInput() => _process.StandardInput.Close();

        public async Task<int> WaitForExitAsync(TimeSpan deadline)
        {
            using var timeout = new CancellationTokenSource(deadline);
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"cluster.sh {_process.Id} still running after {deadline}:\n{Errors}");
            }
            return _process.ExitCode;
        }

        public void Dispose()
        {
            // Only this run's own processes: the script and the replicas it started.
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
            _process.Dispose();
        }
    }
}
