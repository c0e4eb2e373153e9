using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using FsCheck;
using FsCheck.Fluent;
using KvReplica.Protocol.Wire;
using KvReplica.Store.Persistence;
using NUnit.Framework;

namespace KvReplica.Tests.Wire;

/// <summary>
/// Frames and log records serialized straight into the destination's memory (behind a header
/// filled in afterwards) are byte for byte what the plain way makes: serialize into a scratch
/// buffer, then copy it behind its header. Destinations that hand out blocks of every size make
/// both the direct path and the fall-back to scratch (a payload that outgrows its block) run.
/// </summary>
[TestFixture]
[Category("Property")]
public sealed class PrefixedPayloadWriterTests
{
    /// <summary>An IBufferWriter that hands out exactly what is asked, or <see cref="_block"/> bytes if that is more (the least the contract allows).</summary>
    private sealed class SmallBlockWriter(int block) : IBufferWriter<byte>
    {
        private readonly int _block = block;
        private readonly ArrayBufferWriter<byte> _inner = new();

        public byte[] Written => _inner.WrittenSpan.ToArray();

        public void Advance(int count) => _inner.Advance(count);

        public Memory<byte> GetMemory(int sizeHint = 0) => _inner.GetMemory(Math.Max(sizeHint, _block))[..Math.Max(sizeHint, _block)];

        public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;
    }

    private static Gen<byte[]> Values => Gen.OneOf(Gen.Choose(0, 300), Gen.Choose(3000, 70_000)).Select(n =>
    {
        var v = new byte[n];
        new Random(n).NextBytes(v);
        return v;
    });

    private static byte[] PlainFrame(Message message)
    {
        byte[] payload = MessagePack.MessagePackSerializer.Serialize(message, FrameCodec.Options);
        var frame = new byte[FrameCodec.HeaderBytes + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)payload.Length);
        payload.CopyTo(frame, FrameCodec.HeaderBytes);
        return frame;
    }

    [Test]
    public void A_frame_written_in_place_equals_the_frame_written_through_a_scratch_buffer() =>
        Prop.ForAll(Values.ToArbitrary(), Gen.Choose(1, 5000).ToArbitrary(), Gen.Elements(true, false).ToArbitrary(), (value, block, request) =>
        {
            Message message = request
                ? new ClientRequest { RequestId = 7, Operation = Operation.Put, Key = "key", Value = value, ClientId = 3, Sequence = 9 }
                : new ReplicaEnvelope { Sequence = 2, Body = new OrderBatch { Writes = [new WriteEntry { Time = 5, Key = "k", Value = value }], Origins = [1], HeldThrough = [1] } };
            var small = new SmallBlockWriter(block);
            FrameCodec.WriteFrame(small, message);
            FrameCodec.WriteFrame(small, message); // a second frame behind the first, on the same thread-local writer
            byte[] expected = PlainFrame(message);
            return small.Written.SequenceEqual([.. expected, .. expected]);
        }).QuickCheckThrowOnFailure();

    [Test]
    public async Task A_frame_written_in_place_into_a_pipe_reads_back_whole()
    {
        var pipe = new Pipe();
        var value = new byte[200_000];
        new Random(1).NextBytes(value);
        var messages = new Message[] { new ClientRequest { RequestId = 1, Key = "a", Value = [1, 2] }, new ClientRequest { RequestId = 2, Key = "b", Value = value }, new ClientReply { RequestId = 3 } };
        foreach (var message in messages)
        {
            FrameCodec.WriteFrame(pipe.Writer, message);
        }
        await pipe.Writer.CompleteAsync();
        var read = await pipe.Reader.ReadAtLeastAsync(int.MaxValue);
        var buffer = read.Buffer;
        Assert.That(buffer.ToArray(), Is.EqualTo(messages.SelectMany(PlainFrame).ToArray()));
    }

    [Test]
    public void A_log_record_written_in_place_equals_the_record_written_through_a_scratch_buffer() =>
        Prop.ForAll(Gen.Choose(0, 20_000).ToArbitrary(), Gen.Choose(1, 5000).ToArbitrary(), (length, block) =>
        {
            var payload = new byte[length];
            new Random(length).NextBytes(payload);
            var plain = new ArrayBufferWriter<byte>();
            RecordFraming.Write(plain, payload);
            var small = new SmallBlockWriter(block);
            RecordFraming.Write(small, sizeHint: 16, payload, static (writer, bytes) => writer.Write(bytes));
            return small.Written.SequenceEqual(plain.WrittenSpan.ToArray());
        }).QuickCheckThrowOnFailure();

    [Test]
    public void A_record_too_large_is_refused_before_anything_is_committed()
    {
        var writer = new ArrayBufferWriter<byte>();
        Assert.Throws<ArgumentException>(() => RecordFraming.Write(writer, sizeHint: 16, RecordFraming.MaxPayloadBytes + 1, static (w, n) => w.Advance(w.GetSpan(n).Length >= n ? n : throw new InvalidOperationException())));
        Assert.That(writer.WrittenCount, Is.Zero);
    }
}
