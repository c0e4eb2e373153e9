using FsCheck;
using FsCheck.Fluent;
using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using KvReplica.Store.History;
using NUnit.Framework;

namespace KvReplica.Tests.Store;

/// <summary>
/// UPDATE, compare-and-set, transactions and the change history of <see cref="KvStore"/> against a
/// plain dictionary model: every result, every state, and every past revision read back through
/// the history (<see cref="PastRevision"/>).
/// </summary>
[TestFixture]
public sealed class KvStoreOperationsTests
{
    private sealed record ModelValue(byte[] Value, Stamp Version);

    // One random operation from an integer: its kind, its keys and, for compares, what it expects.
    private static WriteCommand Decode(int n, Stamp stamp, Dictionary<string, ModelValue> model)
    {
        string key = "k" + (n % 4);
        string other = "k" + (n / 4 % 4);
        byte[] value = [(byte)(n % 251), (byte)(stamp.Time % 251)];
        var current = model.GetValueOrDefault(key);
        switch (n % 7)
        {
            case 0:
                return new WriteCommand(stamp, Operation.Put, key, value, 0, 0, 0);
            case 1:
                return new WriteCommand(stamp, Operation.Delete, key, null, 0, 0, 0);
            case 2:
                return new WriteCommand(stamp, Operation.Update, key, value, 0, 0, 0);
            case 3:
            {
                // Right version half the time (when there is one), else a wrong or an absent one.
                var expected = n / 28 % 2 == 0 && current is not null ? current.Version : n / 28 % 3 == 0 ? Stamp.Zero : new Stamp(1 + n % 5, 1);
                return new WriteCommand(stamp, Operation.CompareAndSet, key, value, 0, 0, 0) { Expected = expected };
            }
            default:
            {
                var kind = (TxnCompareKind)(n / 7 % 6);
                var compare = new TxnCompare { Key = key, Kind = kind };
                if (kind is TxnCompareKind.VersionEquals or TxnCompareKind.VersionNotEquals)
                {
                    var version = current?.Version ?? new Stamp(3, 1);
                    (compare.VersionTime, compare.VersionReplica) = (version.Time, version.ReplicaId);
                }
                if (kind is TxnCompareKind.ValueEquals or TxnCompareKind.ValueNotEquals)
                {
                    compare.Value = n % 3 == 0 ? [9, 9] : current?.Value ?? [1];
                }
                var txn = new TxnBody
                {
                    Compares = [compare],
                    Then = key == other ? [new TxnOp { Operation = Operation.Put, Key = key, Value = value }]
                        : [new TxnOp { Operation = Operation.Put, Key = key, Value = value }, new TxnOp { Operation = Operation.Delete, Key = other }],
                    Else = [new TxnOp { Operation = Operation.Put, Key = other, Value = value }],
                };
                return new WriteCommand(stamp, Operation.Txn, "", null, 0, 0, 0) { Txn = txn };
            }
        }
    }

    // The model's answer, applied to the model.
    private static ReplyStatus ApplyToModel(WriteCommand c, Dictionary<string, ModelValue> model)
    {
        var current = model.GetValueOrDefault(c.Key);
        switch (c.Operation)
        {
            case Operation.Put:
                model[c.Key] = new ModelValue(c.Value!, c.Stamp);
                return ReplyStatus.Ok;
            case Operation.Delete:
                return model.Remove(c.Key) ? ReplyStatus.Ok : ReplyStatus.NotFound;
            case Operation.Update:
                if (current is null)
                {
                    return ReplyStatus.NotFound;
                }
                model[c.Key] = new ModelValue(c.Value!, c.Stamp);
                return ReplyStatus.Ok;
            case Operation.CompareAndSet:
                if ((current?.Version ?? Stamp.Zero) != c.Expected)
                {
                    return ReplyStatus.ConditionFailed;
                }
                model[c.Key] = new ModelValue(c.Value!, c.Stamp);
                return ReplyStatus.Ok;
            default:
            {
                bool holds = c.Txn!.Compares.All(cmp =>
                {
                    var v = model.GetValueOrDefault(cmp.Key);
                    var version = new Stamp(cmp.VersionTime, cmp.VersionReplica);
                    return cmp.Kind switch
                    {
                        TxnCompareKind.Exists => v is not null,
                        TxnCompareKind.Absent => v is null,
                        TxnCompareKind.VersionEquals => v is not null && v.Version == version,
                        TxnCompareKind.VersionNotEquals => v is null || v.Version != version,
                        TxnCompareKind.ValueEquals => v is not null && v.Value.AsSpan().SequenceEqual(cmp.Value),
                        _ => v is null || !v.Value.AsSpan().SequenceEqual(cmp.Value),
                    };
                });
                foreach (var op in holds ? c.Txn.Then : c.Txn.Else)
                {
                    if (op.Operation == Operation.Put)
                    {
                        model[op.Key] = new ModelValue(op.Value!, c.Stamp);
                    }
                    else
                    {
                        model.Remove(op.Key);
                    }
                }
                return holds ? ReplyStatus.Ok : ReplyStatus.ConditionFailed;
            }
        }
    }

    private static string Show(IEnumerable<StoredEntry> entries) => string.Join(" ", entries.Select(e => $"{e.Key}={Convert.ToHexString(e.Value)}@{e.Version}"));

    private static string Show(Dictionary<string, ModelValue> model) =>
        string.Join(" ", model.OrderBy(p => p.Key, KeyOrder.Instance).Select(p => $"{p.Key}={Convert.ToHexString(p.Value.Value)}@{p.Value.Version}"));

    [Test, Category("Property")]
    public void Conditional_writes_and_transactions_match_a_model_and_every_past_revision_reads_back() =>
        Prop.ForAll(Gen.Choose(0, 10_000).ListOf().ToArbitrary(), script =>
        {
            var store = new KvStore(new KvReplica.Store.Engine.MemoryEngine(), historyChanges: int.MaxValue, historyBytes: long.MaxValue);
            var model = new Dictionary<string, ModelValue>(StringComparer.Ordinal);
            var states = new List<(Stamp Revision, string State)> { (Stamp.Zero, "") };
            long time = 0;
            foreach (int n in script)
            {
                var command = Decode(n, new Stamp(++time, 1 + n % 3), model);
                var expected = ApplyToModel(command, model);
                var actual = store.Apply(command, out bool duplicate);
                if (duplicate || actual != expected)
                {
                    return false;
                }
                if (n % 5 == 0)
                {
                    store.Commit(); // some state in the engine, some in the overlay
                }
                states.Add((command.Stamp, Show(model)));
            }
            if (Show(store.Scan(KeyRange.All)) != Show(model) || store.KeyCount != model.Count)
            {
                return false;
            }
            // Every past revision, read as the state now with the later changes undone.
            return states.All(s => Show(PastRevision.Scan(store.Scan(KeyRange.All), store.ChangesAfter(s.Revision), KeyRange.All)) == s.State);
        }).QuickCheckThrowOnFailure();

    [Test, Category("Unit")]
    public void A_mutated_past_revision_that_skips_undoing_deletes_is_caught()
    {
        // The property above can fail: undo only changes that set a value (not deletes) and a
        // revision before a delete reads back without the deleted key.
        var store = new KvStore(new KvReplica.Store.Engine.MemoryEngine(), historyChanges: 100, historyBytes: 1 << 20);
        store.Apply(new WriteCommand(new Stamp(1, 1), Operation.Put, "a", [1], 0, 0, 0), out _);
        store.Apply(new WriteCommand(new Stamp(2, 1), Operation.Delete, "a", null, 0, 0, 0), out _);
        var right = PastRevision.Scan(store.Scan(KeyRange.All), store.ChangesAfter(new Stamp(1, 1)), KeyRange.All);
        var mutated = PastRevision.Scan(store.Scan(KeyRange.All), store.ChangesAfter(new Stamp(1, 1)).Where(c => c.Value is not null), KeyRange.All);
        Assert.That(Show(right), Is.EqualTo("a=01@1.1"));
        Assert.That(Show(mutated), Is.Not.EqualTo(Show(right)));
    }

    [Test, Category("Unit")]
    public void The_history_drops_its_oldest_changes_and_says_from_where_it_is_whole()
    {
        var history = new ChangeHistory(Stamp.Zero, maxChanges: 3, maxBytes: long.MaxValue);
        for (int t = 1; t <= 5; t++)
        {
            history.Record(new KeyChange(new Stamp(t, 1), "k", [(byte)t], default));
        }
        Assert.That(history.Count, Is.EqualTo(3));
        Assert.That(history.Start, Is.EqualTo(new Stamp(2, 1)), "changes after 2.1 are all kept");
        Assert.That(history.After(new Stamp(2, 1)).Select(c => c.Revision.Time), Is.EqualTo(new long[] { 3, 4, 5 }));
        Assert.That(history.After(new Stamp(4, 1)).Select(c => c.Revision.Time), Is.EqualTo(new long[] { 5 }));
        Assert.Throws<InvalidOperationException>(() => history.After(new Stamp(1, 1)).ToList(), "a revision before the start is refused, never answered short");
        var bytes = new ChangeHistory(Stamp.Zero, maxChanges: 100, maxBytes: 300);
        for (int t = 1; t <= 5; t++)
        {
            bytes.Record(new KeyChange(new Stamp(t, 1), "k", new byte[100], default));
        }
        Assert.That(bytes.Bytes, Is.LessThanOrEqualTo(300));
        Assert.That(bytes.Start, Is.GreaterThan(Stamp.Zero));
    }

    [Test, Category("Unit")]
    public void A_transaction_writes_every_key_at_its_stamp_and_is_one_place_in_the_history()
    {
        var store = new KvStore();
        var txn = new TxnBody
        {
            Compares = [new TxnCompare { Key = "a", Kind = TxnCompareKind.Absent }],
            Then = [new TxnOp { Operation = Operation.Put, Key = "a", Value = [1] }, new TxnOp { Operation = Operation.Put, Key = "b", Value = [2] }],
            Else = [new TxnOp { Operation = Operation.Delete, Key = "b" }],
        };
        var first = new WriteCommand(new Stamp(5, 2), Operation.Txn, "", null, 7, 1, 1) { Txn = txn };
        Assert.That(store.Apply(first, out _), Is.EqualTo(ReplyStatus.Ok));
        Assert.That(store.Read("a").Version, Is.EqualTo(new Stamp(5, 2)));
        Assert.That(store.Read("b").Version, Is.EqualTo(new Stamp(5, 2)));
        Assert.That(store.ChangesAfter(Stamp.Zero).Select(c => (c.Key, c.Revision)), Is.EqualTo(new[] { ("a", new Stamp(5, 2)), ("b", new Stamp(5, 2)) }));
        var second = new WriteCommand(new Stamp(6, 1), Operation.Txn, "", null, 7, 2, 1) { Txn = txn };
        Assert.That(store.Apply(second, out _), Is.EqualTo(ReplyStatus.ConditionFailed), "a exists now: the else-branch ran");
        Assert.That(store.Read("b").Found, Is.False);
        Assert.That(store.Apply(second with { Stamp = new Stamp(7, 3) }, out bool duplicate), Is.EqualTo(ReplyStatus.ConditionFailed), "a retry gets the first result");
        Assert.That(duplicate, Is.True);
    }
}
