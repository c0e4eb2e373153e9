using System.Text;

namespace KvReplica.Tests.Linearizability;

/// <summary>
/// Random histories that are linearizable by construction: every operation of the store's
/// workload runs against a plain dictionary at its own linearization point (operation i at time
/// 10i + 5), the output recorded is the dictionary's answer, and each operation's interval is
/// then widened around its point by up to <c>spread</c> on each side, so that operations overlap
/// without any order the dictionary saw becoming impossible. Every write carries a value of its own.
/// </summary>
internal static class ModelHistory
{
    public static readonly string[] Keys = ["a/0", "a/1", "b/0", "b/1"];
    private static readonly string[] Prefixes = ["a/", "b/", ""];

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    /// <param name="count">How many operations.</param>
    /// <param name="seed">Seeds every choice, so a failure replays.</param>
    /// <param name="keys">How many of <see cref="Keys"/> to use (1 to 4).</param>
    /// <param name="spread">Largest widening of an interval on each side; 10 or more makes neighbours overlap.</param>
    /// <param name="unknowns">Whether some writes are recorded with an unknown outcome (half of them took effect).</param>
    public static List<KvOperation> Build(int count, int seed, int keys = 4, int spread = 40, bool unknowns = true)
    {
        var random = new Random(seed);
        var store = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        var written = new List<byte[]>();
        var ops = new List<KvOperation>();
        string AnyKey() => Keys[random.Next(keys)];
        byte[] Fresh(int i, int part = 0)
        {
            var v = B($"v{i}.{part}");
            written.Add(v);
            return v;
        }
        byte[]? Value(string key) => store.TryGetValue(key, out var v) ? v : null;
        void Apply(KvWrite w)
        {
            if (w.Value is null)
            {
                store.Remove(w.Key);
            }
            else
            {
                store[w.Key] = w.Value;
            }
        }
        for (int i = 0; i < count; i++)
        {
            long point = i * 10 + 5;
            long from = point - random.Next(0, spread + 1);
            long to = point + random.Next(0, spread + 1);
            string key = AnyKey();
            // An unknown write: recorded without an answer; it took effect or not, at its point.
            bool unknown = unknowns && random.Next(8) == 0;
            bool effective = !unknown || random.Next(2) == 0;
            KvOutcomeKind Written(KvOutcomeKind definite) => unknown ? KvOutcomeKind.Unknown : definite;
            long end = unknown ? long.MaxValue : to;
            switch (random.Next(10))
            {
                case 0:
                {
                    var v = Fresh(i);
                    if (effective)
                    {
                        store[key] = v;
                    }
                    ops.Add(new KvOperation(i, key, KvOperationKind.Put, v, Written(KvOutcomeKind.Ok), null, from, end));
                    break;
                }
                case 1:
                {
                    bool existed = store.ContainsKey(key);
                    if (effective)
                    {
                        store.Remove(key);
                    }
                    ops.Add(new KvOperation(i, key, KvOperationKind.Delete, null, Written(existed ? KvOutcomeKind.Ok : KvOutcomeKind.NotFound), null, from, end));
                    break;
                }
                case 2:
                {
                    var v = Value(key);
                    ops.Add(new KvOperation(i, key, KvOperationKind.Get, null, v is null ? KvOutcomeKind.NotFound : KvOutcomeKind.Ok, v, from, to));
                    break;
                }
                case 3:
                {
                    var v = Fresh(i);
                    bool present = store.ContainsKey(key);
                    if (present && effective)
                    {
                        store[key] = v;
                    }
                    ops.Add(KvOperation.Update(i, key, v, Written(present ? KvOutcomeKind.Ok : KvOutcomeKind.NotFound), from, end));
                    break;
                }
                case 4:
                {
                    // Expect the current value, a value written earlier (likely stale), or absence.
                    var current = Value(key);
                    byte[]? expected = random.Next(3) switch
                    {
                        0 => current,
                        1 when written.Count > 0 => written[random.Next(written.Count)],
                        _ => null,
                    };
                    bool holds = expected is null ? current is null : current is not null && current.AsSpan().SequenceEqual(expected);
                    var v = Fresh(i);
                    if (holds && effective)
                    {
                        store[key] = v;
                    }
                    var outcome = holds ? KvOutcomeKind.Ok : current is null && random.Next(2) == 0 ? KvOutcomeKind.NotFound : KvOutcomeKind.ConditionFailed;
                    ops.Add(KvOperation.CompareAndSet(i, key, expected, v, Written(outcome), from, end));
                    break;
                }
                case 5:
                    ops.Add(KvOperation.KeyExists(i, key, store.ContainsKey(key), from, to));
                    break;
                case 6:
                {
                    var compares = Enumerable.Range(0, random.Next(1, 3)).Select(_ =>
                    {
                        string k = AnyKey();
                        return random.Next(3) switch
                        {
                            0 => new KvCompare(k, KvCompareKind.ValueEquals, Value(k) ?? (written.Count > 0 ? written[random.Next(written.Count)] : B("none"))),
                            1 => new KvCompare(k, KvCompareKind.Exists),
                            _ => new KvCompare(k, KvCompareKind.Absent),
                        };
                    }).ToList();
                    int part = 0;
                    List<KvWrite> Writes() => [.. Keys.Take(keys).Where(_ => random.Next(2) == 0).Select(k => new KvWrite(k, random.Next(4) == 0 ? null : Fresh(i, ++part)))];
                    var txn = new KvTxn(compares, Writes(), Writes());
                    bool holds = compares.All(c => c.Kind switch
                    {
                        KvCompareKind.ValueEquals => Value(c.Key) is { } v && v.AsSpan().SequenceEqual(c.Value),
                        KvCompareKind.Exists => store.ContainsKey(c.Key),
                        _ => !store.ContainsKey(c.Key),
                    });
                    if (effective)
                    {
                        foreach (var w in holds ? txn.Then : txn.Else)
                        {
                            Apply(w);
                        }
                    }
                    ops.Add(KvOperation.Transaction(i, txn, Written(holds ? KvOutcomeKind.Then : KvOutcomeKind.Else), from, end));
                    break;
                }
                case 7:
                {
                    var puts = Keys.Take(keys).Where(_ => random.Next(2) == 0).Select((k, j) => new KvWrite(k, Fresh(i, j))).ToList();
                    if (effective)
                    {
                        puts.ForEach(Apply);
                    }
                    ops.Add(KvOperation.MultiSet(i, puts, Written(KvOutcomeKind.Ok), from, end));
                    break;
                }
                case 8:
                {
                    var reads = Keys.Take(keys).Where(_ => random.Next(3) != 0).Select(k => new KvRead(k, Value(k))).ToList();
                    ops.Add(KvOperation.MultiGet(i, reads, KvOutcomeKind.Ok, from, to));
                    break;
                }
                default:
                {
                    string prefix = Prefixes[random.Next(Prefixes.Length)];
                    var entries = store.Where(e => e.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(e => new KvRead(e.Key, e.Value)).ToList();
                    ops.Add(KvOperation.ListPrefix(i, prefix, entries, KvOutcomeKind.Ok, from, to));
                    break;
                }
            }
        }
        return ops;
    }

    /// <summary>The same history made sequential: no two operations overlap and every outcome is
    /// definite (an unknown write that took effect is recorded as the answer it would have had),
    /// so there is exactly one linearization and any wrong answer must be rejected.</summary>
    public static List<KvOperation> Sequential(int count, int seed, int keys = 4)
    {
        var ops = Build(count, seed, keys, spread: 0, unknowns: false);
        return [.. ops.Select((o, i) => o with { InvokedAt = i * 10 + 4, ReturnedAt = i * 10 + 6 })];
    }
}
