using System.Text;

namespace KvReplica.Client;

/// <summary>
/// The version of a stored value: the stamp (Lamport time, replica id) of the write that produced
/// it. Versions of one key grow with every write; <see cref="None"/> when there is no value.
/// </summary>
public readonly record struct KvVersion(long Time, int ReplicaId) : IComparable<KvVersion>, IComparable
{
    /// <summary>Versions and revisions compare in the total order: by time, then by replica id.</summary>
    public int CompareTo(KvVersion other) => Time != other.Time ? Time.CompareTo(other.Time) : ReplicaId.CompareTo(other.ReplicaId);

    int IComparable.CompareTo(object? other) => other is KvVersion version ? CompareTo(version) : throw new ArgumentException("not a KvVersion", nameof(other));

    /// <summary>Compares in the total order.</summary>
    public static bool operator <(KvVersion a, KvVersion b) => a.CompareTo(b) < 0;

    /// <summary>Compares in the total order.</summary>
    public static bool operator >(KvVersion a, KvVersion b) => a.CompareTo(b) > 0;

    /// <summary>Compares in the total order.</summary>
    public static bool operator <=(KvVersion a, KvVersion b) => a.CompareTo(b) <= 0;

    /// <summary>Compares in the total order.</summary>
    public static bool operator >=(KvVersion a, KvVersion b) => a.CompareTo(b) >= 0;

    /// <summary>No version: the key has no value.</summary>
    public static KvVersion None => default;

    /// <summary><c>time@replica</c>, as the CLI prints it.</summary>
    public override string ToString() => $"{Time}@{ReplicaId}";

    /// <summary>Reads <c>time@replica</c> (as <see cref="ToString"/> writes it), or <c>0</c> for <see cref="None"/>.</summary>
    public static bool TryParse(string? text, out KvVersion version)
    {
        version = None;
        if (text == "0")
        {
            return true;
        }
        int at = text?.IndexOf('@') ?? -1;
        if (at <= 0
            || !long.TryParse(text.AsSpan(0, at), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long time)
            || !int.TryParse(text.AsSpan(at + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int replica)
            || time < 1 || replica < 1)
        {
            return false;
        }
        version = new KvVersion(time, replica);
        return true;
    }
}

/// <summary>The answer to a GET: whether the key exists and, if so, its value and version.</summary>
public sealed class KvGetResult
{
    internal KvGetResult(bool found, byte[] value, KvVersion version)
    {
        Found = found;
        Value = value;
        Version = version;
    }

    /// <summary>True when the key exists.</summary>
    public bool Found { get; }

    /// <summary>The value's bytes; empty when <see cref="Found"/> is false (a found value may be empty too).</summary>
    public ReadOnlyMemory<byte> Value { get; }

    /// <summary>The stamp of the write that produced the value; <see cref="KvVersion.None"/> when not found.</summary>
    public KvVersion Version { get; }

    /// <summary>The value decoded as UTF-8 (invalid sequences become U+FFFD), or null when not found.</summary>
    public string? ValueAsString => Found ? Encoding.UTF8.GetString(Value.Span) : null;
}
