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
/// <param name="Key">For a violation or a timeout: the key whose sub-history failed; when multi-key
/// operations connect several keys into one component, those keys joined by ", " (also in <see cref="Keys"/>).</param>
/// <param name="Explanation">For a violation: that component's operations and the longest linearizable prefix found.</param>
public sealed record CheckResult(Verdict Verdict, string? Key, string Explanation)
{
    public bool IsLinearizable => Verdict == Verdict.Linearizable;

    /// <summary>For a violation or a timeout: every key of the failing component, sorted ordinally; otherwise empty.</summary>
    public IReadOnlyList<string> Keys { get; init; } = [];
}

/// <summary>
/// Deliberate defects a test can switch on to prove that each rule of the checker is able to
/// fail: with the mutation, some history the correct checker rejects must be accepted. Never
/// used outside tests of the checker itself.
/// </summary>
[Flags]
public enum CheckerMutation
{
    None = 0,
    /// <summary>UPDATE writes whether or not the key exists, and a NotFound UPDATE is accepted in any state.</summary>
    IgnoreUpdateExistence = 1 << 0,
    /// <summary>CAS writes whatever the key holds, and a failed CAS is accepted in any state.</summary>
    IgnoreCasCondition = 1 << 1,
    /// <summary>EXISTS is accepted in any state.</summary>
    IgnoreExistsOutput = 1 << 2,
    /// <summary>TXN runs the branch it reports without evaluating its compares.</summary>
    IgnoreTxnCompares = 1 << 3,
    /// <summary>TXN is split into one part per key (that key's compares and writes), each linearized on its own.</summary>
    IgnoreTxnAtomicity = 1 << 4,
    /// <summary>MGET is split into one GET per key, each linearized on its own.</summary>
    MgetPerKeyNotSnapshot = 1 << 5,
    /// <summary>LIST is split into one GET per key with the prefix, each linearized on its own.</summary>
    ListPerKeyNotSnapshot = 1 << 6,
    /// <summary>LIST touches, and so checks, only the keys it returned: a key it missed goes unnoticed.</summary>
    ListTouchesOnlyReturnedKeys = 1 << 7,
}

/// <summary>
/// Decides whether a history of key-value operations is linearizable: single-key register
/// operations (PUT, GET, DELETE), single-key conditional ones (UPDATE, CAS, EXISTS) and
/// multi-key ones (TXN and MSET, MGET, LIST). Linearizability is local (Herlihy and Wing), so the
/// history is split into components: one per key, except that the keys one multi-key operation
/// touches are joined into one component (union-find). A LIST touches every key with its prefix
/// that appears anywhere in the history, which is what lets it notice a key it should have
/// returned. Each component is checked on its own with the Wing and Gong backtracking search
/// over a model whose state maps the component's keys to values, memoised as Lowe proposed (a
/// configuration of "which operations are linearized" plus "model state" already explored is
/// never explored again), as the Porcupine checker does.
/// </summary>
/// <remarks>
/// Ties: an operation that returns at time t and one invoked at time t are treated as
/// concurrent (calls sort before returns at equal times), which can only accept more
/// histories, never reject a correct one. Operations with an unknown outcome have no return
/// event: they may take effect at any point after their invocation, or never. The search is
/// exponential in the number of concurrent operations of a component, so a multi-key workload
/// should keep its key set small (a handful of keys) and its histories a few hundred operations.
/// A malformed operation (a TXN without <see cref="KvOperation.Txn"/>, an outcome its kind
/// cannot have) is a programmer error and throws <see cref="ArgumentException"/>.
/// </remarks>
public static class LinearizabilityChecker
{
    /// <param name="history">Operations in any order.</param>
    /// <param name="budget">Wall time for the whole history (default 60 s); when it runs out the verdict is <see cref="Verdict.Unknown"/>.</param>
    /// <param name="mutation">Tests of the checker only: deliberate defects, see <see cref="CheckerMutation"/>.</param>
    public static CheckResult Check(IReadOnlyList<KvOperation> history, TimeSpan? budget = null, CheckerMutation mutation = CheckerMutation.None)
    {
        var clock = Stopwatch.StartNew();
        var limit = budget ?? TimeSpan.FromSeconds(60);
        var ops = history.Where(op => !IsIgnoredRead(op)).ToList();
        foreach (var op in ops)
        {
            Validate(op);
        }
        var universe = ops.SelectMany(NaturalKeys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var atoms = ops.SelectMany(op => Expand(op, universe, mutation)).ToList();
        foreach (var component in Components(atoms))
        {
            var index = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < component.Keys.Length; i++)
            {
                index[component.Keys[i]] = i;
            }
            var compiled = component.Atoms.Select(a => new ModelOp(a.Source, a.Compile(k => index[k]))).ToList();
            var (verdict, longest) = Search(compiled, component.Keys.Length, clock, limit);
            string name = string.Join(", ", component.Keys);
            if (verdict == Verdict.NotLinearizable)
            {
                return new CheckResult(verdict, name, Explain(component.Keys, compiled, longest)) { Keys = component.Keys };
            }
            if (verdict == Verdict.Unknown)
            {
                return new CheckResult(verdict, name, $"search for {Describe(component.Keys)} ({compiled.Count} operations) exceeded {limit.TotalSeconds:0} s") { Keys = component.Keys };
            }
        }
        return new CheckResult(Verdict.Linearizable, null, $"{history.Count} operations linearizable");
    }

    // A read with no definite answer constrains nothing.
    private static bool IsIgnoredRead(KvOperation op) =>
        op.Outcome == KvOutcomeKind.Unknown && op.Kind is KvOperationKind.Get or KvOperationKind.Exists or KvOperationKind.Mget or KvOperationKind.List;

    private static void Validate(KvOperation op)
    {
        KvOutcomeKind[] allowed = op.Kind switch
        {
            // The original three keep accepting what they always did.
            KvOperationKind.Put or KvOperationKind.Get or KvOperationKind.Delete => [KvOutcomeKind.Ok, KvOutcomeKind.NotFound, KvOutcomeKind.Unknown],
            KvOperationKind.Update or KvOperationKind.Exists => [KvOutcomeKind.Ok, KvOutcomeKind.NotFound, KvOutcomeKind.Unknown],
            KvOperationKind.Cas => [KvOutcomeKind.Ok, KvOutcomeKind.ConditionFailed, KvOutcomeKind.NotFound, KvOutcomeKind.Unknown],
            KvOperationKind.Txn => [KvOutcomeKind.Then, KvOutcomeKind.Else, KvOutcomeKind.Unknown],
            KvOperationKind.Mget or KvOperationKind.List => [KvOutcomeKind.Ok],
            _ => throw new ArgumentException($"unknown operation kind {op.Kind}: {op}"),
        };
        if (!allowed.Contains(op.Outcome))
        {
            throw new ArgumentException($"a {op.Kind} cannot have the outcome {op.Outcome}: {op}");
        }
        if (op.Outcome != KvOutcomeKind.Unknown && op.ReturnedAt < op.InvokedAt)
        {
            throw new ArgumentException($"operation returns before it is invoked: {op}");
        }
        if (op.Kind == KvOperationKind.Txn && op.Txn is null)
        {
            throw new ArgumentException($"a TXN needs its Txn body: {op}");
        }
        if (op.Kind is KvOperationKind.Mget or KvOperationKind.List && op.Reads is null)
        {
            throw new ArgumentException($"an {op.Kind} needs its Reads: {op}");
        }
        if (op.Kind == KvOperationKind.List && op.Reads!.Any(r => r.Value is null))
        {
            throw new ArgumentException($"a LIST returns present keys only, each with its value: {op}");
        }
    }

    // The keys an operation names itself (a LIST: the keys it returned), from which the LIST
    // prefixes are resolved.
    private static IEnumerable<string> NaturalKeys(KvOperation op) => op.Kind switch
    {
        KvOperationKind.Txn => op.Txn!.Keys,
        KvOperationKind.Mget or KvOperationKind.List => op.Reads!.Select(r => r.Key),
        _ => [op.Key],
    };

    // The model's state: the value of each key of a component, by index, null for absent.
    // Treated as immutable: a write copies it.
    private delegate byte[]?[]? StepFn(byte[]?[] state);

    // One unit the search linearizes: usually a whole operation; under a splitting mutation, a
    // part of one. Compile turns key names into indices of the component's state.
    private sealed record Atom(KvOperation Source, string[] Keys, Func<Func<string, int>, StepFn> Compile);

    private sealed record ModelOp(KvOperation Source, StepFn Step);

    private static bool Same(byte[]? a, byte[]? b) => a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);

    private static byte[]?[] With(byte[]?[] state, (int Key, byte[]? Value)[] writes)
    {
        var next = (byte[]?[])state.Clone();
        foreach (var (key, value) in writes)
        {
            next[key] = value;
        }
        return next;
    }

    private static byte[]?[] With(byte[]?[] state, int key, byte[]? value)
    {
        var next = (byte[]?[])state.Clone();
        next[key] = value;
        return next;
    }

    private static IEnumerable<Atom> Expand(KvOperation op, string[] universe, CheckerMutation mutation)
    {
        switch (op.Kind)
        {
            case KvOperationKind.Txn when mutation.HasFlag(CheckerMutation.IgnoreTxnAtomicity):
                foreach (string key in op.Txn!.Keys)
                {
                    var part = new KvTxn([.. op.Txn.Compares.Where(c => c.Key == key)], [.. op.Txn.Then.Where(w => w.Key == key)], [.. op.Txn.Else.Where(w => w.Key == key)]);
                    if (op.Outcome == KvOutcomeKind.Else)
                    {
                        // A part cannot know whether another key's compare failed: an Else part
                        // keeps no compare and simply runs its else-writes.
                        part = new KvTxn([], part.Else, []);
                        if (part.Then.Count == 0)
                        {
                            continue;
                        }
                    }
                    yield return TxnAtom(op, part, op.Outcome == KvOutcomeKind.Else ? KvOutcomeKind.Then : op.Outcome, mutation);
                }
                yield break;
            case KvOperationKind.Txn:
                yield return TxnAtom(op, op.Txn!, op.Outcome, mutation);
                yield break;
            case KvOperationKind.Mget when mutation.HasFlag(CheckerMutation.MgetPerKeyNotSnapshot):
                foreach (var read in op.Reads!)
                {
                    yield return SnapshotAtom(op, [read.Key], [read]);
                }
                yield break;
            case KvOperationKind.Mget:
                yield return SnapshotAtom(op, [.. op.Reads!.Select(r => r.Key).Distinct(StringComparer.Ordinal)], op.Reads!);
                yield break;
            case KvOperationKind.List:
                var touched = mutation.HasFlag(CheckerMutation.ListTouchesOnlyReturnedKeys)
                    ? op.Reads!.Select(r => r.Key).Where(k => k.StartsWith(op.Key, StringComparison.Ordinal)).Distinct(StringComparer.Ordinal).ToArray()
                    : universe.Where(k => k.StartsWith(op.Key, StringComparison.Ordinal)).ToArray();
                // Each touched key must read as returned, or absent if not returned; a returned
                // key outside the prefix can never match.
                var expected = touched.Select(k => new KvRead(k, op.Reads!.FirstOrDefault(r => r.Key == k)?.Value)).ToList();
                bool strays = op.Reads!.Any(r => !touched.Contains(r.Key, StringComparer.Ordinal));
                bool twice = op.Reads!.GroupBy(r => r.Key, StringComparer.Ordinal).Any(g => g.Count() > 1);
                if (strays || twice)
                {
                    yield return new Atom(op, touched, _ => _ => null);
                }
                else if (mutation.HasFlag(CheckerMutation.ListPerKeyNotSnapshot))
                {
                    foreach (var read in expected)
                    {
                        yield return SnapshotAtom(op, [read.Key], [read]);
                    }
                }
                else
                {
                    yield return SnapshotAtom(op, touched, expected);
                }
                yield break;
        }

        // Single-key operations.
        byte[] input = op.Input ?? [];
        StepFn Single(int k) => op.Kind switch
        {
            KvOperationKind.Put => s => With(s, k, input),
            KvOperationKind.Delete => op.Outcome switch
            {
                KvOutcomeKind.Ok => s => s[k] is not null ? With(s, k, null) : null,
                KvOutcomeKind.NotFound => s => s[k] is null ? s : null,
                _ => s => With(s, k, null),
            },
            KvOperationKind.Get => op.Outcome switch
            {
                KvOutcomeKind.Ok => s => Same(s[k], op.Output ?? []) ? s : null,
                KvOutcomeKind.NotFound => s => s[k] is null ? s : null,
                _ => s => s,
            },
            KvOperationKind.Exists => mutation.HasFlag(CheckerMutation.IgnoreExistsOutput)
                ? s => s
                : op.Outcome == KvOutcomeKind.Ok ? s => s[k] is not null ? s : null : s => s[k] is null ? s : null,
            KvOperationKind.Update => (op.Outcome, mutation.HasFlag(CheckerMutation.IgnoreUpdateExistence)) switch
            {
                (KvOutcomeKind.Ok, true) => s => With(s, k, input),
                (KvOutcomeKind.NotFound, true) => s => s,
                (KvOutcomeKind.Ok, false) => s => s[k] is not null ? With(s, k, input) : null,
                (KvOutcomeKind.NotFound, false) => s => s[k] is null ? s : null,
                _ => s => s[k] is not null ? With(s, k, input) : s,
            },
            KvOperationKind.Cas => Cas(op, k, input, mutation.HasFlag(CheckerMutation.IgnoreCasCondition)),
            _ => throw new ArgumentException($"unknown operation kind {op.Kind}: {op}"),
        };
        yield return new Atom(op, [op.Key], index => Single(index(op.Key)));
    }

    private static StepFn Cas(KvOperation op, int k, byte[] input, bool ignoreCondition)
    {
        bool Holds(byte[]?[] s) => ignoreCondition || (op.Expected is null ? s[k] is null : Same(s[k], op.Expected));
        bool Fails(byte[]?[] s) => ignoreCondition || !(op.Expected is null ? s[k] is null : Same(s[k], op.Expected));
        return op.Outcome switch
        {
            KvOutcomeKind.Ok => s => Holds(s) ? With(s, k, input) : null,
            KvOutcomeKind.ConditionFailed => s => Fails(s) ? s : null,
            // Absent, and therefore the condition failed: only if it expected a value.
            KvOutcomeKind.NotFound => s => Fails(s) && (ignoreCondition || s[k] is null) ? s : null,
            _ => s => Holds(s) ? With(s, k, input) : s,
        };
    }

    private static Atom TxnAtom(KvOperation op, KvTxn txn, KvOutcomeKind outcome, CheckerMutation mutation)
    {
        bool ignoreCompares = mutation.HasFlag(CheckerMutation.IgnoreTxnCompares);
        return new Atom(op, [.. txn.Keys], index =>
        {
            var compares = txn.Compares.Select(c => (Key: index(c.Key), c.Kind, c.Value)).ToArray();
            var then = txn.Then.Select(w => (Key: index(w.Key), w.Value)).ToArray();
            var otherwise = txn.Else.Select(w => (Key: index(w.Key), w.Value)).ToArray();
            bool Holds(byte[]?[] s)
            {
                foreach (var (key, kind, value) in compares)
                {
                    bool holds = kind switch
                    {
                        KvCompareKind.ValueEquals => Same(s[key], value ?? []),
                        KvCompareKind.Exists => s[key] is not null,
                        _ => s[key] is null,
                    };
                    if (!holds)
                    {
                        return false;
                    }
                }
                return true;
            }
            return outcome switch
            {
                KvOutcomeKind.Then => s => ignoreCompares || Holds(s) ? With(s, then) : null,
                KvOutcomeKind.Else => s => ignoreCompares || !Holds(s) ? With(s, otherwise) : null,
                _ => s => With(s, Holds(s) ? then : otherwise),
            };
        });
    }

    // A read of several keys at one instant: each must hold what was read (null: absent).
    private static Atom SnapshotAtom(KvOperation op, string[] keys, IReadOnlyList<KvRead> reads) =>
        new(op, keys, index =>
        {
            var expected = reads.Select(r => (Key: index(r.Key), r.Value)).ToArray();
            return s =>
            {
                foreach (var (key, value) in expected)
                {
                    if (!Same(s[key], value))
                    {
                        return null;
                    }
                }
                return s;
            };
        });

    private sealed record Component(string[] Keys, List<Atom> Atoms);

    // Keys joined by the atoms that touch several of them (union-find), in the order of each
    // component's smallest key; atoms touching no key (a LIST of a prefix nothing has) form a
    // last, keyless component. The order is fixed so the first violation reported is stable.
    private static IEnumerable<Component> Components(List<Atom> atoms)
    {
        var id = new Dictionary<string, int>(StringComparer.Ordinal);
        var names = new List<string>();
        var parent = new List<int>();
        int Find(int x)
        {
            while (parent[x] != x)
            {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            return x;
        }
        int Id(string key)
        {
            if (!id.TryGetValue(key, out int i))
            {
                i = id[key] = names.Count;
                names.Add(key);
                parent.Add(i);
            }
            return i;
        }
        foreach (var atom in atoms)
        {
            for (int i = 1; i < atom.Keys.Length; i++)
            {
                int a = Find(Id(atom.Keys[0])), b = Find(Id(atom.Keys[i]));
                if (a != b)
                {
                    parent[b] = a;
                }
            }
            if (atom.Keys.Length == 1)
            {
                Id(atom.Keys[0]);
            }
        }
        // Name each component by its smallest key.
        var label = new Dictionary<int, string>();
        for (int i = 0; i < names.Count; i++)
        {
            int root = Find(i);
            if (!label.TryGetValue(root, out var least) || string.CompareOrdinal(names[i], least) < 0)
            {
                label[root] = names[i];
            }
        }
        var byLabel = new SortedDictionary<string, Component>(StringComparer.Ordinal);
        foreach (var group in Enumerable.Range(0, names.Count).GroupBy(Find))
        {
            byLabel[label[group.Key]] = new Component([.. group.Select(i => names[i]).Order(StringComparer.Ordinal)], []);
        }
        var keyless = new List<Atom>();
        foreach (var atom in atoms)
        {
            if (atom.Keys.Length == 0)
            {
                keyless.Add(atom);
            }
            else
            {
                byLabel[label[Find(id[atom.Keys[0]])]].Atoms.Add(atom);
            }
        }
        foreach (var component in byLabel.Values)
        {
            yield return component;
        }
        if (keyless.Count > 0)
        {
            yield return new Component([], keyless);
        }
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

    private sealed class Configuration : IEquatable<Configuration>
    {
        private readonly ulong[] _linearized;
        private readonly byte[]?[] _state;
        private readonly int _hash;

        public Configuration(ulong[] linearized, byte[]?[] state)
        {
            _linearized = linearized;
            _state = state;
            var hash = new HashCode();
            foreach (ulong word in linearized)
            {
                hash.Add(word);
            }
            foreach (var value in state)
            {
                hash.Add(value?.Length ?? -1);
                if (value is not null)
                {
                    hash.AddBytes(value);
                }
            }
            _hash = hash.ToHashCode();
        }

        public bool Equals(Configuration? other)
        {
            if (other is null || _hash != other._hash || !_linearized.AsSpan().SequenceEqual(other._linearized))
            {
                return false;
            }
            for (int i = 0; i < _state.Length; i++)
            {
                if (!Same(_state[i], other._state[i]))
                {
                    return false;
                }
            }
            return true;
        }

        public override bool Equals(object? obj) => Equals(obj as Configuration);

        public override int GetHashCode() => _hash;
    }

    private static (Verdict Verdict, List<int> Longest) Search(List<ModelOp> ops, int keyCount, Stopwatch clock, TimeSpan limit)
    {
        // Events in time order; calls before returns at equal times (see the remarks on ties).
        var events = new List<Entry>();
        for (int i = 0; i < ops.Count; i++)
        {
            var call = new Entry { Op = i, IsCall = true, Time = ops[i].Source.InvokedAt };
            events.Add(call);
            if (ops[i].Source.Outcome != KvOutcomeKind.Unknown)
            {
                call.Match = new Entry { Op = i, IsCall = false, Time = ops[i].Source.ReturnedAt };
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
        var stack = new Stack<(Entry Call, byte[]?[] State)>();
        var longest = new List<int>();
        var state = new byte[]?[keyCount];
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
                var next = ops[entry.Op].Step(state);
                if (next is not null)
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

    private static string Describe(string[] keys) => keys.Length switch
    {
        0 => "the operations that touch no key",
        1 => $"key '{keys[0]}'",
        _ => $"keys {{{string.Join(", ", keys)}}} (joined by multi-key operations)",
    };

    private static string Explain(string[] keys, List<ModelOp> ops, List<int> longest)
    {
        // A splitting mutation yields several parts of one operation: show the operation once.
        var shown = ops.Select(o => o.Source).Distinct(ReferenceEqualityComparer.Instance).Cast<KvOperation>().ToList();
        var lines = new List<string> { $"{Describe(keys)} {(keys.Length > 1 ? "are" : "is")} not linearizable; {(keys.Length > 1 ? "their" : "its")} {shown.Count} operations in invocation order:" };
        lines.AddRange(shown.OrderBy(o => o.InvokedAt).Take(60).Select(o => "  " + o));
        if (shown.Count > 60)
        {
            lines.Add($"  ... {shown.Count - 60} more");
        }
        lines.Add($"longest linearizable prefix found ({longest.Count} operations):");
        lines.AddRange(longest.Take(60).Select(i => "  " + ops[i].Source));
        return string.Join("\n", lines);
    }
}
