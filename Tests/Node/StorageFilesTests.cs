using System.Text;
using KvReplica.Clock;
using KvReplica.Node.Storage;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using KvReplica.Store.Persistence;
using NUnit.Framework;

namespace KvReplica.Tests.Node;

/// <summary>The write-ahead log and snapshot files on a real file system, in a temporary directory.</summary>
[TestFixture]
[Category("Unit")]
public sealed class StorageFilesTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory()
    {
        _dir = Path.Combine(Path.GetTempPath(), "kvreplica-storage-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    private static WriteCommand Put(long time, string key, string value) =>
        new(new Stamp(time, 1), Operation.Put, key, Encoding.UTF8.GetBytes(value), 1, time, 1);

    private static List<WriteCommand> Batch(long from, int count) =>
        [.. Enumerable.Range(0, count).Select(i => Put(from + i, "k" + ((from + i) % 7), new string('x', 50) + (from + i)))];

    private static List<LogEntry> Logged(IEnumerable<WriteCommand> writes) => [.. writes.Select(LogEntry.HeldWrite)];

    private static List<WriteCommand> Held(WalRecovery recovery) => [.. recovery.Entries.Select(e => e.Held!)];

    private static string Keys(IEnumerable<WriteCommand> writes) => string.Join(",", writes.Select(w => w.Stamp.Time));

    [TestCase(FsyncPolicy.Always)]
    [TestCase(FsyncPolicy.Batch)]
    [TestCase(FsyncPolicy.None)]
    public void Batches_survive_a_reopen_across_segment_rolls(FsyncPolicy policy)
    {
        using (var wal = WalFile.Open(_dir, policy, segmentBytes: 2000, out var fresh))
        {
            Assert.That(Held(fresh), Is.Empty);
            for (int b = 0; b < 10; b++)
            {
                wal.Append(Logged(Batch(1 + b * 5, 5)));
            }
            wal.Sync();
            Assert.That(wal.SegmentCount, Is.GreaterThan(1), "segments rolled at the size limit");
        }
        using var reopened = WalFile.Open(_dir, policy, segmentBytes: 2000, out var recovery);
        Assert.That(Keys(Held(recovery)), Is.EqualTo(Keys(Batch(1, 50))));
        Assert.That(recovery.TruncatedTail, Is.Null);
    }

    [Test]
    public void A_torn_tail_in_the_newest_segment_is_truncated_and_reported_and_appends_continue()
    {
        using (var wal = WalFile.Open(_dir, FsyncPolicy.Always, 1 << 20, out _))
        {
            wal.Append(Logged(Batch(1, 3)));
        }
        string segment = Directory.GetFiles(_dir, "wal-*.log").Single();
        long whole = new FileInfo(segment).Length;
        using (var file = new FileStream(segment, FileMode.Append))
        {
            file.Write([7, 0, 0, 0, 1, 2]); // half a record header, as a crash mid-append leaves
        }
        using (var wal = WalFile.Open(_dir, FsyncPolicy.Always, 1 << 20, out var recovery))
        {
            Assert.That(Held(recovery), Has.Count.EqualTo(3));
            Assert.That(recovery.TruncatedTail, Does.Contain($"at offset {whole}").And.Contain("truncated"));
            Assert.That(new FileInfo(segment).Length, Is.EqualTo(whole));
            wal.Append(Logged(Batch(4, 2)));
        }
        using var again = WalFile.Open(_dir, FsyncPolicy.Always, 1 << 20, out var after);
        Assert.That(Keys(Held(after)), Is.EqualTo(Keys(Batch(1, 5))), "what was appended after the truncation is intact");
    }

    [Test]
    public void Damage_in_an_older_segment_stops_recovery_naming_the_file()
    {
        using (var wal = WalFile.Open(_dir, FsyncPolicy.Always, segmentBytes: 500, out _))
        {
            for (int b = 0; b < 6; b++)
            {
                wal.Append(Logged(Batch(1 + b * 3, 3)));
            }
        }
        string oldest = Directory.GetFiles(_dir, "wal-*.log").Order().First();
        byte[] bytes = File.ReadAllBytes(oldest);
        bytes[20] ^= 0x10;
        File.WriteAllBytes(oldest, bytes);
        Assert.That(() => WalFile.Open(_dir, FsyncPolicy.Always, 500, out _),
            Throws.TypeOf<StorageCorruptionException>().With.Message.Contains(Path.GetFileName(oldest)));
    }

    [Test]
    public void Segments_wholly_before_a_snapshot_are_deleted()
    {
        using var wal = WalFile.Open(_dir, FsyncPolicy.None, segmentBytes: 500, out _);
        for (int b = 0; b < 8; b++)
        {
            wal.Append(Logged(Batch(1 + b * 3, 3)));
        }
        int before = wal.SegmentCount;
        int deleted = wal.DeleteSegmentsThrough(new Stamp(12, 1));
        Assert.That(deleted, Is.GreaterThan(0));
        Assert.That(wal.SegmentCount, Is.EqualTo(before - deleted));
        wal.Dispose();
        using var reopened = WalFile.Open(_dir, FsyncPolicy.None, 500, out var recovery);
        Assert.That(Held(recovery).First().Stamp.Time, Is.LessThanOrEqualTo(13), "nothing after the snapshot stamp was deleted");
        Assert.That(Held(recovery).Last().Stamp.Time, Is.EqualTo(24));
    }

    [Test]
    public void A_segment_holding_a_write_newer_than_the_snapshot_is_kept_even_if_its_last_write_is_older()
    {
        // A segment limit smaller than one batch: every batch closes its own segment.
        using var wal = WalFile.Open(_dir, FsyncPolicy.None, segmentBytes: 40, out _);
        // Logged out of stamp order, as held writes from different origins are.
        wal.Append(Logged([Put(50, "late", "a"), Put(3, "early", "b")]));
        wal.Append(Logged(Batch(60, 4)));
        Assert.That(wal.SegmentCount, Is.EqualTo(3));
        Assert.That(wal.DeleteSegmentsThrough(new Stamp(10, 1)), Is.Zero, "the first segment holds stamp 50, after the snapshot");
        Assert.That(wal.DeleteSegmentsThrough(new Stamp(50, 1)), Is.EqualTo(1));
    }

    [Test]
    public void A_snapshot_file_is_imported_into_the_engine_and_a_damaged_one_is_refused_leaving_no_engine()
    {
        var store = new KvStore();
        foreach (var w in Batch(1, 20))
        {
            store.Apply(w, out _);
        }
        string good = Path.Combine(_dir, "good.snap");
        using (var file = File.Create(good))
        {
            SnapshotFormat.Write(file, store);
        }
        byte[] bytes = File.ReadAllBytes(good);
        bytes[bytes.Length / 2] ^= 0x01;
        string damaged = Path.Combine(_dir, "damaged.snap");
        File.WriteAllBytes(damaged, bytes);

        string target = Path.Combine(_dir, "data");
        Directory.CreateDirectory(target);
        Assert.Throws<StorageCorruptionException>(() => EngineImport.Import(damaged, target, 1L << 30));
        Assert.That(Directory.EnumerateFileSystemEntries(target), Is.Empty, "a failed import leaves nothing behind");

        Assert.That(EngineImport.Import(good, target, 1L << 30), Is.EqualTo(store.KeyCount));
        using var engine = LmdbEngine.Open(LmdbEngine.PathIn(target), 1L << 30, sync: true);
        var imported = new KvStore(engine);
        Assert.That(imported.LastApplied, Is.EqualTo(new Stamp(20, 1)));
        Assert.That(imported.Entries().Select(e => $"{e.Key}={Convert.ToHexString(e.Value)}@{e.Version}"), Is.EqualTo(store.Entries().Select(e => $"{e.Key}={Convert.ToHexString(e.Value)}@{e.Version}")));
        Assert.Throws<IOException>(() => EngineImport.Import(good, target, 1L << 30), "never over an existing engine");
    }

    [Test]
    public void A_data_directory_from_before_the_engine_is_converted_at_start_up_and_keeps_every_write()
    {
        // The format before the engine: a snapshot through write 20 and the log after it
        // (writes 21..30 delivered, 31..32 held), as SnapshotStore and WalFile wrote them.
        var store = new KvStore();
        foreach (var w in Batch(1, 20))
        {
            store.Apply(w, out _);
        }
        using (var file = File.Create(Path.Combine(_dir, SnapshotStore.FileNameFor(new Stamp(20, 1)))))
        {
            SnapshotFormat.Write(file, store);
        }
        using (var wal = WalFile.Open(_dir, FsyncPolicy.Always, 1 << 20, out _))
        {
            wal.Append([.. Logged(Batch(15, 16)), LogEntry.Delivered(new Stamp(30, 1)), .. Logged(Batch(31, 2))]);
        }
        foreach (var w in Batch(21, 10))
        {
            store.Apply(w, out _);
        }
        var config = new ClusterConfig { ClusterName = "c", Replicas = [new ReplicaAddress(1, "127.0.0.1", 1)], EngineMaxBytes = 1L << 30 };

        using (var storage = ReplicaStorage.Open(_dir, config, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, out var converted, out var recovered))
        {
            Assert.That(Directory.GetFiles(_dir, "snapshot-*"), Is.Empty, "the snapshot file is gone once the engine holds it");
            Assert.That(Directory.Exists(LmdbEngine.PathIn(_dir)), Is.True);
            Assert.That(converted.CommittedThrough, Is.EqualTo(new Stamp(20, 1)), "the engine holds the snapshot");
            Assert.That(recovered.LastDelivered, Is.EqualTo(new Stamp(30, 1)), "the log after it replayed");
            Assert.That(Keys(recovered.Held), Is.EqualTo("31,32"));
            Assert.That(Describe(converted), Is.EqualTo(Describe(store)));
        }
        // A second start finds the engine (committed on the clean stop) and converts nothing again.
        using (var again = ReplicaStorage.Open(_dir, config, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, out var reopened, out var recoveredAgain))
        {
            Assert.That(reopened.CommittedThrough, Is.EqualTo(new Stamp(30, 1)));
            Assert.That(recoveredAgain.LastDelivered, Is.EqualTo(new Stamp(30, 1)));
            Assert.That(Describe(reopened), Is.EqualTo(Describe(store)));
        }
    }

    private static string Describe(KvStore store) =>
        $"{store.LastApplied} {store.KeyCount} " + string.Join(" ", store.Entries().Select(e => $"{e.Key}={Convert.ToHexString(e.Value)}@{e.Version}"))
        + " | " + string.Join(" ", store.ExportSessions().Select(x => $"{x.ClientId}:{x.Floor}:{string.Join(",", x.Sequences)}"));

    [Test]
    public void A_data_directory_whose_only_snapshot_is_damaged_is_refused_and_the_file_kept()
    {
        var store = new KvStore();
        foreach (var w in Batch(1, 20))
        {
            store.Apply(w, out _);
        }
        string path = Path.Combine(_dir, SnapshotStore.FileNameFor(new Stamp(20, 1)));
        using (var file = File.Create(path))
        {
            SnapshotFormat.Write(file, store);
        }
        byte[] bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x01;
        File.WriteAllBytes(path, bytes);
        var config = new ClusterConfig { ClusterName = "c", Replicas = [new ReplicaAddress(1, "127.0.0.1", 1)], EngineMaxBytes = 1L << 30 };

        var refused = Assert.Throws<KvReplica.Node.NodeStartupException>(() => ReplicaStorage.Open(_dir, config, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, out _, out _));
        Assert.That(refused!.Message, Does.Contain("every snapshot file").And.Contain("damaged"));
        Assert.That(File.Exists(path), Is.True, "nothing the operator may need is deleted");
        Assert.That(Directory.Exists(LmdbEngine.PathIn(_dir)), Is.False);
    }
}
