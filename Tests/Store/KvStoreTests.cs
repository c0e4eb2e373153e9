using FsCheck;
using FsCheck.Fluent;
using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using NUnit.Framework;

namespace KvReplica.Tests.Store;

[TestFixture]
public sealed class KvStoreTests
{
    private long _time;

    private WriteCommand Put(string key, byte v, ulong client = 1, long seq = 0, long acked = 1) =>
        new(new Stamp(++_time, 1), Operation.Put, key, [v], client, seq == 0 ? _time : seq, acked);

    private WriteCommand Delete(string key, ulong client = 1, long seq = 0, long acked = 1) =>
        new(new Stamp(++_time, 1), Operation.Delete, key, null, client, seq == 0 ? _time : seq, acked);

    [Test, Category("Unit")]
    public void Put_get_delete_with_versions()
    {
        var store = new KvStore();
        var put = Put("a", 1);
        Assert.That(store.Apply(put, out _), Is.EqualTo(ReplyStatus.Ok));
        Assert.That(store.Read("a"), Is.EqualTo(new StoredValue(true, put.Value, put.Stamp)).Using<StoredValue>((x, y) => x.Found == y.Found && x.Version == y.Version && x.Value!.SequenceEqual(y.Value!)));
        Assert.That(store.Apply(Delete("a"), out _), Is.EqualTo(ReplyStatus.Ok));
        Assert.That(store.Apply(Delete("a"), out _), Is.EqualTo(ReplyStatus.NotFound));
        Assert.That(store.Read("a").Found, Is.False);
    }

    [Test, Category("Unit")]
    public void A_retry_returns_the_first_result_and_changes_nothing()
    {
        var store = new KvStore();
        store.Apply(Put("a", 1, client: 9, seq: 5), out _);
        var firstDelete = Delete("a", client: 7, seq: 1);
        Assert.That(store.Apply(firstDelete, out bool dup1), Is.EqualTo(ReplyStatus.Ok));
        store.Apply(Put("a", 2, client: 9, seq: 6), out _);
        var retry = firstDelete with { Stamp = new Stamp(++_time, 2) };
        Assert.That(store.Apply(retry, out bool dup2), Is.EqualTo(ReplyStatus.Ok), "the first attempt's result, not a second delete's");
        Assert.That((dup1, dup2), Is.EqualTo((false, true)));
        Assert.That(store.Read("a").Value, Is.EqualTo(new byte[] { 2 }), "the retry did not delete the newer value");
    }

    [Test, Category("Unit")]
    public void Sequences_delivered_out_of_order_both_apply()
    {
        var store = new KvStore();
        store.Apply(Put("a", 2, client: 3, seq: 2), out bool d2);
        store.Apply(Put("b", 1, client: 3, seq: 1), out bool d1);
        Assert.That((d1, d2), Is.EqualTo((false, false)));
        Assert.That(store.Read("b").Found, Is.True);
    }

    [Test, Category("Unit")]
    public void Below_the_watermark_a_stale_retry_never_applies_again()
    {
        var store = new KvStore();
        store.Apply(Put("a", 1, client: 4, seq: 1, acked: 1), out _);
        store.Apply(Put("a", 2, client: 4, seq: 2, acked: 2), out _);
        store.Apply(Put("a", 3, client: 4, seq: 3, acked: 3), out _);
        store.Apply(Put("a", 1, client: 4, seq: 1, acked: 1), out bool duplicate);
        Assert.That(duplicate, Is.True);
        Assert.That(store.Read("a").Value, Is.EqualTo(new byte[] { 3 }));
    }

    [Test, Category("Unit")]
    public void Sessions_beyond_the_cap_are_evicted_least_recently_used_first()
    {
        var store = new KvStore(maxSessions: 2);
        store.Apply(Put("a", 1, client: 1, seq: 1), out _);
        store.Apply(Put("a", 2, client: 2, seq: 1), out _);
        store.Apply(Put("a", 3, client: 1, seq: 2), out _); // client 1 used again: client 2 is now oldest
        store.Apply(Put("a", 4, client: 3, seq: 1), out _); // evicts client 2
        Assert.That(store.SessionCount, Is.EqualTo(2));
        store.Apply(Put("a", 5, client: 1, seq: 1), out bool client1Retry);
        store.Apply(Put("a", 6, client: 2, seq: 1), out bool client2Retry);
        Assert.That(client1Retry, Is.True, "client 1's session was kept");
        Assert.That(client2Retry, Is.False, "client 2's session was forgotten, so its retry applies again (documented limit)");
    }

    [Test, Category("Property")]
    public void Applying_writes_with_random_retries_equals_applying_each_write_once() =>
        Prop.ForAll(Gen.Choose(0, 1000).ListOf().ToArbitrary(), Gen.Choose(0, 1000).ListOf().ToArbitrary(), (script, retries) =>
        {
            // Each script entry is one client write (client = n % 3, key = n % 4, delete if n % 5 == 0).
            var store = new KvStore();
            var model = new Dictionary<string, byte>();
            var applied = new List<WriteCommand>();
            var sequences = new Dictionary<ulong, long>();
            long time = 0;
            var retryQueue = new Queue<int>(retries);
            foreach (int n in script)
            {
                ulong client = (ulong)(n % 3) + 1;
                long seq = sequences[client] = sequences.GetValueOrDefault(client) + 1;
                string key = "k" + (n % 4);
                var command = n % 5 == 0
                    ? new WriteCommand(new Stamp(++time, 1), Operation.Delete, key, null, client, seq, 1)
                    : new WriteCommand(new Stamp(++time, 1), Operation.Put, key, [(byte)n], client, seq, 1);
                var result = store.Apply(command, out bool duplicate);
                bool expected = command.Operation == Operation.Put || model.ContainsKey(key);
                if (duplicate || result != (expected ? ReplyStatus.Ok : ReplyStatus.NotFound))
                {
                    return false;
                }
                if (command.Operation == Operation.Put)
                {
                    model[key] = (byte)n;
                }
                else
                {
                    model.Remove(key);
                }
                applied.Add(command);
                // Sometimes a retry of an earlier write arrives: it must change nothing.
                if (retryQueue.TryDequeue(out int r) && r % 2 == 0)
                {
                    var old = applied[r % applied.Count];
                    store.Apply(old with { Stamp = new Stamp(++time, 2) }, out bool retried);
                    if (!retried)
                    {
                        return false;
                    }
                }
            }
            return Enumerable.Range(0, 4).All(k => model.TryGetValue("k" + k, out byte v)
                ? store.Read("k" + k).Value is [var b] && b == v
                : !store.Read("k" + k).Found);
        }).QuickCheckThrowOnFailure();
}
