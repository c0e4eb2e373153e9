using System.Text;

namespace KvReplica.Client;

/// <summary>The outcome of a conditional write (UPDATE, compare-and-set, put-if-absent).</summary>
/// <param name="Written">Whether the value was written.</param>
/// <param name="Version">Written: the value's new version. Not written: the key's current version (<see cref="KvVersion.None"/> when absent).</param>
public readonly record struct KvConditionalResult(bool Written, KvVersion Version);

/// <summary>The answer to EXISTS.</summary>
/// <param name="Exists">Whether the key is present.</param>
/// <param name="Version">Its version when present.</param>
public readonly record struct KvExistsResult(bool Exists, KvVersion Version);

/// <summary>One key and its value, as a scan or MGET returns it.</summary>
/// <param name="Key">The key.</param>
/// <param name="Found">MGET: whether the key is present (always true in a scan).</param>
/// <param name="Value">The value (empty when absent, or when the scan asked for keys only).</param>
/// <param name="Version">The value's version.</param>
public readonly record struct KvEntry(string Key, bool Found, ReadOnlyMemory<byte> Value, KvVersion Version)
{
    /// <summary>The value decoded as UTF-8.</summary>
    public string ValueAsString => Encoding.UTF8.GetString(Value.Span);
}

/// <summary>MGET's answer: every key as of one point of the order.</summary>
/// <param name="Entries">One per requested key, in request order.</param>
/// <param name="Revision">The point of the order the keys were read at.</param>
public sealed record KvMultiGetResult(IReadOnlyList<KvEntry> Entries, KvVersion Revision);

/// <summary>Where the next page of a scan starts: the scan's revision and the last key returned.</summary>
public sealed record KvScanCursor(string Prefix, KvVersion Revision, string After)
{
    /// <summary><c>revision/after-key-in-base64url</c>: what the CLI prints and takes back.</summary>
    public override string ToString() => $"{Revision}/{Convert.ToBase64String(Encoding.UTF8.GetBytes(After)).TrimEnd('=').Replace('+', '-').Replace('/', '_')}";

    /// <summary>Reads a cursor <see cref="ToString"/> wrote, for a scan of <paramref name="prefix"/>.</summary>
    public static bool TryParse(string prefix, string text, out KvScanCursor? cursor)
    {
        cursor = null;
        int slash = text.IndexOf('/');
        if (slash < 0 || !KvVersion.TryParse(text[..slash], out var revision) || revision == KvVersion.None)
        {
            return false;
        }
        string b64 = text[(slash + 1)..].Replace('-', '+').Replace('_', '/');
        b64 = b64.PadRight(b64.Length + (4 - b64.Length % 4) % 4, '=');
        try
        {
            cursor = new KvScanCursor(prefix, revision, Encoding.UTF8.GetString(Convert.FromBase64String(b64)));
            return cursor.After.Length > 0;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}

/// <summary>One page of a scan.</summary>
/// <param name="Entries">The page's keys in key order.</param>
/// <param name="Revision">The revision every page of this scan is read at.</param>
/// <param name="Next">Where the next page starts; null on the last page.</param>
public sealed record KvScanPage(IReadOnlyList<KvEntry> Entries, KvVersion Revision, KvScanCursor? Next);

/// <summary>A transaction's outcome.</summary>
/// <param name="Succeeded">True: every compare held and the then-operations ran; false: the else-operations ran.</param>
/// <param name="Revision">The transaction's place in the order: the version every key it wrote now has.</param>
public readonly record struct KvTxnResult(bool Succeeded, KvVersion Revision);

/// <summary>One change a watch reports.</summary>
/// <param name="Key">The key changed.</param>
/// <param name="Deleted">True when the change deleted the key.</param>
/// <param name="Value">The new value (empty for a delete).</param>
/// <param name="Revision">The write's stamp: the key's new version, and where to resume a watch after.</param>
public readonly record struct KvWatchEvent(string Key, bool Deleted, ReadOnlyMemory<byte> Value, KvVersion Revision)
{
    /// <summary>The value decoded as UTF-8.</summary>
    public string ValueAsString => Encoding.UTF8.GetString(Value.Span);
}
