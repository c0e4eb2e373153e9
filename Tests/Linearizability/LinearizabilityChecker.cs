using System.Diagnostics;

namespace KvReplica.Tests.Linearizability;

/// <summary>The checker's verdict.</summary>
public enum Verdict
{
    Linearizable,
    NotLinearizable,
    /// <summary>The search ran out of its time budget; nothing is claimed.</summary>
    Unknown,
}

/// <param name="Verdict">The verdict for the whole history.</param>
/// <param name="Key">For a violation or a timeout: the key whose sub-history failed.</param>
/// <param name="Explanation">For a violation: that key's operations and the longest linearizable prefix found.</param>
public sealed record CheckResult(Verdict Verdict, string? Key, string Explanation)
{
    public bool IsLinearizable => Verdict == Verdict.Linearizable;
}

/// <summary>
/// Decides whether a history of single-key register operations (PUT, GET, DELETE) is
/// linearizable. Linearizability is local (Herlihy and Wing), so the history is split by key
/// and each key is checked on its own with the Wing and Gong backtracking search, memoised as
/// Lowe proposed (a configuration of "which operations are linearized" plus "register state"
/// already explored is never explored again), as the Porcupine checker does.
/// </summary>
/// <remarks>
/// Ties: an operation that returns at time t and one invoked at time t are treated as
/// concurrent (calls sort before returns at equal times), which can only accept more
/// histories, never reject a correct one. Operations with an unknown outcome have no return
/// event: they may take effect at any point after their invocation, or never.
/// </remarks>
public static class LinearizabilityChecker
{
    public static CheckResult Check(IReadOnlyList<KvOperation> history, TimeSpan? budget = null)
    {
        var clock = Stopwatch.StartNew();
        var limit = budget ?? TimeSpan.FromSeconds(60);
        foreach (var group in history
                     .Where(op => !(op.Kind == KvOperationKind.Get && op.Outcome == KvOutcomeKind.Unknown))
                     .GroupBy(op => op.Key, StringComparer.Ordinal)
                     .OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var ops = group.ToList();
            var (verdict, longest) = CheckKey(ops, clock, limit);
            if (verdict == Verdict.NotLinearizable)
            {
                return new CheckResult(verdict, group.Key, Explain(group.Key, ops, longest));
            }
            if (verdict == Verdict.Unknown)
            {
                return new CheckResult(verdict, group.Key, $"search for key '{group.Key}' ({ops.Count} operations) exceeded {limit.TotalSeconds:0} s");
            }
        }
        return new CheckResult(Verdict.Linearizable, null, $"{history.Count} operations linearizable");
    }

    private sealed class Entry
    {
        public required int Op;
        public required bool IsCall;
        public required long Time;
        public Entry? Match; // a call's return entry (null for an unknown outcome)
        public Entry? Prev;
        public Entry? Next;
    }

    private readonly record struct Register(byte[]? Value)
    {
        public bool Equals(Register other) => Value is null ? other.Value is null : other.Value is not null && Value.AsSpan().SequenceEqual(other.Value);

        public override int GetHashCode()
        {
            if (Value is null)
            {
                return 0;
            }
            var hash = new HashCode();
            hash.AddBytes(Value);
            return hash.ToHashCode();
        }
    }

    private sealed class Configuration(ulong[] linearized, Register state) : IEquatable<Configuration>
    {
        private readonly ulong[] _linearized = linearized;
        private readonly Register _state = state;
        private readonly int _hash = ComputeHash(linearized, state);

        public bool Equals(Configuration? other) => other is not null && _hash == other._hash && _state.Equals(other._state) && _linearized.AsSpan().SequenceEqual(other._linearized);

        public override bool Equals(object? obj) => Equals(obj as Configuration);

        public override int GetHashCode() => _hash;

        private static int ComputeHash(ulong[] bits, Register state)
        {
            var hash = new HashCode();
            foreach (ulong word in bits)
            {
                hash.Add(word);
            }
            hash.Add(state);
            return hash.ToHashCode();
        }
    }

    // The register's step function: whether `op` can take effect in `state`, and the next state.
    private static bool Step(KvOperation op, Register state, out Register next)
    {
        next = state;
        switch (op.Kind)
        {
            case KvOperationKind.Put:
                next = new Register(op.Input ?? []);
                return true;
            case KvOperationKind.Delete:
                next = new Register(null);
                return op.Outcome switch
                {
                    KvOutcomeKind.Ok => state.Value is not null,
                    KvOutcomeKind.NotFound => state.Value is null,
                    _ => true,
                };
            default:
                return op.Outcome switch
                {
                    KvOutcomeKind.Ok => state.Equals(new Register(op.Output ?? [])),
                    KvOutcomeKind.NotFound => state.Value is null,
                    _ => true,
                };
        }
    }

    private static (Verdict Verdict, List<int> Longest) CheckKey(List<KvOperation> ops, Stopwatch clock, TimeSpan limit)
    {
        // Events in time order; calls before returns at equal times (see the remarks on ties).
        var events = new List<Entry>();
        for (int i = 0; i < ops.Count; i++)
        {
            var call = new Entry { Op = i, IsCall = true, Time = ops[i].InvokedAt };
            events.Add(call);
            if (ops[i].Outcome != KvOutcomeKind.Unknown)
            {
                if (ops[i].ReturnedAt < ops[i].InvokedAt)
                {
                    throw new ArgumentException($"operation returns before it is invoked: {ops[i]}");
                }
                call.Match = new Entry { Op = i, IsCall = false, Time = ops[i].ReturnedAt };
                events.Add(call.Match);
            }
        }
        events.Sort((a, b) => a.Time != b.Time ? a.Time.CompareTo(b.Time) : a.IsCall == b.IsCall ? a.Op.CompareTo(b.Op) : a.IsCall ? -1 : 1);
        var head = new Entry { Op = -1, IsCall = false, Time = long.MinValue };
        var last = head;
        foreach (var e in events)
        {
            last.Next = e;
            e.Prev = last;
            last = e;
        }
        int returnsLeft = events.Count(e => !e.IsCall);

        var linearized = new ulong[(ops.Count + 63) / 64];
        var seen = new HashSet<Configuration>();
        var stack = new Stack<(Entry Call, Register State)>();
        var longest = new List<int>();
        var state = new Register(null);
        var entry = head.Next;
        long steps = 0;
        while (returnsLeft > 0)
        {
            if ((++steps & 0xFFF) == 0 && clock.Elapsed > limit)
            {
                return (Verdict.Unknown, longest);
            }
            if (entry is null)
            {
                throw new InvalidOperationException("ran off the event list with returns left; the list is corrupt");
            }
            if (entry.IsCall)
            {
                var op = ops[entry.Op];
                if (Step(op, state, out var next))
                {
                    linearized[entry.Op / 64] |= 1UL << (entry.Op % 64);
                    if (seen.Add(new Configuration((ulong[])linearized.Clone(), next)))
                    {
                        stack.Push((entry, state));
                        state = next;
                        Lift(entry);
                        if (entry.Match is not null)
                        {
                            returnsLeft--;
                        }
                        if (stack.Count > longest.Count)
                        {
                            longest = [.. stack.Reverse().Select(s => s.Call.Op)];
                        }
                        entry = head.Next;
                        continue;
                    }
                    linearized[entry.Op / 64] &= ~(1UL << (entry.Op % 64));
                }
                entry = entry.Next;
            }
            else
            {
                // An operation returned before anything could be linearized for it: undo the
                // latest choice and try the next candidate after it.
                if (stack.Count == 0)
                {
                    return (Verdict.NotLinearizable, longest);
                }
                var (call, previous) = stack.Pop();
                state = previous;
                linearized[call.Op / 64] &= ~(1UL << (call.Op % 64));
                Unlift(call);
                if (call.Match is not null)
                {
                    returnsLeft++;
                }
                entry = call.Next;
            }
        }
        return (Verdict.Linearizable, longest);
    }

    private static void Lift(Entry call)
    {
        Remove(call);
        if (call.Match is not null)
        {
            Remove(call.Match);
        }
    }

    private static void Unlift(Entry call)
    {
        if (call.Match is not null)
        {
            Restore(call.Match);
        }
        Restore(call);
    }

    private static void Remove(Entry e)
    {
        e.Prev!.Next = e.Next;
        if (e.Next is not null)
        {
            e.Next.Prev = e.Prev;
        }
    }

    // Entries are restored in the reverse order of removal, so their neighbours are intact.
    private static void Restore(Entry e)
    {
        e.Prev!.Next = e;
        if (e.Next is not null)
        {
            e.Next.Prev = e;
        }
    }

    private static string Explain(string key, List<KvOperation> ops, List<int> longest)
    {
        var lines = new List<string> { $"key '{key}' is not linearizable; its {ops.Count} operations in invocation order:" };
        lines.AddRange(ops.OrderBy(o => o.InvokedAt).Take(60).Select(o => "  " + o));
        if (ops.Count > 60)
        {
            lines.Add($"  ... {ops.Count - 60} more");
        }
        lines.Add($"longest linearizable prefix found ({longest.Count} operations):");
        lines.AddRange(longest.Take(60).Select(i => "  " + ops[i]));
        return string.Join("\n", lines);
    }
}
