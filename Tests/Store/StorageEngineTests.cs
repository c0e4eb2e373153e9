using System.Text;
using FsCheck;
using FsCheck.Fluent;
using KvReplica.Clock;
using KvReplica.Node.Storage;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using KvReplica.Store.Engine;
using NUnit.Framework;

namespace KvReplica.Tests.Store;

/// <summary>
/// The engine contract, run against both engines: the in-memory one the simulation uses and the
/// LMDB one the Node uses must agree, or the simulation proves nothing about the Node.
/// </summary>
[TestFixture("memory")]
[TestFixture("lmdb")]
[Category("Unit")]
public sealed class StorageEngineTests(string kind)
{
    private string _dir = "";
    private readonly List<IStorageEngine> _opened = [];

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kvreplica-engine-").FullName;

    [TearDown]
    public void TearDown()
    {
        foreach (var engine in _opened)
        {
            engine.Dispose();
        }
        _opened.Clear();
        Directory.Delete(_dir, recursive: true);
    }

    private IStorageEngine Open()
    {
        IStorageEngine engine = kind == "memory" ? new MemoryEngine() : LmdbEngine.Open(Path.Combine(_dir, "engine"), 1L << 30, sync: false);
        _opened.Add(engine);
        return engine;
    }

    // The LMDB engine reopened from its files (a restart); the memory engine has no files, so the same object.
    private IStorageEngine Reopen(IStorageEngine engine)
    {
        if (kind == "memory")
        {
            return engine;
        }
        engine.Dispose();
        _opened.Remove(engine);
        return Open();
    }

    private static AppliedPoint Point(long time, long keys) => new(new Stamp(time, 1), new Dictionary<int, long> { [1] = time }, time, keys, 0);

    private static EngineBatch Puts(long time, params string[] keys)
    {
        var batch = new EngineBatch { Applied = Point(time, keys.Length) };
        foreach (string key in keys)
        {
            batch.Entries.Add(new EntryChange(key, Encoding.UTF8.GetBytes("v-" + key), new Stamp(time, 1)));
        }
        return batch;
    }

    // Keys whose UTF-8 byte order differs from .NET's ordinal (UTF-16) order: U+FFFD sorts
    // before U+1F600 in UTF-8 (EF.. < F0..) but after it in UTF-16 (FFFD > D83D).
    private static readonly string[] Keys = ["user/b", "user/a", "users", "user/é", "user/\uFFFD", "user/😀", "a", "z"];

    [Test]
    public void Scans_go_in_utf8_byte_order_by_range_and_by_prefix()
    {
        var engine = Open();
        engine.Commit(Puts(1, Keys));
        using var view = engine.OpenView();
        var expected = Keys.OrderBy(k => Encoding.UTF8.GetBytes(k), Comparer<byte[]>.Create((x, y) => x.AsSpan().SequenceCompareTo(y))).ToList();
        Assert.That(view.Scan(KeyRange.All).Select(e => e.Key), Is.EqualTo(expected));
        Assert.That(view.Scan(KeyRange.WithPrefix("user/")).Select(e => e.Key), Is.EqualTo(new[] { "user/a", "user/b", "user/é", "user/\uFFFD", "user/😀" }));
        Assert.That(view.Scan(new KeyRange("user/b", "user/\uFFFD")).Select(e => e.Key), Is.EqualTo(new[] { "user/b", "user/é" }));
        Assert.That(view.Scan(KeyRange.WithPrefix("nothing")), Is.Empty);
        var first = view.Scan(KeyRange.All).First();
        Assert.That(Encoding.UTF8.GetString(first.Value), Is.EqualTo("v-a"));
        Assert.That(first.Version, Is.EqualTo(new Stamp(1, 1)));
    }

    [Test]
    public void A_view_keeps_seeing_its_commit_while_later_commits_go_on()
    {
        var engine = Open();
        engine.Commit(Puts(1, "a", "b"));
        using var before = engine.OpenView();
        var delete = new EngineBatch { Applied = Point(2, 1) };
        delete.Entries.Add(new EntryChange("a", null, new Stamp(2, 1)));
        delete.Entries.Add(new EntryChange("b", [9], new Stamp(2, 1)));
        engine.Commit(delete);

        Assert.That(before.Applied?.LastApplied, Is.EqualTo(new Stamp(1, 1)));
        Assert.That(before.Scan(KeyRange.All).Select(e => (e.Key, e.Version)), Is.EqualTo(new[] { ("a", new Stamp(1, 1)), ("b", new Stamp(1, 1)) }));
        using var after = engine.OpenView();
        Assert.That(after.Applied?.LastApplied, Is.EqualTo(new Stamp(2, 1)));
        Assert.That(after.Scan(KeyRange.All).Select(e => (e.Key, e.Version)), Is.EqualTo(new[] { ("b", new Stamp(2, 1)) }));
        engine.Refresh();
        Assert.That(engine.TryGet("a", out _, out _), Is.False);
        Assert.That(engine.TryGet("b", out var value, out var version) && value.SequenceEqual(new byte[] { 9 }) && version == new Stamp(2, 1), Is.True);
    }

    [Test]
    public void A_store_committed_and_reopened_has_the_same_state_and_still_recognises_retries()
    {
        var engine = Open();
        var store = new KvStore(engine, maxSessions: 2);
        long time = 0;
        WriteCommand Write(Operation op, string key, ulong client, long sequence) =>
            new(new Stamp(++time, 1), op, key, op == Operation.Put ? [(byte)time] : null, client, sequence, 1);
        store.Apply(Write(Operation.Put, "a", 7, 1), out _);
        store.Apply(Write(Operation.Put, "b", 8, 1), out _);
        store.Apply(Write(Operation.Delete, "a", 9, 1), out _); // a third client evicts client 7
        store.Apply(Write(Operation.Put, "c", 8, 2), out _);
        store.Commit();
        store.Apply(Write(Operation.Put, "uncommitted", 8, 3), out _); // lost with the process

        var reopened = new KvStore(Reopen(engine), maxSessions: 2);
        Assert.That(reopened.LastApplied, Is.EqualTo(new Stamp(4, 1)));
        Assert.That(reopened.KeyCount, Is.EqualTo(2));
        Assert.That(reopened.Entries().Select(e => e.Key), Is.EqualTo(new[] { "b", "c" }));
        Assert.That(reopened.ExportSessions().Select(s => s.ClientId), Is.EqualTo(new ulong[] { 9, 8 }), "least recently used first; client 7 was evicted");
        Assert.That(reopened.Apply(Write(Operation.Put, "c", 8, 2), out bool duplicate), Is.EqualTo(ReplyStatus.Ok));
        Assert.That(duplicate, Is.True, "a retry of a committed write is recognised after a restart");
        Assert.That(reopened.Apply(Write(Operation.Delete, "a", 9, 1), out duplicate), Is.EqualTo(ReplyStatus.Ok));
        Assert.That(duplicate, Is.True);
        Assert.That(reopened.Read("uncommitted").Found, Is.False);
    }

    [Test]
    public void While_a_commit_is_in_flight_reads_and_scans_see_every_applied_write_at_each_step()
    {
        var engine = Open();
        var store = new KvStore(engine);
        long time = 0;
        WriteCommand Write(Operation op, string key) => new(new Stamp(++time, 1), op, key, op == Operation.Put ? [(byte)time] : null, 0, 0, 0);
        store.Apply(Write(Operation.Put, "a"), out _);
        store.Apply(Write(Operation.Put, "b"), out _);
        store.Commit();
        store.Apply(Write(Operation.Put, "c"), out _);     // 3
        store.Apply(Write(Operation.Delete, "a"), out _);  // 4
        string Seen() => string.Join(" ", store.Scan(KeyRange.All).Select(e => $"{e.Key}@{e.Version.Time}")) + $" | a:{store.Read("a").Found} c:{store.Read("c").Version.Time} n={store.KeyCount}";

        var commit = store.BeginCommit()!;
        Assert.That(store.CommitInFlight, Is.True);
        Assert.That(store.HasUncommitted, Is.False, "everything applied is handed off");
        Assert.That(store.BeginCommit, Throws.InvalidOperationException, "one commit at a time");
        Assert.That(Seen(), Is.EqualTo("b@2 c@3 | a:False c:3 n=2"), "handed off, the engine has not committed yet");
        store.Apply(Write(Operation.Put, "a"), out _);     // 5: newer than the batch in flight
        store.Apply(Write(Operation.Delete, "c"), out _);  // 6
        Assert.That(Seen(), Is.EqualTo("a@5 b@2 | a:True c:0 n=2"));
        engine.Commit(commit.Batch);                       // the background commit returns
        Assert.That(Seen(), Is.EqualTo("a@5 b@2 | a:True c:0 n=2"), "committed, not yet seen complete");
        store.CompleteCommit(commit);
        Assert.That(store.CommittedThrough, Is.EqualTo(new Stamp(4, 1)));
        Assert.That(Seen(), Is.EqualTo("a@5 b@2 | a:True c:0 n=2"));
        Assert.That(store.HasUncommitted, Is.True);
        store.Commit();
        var reopened = new KvStore(Reopen(engine));
        Assert.That(string.Join(" ", reopened.Entries().Select(e => $"{e.Key}@{e.Version.Time}")), Is.EqualTo("a@5 b@2"));
        Assert.That(reopened.KeyCount, Is.EqualTo(2));
    }

    [Test]
    public void A_store_scan_merges_uncommitted_writes_over_the_committed_state()
    {
        var store = new KvStore(Open());
        long time = 0;
        WriteCommand Write(Operation op, string key) => new(new Stamp(++time, 1), op, key, op == Operation.Put ? [(byte)time] : null, 0, 0, 0);
        foreach (string key in new[] { "k1", "k2", "k3", "k5" })
        {
            store.Apply(Write(Operation.Put, key), out _);
        }
        store.Commit();
        store.Apply(Write(Operation.Delete, "k2"), out _);
        store.Apply(Write(Operation.Put, "k4"), out _);
        store.Apply(Write(Operation.Put, "k5"), out _);
        store.Apply(Write(Operation.Put, "k0"), out _);
        store.Apply(Write(Operation.Put, "x"), out _);

        Assert.That(store.Scan(KeyRange.WithPrefix("k")).Select(e => (e.Key, e.Version.Time)),
            Is.EqualTo(new[] { ("k0", 8L), ("k1", 1L), ("k3", 3L), ("k4", 6L), ("k5", 7L) }));
        Assert.That(store.KeyCount, Is.EqualTo(6));
    }
}

/// <summary>The deliberately broken engine the simulation's mutation check uses really is broken, and only it.</summary>
[TestFixture]
[Category("Unit")]
public sealed class BrokenEngineTests
{
    private static AppliedPoint Point(long time) => new(new Stamp(time, 1), new Dictionary<int, long> { [1] = time }, time, 1, 0);

    private static EngineBatch Put(long time, string key)
    {
        var batch = new EngineBatch { Applied = Point(time) };
        batch.Entries.Add(new EntryChange(key, [1], new Stamp(time, 1)));
        return batch;
    }

    [Test]
    public void Committing_the_applied_point_without_its_writes_is_what_the_broken_memory_engine_does()
    {
        var broken = new MemoryEngine(splitAppliedPoint: true);
        broken.Commit(Put(5, "a"));
        broken.LoseLastCommit();
        Assert.That(broken.Applied?.LastApplied, Is.EqualTo(new Stamp(5, 1)), "the point survived");
        Assert.That(broken.TryGet("a", out _, out _), Is.False, "its write did not");
        var sound = new MemoryEngine();
        sound.Commit(Put(5, "a"));
        sound.LoseLastCommit();
        Assert.That(sound.Applied, Is.Null);
        Assert.That(sound.TryGet("a", out _, out _), Is.False);
    }
}

[TestFixture]
[Category("Property")]
public sealed class KeyOrderProperties
{
    // Code points from the ranges where the orders could part: ASCII, the top of the BMP (above
    // the surrogates) and above U+FFFF (surrogate pairs in UTF-16).
    private static readonly Arbitrary<string> ValidKeys =
        Gen.OneOf(Gen.Choose(0x20, 0x7E), Gen.Choose(0xE000, 0xFFFF), Gen.Choose(0x10000, 0x10FFFF)).Select(char.ConvertFromUtf32)
            .ListOf().Select(parts => string.Concat(parts)).ToArbitrary();

    [Test]
    public void Key_order_is_the_utf8_byte_order() =>
        Prop.ForAll(ValidKeys, ValidKeys, (a, b) =>
            Math.Sign(KeyOrder.Instance.Compare(a, b)) == Math.Sign(Encoding.UTF8.GetBytes(a).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(b))))
        .QuickCheckThrowOnFailure();
}
