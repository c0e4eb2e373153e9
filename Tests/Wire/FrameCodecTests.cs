using System.Buffers;
using System.Buffers.Binary;
using FsCheck;
using FsCheck.Fluent;
using KvReplica.Protocol.Wire;
using MessagePack;
using NUnit.Framework;

namespace KvReplica.Tests.Wire;

[TestFixture]
public sealed class FrameCodecTests
{
    private static Gen<string> Text => Gen.Elements("", "k", "žluťoučký kůň", "🐎 emoji", "quote\"back\\slash", "line\nbreak", new string('x', 300));

    private static Gen<byte[]?> Bytes => Gen.OneOf(Gen.Constant<byte[]?>(null), Gen.Choose(0, 255).Select(b => (byte)b).ArrayOf().Select(a => (byte[]?)a));

    private static Gen<long> Longs => Gen.OneOf(Gen.Choose(-5, 5).Select(i => (long)i), Gen.Constant(long.MaxValue), Gen.Constant(long.MinValue), Gen.Choose(0, int.MaxValue).Select(i => (long)i * 7919));

    private static Gen<PeerMessage> PeerMessages => Gen.OneOf(
        from writes in (from t in Longs from k in Text from v in Bytes from c in Longs select new WriteEntry { Time = t, Operation = Operation.Put, Key = k, Value = v, ClientId = (ulong)c, Sequence = t, AckedBelow = c }).ArrayOf()
        from clock in Longs
        select (PeerMessage)new OrderBatch { Writes = writes, Origins = [1, 2, 3], HeldThrough = [clock, 0, 1], Clock = clock },
        from id in Longs from k in Text select (PeerMessage)new ReadQuery { ReadId = id, Key = k },
        from id in Longs from v in Bytes from t in Longs select (PeerMessage)new ReadAnswer { ReadId = id, Found = v is not null, Value = v, VersionTime = t, VersionReplica = 2 });

    private static Gen<Message> Messages => Gen.OneOf(
        from v in Gen.Choose(0, 9) from n in Text from i in Longs select (Message)new Hello { ProtocolVersion = v, ClusterName = n, Kind = PeerKind.Replica, ReplicaId = v, Incarnation = i },
        from i in Longs select (Message)new HelloAccepted { ProtocolVersion = 1, ReplicaId = 3, Incarnation = i, ResumeFrom = i, MaxFrameBytes = 1 << 20 },
        from r in Text select (Message)new HelloRejected { Reason = r },
        from id in Longs from k in Text from v in Bytes from op in Gen.Elements(Operation.Get, Operation.Put, Operation.Delete)
        select (Message)new ClientRequest { RequestId = id, Operation = op, Key = k, Value = v, ClientId = (ulong)id, Sequence = id, AckedBelow = id, ReadMode = ReadMode.Local },
        from id in Longs from v in Bytes from m in Text select (Message)new ClientReply { RequestId = id, Status = ReplyStatus.Error, Value = v, Error = ErrorCode.Busy, ErrorMessage = m, VersionTime = id, VersionReplica = 7 },
        from seq in Longs from body in PeerMessages select (Message)new ReplicaEnvelope { Sequence = seq, AckedBelow = seq, Body = body });

    // Structural equality through the wire format itself would be circular; compare the
    // decoded object graph field by field via a canonical JSON rendering instead.
    private static string Describe(object o) => System.Text.Json.JsonSerializer.Serialize(o, o.GetType());

    [Test, Category("Property")]
    public void Every_message_survives_a_frame_round_trip() =>
        Prop.ForAll(Messages.ToArbitrary(), message =>
        {
            var frame = new ReadOnlySequence<byte>(FrameCodec.ToFrameBytes(message));
            bool parsed = FrameCodec.TryReadFrame(ref frame, 1 << 20, out var back);
            return parsed && frame.Length == 0 && back.GetType() == message.GetType() && Describe(back) == Describe(message)
                && (message is not ReplicaEnvelope e || Describe(((ReplicaEnvelope)back).Body) == Describe(e.Body));
        }).QuickCheckThrowOnFailure();

    /// <summary>A segment of a multi-segment sequence, to split a byte stream anywhere.</summary>
    private sealed class Chunk : ReadOnlySequenceSegment<byte>
    {
        public Chunk(ReadOnlyMemory<byte> memory, Chunk? previous)
        {
            Memory = memory;
            if (previous is not null)
            {
                RunningIndex = previous.RunningIndex + previous.Memory.Length;
                previous.Next = this;
            }
        }
    }

    private static ReadOnlySequence<byte> Split(byte[] bytes, IEnumerable<int> cuts)
    {
        var points = cuts.Select(c => c % (bytes.Length + 1)).Append(0).Append(bytes.Length).Distinct().Order().ToList();
        Chunk? first = null, last = null;
        for (int i = 0; i + 1 < points.Count; i++)
        {
            last = new Chunk(bytes.AsMemory(points[i], points[i + 1] - points[i]), last);
            first ??= last;
        }
        return first is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(first, 0, last!, last!.Memory.Length);
    }

    [Test, Category("Property")]
    public void A_stream_split_anywhere_parses_like_the_whole_stream() =>
        Prop.ForAll(Messages.NonEmptyListOf().ToArbitrary(), Gen.Choose(0, 100_000).ListOf().ToArbitrary(), (messages, cuts) =>
        {
            byte[] stream = [.. messages.SelectMany(FrameCodec.ToFrameBytes)];
            var whole = new ReadOnlySequence<byte>(stream);
            var fromWhole = new List<string>();
            while (FrameCodec.TryReadFrame(ref whole, 1 << 20, out var m))
            {
                fromWhole.Add(Describe(m));
            }
            // As segments of one sequence.
            var split = Split(stream, cuts);
            var fromSegments = new List<string>();
            while (FrameCodec.TryReadFrame(ref split, 1 << 20, out var m))
            {
                fromSegments.Add(Describe(m));
            }
            // As bytes arriving in chunks: parse what is whole, keep the rest, append the next.
            var arrived = new List<byte>();
            var incremental = new List<string>();
            var points = cuts.Select(c => c % (stream.Length + 1)).Append(stream.Length).Distinct().Order().ToList();
            int done = 0;
            foreach (int p in points)
            {
                arrived.AddRange(stream[done..p]);
                done = p;
                var buffer = new ReadOnlySequence<byte>(arrived.ToArray());
                while (FrameCodec.TryReadFrame(ref buffer, 1 << 20, out var m))
                {
                    incremental.Add(Describe(m));
                }
                arrived = [.. buffer.ToArray()];
            }
            return fromWhole.Count == messages.Count && fromSegments.SequenceEqual(fromWhole) && incremental.SequenceEqual(fromWhole) && arrived.Count == 0;
        }).QuickCheckThrowOnFailure();

    [Test, Category("Unit")]
    public void An_oversized_length_is_rejected_from_the_header_alone()
    {
        var header = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(header, 2_000_000);
        var buffer = new ReadOnlySequence<byte>(header);
        Assert.That(() => FrameCodec.TryReadFrame(ref buffer, 1_000_000, out _), Throws.TypeOf<FrameException>().With.Message.Contains("2000000 bytes exceeds the limit of 1000000"));
    }

    [Test, Category("Unit")]
    public void A_truncated_frame_asks_for_more_bytes_without_consuming_any()
    {
        byte[] frame = FrameCodec.ToFrameBytes(new HelloRejected { Reason = "no" });
        var buffer = new ReadOnlySequence<byte>(frame, 0, frame.Length - 1);
        Assert.That(FrameCodec.TryReadFrame(ref buffer, 1024, out _), Is.False);
        Assert.That(buffer.Length, Is.EqualTo(frame.Length - 1));
    }

    [TestCase(new byte[] { 0, 0, 0, 0 }, "empty frame")]
    [TestCase(new byte[] { 0, 0, 0, 3, 0x92, 0x63, 0x80 }, "payload")]
    [TestCase(new byte[] { 0, 0, 0, 2, 0xC1, 0xC1 }, "malformed payload")]
    [TestCase(new byte[] { 0, 0, 0, 3, 0x92, 0x02, 0x91 }, "malformed payload")]
    public void Invalid_frames_raise_a_frame_exception(byte[] bytes, string reason)
    {
        var buffer = new ReadOnlySequence<byte>(bytes);
        Assert.That(() => FrameCodec.TryReadFrame(ref buffer, 1024, out _), Throws.TypeOf<FrameException>().With.Message.Contains(reason));
    }

    [Test, Category("Unit")]
    public void Trailing_bytes_after_the_message_are_rejected()
    {
        byte[] payload = [.. MessagePackSerializer.Serialize<Message>(new HelloRejected { Reason = "x" }, FrameCodec.Options), 0x00];
        byte[] frame = [0, 0, 0, (byte)payload.Length, .. payload];
        var buffer = new ReadOnlySequence<byte>(frame);
        Assert.That(() => FrameCodec.TryReadFrame(ref buffer, 1024, out _), Throws.TypeOf<FrameException>().With.Message.Contains("trailing"));
    }

    [Test, Category("Property")]
    public void Random_payloads_either_decode_or_raise_a_frame_exception() =>
        Prop.ForAll(Gen.Choose(0, 255).Select(b => (byte)b).ArrayOf().Where(a => a.Length > 0).ToArbitrary(), (byte[] payload) =>
        {
            byte[] frame = new byte[4 + payload.Length];
            BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)payload.Length);
            payload.CopyTo(frame, 4);
            var buffer = new ReadOnlySequence<byte>(frame);
            try
            {
                return FrameCodec.TryReadFrame(ref buffer, 1 << 20, out var m) && m is not null;
            }
            catch (FrameException)
            {
                return true;
            }
        }).QuickCheckThrowOnFailure();
}
