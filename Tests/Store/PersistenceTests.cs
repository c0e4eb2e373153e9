using System.Buffers;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using KvReplica.Store.Persistence;
using NUnit.Framework;

namespace KvReplica.Tests.Store;

[TestFixture]
public sealed class PersistenceTests
{
    private static List<WriteCommand> Writes(int count, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(1, count).Select(i => random.Next(4) == 0
            ? new WriteCommand(new Stamp(i, 1 + random.Next(3)), Operation.Delete, "k" + random.Next(6), null, (ulong)random.Next(1, 4), i, 1)
            : new WriteCommand(new Stamp(i, 1 + random.Next(3)), Operation.Put, "k" + random.Next(6), Encoding.UTF8.GetBytes(new string('v', random.Next(0, 40)) + i), (ulong)random.Next(1, 4), i, 1))];
    }

    private static byte[] Log(IEnumerable<WriteCommand> writes)
    {
        var buffer = new ArrayBufferWriter<byte>();
        WriteAheadLog.Append(buffer, writes.Select(LogEntry.HeldWrite));
        return buffer.WrittenSpan.ToArray();
    }

    private static List<WriteCommand> Held(WalScan scan) => [.. scan.Entries.Select(e => e.Held!)];

    private static string Show(IEnumerable<WriteCommand> writes) =>
        string.Join(";", writes.Select(w => $"{w.Stamp}/{w.Operation}/{w.Key}/{(w.Value is null ? "-" : Convert.ToHexString(w.Value))}/{w.ClientId}/{w.Sequence}"));

    [Test, Category("Unit")]
    public void Crc32C_matches_the_standard_check_value() =>
        Assert.That(Crc32C.Compute("123456789"u8), Is.EqualTo(0xE3069283));

    [Test, Category("Property")]
    public void The_log_returns_exactly_what_was_appended() =>
        Prop.ForAll(Gen.Choose(0, 60).ToArbitrary(), Gen.Choose(0, int.MaxValue).ToArbitrary(), (count, seed) =>
        {
            var writes = Writes(count, seed);
            byte[] log = Log(writes);
            var scan = WriteAheadLog.Scan(log);
            return Show(Held(scan)) == Show(writes) && scan.ValidBytes == log.Length && scan.TailProblem is null;
        }).QuickCheckThrowOnFailure();

    [Test, Category("Unit")]
    public void A_log_cut_at_every_byte_of_its_last_record_recovers_to_the_last_whole_record()
    {
        var writes = Writes(5, 7);
        byte[] whole = Log(writes);
        int lastStart = Log(writes.Take(4)).Length;
        for (int cut = lastStart; cut < whole.Length; cut++)
        {
            var scan = WriteAheadLog.Scan(whole.AsSpan(0, cut));
            Assert.That(Show(Held(scan)), Is.EqualTo(Show(writes.Take(4))), $"cut at {cut}");
            Assert.That(scan.ValidBytes, Is.EqualTo(lastStart), $"cut at {cut}");
            Assert.That(scan.TailProblem is null, Is.EqualTo(cut == lastStart), $"cut at {cut}: a partial record is reported ({scan.TailProblem})");
        }
    }

    [Test, Category("Unit")]
    public void A_zero_filled_tail_is_a_torn_tail()
    {
        var writes = Writes(3, 1);
        byte[] log = [.. Log(writes), .. new byte[100]];
        var scan = WriteAheadLog.Scan(log);
        Assert.That(Held(scan), Has.Count.EqualTo(3));
        Assert.That(scan.TailProblem, Does.Contain("zero bytes"));
    }

    [Test, Category("Unit")]
    public void A_flipped_bit_anywhere_is_detected_never_read_as_valid_data()
    {
        var writes = Writes(6, 3);
        byte[] original = Log(writes);
        int lastStart = Log(writes.Take(5)).Length;
        for (int bit = 0; bit < original.Length * 8; bit++)
        {
            byte[] damaged = (byte[])original.Clone();
            damaged[bit / 8] ^= (byte)(1 << (bit % 8));
            try
            {
                var scan = WriteAheadLog.Scan(damaged);
                // Only damage inside the last record may be treated as a corrupt tail, and then
                // it is reported and everything before it is intact.
                Assert.That(bit / 8, Is.GreaterThanOrEqualTo(lastStart), $"bit {bit}: damage before the last record must be an error");
                Assert.That(scan.TailProblem, Is.Not.Null, $"bit {bit}: damage was not reported");
                Assert.That(Show(Held(scan)), Is.EqualTo(Show(writes.Take(5))), $"bit {bit}");
            }
            catch (StorageCorruptionException e)
            {
                Assert.That(e.Message, Does.Contain("offset"), $"bit {bit}");
            }
        }
    }

    [Test, Category("Unit")]
    public void Damage_in_the_middle_of_the_log_stops_recovery_with_its_offset()
    {
        var writes = Writes(4, 9);
        byte[] log = Log(writes);
        int secondStart = Log(writes.Take(1)).Length;
        log[secondStart + RecordFraming.HeaderBytes + 2] ^= 0x40;
        Assert.That(() => WriteAheadLog.Scan(log), Throws.TypeOf<StorageCorruptionException>().With.Message.Contains($"offset {secondStart}"));
    }

    [Test, Category("Property")]
    public void A_snapshot_plus_a_replay_equals_the_same_writes_applied_directly() =>
        Prop.ForAll(Gen.Choose(0, 80).ToArbitrary(), Gen.Choose(0, int.MaxValue).ToArbitrary(), (count, seed) =>
        {
            var writes = Writes(count, seed);
            int cut = count == 0 ? 0 : new Random(seed).Next(count + 1);
            var direct = new KvStore();
            foreach (var w in writes)
            {
                direct.Apply(w, out _);
            }
            var before = new KvStore();
            foreach (var w in writes.Take(cut))
            {
                before.Apply(w, out _);
            }
            using var file = new MemoryStream();
            SnapshotFormat.Write(file, before);
            file.Position = 0;
            var recovered = SnapshotFormat.Read(file);
            Recovery.Rebuild(recovered, [.. writes.Select(LogEntry.HeldWrite), LogEntry.Delivered(writes.Count == 0 ? Stamp.Zero : writes[^1].Stamp)], out _);
            // Same state, same sessions: a retry of every write is recognised on both.
            bool sameEntries = Show(direct.Entries().Select(e => new WriteCommand(e.Version, Operation.Put, e.Key, e.Value, 0, 0, 0)))
                == Show(recovered.Entries().Select(e => new WriteCommand(e.Version, Operation.Put, e.Key, e.Value, 0, 0, 0)));
            bool sameRetries = writes.All(w =>
            {
                var retry = w with { Stamp = new Stamp(w.Stamp.Time + 1_000_000, w.Stamp.ReplicaId) };
                var a = direct.Apply(retry, out bool dupA);
                var b = recovered.Apply(retry, out bool dupB);
                return a == b && dupA && dupB;
            });
            return sameEntries && sameRetries && recovered.LastApplied == direct.LastApplied;
        }).QuickCheckThrowOnFailure();

    [Test, Category("Unit")]
    public void A_truncated_or_damaged_snapshot_is_refused()
    {
        var store = new KvStore();
        foreach (var w in Writes(3000, 5))
        {
            store.Apply(w, out _);
        }
        using var file = new MemoryStream();
        SnapshotFormat.Write(file, store);
        byte[] bytes = file.ToArray();
        Assert.That(() => SnapshotFormat.Read(new MemoryStream(bytes[..^1])), Throws.TypeOf<StorageCorruptionException>().With.Message.Contains("truncated"));
        Assert.That(() => SnapshotFormat.Read(new MemoryStream(bytes[..(bytes.Length / 2)])), Throws.TypeOf<StorageCorruptionException>());
        byte[] flipped = (byte[])bytes.Clone();
        flipped[bytes.Length / 2] ^= 1;
        Assert.That(() => SnapshotFormat.Read(new MemoryStream(flipped)), Throws.TypeOf<StorageCorruptionException>());
        Assert.That(SnapshotFormat.Read(new MemoryStream(bytes)).Count, Is.EqualTo(store.Count), "the intact snapshot reads back");
    }
}
