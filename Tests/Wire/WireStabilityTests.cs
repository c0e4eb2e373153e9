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
    private const string FrozenTxn = "00000027920a9e0108a0c0090200000000939195a161020502c0919302a161c40101919303a162c0c0c0c0";
    private const string FrozenScan = "00000019920a9e020ea0c0000000000000c0c096a170a1710a0301c3c0";
    private const string FrozenWatch = "00000016920a9e030fa0c0000000000000c0c0c094a1700402c2";
    private const string FrozenReply = "00000022920b9d0300c000c00000c004029195a16bc3c401070402c39195a16bc2c401070402";
    private const string FrozenIndexQuery = "0000000d92149301019209930591a16ba0";
    private const string FrozenIndexAnswer = "0000000b9214930101920a93050602";

    private static string Hex(Message m) => Convert.ToHexString(FrameCodec.ToFrameBytes(m)).ToLowerInvariant();

    [Test]
    public void The_client_hello_matches_the_example_in_protocol_md()
    {
        var hello = new Hello { ProtocolVersion = ProtocolVersion.Current, ClusterName = "kvreplica-local", Kind = PeerKind.Client };
        Assert.That(Hex(hello), Is.EqualTo("00000017" + "92" + "00" + "95" + "02" + "af" + "6b767265706c6963612d6c6f63616c" + "000000"));
    }

    [Test]
    public void Message_encodings_are_frozen()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Hex(new HelloAccepted { ProtocolVersion = 1, ReplicaId = 2, Incarnation = 3, ResumeFrom = 4, MaxFrameBytes = 5 }), Is.EqualTo("00000008920195010203040" + "5"));
            Assert.That(Hex(new HelloRejected { Reason = "no" }), Is.EqualTo("00000006920291a26e6f"));
            Assert.That(Hex(new ClientRequest { RequestId = 1, Operation = Operation.Put, Key = "k", Value = [7], ClientId = 9, Sequence = 2, AckedBelow = 1, ReadMode = ReadMode.Majority }),
                Is.EqualTo("00000014920a9e010" + "2a16bc40107090201" + "00" + "0000c0c0c0c0"));
            Assert.That(Hex(new ClientReply { RequestId = 1, Status = ReplyStatus.NotFound }), Is.EqualTo("00000010920b9d0101c000c00000c0" + "0000c0c2c0"));
            Assert.That(Hex(new ClientReply { RequestId = 1, ReplicaStatus = new ReplicaStatus { ReplicaId = 2, ViewNumber = 3, Members = [2], Suspected = [], DeliveredTime = 4, DeliveredReplica = 2, PendingWrites = 5 } }),
                Is.EqualTo("0000001a" + "920b9d" + "01" + "00" + "c0" + "00" + "c0" + "00" + "00" + "99" + "02" + "03" + "9102" + "90" + "04" + "02" + "05" + "c2" + "c2" + "0000c0c2c0"));
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
    public void Encodings_of_the_operations_added_in_protocol_2_are_frozen()
    {
        var txn = new TxnBody
        {
            Compares = [new TxnCompare { Key = "a", Kind = TxnCompareKind.VersionEquals, VersionTime = 5, VersionReplica = 2 }],
            Then = [new TxnOp { Operation = Operation.Put, Key = "a", Value = [1] }],
            Else = [new TxnOp { Operation = Operation.Delete, Key = "b" }],
        };
        Assert.Multiple(() =>
        {
            Assert.That(Hex(new ClientRequest { RequestId = 1, Operation = Operation.Txn, Txn = txn, ClientId = 9, Sequence = 2 }), Is.EqualTo(FrozenTxn));
            Assert.That(Hex(new ClientRequest { RequestId = 2, Operation = Operation.Scan, Scan = new ScanRequest { Prefix = "p", After = "q", Limit = 10, RevisionTime = 3, RevisionReplica = 1, KeysOnly = true } }), Is.EqualTo(FrozenScan));
            Assert.That(Hex(new ClientRequest { RequestId = 3, Operation = Operation.Watch, Watch = new WatchRequest { Prefix = "p", AfterTime = 4, AfterReplica = 2 } }), Is.EqualTo(FrozenWatch));
            Assert.That(Hex(new ClientReply { RequestId = 3, Events = [new WatchEvent { Key = "k", Value = [7], Time = 4, Replica = 2 }], Entries = [new KeyValue { Key = "k", Found = true, Value = [7], VersionTime = 4, VersionReplica = 2 }], More = true, RevisionTime = 4, RevisionReplica = 2 }), Is.EqualTo(FrozenReply));
            Assert.That(Hex(new ReplicaEnvelope { Sequence = 1, AckedBelow = 1, Body = new ReadIndexQuery { ReadId = 5, Keys = ["k"] } }), Is.EqualTo(FrozenIndexQuery));
            Assert.That(Hex(new ReplicaEnvelope { Sequence = 1, AckedBelow = 1, Body = new ReadIndexAnswer { ReadId = 5, FenceTime = 6, FenceReplica = 2 } }), Is.EqualTo(FrozenIndexAnswer));
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
            Assert.That((int)Operation.Update, Is.EqualTo(5));
            Assert.That((int)Operation.CompareAndSet, Is.EqualTo(6));
            Assert.That((int)Operation.Exists, Is.EqualTo(7));
            Assert.That((int)Operation.Txn, Is.EqualTo(8));
            Assert.That((int)Operation.MultiGet, Is.EqualTo(9));
            Assert.That((int)Operation.Scan, Is.EqualTo(14));
            Assert.That((int)Operation.Watch, Is.EqualTo(15));
            Assert.That((int)ReplyStatus.ConditionFailed, Is.EqualTo(3));
            Assert.That((int)ErrorCode.Compacted, Is.EqualTo(7));
            Assert.That((int)TxnCompareKind.Exists, Is.EqualTo(0));
            Assert.That((int)TxnCompareKind.Absent, Is.EqualTo(1));
            Assert.That((int)TxnCompareKind.VersionEquals, Is.EqualTo(2));
            Assert.That((int)TxnCompareKind.VersionNotEquals, Is.EqualTo(3));
            Assert.That((int)TxnCompareKind.ValueEquals, Is.EqualTo(4));
            Assert.That((int)TxnCompareKind.ValueNotEquals, Is.EqualTo(5));
            Assert.That(ProtocolVersion.Current, Is.EqualTo(2));
        });
    }
}
