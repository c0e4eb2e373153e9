using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using NUnit.Framework;

namespace KvReplica.Tests.Integration;

/// <summary>Where the built executables are: beside this test assembly's configuration.</summary>
internal static class BuiltExecutables
{
    // The test assembly runs from Tests/bin/<Configuration>/net10.0/; the daemon and the client
    // are built to Node/bin/<Configuration>/net10.0/ and Client/Cli/bin/<Configuration>/net10.0/.
    private static readonly DirectoryInfo OutputDir = new(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));

    public static string RepositoryRoot { get; } = FindRoot();

    public static string Node => Built("Node", "node");

    public static string Client => Built(Path.Combine("Client", "Cli"), "client");

    private static string Built(string project, string name)
    {
        string configuration = OutputDir.Parent!.Name;
        string path = Path.Combine(RepositoryRoot, project, "bin", configuration, OutputDir.Name, name);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is not built; run ./build.sh or dotnet build -c {configuration}");
    }

    private static string FindRoot()
    {
        for (var dir = OutputDir; dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "KvReplica.sln")))
            {
                return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException($"no KvReplica.sln above {OutputDir.FullName}");
    }
}

/// <summary>
/// A cluster of real <c>node</c> processes on loopback with free ports, a private cluster.json
/// and each replica's output kept for assertions and routed to the test log.
/// </summary>
internal sealed class LocalCluster : IAsyncDisposable
{
    private readonly Dictionary<int, Process> _processes = new();
    private readonly Dictionary<int, StringBuilder> _logs = new();
    private readonly Dictionary<int, StringBuilder> _stderr = new();
    private readonly List<Func<Task>> _cleanups = [];
    private readonly string _directory;

    private LocalCluster(string directory, IReadOnlyList<(int Id, int Port)> replicas, string configPath)
    {
        _directory = directory;
        Replicas = replicas;
        ConfigPath = configPath;
    }

    public IReadOnlyList<(int Id, int Port)> Replicas { get; }

    public string ConfigPath { get; }

    /// <summary>The bootstrap admin's credentials when the cluster was started with security on; null otherwise.</summary>
    public KvReplica.Transport.ClientCredentials? Credentials { get; private init; }

    /// <summary>Starts <paramref name="count"/> replicas and waits until every peer link is up.</summary>
    /// <remarks>
    /// <paramref name="restoreFrom"/>: a backup file each replica's data directory is seeded from (<c>node --restore</c>) before it starts.
    /// <paramref name="beforeStart"/>: runs once cluster.json is written and before any replica starts (to mount a data directory, say).
    /// </remarks>
    public static async Task<LocalCluster> StartAsync(int count = 3, int writeTimeoutMs = 3000, int readTimeoutMs = 2000, string fsync = "always", int engineCommitEveryWrites = 10_000, string? restoreFrom = null, int maxPendingWrites = 100_000, int recentDeliveredWrites = 50_000, Func<LocalCluster, Task>? beforeStart = null, bool secure = false, int historyChanges = 100_000)
    {
        string directory = Path.Combine(Path.GetTempPath(), "kvreplica-it-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        var replicas = Enumerable.Range(1, count).Zip(FreePorts(count), (id, port) => (id, port)).ToList();
        string json = $$"""
            {
              "clusterName": "it-{{Path.GetFileName(directory)}}",
              {{(secure ? TestSecurity.Settings : "")}}
              "replicas": [{{string.Join(",", replicas.Select(r => $$"""{ "id": {{r.id}}, "host": "127.0.0.1", "port": {{r.Item2}} }"""))}}],
              "writeTimeoutMs": {{writeTimeoutMs}},
              "readTimeoutMs": {{readTimeoutMs}},
              "clientRequestTimeoutMs": {{Math.Max(writeTimeoutMs, readTimeoutMs) + 2000}},
              "fsync": "{{fsync}}",
              "engineCommitEveryWrites": {{engineCommitEveryWrites}},
              "historyChanges": {{historyChanges}},
              "maxPendingWrites": {{maxPendingWrites}},
              "recentDeliveredWrites": {{recentDeliveredWrites}}
            }
            """;
        string configPath = Path.Combine(directory, "cluster.json");
        await File.WriteAllTextAsync(configPath, json);
        var cluster = new LocalCluster(directory, replicas, configPath)
        {
            Credentials = secure ? TestSecurity.Create(configPath) : null,
        };
        if (beforeStart is not null)
        {
            await beforeStart(cluster);
        }
        if (restoreFrom is not null)
        {
            foreach (var (id, _) in replicas)
            {
                await cluster.RestoreAsync(id, restoreFrom);
            }
        }
        foreach (var (id, _) in replicas)
        {
            cluster.Start(id);
        }
        await cluster.WaitUntilAsync(() => replicas.All(r => cluster.IsLinked(r.id)), TimeSpan.FromSeconds(30), "every replica listening with all peer links up");
        return cluster;
    }

    /// <summary>The data directory of replica <paramref name="id"/> (cluster.json's default, beside the config).</summary>
    public string DataDirectory(int id) => Path.Combine(_directory, "data", $"replica-{id}");

    // Listening, with an outbound link up to every peer, in its current process's log.
    private bool IsLinked(int id) => Log(id).Contains(" listening on ") && Replicas.Where(p => p.Id != id)
        .All(p => Log(id).Contains($"peer {p.Id} up (outbound"));

    /// <summary>Starts replica <paramref name="id"/> again (after <see cref="Kill"/>) and waits until it is linked to every peer.</summary>
    public async Task RestartAsync(int id)
    {
        Start(id);
        await WaitUntilAsync(() => IsLinked(id), TimeSpan.FromSeconds(30), $"restarted replica {id} listening with all peer links up");
    }

    /// <summary>
    /// Kills (<c>ss -K</c>, needs root and iproute2) every established TCP connection whose local
    /// side is one of <paramref name="ports"/>: everything those replicas serve, peers' links included.
    /// </summary>
    public static async Task CutConnectionsServedAtAsync(IEnumerable<int> ports)
    {
        string filter = "( " + string.Join(" or ", ports.Select(p => $"sport = :{p}")) + " )";
        var start = new ProcessStartInfo("ss", ["-K", "-tn", "state", "established", filter]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var ss = Process.Start(start) ?? throw new InvalidOperationException("cannot start ss (iproute2)");
        string errors = await ss.StandardError.ReadToEndAsync();
        await ss.StandardOutput.ReadToEndAsync();
        await ss.WaitForExitAsync();
        Assert.That(ss.ExitCode, Is.Zero, $"ss -K failed (needs root and iproute2): {errors}");
    }

    /// <summary>Runs <c>node id config --restore file</c> to completion; fails the test unless it succeeds.</summary>
    public async Task RestoreAsync(int id, string backupFile)
    {
        using var process = Process.Start(new ProcessStartInfo(BuiltExecutables.Node, [id.ToString(), ConfigPath, "--restore", backupFile])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(deadline.Token);
        Assert.That(process.ExitCode, Is.Zero, $"node {id} --restore failed: {await output}{await errors}");
        TestContext.Progress.WriteLine($"[restore {id}] {(await output).Trim()}");
    }

    /// <summary>Starts replica <paramref name="id"/> without waiting; for tests of start-up failures.</summary>
    public Process StartProcess(int id)
    {
        Start(id);
        return _processes[id];
    }

    private void Start(int id)
    {
        var log = new StringBuilder();
        _logs[id] = log;
        var stderr = new StringBuilder();
        _stderr[id] = stderr;
        var process = new Process
        {
            StartInfo = new ProcessStartInfo(BuiltExecutables.Node, [id.ToString(), ConfigPath])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            },
        };
        void Capture(object _, DataReceivedEventArgs e)
        {
            if (e.Data is null)
            {
                return;
            }
            lock (log)
            {
                log.AppendLine(e.Data);
            }
            TestContext.Progress.WriteLine($"[node {id}] {e.Data}");
        }
        process.OutputDataReceived += Capture;
        process.ErrorDataReceived += Capture;
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (stderr)
                {
                    stderr.AppendLine(e.Data);
                }
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (_processes.TryGetValue(id, out var previous))
        {
            previous.Dispose();
        }
        _processes[id] = process;
    }

    public string Log(int id)
    {
        var log = _logs[id];
        lock (log)
        {
            return log.ToString();
        }
    }

    /// <summary>
    /// Whether replica <paramref name="id"/>'s current process, in its run started after the
    /// first log line containing <paramref name="after"/> (or its first run), has installed a view
    /// with every replica in it. The line right after "listening" is the view it recovered from
    /// its data directory, so it does not count: only a view change adding it back does.
    /// </summary>
    public bool InstalledViewOfAll(int id, string? after = null)
    {
        var lines = Log(id).Split('\n');
        int from = after is null ? 0 : Array.FindIndex(lines, l => l.Contains(after, StringComparison.Ordinal));
        int listening = from < 0 ? -1 : Array.FindIndex(lines, from, l => l.Contains(" listening on ", StringComparison.Ordinal));
        string everyone = $": members {string.Join(",", Replicas.Select(r => r.Id))}";
        return listening >= 0 && lines.Skip(listening + 2).Any(l => l.Contains(" view ", StringComparison.Ordinal) && l.TrimEnd('\r').EndsWith(everyone, StringComparison.Ordinal));
    }

    /// <summary>What replica <paramref name="id"/>'s current process wrote to stderr (also in <see cref="Log"/>).</summary>
    public string Stderr(int id)
    {
        var stderr = _stderr[id];
        lock (stderr)
        {
            return stderr.ToString();
        }
    }

    /// <summary>The process id of replica <paramref name="id"/>'s current process, for signals.</summary>
    public int ProcessId(int id) => _processes[id].Id;

    /// <summary>
    /// Waits until replica <paramref name="id"/>'s current process exits by itself, and all its
    /// output is read; returns its exit code. Fails the test at the deadline.
    /// </summary>
    public async Task<int> WaitForExitAsync(int id, TimeSpan deadline)
    {
        using var timeout = new CancellationTokenSource(deadline);
        try
        {
            await _processes[id].WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"replica {id} did not exit within {deadline.TotalSeconds:0} s; its log:\n{Log(id)}");
        }
        return _processes[id].ExitCode;
    }

    /// <summary>Runs <paramref name="cleanup"/> at disposal, after every replica is killed and before the directory is deleted.</summary>
    public void OnDispose(Func<Task> cleanup) => _cleanups.Add(cleanup);

    public int Port(int id) => Replicas.Single(r => r.Id == id).Port;

    public bool IsRunning(int id) => !_processes[id].HasExited;

    /// <summary>SIGKILL: no shutdown code runs, as in a crash.</summary>
    public void Kill(int id)
    {
        _processes[id].Kill(entireProcessTree: true);
        _processes[id].WaitForExit(10_000);
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; fails the test with <paramref name="what"/> at the deadline.</summary>
    public async Task WaitUntilAsync(Func<bool> condition, TimeSpan deadline, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > deadline)
            {
                Assert.Fail($"waited {deadline.TotalSeconds:0} s for {what}; replica logs:\n" +
                    string.Join("\n", _logs.Keys.Select(id => $"--- node {id}\n{Log(id)}")));
            }
            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _processes.Values)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
                }
            }
            catch (InvalidOperationException)
            {
            }
            process.Dispose();
        }
        foreach (var cleanup in _cleanups)
        {
            await cleanup();
        }
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    // Distinct free ports: every probe stays open until all are chosen, or the OS could hand
    // the same port out twice (it did, and the replicas refused a cluster.json naming it twice).
    internal static int[] FreePorts(int count)
    {
        var probes = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        try
        {
            probes.ForEach(p => p.Start());
            return [.. probes.Select(p => ((IPEndPoint)p.LocalEndpoint).Port)];
        }
        finally
        {
            probes.ForEach(p => p.Stop());
        }
    }
}
