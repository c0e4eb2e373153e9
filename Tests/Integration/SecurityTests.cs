using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using KvReplica.Client;
using KvReplica.Transport;
using KvReplica.Protocol.Auth;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;
using NUnit.Framework;

namespace KvReplica.Tests.Integration;

/// <summary>
/// A cluster with TLS and authentication on, attacked as issue 10 found it could be attacked,
/// using only what docs/protocol.md documents. In every case nothing is delivered (each replica's
/// delivered stamp is unchanged), no replica stops, and the cluster still serves its real users.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class SecurityTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private LocalCluster _cluster = null!;
    private ClusterConfig _config = null!;

    [OneTimeSetUp]
    public async Task StartSecureCluster()
    {
        _cluster = await LocalCluster.StartAsync(count: 3, secure: true);
        _config = ClusterConfigFile.Load(_cluster.ConfigPath);
        await using var admin = await AdminAsync();
        await admin.PutAsync("secret", "before"u8.ToArray());
    }

    [OneTimeTearDown]
    public async Task StopCluster() => await _cluster.DisposeAsync();

    private Task<KvClient> AdminAsync() =>
        KvClient.ConnectAsync(_config, new KvClientOptions { Credentials = _cluster.Credentials });

    [Test]
    public async Task A_plaintext_peer_hello_and_forged_batch_get_no_answer_and_change_nothing()
    {
        var before = await DeliveredAsync();
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync("127.0.0.1", _cluster.Port(1));
        await socket.SendAsync(FrameCodec.ToFrameBytes(HelloAs(PeerKind.Replica, replicaId: 2)));
        await socket.SendAsync(FrameCodec.ToFrameBytes(ForgedBatch()));
        var answer = await ReadUntilClosedAsync(socket);
        Assert.That(FrameCodec.TryReadFrame(ref answer, 1 << 20, out _), Is.False, "no frame comes back to a plaintext peer");
        await _cluster.WaitUntilAsync(() => _cluster.Log(1).Contains("TLS handshake with"), Deadline, "the refused TLS handshake in replica 1's log");
        await AssertNothingDeliveredAndAllServeAsync(before);
    }

    [Test]
    public async Task A_peer_presenting_another_replicas_certificate_is_refused_and_the_real_link_stays()
    {
        var before = await DeliveredAsync();
        // Replica 3's own certificate and key, claiming to be replica 2 to replica 1.
        using var stolen = TransportSecurity.Load(_config, replicaId: 3)!;
        await using (var connection = await RawTls.OpenAsync(_config, stolen, replicaId: 1))
        {
            await connection.SendAsync(HelloAs(PeerKind.Replica, replicaId: 2));
            var answer = await connection.ReadAsync();
            Assert.That(answer, Is.TypeOf<HelloRejected>());
            Assert.That(((HelloRejected)answer).Reason, Is.EqualTo("authentication failed"));
            await connection.SendAsync(ForgedBatch());
        }
        await _cluster.WaitUntilAsync(() => _cluster.Log(1).Contains("claims to be replica 2 but presented replica 3's certificate"), Deadline, "the refusal in replica 1's log");
        Assert.That(_cluster.Log(1), Does.Not.Contain("peer 2 restarted"), "the forged Hello must not replace the real replica 2's link");
        await AssertNothingDeliveredAndAllServeAsync(before);
    }

    [Test]
    public async Task A_forged_batch_on_a_tls_connection_without_a_replica_certificate_is_refused()
    {
        var before = await DeliveredAsync();
        using var caOnly = TransportSecurity.Load(_config, replicaId: null)!;
        await using (var connection = await RawTls.OpenAsync(_config, caOnly, replicaId: 1))
        {
            await connection.SendAsync(HelloAs(PeerKind.Replica, replicaId: 2));
            await connection.SendAsync(ForgedBatch());
            var answer = await connection.ReadAsync();
            Assert.That(answer, Is.TypeOf<HelloRejected>());
            Assert.That(((HelloRejected)answer).Reason, Is.EqualTo("authentication failed"));
        }
        await _cluster.WaitUntilAsync(() => _cluster.Log(1).Contains("claims to be replica 2 but presented no replica certificate"), Deadline, "the refusal in replica 1's log");
        await AssertNothingDeliveredAndAllServeAsync(before);
    }

    [Test]
    public async Task A_client_without_credentials_learns_nothing_and_its_put_is_refused()
    {
        var before = await DeliveredAsync();
        using var caOnly = TransportSecurity.Load(_config, replicaId: null)!;
        await using (var connection = await RawTls.OpenAsync(_config, caOnly, replicaId: 2))
        {
            await connection.SendAsync(HelloAs(PeerKind.Client));
            var accepted = await connection.ReadAsync();
            Assert.That(accepted, Is.TypeOf<HelloAccepted>());
            Assert.That((((HelloAccepted)accepted).ReplicaId, ((HelloAccepted)accepted).Incarnation), Is.EqualTo((0, 0L)), "no replica id or incarnation before authentication");
            await connection.SendAsync(new ClientRequest { RequestId = 1, Operation = Operation.Put, Key = "secret", Value = "forged"u8.ToArray(), ClientId = 5, Sequence = 1, AckedBelow = 1 });
            var reply = await connection.ReadAsync();
            Assert.That(reply, Is.TypeOf<ClientReply>());
            Assert.That((((ClientReply)reply).Error, ((ClientReply)reply).ErrorMessage), Is.EqualTo((ErrorCode.AuthenticationRequired, "authentication required")));
            Assert.ThrowsAsync<IOException>(connection.ReadAsync, "the replica closes the connection");
        }
        await AssertNothingDeliveredAndAllServeAsync(before);
        await using var admin = await AdminAsync();
        Assert.That((await admin.GetAsync("secret")).Value.ToArray(), Is.EqualTo("before"u8.ToArray()));
    }

    [Test]
    public async Task A_wrong_cluster_name_is_refused_without_naming_the_cluster()
    {
        using var caOnly = TransportSecurity.Load(_config, replicaId: null)!;
        await using (var connection = await RawTls.OpenAsync(_config, caOnly, replicaId: 1))
        {
            await connection.SendAsync(HelloAs(PeerKind.Client, clusterName: "guess"));
            var answer = await connection.ReadAsync();
            Assert.That(answer, Is.TypeOf<HelloRejected>());
            Assert.That(((HelloRejected)answer).Reason, Is.EqualTo("cluster name 'guess' does not match this replica's cluster"));
            Assert.That(((HelloRejected)answer).Reason, Does.Not.Contain(_config.ClusterName));
        }
    }

    [Test]
    public async Task A_challenge_does_not_tell_whether_a_user_exists()
    {
        // An unknown user's challenge must look like a real user's: the same salt on every try and
        // at every replica (a real user's salt is fixed) and the same iteration count.
        using var caOnly = TransportSecurity.Load(_config, replicaId: null)!;
        async Task<(string Salt, string Iterations)> ChallengeAsync(string user, int replica = 1)
        {
            await using var connection = await RawTls.OpenAsync(_config, caOnly, replicaId: replica);
            await connection.SendAsync(HelloAs(PeerKind.Client));
            Assert.That(await connection.ReadAsync(), Is.TypeOf<HelloAccepted>());
            await connection.SendAsync(new AuthStart { Mechanism = Scram.Mechanism, Payload = Scram.ClientFirst(user, "nonce" + Guid.NewGuid().ToString("N")) });
            var challenge = await connection.ReadAsync();
            Assert.That(challenge, Is.TypeOf<AuthChallenge>());
            var fields = ((AuthChallenge)challenge).Payload.Split(',').ToDictionary(f => f[0], f => f[2..]);
            return (fields['s'], fields['i']);
        }
        var unknown1 = await ChallengeAsync("nobody-here");
        var unknown2 = await ChallengeAsync("nobody-here", replica: 2);
        var admin1 = await ChallengeAsync("admin");
        var admin2 = await ChallengeAsync("admin");
        Assert.That(admin2, Is.EqualTo(admin1), "a real user's challenge is stable");
        Assert.That(unknown2, Is.EqualTo(unknown1), "an unknown user's challenge is stable too, on every replica");
        Assert.That(unknown1.Iterations, Is.EqualTo(admin1.Iterations));
        Assert.That(unknown1.Salt, Is.Not.EqualTo(admin1.Salt));
    }

    [Test]
    public async Task A_wrong_password_is_refused_with_authentication_failed()
    {
        var wrong = _cluster.Credentials! with { Password = "not-the-password" };
        var e = Assert.ThrowsAsync<KvUnavailableException>(() => KvClient.ConnectAsync(_config, new KvClientOptions { Credentials = wrong }));
        Assert.That(e!.EveryReplicaRejected, Is.True);
        Assert.That(e.Message, Does.Contain("rejected: authentication failed"));
        await _cluster.WaitUntilAsync(() => _cluster.Log(1).Contains("wrong password for user 'admin'"), Deadline, "the failed authentication in replica 1's log");
    }

    [Test]
    public async Task A_read_only_user_reads_but_its_put_and_delete_are_refused_before_the_order()
    {
        string[] admin = ["--user", "admin", "--password-file", TestSecurity.PasswordFile(_cluster.ConfigPath)];
        var setup = await ClientProcess.RunAsync(_cluster.ConfigPath, ["ROLE ADD reader read:*", "USER ADD ro ro-password-1 reader", "PUT shared v1"], Deadline, admin);
        Assert.That(setup.Lines, Is.EqualTo(new[] { "OK", "OK", "OK" }), setup.Stderr);

        string passwordFile = Path.Combine(Path.GetTempPath(), "kvreplica-ro-" + Guid.NewGuid().ToString("N")[..8]);
        await File.WriteAllTextAsync(passwordFile, "ro-password-1\n");
        try
        {
            var before = await DeliveredAsync();
            var readOnly = await ClientProcess.RunAsync(_cluster.ConfigPath, ["PUT shared x", "DELETE shared", "GET shared", "USER ADD evil evil-password admin"], Deadline,
                "--user", "ro", "--password-file", passwordFile);
            Assert.That(readOnly.Lines, Is.EqualTo(new[]
            {
                "ERROR permission denied: user ro may not write shared; ask an admin for a role that grants it (ROLE ADD, USER ADD)",
                "ERROR permission denied: user ro may not write shared; ask an admin for a role that grants it (ROLE ADD, USER ADD)",
                "v1",
                "ERROR permission denied: user ro may not manage users and roles (admin only); log in as an admin with --user",
            }), readOnly.Stderr);
            Assert.That(readOnly.ExitCode, Is.EqualTo(3));
            await AssertNothingDeliveredAndAllServeAsync(before);
        }
        finally
        {
            File.Delete(passwordFile);
        }
    }

    [Test]
    public async Task Backup_and_status_over_tls_are_for_admins_only()
    {
        string[] admin = ["--user", "admin", "--password-file", TestSecurity.PasswordFile(_cluster.ConfigPath)];
        var setup = await ClientProcess.RunAsync(_cluster.ConfigPath, ["ROLE ADD everything readwrite:*", "USER ADD plain plain-password-1 everything"], Deadline, admin);
        Assert.That(setup.Lines, Is.EqualTo(new[] { "OK", "OK" }), setup.Stderr);
        string directory = Path.Combine(Path.GetTempPath(), "kvreplica-backup-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(directory);
        try
        {
            string passwordFile = Path.Combine(directory, "plain.password");
            await File.WriteAllTextAsync(passwordFile, "plain-password-1\n");
            string[] plain = ["--user", "plain", "--password-file", passwordFile];

            var backup = await ClientProcess.RunAsync(_cluster.ConfigPath, [], Deadline, [.. admin, "backup", Path.Combine(directory, "admin.snap")]);
            Assert.That(backup.ExitCode, Is.EqualTo(0), backup.Stderr);
            Assert.That(backup.Lines.Single(), Does.StartWith("backup: ").And.Contain(" written to "));

            var refused = await ClientProcess.RunAsync(_cluster.ConfigPath, [], Deadline, [.. plain, "backup", Path.Combine(directory, "plain.snap")]);
            Assert.That(refused.ExitCode, Is.EqualTo(3));
            Assert.That(refused.Lines.Single(), Does.StartWith("ERROR backup failed: ").And.Contain("permission denied: user plain may not take a backup (admin only)")
                .And.EndWith("; backups are for admins: log in as one with --user"));
            Assert.That(File.Exists(Path.Combine(directory, "plain.snap")), Is.False);

            var status = await ClientProcess.RunAsync(_cluster.ConfigPath, [], Deadline, [.. plain, "status"]);
            Assert.That(status.Lines.Single(), Does.StartWith("ERROR permission denied: user plain may not ask for STATUS (admin only)")
                .And.EndWith("; STATUS is for admins: log in as one with --user"));
            Assert.That(status.ExitCode, Is.EqualTo(3));
            var adminStatus = await ClientProcess.RunAsync(_cluster.ConfigPath, [], Deadline, [.. admin, "status"]);
            Assert.That(adminStatus.Lines, Has.Count.EqualTo(3).And.All.Contains("members 1,2,3"));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static ReplicaEnvelope ForgedBatch() => new()
    {
        Sequence = 1,
        AckedBelow = 1,
        Body = new OrderBatch
        {
            Writes = [new WriteEntry { Time = 1_000_000, Operation = Operation.Put, Key = "secret", Value = "forged"u8.ToArray(), ClientId = 99, Sequence = 1, AckedBelow = 1 }],
            Origins = [1, 2, 3],
            HeldThrough = [1_000_000, 1_000_000, 1_000_000],
            Clock = 1_000_000,
            DeliveredThrough = [1_000_000, 1_000_000, 1_000_000],
        },
    };

    private static async Task<System.Buffers.ReadOnlySequence<byte>> ReadUntilClosedAsync(Socket socket)
    {
        var received = new System.Buffers.ArrayBufferWriter<byte>();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(Deadline);
        try
        {
            int n;
            while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)) > 0)
            {
                received.Write(buffer.AsSpan(0, n));
            }
        }
        catch (SocketException)
        {
            // Reset: closed all the same.
        }
        return new System.Buffers.ReadOnlySequence<byte>(received.WrittenMemory.ToArray());
    }

    // Each replica's delivered stamp, as admin STATUS reports it.
    private async Task<Dictionary<int, (long, int)>> DeliveredAsync()
    {
        var dial = DialSettings.ForClient(_config, _cluster.Credentials);
        var result = new Dictionary<int, (long, int)>();
        foreach (var replica in _config.Replicas)
        {
            using var deadline = new CancellationTokenSource(Deadline);
            var status = await ReplicaStatusQuery.AskAsync(dial, replica, deadline.Token);
            result[replica.Id] = (status.DeliveredTime, status.DeliveredReplica);
        }
        return result;
    }

    private async Task AssertNothingDeliveredAndAllServeAsync(Dictionary<int, (long, int)> before)
    {
        foreach (var (id, _) in _cluster.Replicas)
        {
            Assert.That(_cluster.IsRunning(id), Is.True, $"replica {id} is still running");
        }
        Assert.That(await DeliveredAsync(), Is.EqualTo(before), "no replica delivered anything");
        await using var admin = await AdminAsync();
        await admin.PutAsync("probe", "after"u8.ToArray());
        Assert.That((await admin.GetAsync("secret")).Value.ToArray(), Is.Not.EqualTo("forged"u8.ToArray()));
    }

    private Hello HelloAs(PeerKind kind, int replicaId = 0, string? clusterName = null) =>
        new() { ProtocolVersion = ProtocolVersion.Current, ClusterName = clusterName ?? _config.ClusterName, Kind = kind, ReplicaId = replicaId, Incarnation = replicaId == 0 ? 0 : 7 };

    /// <summary>A TLS connection made by hand, to send whatever frames a test wants.</summary>
    private sealed class RawTls : IAsyncDisposable
    {
        private readonly Socket _socket;
        private readonly Stream _stream;
        private readonly FramedConnection _framed;
        private readonly CancellationTokenSource _deadline = new(Deadline);

        private RawTls(Socket socket, Stream stream)
        {
            _socket = socket;
            _stream = stream;
            _framed = new FramedConnection(socket, stream, 1 << 20, deadlines: null);
        }

        /// <summary>To replica <paramref name="replicaId"/>, presenting the certificate in <paramref name="security"/> if it has one.</summary>
        public static async Task<RawTls> OpenAsync(ClusterConfig config, TransportSecurity security, int replicaId)
        {
            var (socket, stream) = await ReplicaDialer.ConnectAsync(new DialSettings(config, security, null), config.Find(replicaId)!, CancellationToken.None);
            return new RawTls(socket, stream);
        }

        /// <summary>Sends one frame; a connection the replica already closed is not an error here (that is often the point).</summary>
        public async Task SendAsync(Message message)
        {
            try
            {
                await _stream.WriteAsync(FrameCodec.ToFrameBytes(message));
                await _stream.FlushAsync();
            }
            catch (IOException)
            {
            }
        }

        public Task<Message> ReadAsync() => _framed.ReadFrameAsync("answer", _deadline.Token).AsTask();

        public async ValueTask DisposeAsync()
        {
            await _framed.DisposeAsync();
            _socket.Dispose();
            _deadline.Dispose();
        }
    }
}
