using System.Security.Cryptography;
using KvReplica.Clock;
using KvReplica.Node;
using KvReplica.Node.Startup;
using KvReplica.Node.Transport;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Transport;
using NUnit.Framework;

namespace KvReplica.Tests.Node;

/// <summary>
/// The parts of the replica daemon that decide without a socket: the verdict on a Hello, the
/// admission of connections into their handshake, the sending side of a snapshot stream, and
/// the choice of the peer a starting replica catches up from.
/// </summary>
[TestFixture]
[Category("Unit")]
public sealed class ConnectionHandlingTests
{
    private static readonly ClusterConfig Config = new()
    {
        ClusterName = "prod",
        Replicas = [new ReplicaAddress(1, "127.0.0.1", 7001), new ReplicaAddress(2, "127.0.0.1", 7002), new ReplicaAddress(3, "127.0.0.1", 7003)],
    };

    private static Hello Hello(PeerKind kind, int replicaId = 0, int? version = null, string cluster = "prod") =>
        new() { ProtocolVersion = version ?? ProtocolVersion.Current, ClusterName = cluster, Kind = kind, ReplicaId = replicaId };

    [Test]
    public void A_hello_of_each_known_kind_is_accepted()
    {
        foreach (var kind in Enum.GetValues<PeerKind>())
        {
            var verdict = HelloCheck.Judge(Hello(kind, replicaId: 2), Config, tls: true, certifiedReplica: 2);
            Assert.That(verdict.Kind, Is.EqualTo(HelloVerdictKind.Accept), kind.ToString());
        }
    }

    [Test]
    public void A_first_frame_that_is_not_a_hello_is_rejected_by_name()
    {
        var verdict = HelloCheck.Judge(new ClientRequest(), Config, tls: false, certifiedReplica: null);
        Assert.That(verdict, Is.EqualTo(new HelloVerdict(HelloVerdictKind.Reject, "expected a Hello frame first, got ClientRequest")));
    }

    [Test]
    public void Another_protocol_version_is_rejected_naming_both_versions()
    {
        var verdict = HelloCheck.Judge(Hello(PeerKind.Client, version: ProtocolVersion.Current + 1), Config, tls: false, certifiedReplica: null);
        Assert.That(verdict.Kind, Is.EqualTo(HelloVerdictKind.Reject));
        Assert.That(verdict.Reason, Does.Contain($"protocol version {ProtocolVersion.Current + 1} is not supported").And.Contain($"speaks version {ProtocolVersion.Current}"));
    }

    [Test]
    public void Another_cluster_is_rejected_without_naming_this_one()
    {
        var verdict = HelloCheck.Judge(Hello(PeerKind.Client, cluster: "staging"), Config, tls: false, certifiedReplica: null);
        Assert.That(verdict.Kind, Is.EqualTo(HelloVerdictKind.Reject));
        Assert.That(verdict.Reason, Does.Contain("'staging'").And.Not.Contain("prod"));
    }

    [TestCase(PeerKind.Replica)]
    [TestCase(PeerKind.CatchUp)]
    [TestCase(PeerKind.StateQuery)]
    public void With_tls_a_peer_connection_must_carry_the_certificate_of_the_id_it_claims(PeerKind kind)
    {
        Assert.That(HelloCheck.Judge(Hello(kind, replicaId: 2), Config, tls: true, certifiedReplica: 3),
            Is.EqualTo(new HelloVerdict(HelloVerdictKind.NotAuthenticated, "replica 3's certificate")));
        Assert.That(HelloCheck.Judge(Hello(kind, replicaId: 2), Config, tls: true, certifiedReplica: null),
            Is.EqualTo(new HelloVerdict(HelloVerdictKind.NotAuthenticated, "no replica certificate")));
        Assert.That(HelloCheck.Judge(Hello(kind, replicaId: 2), Config, tls: false, certifiedReplica: null).Kind, Is.EqualTo(HelloVerdictKind.Accept), "without TLS there is no certificate to ask for");
    }

    [TestCase(PeerKind.Client)]
    [TestCase(PeerKind.Backup)]
    public void Clients_and_backups_prove_themselves_later_not_by_certificate(PeerKind kind)
    {
        Assert.That(HelloCheck.Judge(Hello(kind), Config, tls: true, certifiedReplica: null).Kind, Is.EqualTo(HelloVerdictKind.Accept));
        Assert.That(HelloCheck.IsPeerKind(kind), Is.False);
    }

    [Test]
    public void An_unknown_kind_is_rejected_with_its_number()
    {
        var verdict = HelloCheck.Judge(Hello((PeerKind)42), Config, tls: false, certifiedReplica: null);
        Assert.That(verdict, Is.EqualTo(new HelloVerdict(HelloVerdictKind.Reject, "unknown peer kind 42")));
    }

    [Test]
    public void Admission_refuses_beyond_the_limit_and_a_released_place_is_free_again()
    {
        var admission = new HandshakeAdmission(limit: 2, TimeSpan.FromSeconds(10));
        Assert.That(admission.TryAdmit(), Is.True);
        var first = admission.Admitted();
        Assert.That(admission.TryAdmit(), Is.True);
        Assert.That(admission.TryAdmit(), Is.False, "a third connection in its handshake");
        Assert.That(admission.Handshaking, Is.EqualTo(2), "a refusal takes no place");
        first.Release();
        first.Release();
        Assert.That(admission.Handshaking, Is.EqualTo(1), "a ticket releases its place once, however often it is released");
        Assert.That(admission.TryAdmit(), Is.True);
    }

    [Test]
    public void Refusals_are_reported_at_most_once_per_interval_with_the_count_since_the_last_report()
    {
        var admission = new HandshakeAdmission(limit: 0, TimeSpan.FromSeconds(10));
        Assert.That(admission.Refused(nowMs: 1_000), Is.EqualTo(1), "the first refusal is reported at once");
        Assert.That(admission.Refused(nowMs: 2_000), Is.EqualTo(0));
        Assert.That(admission.Refused(nowMs: 10_999), Is.EqualTo(0));
        Assert.That(admission.Refused(nowMs: 11_000), Is.EqualTo(3), "the two held back and this one");
        Assert.That(admission.Refused(nowMs: 11_001), Is.EqualTo(0));
    }

    [Test]
    public async Task A_streamed_part_comes_in_chunks_at_their_offsets_and_ends_with_the_hash_of_the_whole()
    {
        byte[] first = RandomNumberGenerator.GetBytes(2500), second = RandomNumberGenerator.GetBytes(700);
        var template = new BackupChunk { ThroughTime = 9, ThroughReplica = 2, SuffixFrom = 4, SuffixThrough = 6 };
        var chunks = new List<BackupChunk>();
        long sent = await SnapshotStreamSender.SendPartAsync(Collect(chunks), template, part: 1, [new MemoryStream(first), new MemoryStream(second)], skip: 0, chunkBytes: 1000, CancellationToken.None);

        byte[] whole = [.. first, .. second];
        Assert.That(sent, Is.EqualTo(whole.Length));
        Assert.That(chunks.Take(chunks.Count - 1).Select(c => c.Data.Length), Has.All.LessThanOrEqualTo(1000).And.All.GreaterThan(0));
        Assert.That(chunks.SelectMany(c => c.Data).ToArray(), Is.EqualTo(whole));
        long expectedOffset = 0;
        foreach (var chunk in chunks)
        {
            Assert.That(chunk.Offset, Is.EqualTo(expectedOffset));
            Assert.That((chunk.Part, chunk.ThroughTime, chunk.ThroughReplica, chunk.SuffixFrom, chunk.SuffixThrough), Is.EqualTo((1, 9L, 2, 4L, 6L)));
            expectedOffset += chunk.Data.Length;
        }
        Assert.That(chunks.Select(c => c.Last), Is.EqualTo(Enumerable.Repeat(false, chunks.Count - 1).Append(true)));
        Assert.That(chunks[^1].Sha256, Is.EqualTo(SHA256.HashData(whole)));
    }

    [Test]
    public async Task A_resumed_part_sends_only_what_follows_the_skip_but_hashes_the_whole()
    {
        byte[] data = RandomNumberGenerator.GetBytes(3000);
        var chunks = new List<BackupChunk>();
        long sent = await SnapshotStreamSender.SendPartAsync(Collect(chunks), new BackupChunk(), part: 0, [new MemoryStream(data)], skip: 1234, chunkBytes: 1000, CancellationToken.None);

        Assert.That(sent, Is.EqualTo(3000 - 1234));
        Assert.That(chunks[0].Offset, Is.EqualTo(1234));
        Assert.That(chunks.SelectMany(c => c.Data).ToArray(), Is.EqualTo(data[1234..]));
        Assert.That(chunks[^1].Sha256, Is.EqualTo(SHA256.HashData(data)));
    }

    [Test]
    public void A_resume_past_the_end_of_the_part_is_an_error_naming_both_lengths()
    {
        var chunks = new List<BackupChunk>();
        var e = Assert.ThrowsAsync<IOException>(() => SnapshotStreamSender.SendPartAsync(Collect(chunks), new BackupChunk(), part: 1, [new MemoryStream(new byte[10])], skip: 11, chunkBytes: 1000, CancellationToken.None));
        Assert.That(e!.Message, Is.EqualTo("resume offset 11 is past the end of part 1 (10 bytes)"));
        Assert.That(chunks, Is.Empty);
    }

    [Test]
    public void A_starting_replica_catches_up_from_the_peer_that_delivered_most_of_those_ahead_of_it()
    {
        // This replica (1) recovered writes of origin 1 through time 5 only.
        var recovered = new CoreRecoveryState(Stamp.Zero, [], new Dictionary<int, long> { [1] = 5, [2] = 0, [3] = 0 }, new Dictionary<int, long>(), 5);
        StateSummary Summary(long heldOf1, long delivered) => new() { Origins = [1, 2, 3], HeldThrough = [heldOf1, 0, 0], DeliveredThrough = [delivered, 0, 0] };
        var peer2 = Config.Replicas[1];
        var peer3 = Config.Replicas[2];

        Assert.That(CatchUpOnStart.PickPeerAhead(1, recovered, [(peer2, Summary(5, 5)), (peer3, null)]), Is.Null, "nobody knows more than this replica logged");

        var picked = CatchUpOnStart.PickPeerAhead(1, recovered, [(peer2, Summary(8, 7)), (peer3, Summary(9, 9))]);
        Assert.That(picked?.Peer, Is.EqualTo(peer3));
        Assert.That(picked?.Reason, Is.Not.Empty);

        Assert.That(CatchUpOnStart.PickPeerAhead(1, recovered, [(peer2, Summary(8, 7)), (peer3, null)])?.Peer, Is.EqualTo(peer2), "an unreachable peer is skipped");
    }

    private static Func<BackupChunk, CancellationToken, ValueTask> Collect(List<BackupChunk> chunks) => (chunk, _) =>
    {
        chunks.Add(chunk);
        return ValueTask.CompletedTask;
    };
}
