using FsCheck;
using FsCheck.Fluent;
using NUnit.Framework;

namespace KvReplica.Tests.Linearizability;

/// <summary>
/// The checker against the definition itself, for every operation kind: on small random
/// histories over three keys, try every order of every subset of unknown writes against a
/// dictionary (no components, no pruning, no memoisation) and compare verdicts. The same oracle
/// then shows that each <see cref="CheckerMutation"/> disagrees with the definition on some
/// generated history, not only on the hand-written ones.
/// </summary>
[TestFixture]
public sealed class MultiKeyOracleTests
{
    private static readonly string[] Keys = ["x/a", "x/b", "y"];
    private static readonly string[] Prefixes = ["x/", ""];

    private static bool Same(byte[]? a, byte[]? b) => a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);

    // The sequential specification, written apart from the checker's model: the state after op,
    // or null if op cannot have answered as it did.
    private static Dictionary<string, byte[]>? Apply(KvOperation op, Dictionary<string, byte[]> state)
    {
        var next = new Dictionary<string, byte[]>(state, StringComparer.Ordinal);
        byte[]? current = state.GetValueOrDefault(op.Key);
        bool unknown = op.Outcome == KvOutcomeKind.Unknown;
        switch (op.Kind)
        {
            case KvOperationKind.Put:
                next[op.Key] = op.Input!;
                return next;
            case KvOperationKind.Get:
                return Same(current, op.Outcome == KvOutcomeKind.Ok ? op.Output : null) ? next : null;
            case KvOperationKind.Exists:
                return (current is not null) == (op.Outcome == KvOutcomeKind.Ok) ? next : null;
            case KvOperationKind.Delete:
                next.Remove(op.Key);
                return unknown || (current is not null) == (op.Outcome == KvOutcomeKind.Ok) ? next : null;
            case KvOperationKind.Update:
                if (current is not null)
                {
                    next[op.Key] = op.Input!;
                }
                return unknown || (current is not null) == (op.Outcome == KvOutcomeKind.Ok) ? next : null;
            case KvOperationKind.Cas:
            {
                bool holds = Same(current, op.Expected);
                if (holds)
                {
                    next[op.Key] = op.Input!;
                }
                return op.Outcome switch
                {
                    KvOutcomeKind.Ok => holds ? next : null,
                    KvOutcomeKind.ConditionFailed => holds ? null : next,
                    KvOutcomeKind.NotFound => !holds && current is null ? next : null,
                    _ => next,
                };
            }
            case KvOperationKind.Txn:
            {
                bool holds = op.Txn!.Compares.All(c => c.Kind switch
                {
                    KvCompareKind.ValueEquals => Same(state.GetValueOrDefault(c.Key), c.Value),
                    KvCompareKind.Exists => state.ContainsKey(c.Key),
                    _ => !state.ContainsKey(c.Key),
                });
                foreach (var w in holds ? op.Txn.Then : op.Txn.Else)
                {
                    if (w.Value is null)
                    {
                        next.Remove(w.Key);
                    }
                    else
                    {
                        next[w.Key] = w.Value;
                    }
                }
                return unknown || holds == (op.Outcome == KvOutcomeKind.Then) ? next : null;
            }
            case KvOperationKind.Mget:
                return op.Reads!.All(r => Same(state.GetValueOrDefault(r.Key), r.Value)) ? next : null;
            default:
            {
                var expected = state.Where(e => e.Key.StartsWith(op.Key, StringComparison.Ordinal)).OrderBy(e => e.Key, StringComparer.Ordinal).ToList();
                var got = op.Reads!.OrderBy(r => r.Key, StringComparer.Ordinal).ToList();
                return got.Count == expected.Count && got.Zip(expected).All(p => p.First.Key == p.Second.Key && Same(p.First.Value, p.Second.Value)) ? next : null;
            }
        }
    }

    private static bool Exhaustive(List<KvOperation> ops)
    {
        // Reads with no answer constrain nothing.
        ops = [.. ops.Where(o => !(o.Outcome == KvOutcomeKind.Unknown && o.Kind is KvOperationKind.Get or KvOperationKind.Exists or KvOperationKind.Mget or KvOperationKind.List))];
        bool Search(List<KvOperation> placed, Dictionary<string, byte[]> state)
        {
            if (ops.All(o => o.Outcome == KvOutcomeKind.Unknown || placed.Contains(o)))
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
                var next = Apply(op, state);
                if (next is not null && Search([.. placed, op], next))
                {
                    return true;
                }
            }
            return false;
        }
        return Search([], new Dictionary<string, byte[]>(StringComparer.Ordinal));
    }

    // Small histories with random answers, so that both verdicts occur; values are one byte of
    // 0 to 2 so that reads and compares often name a value that some write did write.
    internal static List<KvOperation> Build(int count, int seed)
    {
        var random = new Random(seed);
        var ops = new List<KvOperation>();
        byte[] V() => [(byte)random.Next(3)];
        byte[]? MaybeV() => random.Next(3) == 0 ? null : V();
        string K() => Keys[random.Next(Keys.Length)];
        KvOutcomeKind Pick(params KvOutcomeKind[] outcomes) => outcomes[random.Next(outcomes.Length)];
        for (int i = 0; i < count; i++)
        {
            long from = random.Next(0, 30);
            long to = from + random.Next(0, 15);
            string key = K();
            var op = random.Next(10) switch
            {
                0 => new KvOperation(i, key, KvOperationKind.Put, V(), Pick(KvOutcomeKind.Ok, KvOutcomeKind.Ok, KvOutcomeKind.Unknown), null, from, to),
                1 => new KvOperation(i, key, KvOperationKind.Get, null, KvOutcomeKind.Ok, null, from, to) is var g && MaybeV() is { } v ? g with { Output = v } : g with { Outcome = KvOutcomeKind.NotFound },
                2 => new KvOperation(i, key, KvOperationKind.Delete, null, Pick(KvOutcomeKind.Ok, KvOutcomeKind.NotFound, KvOutcomeKind.Unknown), null, from, to),
                3 => KvOperation.Update(i, key, V(), Pick(KvOutcomeKind.Ok, KvOutcomeKind.NotFound, KvOutcomeKind.Unknown), from, to),
                4 => KvOperation.CompareAndSet(i, key, MaybeV(), V(), Pick(KvOutcomeKind.Ok, KvOutcomeKind.ConditionFailed, KvOutcomeKind.NotFound, KvOutcomeKind.Unknown), from, to),
                5 => KvOperation.KeyExists(i, key, random.Next(2) == 0, from, to),
                6 => KvOperation.Transaction(i, new KvTxn(
                        [.. Enumerable.Range(0, random.Next(0, 3)).Select(_ => new KvCompare(K(), (KvCompareKind)random.Next(3), V()))],
                        [.. Keys.Where(_ => random.Next(2) == 0).Select(k => new KvWrite(k, MaybeV()))],
                        [.. Keys.Where(_ => random.Next(3) == 0).Select(k => new KvWrite(k, MaybeV()))]),
                    Pick(KvOutcomeKind.Then, KvOutcomeKind.Then, KvOutcomeKind.Else, KvOutcomeKind.Unknown), from, to),
                7 => KvOperation.MultiSet(i, [.. Keys.Where(_ => random.Next(2) == 0).Select(k => new KvWrite(k, V()))], Pick(KvOutcomeKind.Ok, KvOutcomeKind.Ok, KvOutcomeKind.Unknown), from, to),
                8 => KvOperation.MultiGet(i, [.. Keys.Where(_ => random.Next(3) != 0).Select(k => new KvRead(k, MaybeV()))], KvOutcomeKind.Ok, from, to),
                _ => Prefixes[random.Next(Prefixes.Length)] is var prefix
                    ? KvOperation.ListPrefix(i, prefix, [.. Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && random.Next(2) == 0).Select(k => new KvRead(k, V()))], KvOutcomeKind.Ok, from, to)
                    : throw new InvalidOperationException(),
            };
            ops.Add(op.Outcome == KvOutcomeKind.Unknown ? op with { ReturnedAt = long.MaxValue } : op);
        }
        return ops;
    }

    private static Gen<List<KvOperation>> SmallHistories =>
        from count in Gen.Choose(1, 6)
        from seed in Gen.Choose(0, int.MaxValue)
        select Build(count, seed);

    [Test, Category("Property")]
    public void The_checker_agrees_with_exhaustive_search_on_small_multi_key_histories() =>
        Prop.ForAll(SmallHistories.ToArbitrary(), ops =>
            (LinearizabilityChecker.Check(ops).Verdict == Verdict.Linearizable) == Exhaustive(ops))
        .Check(Config.QuickThrowOnFailure.WithMaxTest(1000));

    [Test, Category("Unit")]
    public void Both_verdicts_occur_among_the_generated_histories()
    {
        var verdicts = Enumerable.Range(0, 300).Select(seed => Exhaustive(Build(5, seed))).ToList();
        Assert.That(verdicts, Does.Contain(true).And.Contain(false));
    }

    [TestCaseSource(nameof(Mutations)), Category("Unit")]
    public void The_mutation_disagrees_with_the_definition_on_a_generated_history(CheckerMutation mutation)
    {
        // Deterministic seeds: the first history (if any) on which the mutant accepts what the
        // definition rejects. The real checker must reject that same history.
        int? found = Enumerable.Range(0, 20_000).Select(seed => (int?)seed).FirstOrDefault(seed =>
        {
            var ops = Build(6, seed!.Value);
            return LinearizabilityChecker.Check(ops, mutation: mutation).Verdict == Verdict.Linearizable && !Exhaustive(ops);
        });
        Assert.That(found, Is.Not.Null, $"no generated history told {mutation} apart from the definition");
        Assert.That(LinearizabilityChecker.Check(Build(6, found!.Value)).Verdict, Is.EqualTo(Verdict.NotLinearizable));
        TestContext.Progress.WriteLine($"{mutation}: caught by generated history seed {found}");
    }

    private static IEnumerable<CheckerMutation> Mutations() => Enum.GetValues<CheckerMutation>().Where(m => m != CheckerMutation.None);
}
