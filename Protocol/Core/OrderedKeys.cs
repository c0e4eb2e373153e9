using KvReplica.Clock;

namespace KvReplica.Protocol.Core;

// Keys in order: what the state machine's Scan, LIST and slot migration stand on.

/// <summary>A key, its value and the stamp of the write that set it.</summary>
public readonly record struct StoredEntry(string Key, byte[] Value, Stamp Version);

/// <summary>
/// A range of keys in key order (UTF-8 byte order, <see cref="KeyOrder"/>): from
/// <see cref="Start"/> (inclusive) to <see cref="End"/> (exclusive, null for no end), keeping
/// only keys that begin with <see cref="Prefix"/> (null or empty for every key).
/// </summary>
public readonly record struct KeyRange(string Start, string? End = null, string? Prefix = null)
{
    /// <summary>Every key.</summary>
    public static KeyRange All => new("");

    /// <summary>Every key that begins with <paramref name="prefix"/>.</summary>
    public static KeyRange WithPrefix(string prefix) => new(prefix, null, prefix);

    /// <summary>Where an ordered scan starts.</summary>
    public string First => Prefix is { Length: > 0 } p && KeyOrder.Instance.Compare(p, Start) > 0 ? p : Start;

    /// <summary>True once an ordered scan has passed every key of the range.</summary>
    public bool IsPast(string key) =>
        (End is not null && KeyOrder.Instance.Compare(key, End) >= 0) || (Prefix is { Length: > 0 } p && !key.StartsWith(p, StringComparison.Ordinal));

    /// <summary>Whether <paramref name="key"/> is in the range.</summary>
    public bool Contains(string key) => KeyOrder.Instance.Compare(key, First) >= 0 && !IsPast(key);
}

/// <summary>
/// The order of keys everywhere: the byte order of their UTF-8 encoding, which is what an
/// on-disk B+tree gives, and the order etcd and Redis use. It equals comparing by Unicode code
/// point; .NET's ordinal order differs only where a character above U+FFFF (a surrogate pair)
/// meets one in U+E000..U+FFFF.
/// </summary>
public sealed class KeyOrder : IComparer<string>
{
    public static readonly KeyOrder Instance = new();

    public int Compare(string? x, string? y)
    {
        if (x is null || y is null)
        {
            return x is null ? (y is null ? 0 : -1) : 1;
        }
        int length = Math.Min(x.Length, y.Length);
        for (int i = 0; i < length; i++)
        {
            char a = x[i], b = y[i];
            if (a != b)
            {
                // Surrogates (U+D800..U+DFFF) encode code points above U+FFFF, so they sort
                // after every other UTF-16 unit in code point (and UTF-8) order.
                return Rank(a).CompareTo(Rank(b));
            }
        }
        return x.Length.CompareTo(y.Length);
    }

    private static int Rank(char c) => char.IsSurrogate(c) ? c + 0x10000 : c;
}
