using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using KvReplica.Protocol.Wire;
using NUnit.Framework;

namespace KvReplica.Tests.Integration;

/// <summary>The daemon refuses bad starts with one clear line, and rejects mismatched handshakes.</summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class NodeStartupAndHandshakeTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory()
    {
        _dir = Path.Combine(Path.GetTempPath(), "kvreplica-start-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int ExitCode, string Stderr)> RunNodeAsync(params string[] args)
    {
        var start = new ProcessStartInfo(BuiltExecutables.Node, args) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, (await stderr).Trim());
    }

    private string WriteConfig(string json)
    {
        string path = Path.Combine(_dir, "cluster.json");
        File.WriteAllText(path, json);
        return path;
    }

    [Test]
    public async Task An_unknown_replica_id_is_refused_with_one_line()
    {
        string config = WriteConfig("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "127.0.0.1", "port": 1 } ] }""");
        var (exit, stderr) = await RunNodeAsync("9", config);
        Assert.That(exit, Is.Not.Zero);
        Assert.That(stderr, Is.EqualTo($"node: replica id 9 is not in {config} (replicas: 1)"));
    }

    [Test]
    public async Task A_replica_on_a_non_loopback_address_without_tls_refuses_to_start()
    {
        string config = WriteConfig("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "10.99.0.1", "port": 7999 } ] }""");
        var (exit, stderr) = await RunNodeAsync("1", config);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stderr, Does.StartWith("node: replica 1 listens on 10.99.0.1, which is not a loopback address, and ").And.EndWith(" has no tls: add tls (README, \"Security\"; `node certs " + config + "` makes the certificates) or pass --insecure"));
    }

    [Test]
    public async Task A_missing_tls_file_is_refused_with_one_line_naming_it()
    {
        string config = WriteConfig("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "127.0.0.1", "port": 7999 } ], "tls": { "ca": "none/ca.crt", "cert": "none/r{id}.crt", "key": "none/r{id}.key" } }""");
        var (exit, stderr) = await RunNodeAsync("1", config);
        Assert.That(exit, Is.EqualTo(2));
        Assert.That(stderr, Is.EqualTo($"node: tls.ca: {Path.Combine(_dir, "none", "ca.crt")}: not found (`node certs <config>` makes a cluster's certificates)"));
    }

    [Test]
    public async Task A_missing_config_file_is_refused_with_one_line()
    {
        var (exit, stderr) = await RunNodeAsync("1", Path.Combine(_dir, "absent.json"));
        Assert.That(exit, Is.Not.Zero);
        Assert.That(stderr, Does.StartWith("node: config file").And.EndWith("not found"));
        Assert.That(stderr, Does.Not.Contain("\n"));
    }

    [TestCase("""{ "replicas": [ { "id": 1, "host": "h", "port": 1 } ] }""", "clusterName is missing")]
    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": 70000 } ] }""", "replicas[0].port: 70000 is outside 1..65535")]
    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": 5 }, { "id": 1, "host": "h", "port": 6 } ] }""", "replicas[1].id: id 1 is used twice")]
    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": 5 } ], "readTimeoutMs": "soon" }""", "readTimeoutMs must be a whole number, not the string \"soon\"")]
    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": 5 } ], "fsynk": "none" }""", ": unknown setting 'fsynk' (did you mean 'fsync'?)")]
    [TestCase("""{ "clusterName": "c", "replicas": [ """, ":1:37: invalid JSON: the file ends before the JSON is complete")]
    public async Task An_invalid_config_names_the_field_at_fault(string json, string expected)
    {
        string config = WriteConfig(json);
        var (exit, stderr) = await RunNodeAsync("1", config);
        Assert.That(exit, Is.Not.Zero);
        Assert.That(stderr, Does.StartWith("node: ").And.Contain(expected));
        Assert.That(stderr, Does.Not.Contain("\n"), "one line, no stack trace");
    }

    [Test]
    public async Task A_port_in_use_is_refused_with_one_line()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        int port = ((IPEndPoint)squatter.LocalEndpoint).Port;
        string config = WriteConfig($$"""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "127.0.0.1", "port": {{port}} } ] }""");
        var (exit, stderr) = await RunNodeAsync("1", config);
        Assert.That(exit, Is.Not.Zero);
        Assert.That(stderr, Is.EqualTo($"node: port {port} on 127.0.0.1 (replica 1) is already in use (is another replica or program running there?)"));
    }

    [TestCase(2, "wrong-cluster", "cluster name 'wrong-cluster' does not match")]
    [TestCase(99, null, "protocol version 99 is not supported; this replica speaks version 2")]
    public async Task A_mismatched_handshake_is_rejected_with_its_reason(int version, string? clusterName, string expected)
    {
        await using var cluster = await LocalCluster.StartAsync(count: 1);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", cluster.Port(1));
        string realName = File.ReadAllText(cluster.ConfigPath).Split('"')[3];
        var hello = new Hello { ProtocolVersion = version == 2 ? ProtocolVersion.Current : version, ClusterName = clusterName ?? realName, Kind = PeerKind.Client };
        await socket.SendAsync(FrameCodec.ToFrameBytes(hello));
        var received = new ArrayBufferWriter<byte>();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
        {
            received.Write(buffer.AsSpan(0, n));
        }
        var sequence = new ReadOnlySequence<byte>(received.WrittenMemory);
        Assert.That(FrameCodec.TryReadFrame(ref sequence, 1 << 20, out var answer), Is.True, "an answer frame before the close");
        Assert.That(answer, Is.TypeOf<HelloRejected>());
        Assert.That(((HelloRejected)answer).Reason, Does.Contain(expected));
        await cluster.WaitUntilAsync(() => cluster.Log(1).Contains("rejected: " + expected[..20]), TimeSpan.FromSeconds(10), "the rejection in the replica log");
    }
}
