using System.Text;
using FsCheck;
using FsCheck.Fluent;
using NUnit.Framework;

namespace KvReplica.Tests.Linearizability;

[TestFixture]
public sealed class LinearizabilityCheckerTests
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);
    private static KvOperation Put(int c, string v, long from, long to, string key = "k") => new(c, key, KvOperationKind.Put, B(v), KvOutcomeKind.Ok, null, from, to);
    private static KvOperation PutUnknown(int c, string v, long from, string key = "k") => new(c, key, KvOperationKind.Put, B(v), KvOutcomeKind.Unknown, null, from, long.MaxValue);
    private static KvOperation Get(int c, string? v, long from, long to, string key = "k") =>
        new(c, key, KvOperationKind.Get, null, v is null ? KvOutcomeKind.NotFound : KvOutcomeKind.Ok, v is null ? null : B(v), from, to);
    private static KvOperation Del(int c, bool existed, long from, long to, string key = "k") =>
        new(c, key, KvOperationKind.Delete, null, existed ? KvOutcomeKind.Ok : KvOutcomeKind.NotFound, null, from, to);

    private static Verdict Verdict(params KvOperation[] ops) => LinearizabilityChecker.Check(ops).Verdict;

    [Test, Category("Unit")]
    public void Known_good_histories_are_linearizable()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Verdict(Put(1, "a", 0, 1), Get(2, "a", 2, 3), Del(1, true, 4, 5), Get(2, null, 6, 7)), Is.EqualTo(Linearizability.Verdict.Linearizable), "sequential");
            Assert.That(Verdict(Put(1, "a", 0, 10), Get(2, "a", 1, 2), Get(3, null, 1, 2)), Is.EqualTo(Linearizability.Verdict.Linearizable), "a read on each side of an overlapping put");
            Assert.That(Verdict(Put(1, "a", 0, 10), Put(2, "b", 0, 10), Get(3, "a", 11, 12)), Is.EqualTo(Linearizability.Verdict.Linearizable), "concurrent puts, either order");
            Assert.That(Verdict(Put(1, "a", 0, 1), PutUnknown(2, "b", 2), Get(3, "b", 5, 6), Get(3, "b", 7, 8)), Is.EqualTo(Linearizability.Verdict.Linearizable), "an unknown put that took effect");
            Assert.That(Verdict(Put(1, "a", 0, 1), PutUnknown(2, "b", 2), Get(3, "a", 50, 60)), Is.EqualTo(Linearizability.Verdict.Linearizable), "an unknown put that never took effect");
            Assert.That(Verdict(Put(1, "a", 0, 1), Del(2, false, 0, 1)), Is.EqualTo(Linearizability.Verdict.Linearizable), "a delete of an absent key before a concurrent put");
            Assert.That(Verdict(Put(1, "a", 0, 5), Get(2, "a", 5, 6)), Is.EqualTo(Linearizability.Verdict.Linearizable), "equal return and invoke times count as concurrent");
        });
    }

    [Test, Category("Unit")]
    public void Known_bad_histories_are_not_linearizable()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Verdict(Put(1, "a", 0, 1), Put(1, "b", 2, 3), Get(2, "a", 4, 5)), Is.EqualTo(Linearizability.Verdict.NotLinearizable), "stale read after a completed put");
            Assert.That(Verdict(Put(1, "a", 0, 1), Put(2, "b", 2, 20), Get(3, "b", 3, 4), Get(3, "a", 5, 6)), Is.EqualTo(Linearizability.Verdict.NotLinearizable), "new then old");
            Assert.That(Verdict(Put(1, "a", 0, 1), Get(2, "z", 2, 3)), Is.EqualTo(Linearizability.Verdict.NotLinearizable), "a value nobody wrote");
            Assert.That(Verdict(Del(1, true, 0, 1)), Is.EqualTo(Linearizability.Verdict.NotLinearizable), "deleting a key that was never written");
            Assert.That(Verdict(Put(1, "a", 0, 1), Get(2, null, 2, 3)), Is.EqualTo(Linearizability.Verdict.NotLinearizable), "a lost write");
            Assert.That(Verdict(PutUnknown(1, "b", 0), Get(2, "b", 1, 2), Get(2, null, 3, 4)), Is.EqualTo(Linearizability.Verdict.NotLinearizable), "an unknown put observed, then unobserved");
        });
    }

    [Test, Category("Unit")]
    public void A_violation_names_its_key_and_keeps_other_keys_apart()
    {
        var result = LinearizabilityChecker.Check([Put(1, "a", 0, 1, "x"), Get(2, "a", 2, 3, "x"), Put(1, "a", 0, 1, "y"), Get(2, "old", 2, 3, "y")]);
        Assert.That(result.Verdict, Is.EqualTo(Linearizability.Verdict.NotLinearizable));
        Assert.That(result.Key, Is.EqualTo("y"));
        Assert.That(result.Explanation, Does.Contain("get(y) -> old"));
    }

    [Test, Category("Unit")]
    public void A_history_survives_a_round_trip_through_its_file()
    {
        string path = Path.GetTempFileName();
        try
        {
            var ops = new[] { Put(1, "a\nb", 0, 1), PutUnknown(2, "c", 3), Get(3, null, 4, 5), Del(1, true, 6, 9) };
            HistoryFile.Write(path, ops);
            var back = HistoryFile.Read(path);
            Assert.That(back.Select(o => o.ToString()), Is.EqualTo(ops.Select(o => o.ToString())));
            Assert.That(back[0].Input, Is.EqualTo(ops[0].Input));
        }
        finally
        {
            File.Delete(path);
        }
    }

    // A random history that is linearizable by construction: ops run against a real register at
    // distinct linearization points, and each op's interval is widened around its point.
    private static Gen<List<KvOperation>> ValidHistories =>
        from count in Gen.Choose(1, 40)
        from seed in Gen.Choose(0, int.MaxValue)
        select Build(count, seed);

    private static List<KvOperation> Build(int count, int seed)
    {
        var random = new Random(seed);
        var register = new Dictionary<string, byte[]>();
        var ops = new List<KvOperation>();
        for (int i = 0; i < count; i++)
        {
            long point = i * 10 + 5;
            long from = point - random.Next(0, 40);
            long to = point + random.Next(0, 40);
            string key = "k" + random.Next(2);
            int client = i;
            switch (random.Next(3))
            {
                case 0:
                    var v = B("v" + i);
                    register[key] = v;
                    ops.Add(random.Next(8) == 0
                        ? new KvOperation(client, key, KvOperationKind.Put, v, KvOutcomeKind.Unknown, null, from, long.MaxValue)
                        : new KvOperation(client, key, KvOperationKind.Put, v, KvOutcomeKind.Ok, null, from, to));
                    break;
                case 1:
                    bool existed = register.Remove(key);
                    ops.Add(new KvOperation(client, key, KvOperationKind.Delete, null, existed ? KvOutcomeKind.Ok : KvOutcomeKind.NotFound, null, from, to));
                    break;
                default:
                    bool found = register.TryGetValue(key, out var value);
                    ops.Add(new KvOperation(client, key, KvOperationKind.Get, null, found ? KvOutcomeKind.Ok : KvOutcomeKind.NotFound, value, from, to));
                    break;
            }
        }
        return ops;
    }

    [Test, Category("Property")]
    public void Histories_linearizable_by_construction_are_accepted() =>
        Prop.ForAll(ValidHistories.ToArbitrary(), ops => LinearizabilityChecker.Check(ops).Verdict == Linearizability.Verdict.Linearizable)
            .QuickCheckThrowOnFailure();

    [Test, Category("Property")]
    public void A_corrupted_read_in_a_sequential_history_is_rejected()
    {
        // Sequential (non-overlapping) history: exactly one linearization, so a read that returns
        // anything other than the register's value at that point must be rejected.
        var gen = from count in Gen.Choose(2, 30)
                  from seed in Gen.Choose(0, int.MaxValue)
                  select (Ops: Build(count, seed).Select((o, i) => o.Outcome == KvOutcomeKind.Unknown ? o with { Outcome = KvOutcomeKind.Ok, ReturnedAt = i * 10 + 6 } : o with { InvokedAt = i * 10 + 4, ReturnedAt = i * 10 + 6 }).ToList(), Seed: seed);
        Prop.ForAll(gen.ToArbitrary(), sample =>
        {
            var ops = sample.Ops.Select((o, i) => o.Kind == KvOperationKind.Put ? o with { InvokedAt = i * 10 + 4, ReturnedAt = i * 10 + 6 } : o).ToList();
            int read = ops.FindIndex(o => o.Kind == KvOperationKind.Get);
            if (read < 0)
            {
                return true;
            }
            var wrong = ops[read].Outcome == KvOutcomeKind.NotFound
                ? ops[read] with { Outcome = KvOutcomeKind.Ok, Output = B("never-written") }
                : ops[read] with { Output = B("never-written") };
            ops[read] = wrong;
            return LinearizabilityChecker.Check(ops).Verdict == Linearizability.Verdict.NotLinearizable;
        }).QuickCheckThrowOnFailure();
    }

    [Test, Category("Unit")]
    public void A_large_concurrent_valid_history_is_checked()
    {
        var ops = Build(5000, 42);
        var result = LinearizabilityChecker.Check(ops, TimeSpan.FromSeconds(120));
        Assert.That(result.Verdict, Is.EqualTo(Linearizability.Verdict.Linearizable), result.Explanation);
    }
}

/// <summary>
/// The checker against the definition itself: on small random histories, try every order of
/// every subset of unknown writes (no pruning, no memoisation) and compare verdicts.
/// </summary>
[TestFixture]
public sealed class LinearizabilityOracleTests
{
    private static bool Exhaustive(List<KvOperation> ops)
    {
        var definite = ops.Where(o => o.Outcome != KvOutcomeKind.Unknown).ToList();
        bool Search(List<KvOperation> placed, byte[]? state)
        {
            if (definite.All(placed.Contains))
            {
                return true;
            }
            foreach (var op in ops.Where(o => !placed.Contains(o)))
            {
                // Real time: op may go next only if no unplaced definite op returned before op was invoked.
                if (ops.Any(o => !placed.Contains(o) && o != op && o.Outcome != KvOutcomeKind.Unknown && o.ReturnedAt < op.InvokedAt))
                {
                    continue;
                }
                byte[]? next = state;
                bool fits = op.Kind switch
                {
                    KvOperationKind.Put => (next = op.Input) is not null || true,
                    KvOperationKind.Delete => op.Outcome switch
                    {
                        KvOutcomeKind.Ok => state is not null,
                        KvOutcomeKind.NotFound => state is null,
                        _ => true,
                    } && (next = null) is null,
                    _ => op.Outcome == KvOutcomeKind.NotFound ? state is null : state is not null && state.AsSpan().SequenceEqual(op.Output),
                };
                if (fits && Search([.. placed, op], next))
                {
                    return true;
                }
            }
            return false;
        }
        return Search([], null);
    }

    private static Gen<List<KvOperation>> SmallHistories =>
        from count in Gen.Choose(1, 7)
        from seed in Gen.Choose(0, int.MaxValue)
        select Build(count, seed);

    private static List<KvOperation> Build(int count, int seed)
    {
        var random = new Random(seed);
        var ops = new List<KvOperation>();
        for (int i = 0; i < count; i++)
        {
            long from = random.Next(0, 30);
            long to = from + random.Next(0, 15);
            byte[] v = [(byte)random.Next(3)];
            ops.Add(random.Next(5) switch
            {
                0 => new KvOperation(i, "k", KvOperationKind.Put, v, KvOutcomeKind.Ok, null, from, to),
                1 => new KvOperation(i, "k", KvOperationKind.Put, v, KvOutcomeKind.Unknown, null, from, long.MaxValue),
                2 => new KvOperation(i, "k", KvOperationKind.Delete, null, random.Next(2) == 0 ? KvOutcomeKind.Ok : KvOutcomeKind.NotFound, null, from, to),
                3 => new KvOperation(i, "k", KvOperationKind.Get, null, KvOutcomeKind.Ok, v, from, to),
                _ => new KvOperation(i, "k", KvOperationKind.Get, null, KvOutcomeKind.NotFound, null, from, to),
            });
        }
        return ops;
    }

    [Test, Category("Property")]
    public void The_checker_agrees_with_exhaustive_search_on_small_histories() =>
        Prop.ForAll(SmallHistories.ToArbitrary(), ops =>
            (LinearizabilityChecker.Check(ops).Verdict == Verdict.Linearizable) == Exhaustive(ops))
        .Check(Config.QuickThrowOnFailure.WithMaxTest(500));

    [Test, Category("Unit")]
    public void Both_verdicts_occur_among_the_generated_histories()
    {
        // Guards the property above against a generator that only ever yields one verdict.
        var verdicts = Enumerable.Range(0, 300).Select(seed => Exhaustive(Build(5, seed))).ToList();
        Assert.That(verdicts, Does.Contain(true).And.Contain(false));
    }
}
