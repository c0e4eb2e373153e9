using System.Diagnostics;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using NUnit.Framework;

namespace KvReplica.Tests.Linearizability;

/// <summary>Shorthands for hand-written histories: every value is a string, "absent" in reads is null.</summary>
internal static class H
{
    public static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
    public const long Never = long.MaxValue;

    public static KvOperation Put(string key, string v, long from, long to, int c = 1) => new(c, key, KvOperationKind.Put, B(v), KvOutcomeKind.Ok, null, from, to);
    public static KvOperation Get(string key, string? v, long from, long to, int c = 2) =>
        new(c, key, KvOperationKind.Get, null, v is null ? KvOutcomeKind.NotFound : KvOutcomeKind.Ok, v is null ? null : B(v), from, to);
    public static KvOperation Del(string key, bool existed, long from, long to, int c = 1) =>
        new(c, key, KvOperationKind.Delete, null, existed ? KvOutcomeKind.Ok : KvOutcomeKind.NotFound, null, from, to);
    public static KvOperation Update(string key, string v, KvOutcomeKind outcome, long from, long to, int c = 1) => KvOperation.Update(c, key, B(v), outcome, from, to);
    public static KvOperation Cas(string key, string? expected, string v, KvOutcomeKind outcome, long from, long to, int c = 1) =>
        KvOperation.CompareAndSet(c, key, expected is null ? null : B(expected), B(v), outcome, from, to);
    public static KvOperation Exists(string key, bool present, long from, long to, int c = 2) => KvOperation.KeyExists(c, key, present, from, to);
    public static KvCompare Eq(string key, string v) => new(key, KvCompareKind.ValueEquals, B(v));
    public static KvCompare Present(string key) => new(key, KvCompareKind.Exists);
    public static KvCompare Absent(string key) => new(key, KvCompareKind.Absent);
    public static KvWrite W(string key, string? v) => new(key, v is null ? null : B(v));
    public static KvOperation Txn(KvCompare[] compares, KvWrite[] then, KvWrite[] otherwise, KvOutcomeKind outcome, long from, long to, int c = 1) =>
        KvOperation.Transaction(c, new KvTxn(compares, then, otherwise), outcome, from, to);
    public static KvOperation Mset(long from, long to, params (string Key, string V)[] puts) =>
        KvOperation.MultiSet(1, [.. puts.Select(p => W(p.Key, p.V))], KvOutcomeKind.Ok, from, to);
    public static KvOperation Mget(long from, long to, params (string Key, string? V)[] reads) =>
        KvOperation.MultiGet(2, [.. reads.Select(r => new KvRead(r.Key, r.V is null ? null : B(r.V)))], KvOutcomeKind.Ok, from, to);
    public static KvOperation List(string prefix, long from, long to, params (string Key, string V)[] entries) =>
        KvOperation.ListPrefix(2, prefix, [.. entries.Select(e => new KvRead(e.Key, B(e.V)))], KvOutcomeKind.Ok, from, to);

    public static Verdict Check(params KvOperation[] ops) => LinearizabilityChecker.Check(ops).Verdict;
}

[TestFixture]
public sealed class ConditionalOperationTests
{
    private const Verdict Yes = Verdict.Linearizable;
    private const Verdict No = Verdict.NotLinearizable;

    [Test, Category("Unit")]
    public void Update_writes_only_an_existing_key()
    {
        Assert.Multiple(() =>
        {
            Assert.That(H.Check(H.Update("k", "b", KvOutcomeKind.NotFound, 0, 1), H.Get("k", null, 2, 3)), Is.EqualTo(Yes), "update of an absent key writes nothing");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Update("k", "b", KvOutcomeKind.Ok, 2, 3), H.Get("k", "b", 4, 5)), Is.EqualTo(Yes), "update of a present key");
            Assert.That(H.Check(H.Put("k", "a", 0, 10), H.Update("k", "b", KvOutcomeKind.Ok, 1, 2, c: 2), H.Get("k", "b", 11, 12)), Is.EqualTo(Yes), "an overlapping put let the update find the key");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Update("k", "b", KvOutcomeKind.Unknown, 2, H.Never), H.Get("k", "a", 3, 4), H.Get("k", "b", 5, 6)), Is.EqualTo(Yes), "an unknown update that took effect late");
            Assert.That(H.Check(H.Update("k", "b", KvOutcomeKind.Unknown, 0, H.Never), H.Get("k", null, 3, 4)), Is.EqualTo(Yes), "an unknown update of an absent key");

            Assert.That(H.Check(H.Update("k", "b", KvOutcomeKind.Ok, 0, 1)), Is.EqualTo(No), "update reported written on a key that never existed");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Update("k", "b", KvOutcomeKind.NotFound, 2, 3)), Is.EqualTo(No), "update reported not found on a present key");
            Assert.That(H.Check(H.Update("k", "b", KvOutcomeKind.NotFound, 0, 1), H.Put("k", "a", 2, 3), H.Get("k", "b", 4, 5)), Is.EqualTo(No), "a not-found update whose value shows up");
            Assert.That(H.Check(H.Update("k", "b", KvOutcomeKind.Unknown, 0, H.Never), H.Put("k", "a", 1, 2), H.Get("k", "b", 3, 4), H.Del("k", false, 5, 6)), Is.EqualTo(No),
                "an unknown update took effect, yet the key is absent with no delete in between");
        });
    }

    [Test, Category("Unit")]
    public void Cas_writes_only_when_the_expected_value_is_there()
    {
        Assert.Multiple(() =>
        {
            Assert.That(H.Check(H.Cas("k", null, "a", KvOutcomeKind.Ok, 0, 1), H.Get("k", "a", 2, 3)), Is.EqualTo(Yes), "put-if-absent on an absent key");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Cas("k", "a", "b", KvOutcomeKind.Ok, 2, 3), H.Get("k", "b", 4, 5)), Is.EqualTo(Yes), "cas from the current value");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Cas("k", "x", "b", KvOutcomeKind.ConditionFailed, 2, 3), H.Get("k", "a", 4, 5)), Is.EqualTo(Yes), "cas from another value fails");
            Assert.That(H.Check(H.Cas("k", "x", "b", KvOutcomeKind.NotFound, 0, 1)), Is.EqualTo(Yes), "cas expecting a value on an absent key: not found");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Cas("k", "a", "b", KvOutcomeKind.Ok, 2, 5, c: 1), H.Cas("k", "a", "c", KvOutcomeKind.ConditionFailed, 2, 5, c: 2), H.Get("k", "b", 6, 7)),
                Is.EqualTo(Yes), "two racing cas from the same value: one wins");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Cas("k", "a", "b", KvOutcomeKind.Unknown, 2, H.Never), H.Get("k", "b", 3, 4)), Is.EqualTo(Yes), "an unknown cas that took effect");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Cas("k", "x", "b", KvOutcomeKind.Unknown, 2, H.Never), H.Get("k", "a", 3, 4)), Is.EqualTo(Yes), "an unknown cas whose condition failed");

            Assert.That(H.Check(H.Cas("k", null, "a", KvOutcomeKind.Ok, 0, 1), H.Cas("k", null, "b", KvOutcomeKind.Ok, 2, 3, c: 2)), Is.EqualTo(No), "two put-if-absent in a row both win");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Cas("k", "a", "b", KvOutcomeKind.Ok, 2, 5, c: 1), H.Cas("k", "a", "c", KvOutcomeKind.Ok, 2, 5, c: 2)), Is.EqualTo(No), "two racing cas from the same value both win");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Put("k", "b", 2, 3), H.Cas("k", "a", "c", KvOutcomeKind.Ok, 4, 5)), Is.EqualTo(No), "cas from a stale value wins");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Cas("k", "a", "c", KvOutcomeKind.ConditionFailed, 2, 3)), Is.EqualTo(No), "cas from the current value fails");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Cas("k", "x", "c", KvOutcomeKind.ConditionFailed, 2, 3), H.Get("k", "c", 4, 5)), Is.EqualTo(No), "a failed cas whose value shows up");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Cas("k", "x", "c", KvOutcomeKind.NotFound, 2, 3)), Is.EqualTo(No), "cas reports not found on a present key");
            Assert.That(H.Check(H.Cas("k", null, "c", KvOutcomeKind.NotFound, 0, 1)), Is.EqualTo(No), "put-if-absent reports not found on an absent key");
        });
    }

    [Test, Category("Unit")]
    public void Exists_and_delete_report_presence()
    {
        Assert.Multiple(() =>
        {
            Assert.That(H.Check(H.Exists("k", false, 0, 1), H.Put("k", "a", 2, 3), H.Exists("k", true, 4, 5), H.Del("k", true, 6, 7), H.Exists("k", false, 8, 9)), Is.EqualTo(Yes), "sequential");
            Assert.That(H.Check(H.Put("k", "a", 0, 10), H.Exists("k", true, 1, 2), H.Exists("k", false, 1, 2, c: 3)), Is.EqualTo(Yes), "either side of an overlapping put");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Del("k", true, 2, 5, c: 1), H.Del("k", false, 2, 5, c: 2)), Is.EqualTo(Yes), "racing deletes: one finds the key");

            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Exists("k", false, 2, 3)), Is.EqualTo(No), "absent after a completed put");
            Assert.That(H.Check(H.Exists("k", true, 0, 1)), Is.EqualTo(No), "present though never written");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Del("k", true, 2, 3), H.Exists("k", true, 4, 5)), Is.EqualTo(No), "present after a completed delete");
            Assert.That(H.Check(H.Put("k", "a", 0, 1), H.Del("k", true, 2, 5, c: 1), H.Del("k", true, 2, 5, c: 2)), Is.EqualTo(No), "racing deletes both find the key");
        });
    }

    [Test, Category("Unit")]
    public void A_malformed_operation_is_a_programmer_error()
    {
        Assert.Multiple(() =>
        {
            Assert.Throws<ArgumentException>(() => H.Check(H.Cas("k", null, "a", KvOutcomeKind.Then, 0, 1)), "cas cannot report a branch");
            Assert.Throws<ArgumentException>(() => H.Check(new KvOperation(1, "k", KvOperationKind.Txn, null, KvOutcomeKind.Then, null, 0, 1)), "txn without its body");
            Assert.Throws<ArgumentException>(() => H.Check(new KvOperation(1, "k", KvOperationKind.Mget, null, KvOutcomeKind.Ok, null, 0, 1)), "mget without its reads");
            Assert.Throws<ArgumentException>(() => H.Check(KvOperation.ListPrefix(1, "", [new KvRead("k", null)], KvOutcomeKind.Ok, 0, 1)), "list entry without a value");
        });
    }
}

[TestFixture]
public sealed class MultiKeyOperationTests
{
    private const Verdict Yes = Verdict.Linearizable;
    private const Verdict No = Verdict.NotLinearizable;

    [Test, Category("Unit")]
    public void Txn_runs_the_branch_its_compares_choose()
    {
        var a1 = H.Put("a", "1", 0, 1);
        Assert.Multiple(() =>
        {
            Assert.That(H.Check(a1, H.Txn([H.Eq("a", "1")], [H.W("b", "x")], [H.W("b", "y")], KvOutcomeKind.Then, 2, 3), H.Get("b", "x", 4, 5)), Is.EqualTo(Yes), "then, on a value compare");
            Assert.That(H.Check(a1, H.Txn([H.Eq("a", "2")], [H.W("b", "x")], [H.W("b", "y")], KvOutcomeKind.Else, 2, 3), H.Get("b", "y", 4, 5)), Is.EqualTo(Yes), "else, on a value compare");
            Assert.That(H.Check(a1, H.Txn([H.Present("a"), H.Absent("b")], [H.W("a", null), H.W("b", "x")], [], KvOutcomeKind.Then, 2, 3), H.Get("a", null, 4, 5), H.Get("b", "x", 4, 5)),
                Is.EqualTo(Yes), "a move, on existence compares");
            Assert.That(H.Check(H.Put("a", "1", 0, 10), H.Txn([H.Absent("a")], [H.W("a", "0")], [], KvOutcomeKind.Then, 1, 2, c: 2), H.Get("a", "1", 11, 12)), Is.EqualTo(Yes),
                "an overlapping put after the txn");
            Assert.That(H.Check(a1, H.Txn([H.Eq("a", "1")], [H.W("a", "2"), H.W("b", "2")], [], KvOutcomeKind.Unknown, 2, H.Never), H.Get("a", "2", 3, 4), H.Get("b", "2", 5, 6)),
                Is.EqualTo(Yes), "an unknown txn that took effect");
            Assert.That(H.Check(a1, H.Txn([H.Eq("a", "1")], [H.W("a", "2"), H.W("b", "2")], [], KvOutcomeKind.Unknown, 2, H.Never), H.Get("a", "1", 3, 4), H.Get("b", null, 5, 6)),
                Is.EqualTo(Yes), "an unknown txn that never took effect");

            Assert.That(H.Check(a1, H.Txn([H.Eq("a", "2")], [H.W("b", "x")], [H.W("b", "y")], KvOutcomeKind.Then, 2, 3)), Is.EqualTo(No), "then, though the compare failed");
            Assert.That(H.Check(a1, H.Txn([H.Eq("a", "1")], [H.W("b", "x")], [H.W("b", "y")], KvOutcomeKind.Else, 2, 3)), Is.EqualTo(No), "else, though the compare held");
            Assert.That(H.Check(a1, H.Txn([H.Eq("a", "1")], [H.W("b", "x")], [H.W("b", "y")], KvOutcomeKind.Then, 2, 3), H.Get("b", "y", 4, 5)), Is.EqualTo(No), "then, but the else-write shows");
            Assert.That(H.Check(a1, H.Txn([], [H.W("a", "2"), H.W("b", "2")], [], KvOutcomeKind.Then, 2, 10), H.Get("a", "2", 3, 4), H.Get("b", null, 5, 6)), Is.EqualTo(No),
                "half a txn seen: its write to a, then no write to b");
            Assert.That(H.Check(a1, H.Txn([H.Eq("a", "1")], [H.W("a", "2"), H.W("b", "2")], [], KvOutcomeKind.Unknown, 2, H.Never), H.Get("b", "2", 3, 4), H.Get("a", "1", 5, 6)),
                Is.EqualTo(No), "an unknown txn seen on one key and not the other");
        });
    }

    [Test, Category("Unit")]
    public void Mset_and_mget_see_all_or_nothing()
    {
        Assert.Multiple(() =>
        {
            Assert.That(H.Check(H.Mset(0, 1, ("a", "1"), ("b", "1")), H.Mget(2, 3, ("a", "1"), ("b", "1"), ("c", null))), Is.EqualTo(Yes), "sequential");
            Assert.That(H.Check(H.Mset(0, 10, ("a", "1"), ("b", "1")), H.Mget(1, 2, ("a", null), ("b", null)), H.Mget(3, 4, ("a", "1"), ("b", "1"))), Is.EqualTo(Yes), "before, then after an overlapping mset");

            Assert.That(H.Check(H.Mset(0, 10, ("a", "1"), ("b", "1")), H.Mget(1, 2, ("a", "1"), ("b", null))), Is.EqualTo(No), "half an mset");
            Assert.That(H.Check(H.Put("a", "1", 0, 1), H.Put("a", "2", 2, 3), H.Mget(4, 5, ("a", "1"))), Is.EqualTo(No), "a stale mget");
            Assert.That(H.Check(H.Put("a", "1", 0, 1), H.Put("b", "1", 0, 1), H.Mset(2, 10, ("a", "2"), ("b", "2")), H.Mget(3, 9, ("a", "2"), ("b", "1"))), Is.EqualTo(No),
                "an mget that is no snapshot: new a with old b");
            Assert.That(H.Check(H.Mset(0, 1, ("a", "1"), ("b", "1")), H.Mset(0, 1, ("a", "2"), ("b", "2")), H.Mget(2, 3, ("a", "1"), ("b", "2"))), Is.EqualTo(No),
                "two racing msets interleaved");
        });
    }

    [Test, Category("Unit")]
    public void List_returns_exactly_the_keys_with_its_prefix()
    {
        Assert.Multiple(() =>
        {
            Assert.That(H.Check(H.Put("x/a", "1", 0, 1), H.Put("y/a", "1", 0, 1), H.List("x/", 2, 3, ("x/a", "1")), H.List("", 2, 3, ("x/a", "1"), ("y/a", "1"))), Is.EqualTo(Yes), "two prefixes");
            Assert.That(H.Check(H.Put("x/a", "1", 0, 10), H.List("x/", 1, 2), H.List("x/", 3, 4, ("x/a", "1"))), Is.EqualTo(Yes), "before, then after an overlapping put");
            Assert.That(H.Check(H.List("x/", 0, 1)), Is.EqualTo(Yes), "an empty prefix of an empty store");

            Assert.That(H.Check(H.Put("x/a", "1", 0, 1), H.List("x/", 2, 3)), Is.EqualTo(No), "a key missed");
            Assert.That(H.Check(H.Put("x/a", "1", 0, 1), H.List("x/", 2, 3, ("x/a", "9"))), Is.EqualTo(No), "a value never written");
            Assert.That(H.Check(H.Put("x/a", "1", 0, 1), H.Del("x/a", true, 2, 3), H.List("x/", 4, 5, ("x/a", "1"))), Is.EqualTo(No), "a deleted key returned");
            Assert.That(H.Check(H.Put("y/a", "1", 0, 1), H.List("x/", 2, 3, ("y/a", "1"))), Is.EqualTo(No), "a key outside the prefix returned");
            Assert.That(H.Check(H.List("x/", 0, 1, ("x/z", "1"))), Is.EqualTo(No), "a key nobody wrote");
            Assert.That(H.Check(H.Put("x/a", "1", 0, 1), H.List("x/", 2, 3, ("x/a", "1"), ("x/a", "1"))), Is.EqualTo(No), "a key returned twice");
            Assert.That(H.Check(H.Put("x/a", "1", 0, 1), H.Put("x/b", "1", 0, 1), H.Mset(2, 10, ("x/a", "2"), ("x/b", "2")), H.List("x/", 3, 9, ("x/a", "2"), ("x/b", "1"))), Is.EqualTo(No),
                "a list that is no snapshot");
        });
    }

    [Test, Category("Unit")]
    public void A_violation_names_its_component_and_shows_its_operations()
    {
        // a and b are joined by the mset; c stands alone and is fine.
        var result = LinearizabilityChecker.Check([H.Put("c", "1", 0, 1), H.Get("c", "1", 2, 3), H.Mset(0, 10, ("a", "1"), ("b", "1")), H.Mget(1, 2, ("a", "1"), ("b", null))]);
        Assert.Multiple(() =>
        {
            Assert.That(result.Verdict, Is.EqualTo(Verdict.NotLinearizable));
            Assert.That(result.Key, Is.EqualTo("a, b"));
            Assert.That(result.Keys, Is.EqualTo(new[] { "a", "b" }));
            Assert.That(result.Explanation, Does.Contain("keys {a, b}"));
            Assert.That(result.Explanation, Does.Contain("mget(a,b) -> [a=1, b=absent]"));
            Assert.That(result.Explanation, Does.Contain("txn(if true then [put(a, 1), put(b, 1)] else [])"));
            Assert.That(result.Explanation, Does.Not.Contain("(c"));
        });
    }

    [Test, Category("Unit")]
    public void A_list_joins_every_key_with_its_prefix_into_one_component()
    {
        // The violation involves y/b only through the list of "y/", which never returned it.
        var result = LinearizabilityChecker.Check([H.Put("y/a", "1", 0, 1), H.Put("y/b", "1", 0, 1), H.Put("z", "1", 0, 1), H.List("y/", 2, 3, ("y/a", "1"))]);
        Assert.That(result.Keys, Is.EqualTo(new[] { "y/a", "y/b" }));
    }

    [Test, Category("Unit")]
    public void New_operations_survive_a_round_trip_through_a_history_file()
    {
        string path = Path.GetTempFileName();
        try
        {
            var ops = new[]
            {
                H.Update("k", "a", KvOutcomeKind.NotFound, 0, 1), H.Cas("k", null, "b", KvOutcomeKind.Ok, 1, 2), H.Cas("k", "b", "c", KvOutcomeKind.ConditionFailed, 2, 3),
                H.Exists("k", true, 3, 4), H.Txn([H.Eq("k", "b"), H.Absent("j")], [H.W("j", "x"), H.W("k", null)], [H.W("k", "y")], KvOutcomeKind.Then, 4, 5),
                H.Mset(5, 6, ("a", "1")), H.Mget(6, 7, ("a", "1"), ("k", null)), H.List("", 7, 8, ("a", "1"), ("j", "x")),
            };
            HistoryFile.Write(path, ops);
            var back = HistoryFile.Read(path);
            Assert.That(back.Select(o => o.ToString()), Is.EqualTo(ops.Select(o => o.ToString())));
            Assert.That(back[1].Expected, Is.Null);
            Assert.That(back[2].Expected, Is.EqualTo(H.B("b")));
            Assert.That(LinearizabilityChecker.Check(back).Verdict, Is.EqualTo(Verdict.Linearizable));
        }
        finally
        {
            File.Delete(path);
        }
    }
}

/// <summary>
/// Each rule of the checker for the new operations is able to fail: a checker with that rule
/// deliberately broken (<see cref="CheckerMutation"/>) accepts a history the real checker rejects.
/// </summary>
[TestFixture]
public sealed class CheckerMutationTests
{
    private static readonly (CheckerMutation Mutation, string Name, KvOperation[] History)[] Cases =
    [
        (CheckerMutation.IgnoreUpdateExistence, "update written on an absent key", [H.Update("k", "b", KvOutcomeKind.Ok, 0, 1)]),
        (CheckerMutation.IgnoreUpdateExistence, "update not found on a present key", [H.Put("k", "a", 0, 1), H.Update("k", "b", KvOutcomeKind.NotFound, 2, 3)]),
        (CheckerMutation.IgnoreCasCondition, "cas from a stale value wins", [H.Put("k", "a", 0, 1), H.Put("k", "b", 2, 3), H.Cas("k", "a", "c", KvOutcomeKind.Ok, 4, 5)]),
        (CheckerMutation.IgnoreCasCondition, "two put-if-absent win", [H.Cas("k", null, "a", KvOutcomeKind.Ok, 0, 1), H.Cas("k", null, "b", KvOutcomeKind.Ok, 2, 3)]),
        (CheckerMutation.IgnoreCasCondition, "cas from the current value fails", [H.Put("k", "a", 0, 1), H.Cas("k", "a", "c", KvOutcomeKind.ConditionFailed, 2, 3)]),
        (CheckerMutation.IgnoreExistsOutput, "present though never written", [H.Exists("k", true, 0, 1)]),
        (CheckerMutation.IgnoreTxnCompares, "then though the compare failed",
            [H.Put("a", "1", 0, 1), H.Txn([H.Eq("a", "2")], [H.W("b", "x")], [H.W("b", "y")], KvOutcomeKind.Then, 2, 3), H.Get("b", "x", 4, 5)]),
        (CheckerMutation.IgnoreTxnAtomicity, "half an mset seen by two reads",
            [H.Mset(0, 10, ("a", "1"), ("b", "1")), H.Get("a", "1", 1, 2), H.Get("b", null, 3, 4)]),
        (CheckerMutation.IgnoreTxnAtomicity, "a txn's compare and write at different instants",
            [H.Put("a", "1", 0, 1), H.Txn([H.Eq("a", "1")], [H.W("b", "x")], [], KvOutcomeKind.Then, 2, 10), H.Put("a", "2", 3, 4, c: 2), H.Get("b", null, 5, 6)]),
        (CheckerMutation.MgetPerKeyNotSnapshot, "new a with old b",
            [H.Put("a", "1", 0, 1), H.Put("b", "1", 0, 1), H.Mset(2, 10, ("a", "2"), ("b", "2")), H.Mget(3, 9, ("a", "2"), ("b", "1"))]),
        (CheckerMutation.ListPerKeyNotSnapshot, "new x/a with old x/b",
            [H.Put("x/a", "1", 0, 1), H.Put("x/b", "1", 0, 1), H.Mset(2, 10, ("x/a", "2"), ("x/b", "2")), H.List("x/", 3, 9, ("x/a", "2"), ("x/b", "1"))]),
        (CheckerMutation.ListTouchesOnlyReturnedKeys, "a key missed", [H.Put("x/a", "1", 0, 1), H.List("x/", 2, 3)]),
    ];

    private static IEnumerable<TestCaseData> MutationCases() =>
        Cases.Select(c => new TestCaseData(c.Mutation, c.History).SetName($"{c.Mutation}: {c.Name}"));

    [TestCaseSource(nameof(MutationCases)), Category("Unit")]
    public void The_mutated_checker_accepts_what_the_checker_rejects(CheckerMutation mutation, KvOperation[] history)
    {
        var right = LinearizabilityChecker.Check(history);
        var mutant = LinearizabilityChecker.Check(history, mutation: mutation);
        Assert.Multiple(() =>
        {
            Assert.That(right.Verdict, Is.EqualTo(Verdict.NotLinearizable), "the real checker");
            Assert.That(mutant.Verdict, Is.EqualTo(Verdict.Linearizable), $"the checker with {mutation}");
        });
    }

    [Test, Category("Unit")]
    public void Every_mutation_has_a_history_that_catches_it() =>
        Assert.That(Cases.Select(c => c.Mutation).Distinct(), Is.EquivalentTo(Enum.GetValues<CheckerMutation>().Where(m => m != CheckerMutation.None)));
}

[TestFixture]
public sealed class ModelHistoryTests
{
    private static readonly byte[] NeverWritten = H.B("never-written");

    /// <summary>
    /// One answer of a sequential history made wrong: a read (GET, EXISTS, MGET, LIST) answered
    /// with a value never written (or the opposite presence), or a TXN reporting the branch that
    /// did not run. Null when the history has nothing to corrupt.
    /// </summary>
    private static List<KvOperation>? Corrupt(List<KvOperation> ops, Random random)
    {
        var candidates = Enumerable.Range(0, ops.Count).Where(i => ops[i].Kind is KvOperationKind.Get or KvOperationKind.Exists or KvOperationKind.Txn
            || (ops[i].Kind == KvOperationKind.Mget && ops[i].Reads!.Count > 0) || ops[i].Kind == KvOperationKind.List).ToList();
        if (candidates.Count == 0)
        {
            return null;
        }
        int at = candidates[random.Next(candidates.Count)];
        var op = ops[at];
        var bad = new List<KvOperation>(ops);
        bad[at] = op.Kind switch
        {
            KvOperationKind.Get => op with { Outcome = KvOutcomeKind.Ok, Output = NeverWritten },
            KvOperationKind.Exists => op with { Outcome = op.Outcome == KvOutcomeKind.Ok ? KvOutcomeKind.NotFound : KvOutcomeKind.Ok },
            KvOperationKind.Txn => op with { Outcome = op.Outcome == KvOutcomeKind.Then ? KvOutcomeKind.Else : KvOutcomeKind.Then },
            KvOperationKind.Mget => op with { Reads = [.. op.Reads!.Select((r, i) => i == 0 ? r with { Value = NeverWritten } : r)] },
            _ => op.Reads!.Count > 0
                ? op with { Reads = [.. op.Reads!.Select((r, i) => i == 0 ? r with { Value = NeverWritten } : r)] }
                : op with { Reads = [new KvRead(op.Key + "zz", NeverWritten)] },
        };
        return bad;
    }

    [Test, Category("Property")]
    public void Histories_linearizable_by_construction_are_accepted()
    {
        var gen = from count in Gen.Choose(1, 40)
                  from keys in Gen.Choose(1, 4)
                  from seed in Gen.Choose(0, int.MaxValue)
                  select (count, keys, seed);
        Prop.ForAll(gen.ToArbitrary(), s =>
        {
            var result = LinearizabilityChecker.Check(ModelHistory.Build(s.count, s.seed, s.keys));
            return result.Verdict == Verdict.Linearizable;
        }).QuickCheckThrowOnFailure();
    }

    [Test, Category("Property")]
    public void A_corrupted_answer_in_a_sequential_history_is_rejected()
    {
        var gen = from count in Gen.Choose(1, 30)
                  from keys in Gen.Choose(1, 4)
                  from seed in Gen.Choose(0, int.MaxValue)
                  select (count, keys, seed);
        Prop.ForAll(gen.ToArbitrary(), s =>
        {
            var ops = ModelHistory.Sequential(s.count, s.seed, s.keys);
            var bad = Corrupt(ops, new Random(s.seed));
            return LinearizabilityChecker.Check(ops).Verdict == Verdict.Linearizable
                && (bad is null || LinearizabilityChecker.Check(bad).Verdict == Verdict.NotLinearizable);
        }).QuickCheckThrowOnFailure();
    }

    [Test, Category("Unit")]
    public void A_300_operation_multi_key_history_is_checked_quickly()
    {
        // The size the simulation produces for multi-key mixes: 300 operations over 4 keys, each
        // interval widened by up to 15 on each side of points 10 apart (about 3 in flight at once).
        // Time is reported, not asserted: the generous budget only turns a pathology into Unknown.
        var times = new List<double>();
        foreach (int seed in Enumerable.Range(1, 5))
        {
            var ops = ModelHistory.Build(300, seed, keys: 4, spread: 15);
            var clock = Stopwatch.StartNew();
            var result = LinearizabilityChecker.Check(ops, TimeSpan.FromSeconds(60));
            times.Add(clock.Elapsed.TotalMilliseconds);
            Assert.That(result.Verdict, Is.EqualTo(Verdict.Linearizable), $"seed {seed}: {result.Explanation}");
        }
        TestContext.Progress.WriteLine($"300 ops, 4 keys, concurrency ~3: {string.Join(", ", times.Select(t => $"{t:0} ms"))}");
    }

    [Test, Category("Unit")]
    public void A_wider_multi_key_history_is_checked()
    {
        // Harder than the simulation's mix: intervals up to 80 wide (about 8 in flight at once).
        var ops = ModelHistory.Build(300, 7, keys: 4, spread: 40);
        var clock = Stopwatch.StartNew();
        var result = LinearizabilityChecker.Check(ops, TimeSpan.FromSeconds(60));
        TestContext.Progress.WriteLine($"300 ops, 4 keys, concurrency ~8: {result.Verdict} in {clock.ElapsedMilliseconds} ms");
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Linearizable), result.Explanation);
    }
}
