using KvReplica.Transport;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using KvReplica.Client;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;
using KvReplica.Tests.Integration;

namespace KvReplica.Tests.Faults;

/// <summary>Microseconds since the start of one fault run: the one time base of the history, the faults and the replicas' log lines.</summary>
internal sealed class RunClock
{
    private readonly long _start = Stopwatch.GetTimestamp();

    public long NowUs => (long)Stopwatch.GetElapsedTime(_start).TotalMicroseconds;
}

/// <summary>A line a replica wrote, stamped with the run clock when the test read it (within milliseconds of its writing).</summary>
internal sealed record ReplicaLogLine(long AtUs, int Replica, int Incarnation, string Text);

/// <summary>A "view N: members ..." line: replica <see cref="Replica"/> installed view <see cref="Number"/>.</summary>
internal sealed record ViewInstall(long AtUs, int Replica, long Number, IReadOnlyList<int> Members);

/// <summary>A fault run cannot go on: a deadline passed or a replica died. The message says what and shows the evidence.</summary>
internal sealed class FaultRunFailure(string message) : Exception(message);

/// <summary>
/// Three (or more) real <c>node</c> processes with cluster.json's default timeouts, either on
/// loopback or each in its own network namespace (<see cref="NetworkLab"/>); each replica's
/// output is kept, with every incarnation, for the artefacts and for the view-install times.
/// </summary>
internal sealed partial class FaultCluster : IAsyncDisposable
{
    /// <summary>Where a fault run's temporary directories start; the test process id follows, so leftovers of a dead run can be told apart.</summary>
    public const string TempPrefix = "kvreplica-faults-";

    private readonly Dictionary<int, Process> _processes = new();
    private readonly Dictionary<int, int> _incarnations = new();
    private readonly HashSet<int> _killed = [];
    private readonly List<ReplicaLogLine> _lines = [];
    private readonly List<ViewInstall> _views = [];
    private readonly Lock _gate = new();
    private readonly string _directory;
    private readonly RunClock _clock;
    private readonly NetworkLab? _lab;

    private FaultCluster(string directory, string configPath, ClusterConfig config, RunClock clock, NetworkLab? lab)
    {
        _directory = directory;
        ConfigPath = configPath;
        Config = config;
        _clock = clock;
        _lab = lab;
    }

    public string ConfigPath { get; }

    public ClusterConfig Config { get; }

    /// <summary>The bootstrap admin, whom the workload and the probes log in as.</summary>
    public required ClientCredentials Credentials { get; init; }

    /// <summary>How the suite's own connections (STATUS) reach the replicas.</summary>
    public required DialSettings Dial { get; init; }

    public IReadOnlyList<int> Ids => [.. Config.Replicas.Select(r => r.Id)];

    /// <summary>
    /// Writes a cluster.json (default timeouts: suspicion 1 s, write 5 s, read 2 s, client 6 s)
    /// naming loopback ports, or the namespaces' addresses when <paramref name="lab"/> is given,
    /// and starts every replica. It does not wait: callers wait for <see cref="WaitUntilWholeAsync"/>.
    /// </summary>
    public static async Task<FaultCluster> StartAsync(string name, RunClock clock, NetworkLab? lab, int count = 3)
    {
        string directory = Path.Combine(Path.GetTempPath(), $"{TempPrefix}{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(directory);
        var ids = Enumerable.Range(1, count).ToList();
        // In namespaces every replica has an address of its own, so one port serves all.
        var addresses = lab is null
            ? ids.Zip(KvReplica.Tests.Integration.LocalCluster.FreePorts(count), (id, port) => (Id: id, Host: "127.0.0.1", Port: port)).ToList()
            : ids.Select(id => (Id: id, Host: lab.Address(id), Port: 7100)).ToList();
        string json = $$"""
            {
              "clusterName": "faults-{{name}}-{{Path.GetFileName(directory)}}",
              {{KvReplica.Tests.Integration.TestSecurity.Settings}}
              "replicas": [{{string.Join(",", addresses.Select(r => $$"""{ "id": {{r.Id}}, "host": "{{r.Host}}", "port": {{r.Port}} }"""))}}]
            }
            """;
        string configPath = Path.Combine(directory, "cluster.json");
        await File.WriteAllTextAsync(configPath, json);
        // The suite runs the cluster as it is deployed: TLS between replicas, clients authenticated.
        var credentials = KvReplica.Tests.Integration.TestSecurity.Create(configPath);
        var config = ClusterConfigFile.Load(configPath);
        var cluster = new FaultCluster(directory, configPath, config, clock, lab)
        {
            Credentials = credentials,
            Dial = DialSettings.ForClient(config, credentials),
        };
        foreach (int id in ids)
        {
            cluster.Start(id);
        }
        return cluster;
    }

    /// <summary>The process id of replica <paramref name="id"/>'s current incarnation.</summary>
    public int ProcessId(int id) => _processes[id].Id;

    /// <summary>SIGKILL: no shutdown code runs, as in a crash. Returns once the process is gone.</summary>
    public void Kill(int id)
    {
        _killed.Add(id);
        _processes[id].Kill(entireProcessTree: true);
        if (!_processes[id].WaitForExit(10_000))
        {
            throw new FaultRunFailure($"replica {id} (process {_processes[id].Id}) did not die within 10 s of SIGKILL");
        }
    }

    /// <summary>Starts replica <paramref name="id"/> again from its data directory, after <see cref="Kill"/>.</summary>
    public void Restart(int id)
    {
        _killed.Remove(id);
        Start(id);
    }

    /// <summary>SIGSTOP to replica <paramref name="id"/>.</summary>
    public void Pause(int id) => Shell.Stop(_processes[id].Id);

    /// <summary>SIGCONT to replica <paramref name="id"/>.</summary>
    public void Resume(int id) => Shell.Continue(_processes[id].Id);

    /// <summary>Every line every replica wrote so far, in arrival order.</summary>
    public IReadOnlyList<ReplicaLogLine> Lines
    {
        get
        {
            lock (_gate)
            {
                return [.. _lines];
            }
        }
    }

    /// <summary>Every view installation logged so far, in arrival order.</summary>
    public IReadOnlyList<ViewInstall> Views
    {
        get
        {
            lock (_gate)
            {
                return [.. _views];
            }
        }
    }

    /// <summary>Asks every replica for its status, each on its own connection; null for one that did not answer within <paramref name="timeout"/>.</summary>
    public async Task<IReadOnlyList<(int Id, ReplicaStatus? Status, string? Error)>> StatusAsync(TimeSpan timeout)
    {
        return await Task.WhenAll(Config.Replicas.Select(async replica =>
        {
            using var deadline = new CancellationTokenSource(timeout);
            try
            {
                return (replica.Id, (ReplicaStatus?)await ReplicaStatusQuery.AskAsync(Dial, replica, deadline.Token), (string?)null);
            }
            catch (Exception e)
            {
                // Whatever went wrong (including the client's internal protocol errors), this
                // replica did not answer: that is the result, not a reason to stop the run.
                return (replica.Id, null, e is OperationCanceledException ? $"no answer within {timeout.TotalMilliseconds:0} ms" : e.Message);
            }
        }));
    }

    /// <summary>
    /// Whole: every configured replica answers STATUS with the same view number, every configured
    /// replica a member, nobody suspected, no view change in progress, nobody removed.
    /// </summary>
    public static bool IsWhole(IReadOnlyList<(int Id, ReplicaStatus? Status, string? Error)> statuses, IReadOnlyList<int> ids) =>
        statuses.All(s => s.Status is { Wedged: false, Removed: false, Suspected.Length: 0 } st && st.Members.Order().SequenceEqual(ids))
        && statuses.Select(s => s.Status!.ViewNumber).Distinct().Count() == 1;

    /// <summary>
    /// Polls STATUS until the cluster is whole (<see cref="IsWhole"/>) and returns when it was
    /// first seen so; throws <see cref="FaultRunFailure"/> with the last answers and the log
    /// tails at <paramref name="deadline"/>, or at once if a replica that should run has exited.
    /// </summary>
    public async Task<long> WaitUntilWholeAsync(TimeSpan deadline, string after)
    {
        var clock = Stopwatch.StartNew();
        IReadOnlyList<(int Id, ReplicaStatus? Status, string? Error)> last = [];
        while (clock.Elapsed < deadline)
        {
            ThrowIfAReplicaDied();
            last = await StatusAsync(TimeSpan.FromSeconds(1));
            if (IsWhole(last, Ids))
            {
                return _clock.NowUs;
            }
            await Task.Delay(100);
        }
        string removed = string.Join(", ", last.Where(a => a.Status is { Removed: true }).Select(a => a.Id));
        if (removed.Length > 0)
        {
            after += $" (replica {removed} says it was removed from the view and has not rejoined)";
        }
        throw new FaultRunFailure($"the cluster was not whole (all of {string.Join(",", Ids)} members of one view on every replica, none suspected or removed) within {deadline.TotalSeconds:0} s {after}; last STATUS: "
            + string.Join("; ", last.Select(Describe)) + "\n" + LogTails(40));
    }

    /// <summary>Throws <see cref="FaultRunFailure"/> if a replica that should be running (not killed by the test) has exited.</summary>
    public void ThrowIfAReplicaDied()
    {
        foreach (var (id, process) in _processes)
        {
            if (!_killed.Contains(id) && process.HasExited)
            {
                throw new FaultRunFailure($"replica {id} exited by itself with code {process.ExitCode}\n{LogTails(60)}");
            }
        }
    }

    /// <summary>One STATUS answer as the client CLI would print it.</summary>
    public static string Describe((int Id, ReplicaStatus? Status, string? Error) answer) => answer.Status is { } s
        ? $"replica {s.ReplicaId}: view {s.ViewNumber} members {string.Join(",", s.Members)} suspects {(s.Suspected.Length == 0 ? "-" : string.Join(",", s.Suspected))} delivered {s.DeliveredTime}.{s.DeliveredReplica} pending {s.PendingWrites}{(s.Wedged ? " (view change in progress)" : "")}{(s.Removed ? " (removed from the view)" : "")}"
        : $"replica {answer.Id}: unreachable ({answer.Error})";

    /// <summary>The last <paramref name="count"/> lines of each replica, for failure messages.</summary>
    public string LogTails(int count)
    {
        var lines = Lines;
        return string.Join("\n", Ids.Select(id => $"--- replica {id}, last {count} lines:\n" +
            string.Join("\n", lines.Where(l => l.Replica == id).TakeLast(count).Select(l => $"[{l.AtUs / 1000.0,10:0.0} ms] {l.Text}"))));
    }

    /// <summary>Writes each replica's whole output (every incarnation, run-clock times in front) to <c>replica-&lt;id&gt;.log</c> in <paramref name="directory"/>.</summary>
    public void WriteLogs(string directory)
    {
        var lines = Lines;
        foreach (int id in Ids)
        {
            File.WriteAllLines(Path.Combine(directory, $"replica-{id}.log"),
                lines.Where(l => l.Replica == id).Select(l => $"[{l.AtUs / 1000.0,10:0.0} ms] #{l.Incarnation} {l.Text}"));
        }
    }

    private void Start(int id)
    {
        int incarnation = _incarnations[id] = _incarnations.GetValueOrDefault(id) + 1;
        // `ip netns exec` enters the namespace and then execs the node, so the process id is the node's own.
        var start = _lab is null
            ? new ProcessStartInfo(BuiltExecutables.Node, [id.ToString(), ConfigPath])
            : new ProcessStartInfo("ip", ["netns", "exec", _lab.Namespace(id), BuiltExecutables.Node, id.ToString(), ConfigPath]);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        var process = new Process { StartInfo = start };
        void Capture(object _, DataReceivedEventArgs e)
        {
            if (e.Data is null)
            {
                return;
            }
            long at = _clock.NowUs;
            lock (_gate)
            {
                _lines.Add(new ReplicaLogLine(at, id, incarnation, e.Data));
                if (ViewLine().Match(e.Data) is { Success: true } m)
                {
                    _views.Add(new ViewInstall(at, id, long.Parse(m.Groups[1].Value), [.. m.Groups[2].Value.Split(',').Select(int.Parse)]));
                }
            }
        }
        process.OutputDataReceived += Capture;
        process.ErrorDataReceived += Capture;
        lock (_gate)
        {
            _lines.Add(new ReplicaLogLine(_clock.NowUs, id, incarnation, $"(test) starting incarnation {incarnation}: {start.FileName} {string.Join(' ', start.ArgumentList)}"));
        }
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (_processes.TryGetValue(id, out var previous))
        {
            previous.Dispose();
        }
        _processes[id] = process;
    }

    /// <summary>Kills every replica (SIGKILL works on stopped ones too) and deletes the data directories. Never throws.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes.Values)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    await process.WaitForExitAsync(deadline.Token);
                }
            }
            catch (Exception e) when (e is InvalidOperationException or OperationCanceledException or System.ComponentModel.Win32Exception)
            {
            }
            process.Dispose();
        }
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>Kills replicas left running by fault runs whose test process is gone (found by their config path) and deletes their directories.</summary>
    public static void CleanStale()
    {
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            string cmdline;
            try
            {
                cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            if (StaleOwner().Match(cmdline) is { Success: true } m && !Shell.IsAlive(int.Parse(m.Groups[1].Value))
                && int.TryParse(Path.GetFileName(dir), out int pid))
            {
                try
                {
                    using var process = Process.GetProcessById(pid);
                    process.Kill();
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException)
                {
                }
            }
        }
        foreach (string dir in Directory.EnumerateDirectories(Path.GetTempPath(), TempPrefix + "*"))
        {
            if (StaleOwner().Match(dir) is { Success: true } m && !Shell.IsAlive(int.Parse(m.Groups[1].Value)))
            {
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (IOException)
                {
                }
            }
        }
    }

    [GeneratedRegex(@"\bview (\d+): members ([0-9,]+)")]
    private static partial Regex ViewLine();

    [GeneratedRegex(@"kvreplica-faults-(\d+)-[0-9a-f]{8}")]
    private static partial Regex StaleOwner();
}
