using KvReplica.Protocol.Wire;
using NUnit.Framework;

namespace KvReplica.Tests.Wire;

/// <summary>
/// Freezes the wire format: union tags, field keys and enum values. If one of these fails, a
/// change renumbered something that deployed replicas and third-party clients depend on; add new
/// keys instead (docs/protocol.md).
/// </summary>
[TestFixture]
[Category("Unit")]
public sealed class WireStabilityTests
{
    private static string Hex(Message m) => Convert.ToHexString(FrameCodec.ToFrameBytes(m)).ToLowerInvariant();

    [Test]
    public void The_client_hello_matches_the_example_in_protocol_md()
    {
        var hello = new Hello { ProtocolVersion = 1, ClusterName = "kvreplica-local", Kind = PeerKind.Client };
        Assert.That(Hex(hello), Is.EqualTo("00000017" + "92" + "00" + "95" + "01" + "af" + "6b767265706c6963612d6c6f63616c" + "000000"));
    }

    [Test]
    public void Message_encodings_are_frozen()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Hex(new HelloAccepted { ProtocolVersion = 1, ReplicaId = 2, Incarnation = 3, ResumeFrom = 4, MaxFrameBytes = 5 }), Is.EqualTo("00000008920195010203040" + "5"));
            Assert.That(Hex(new HelloRejected { Reason = "no" }), Is.EqualTo("00000006920291a26e6f"));
            Assert.That(Hex(new ClientRequest { RequestId = 1, Operation = Operation.Put, Key = "k", Value = [7], ClientId = 9, Sequence = 2, AckedBelow = 1, ReadMode = ReadMode.Majority }),
                Is.EqualTo("0000000e920a98010" + "2a16bc40107090201" + "00"));
            Assert.That(Hex(new ClientReply { RequestId = 1, Status = ReplyStatus.NotFound }), Is.EqualTo("0000000b920b980101c000c00000c0"));
            Assert.That(Hex(new ClientReply { RequestId = 1, ReplicaStatus = new ReplicaStatus { ReplicaId = 2, ViewNumber = 3, Members = [2], Suspected = [], DeliveredTime = 4, DeliveredReplica = 2, PendingWrites = 5 } }),
                Is.EqualTo("00000015" + "920b98" + "01" + "00" + "c0" + "00" + "c0" + "00" + "00" + "99" + "02" + "03" + "9102" + "90" + "04" + "02" + "05" + "c2" + "c2"));
            Assert.That(Hex(new ReplicaEnvelope { Sequence = 1, AckedBelow = 1, Body = new ReadQuery { ReadId = 5, Key = "k" } }),
                Is.EqualTo("0000000b9214930101920192" + "05a16b"));
            Assert.That(Hex(new ReplicaEnvelope { Sequence = 1, AckedBelow = 1, Body = new OrderBatch { Origins = [1], HeldThrough = [2], Clock = 3, DeliveredThrough = [4] } }),
                Is.EqualTo("00000015" + "9214930101" + "92009a" + "90" + "9101" + "9102" + "03" + "9104" + "00" + "00" + "00" + "00" + "90"));
            Assert.That(Hex(new BackupChunk { Offset = 1, Data = [7], Last = true, ThroughTime = 2, ThroughReplica = 3, Part = 1, SuffixFrom = 4, SuffixThrough = 5 }),
                Is.EqualTo("0000000f" + "920c9a" + "01" + "c40107" + "c3" + "c0" + "02" + "03" + "c0" + "01" + "04" + "05"));
            Assert.That(Hex(new CatchUpRequest { ResumeThroughTime = 1, ResumeThroughReplica = 2, ResumePart = 1, ResumeOffset = 3, ResumeSuffixFrom = 4, ResumeSuffixThrough = 5 }),
                Is.EqualTo("00000009" + "920e96" + "01" + "02" + "01" + "03" + "04" + "05"));
            Assert.That(Hex(new StateSummary { Origins = [1], HeldThrough = [2], DeliveredThrough = [3] }),
                Is.EqualTo("00000009" + "920d93" + "9101" + "9102" + "9103"));
        });
    }

    [Test]
    public void Enum_wire_values_are_frozen()
    {
        Assert.Multiple(() =>
        {
            Assert.That((int)Operation.Get, Is.EqualTo(1));
            Assert.That((int)Operation.Put, Is.EqualTo(2));
            Assert.That((int)Operation.Delete, Is.EqualTo(3));
            Assert.That((int)Operation.Status, Is.EqualTo(4));
            Assert.That((int)ReplyStatus.Ok, Is.EqualTo(0));
            Assert.That((int)ReplyStatus.NotFound, Is.EqualTo(1));
            Assert.That((int)ReplyStatus.Error, Is.EqualTo(2));
            Assert.That((int)ErrorCode.InvalidRequest, Is.EqualTo(1));
            Assert.That((int)ErrorCode.NoMajority, Is.EqualTo(2));
            Assert.That((int)ErrorCode.Busy, Is.EqualTo(3));
            Assert.That((int)ErrorCode.ShuttingDown, Is.EqualTo(4));
            Assert.That((int)ReadMode.Majority, Is.EqualTo(0));
            Assert.That((int)ReadMode.Local, Is.EqualTo(1));
            Assert.That((int)PeerKind.Client, Is.EqualTo(0));
            Assert.That((int)PeerKind.Replica, Is.EqualTo(1));
            Assert.That((int)PeerKind.Backup, Is.EqualTo(2));
            Assert.That((int)PeerKind.StateQuery, Is.EqualTo(3));
            Assert.That((int)PeerKind.CatchUp, Is.EqualTo(4));
            Assert.That(ProtocolVersion.Current, Is.EqualTo(1));
        });
    }
}
