using System.Globalization;
using KvReplica.Store;
using KvReplica.Store.Persistence;

namespace KvReplica.Node.Storage;

/// <summary>
/// Snapshot files in a data directory, named by the stamp they include
/// (<c>snapshot-&lt;time&gt;-&lt;replica&gt;.snap</c>, so names sort in stamp order). The storage
/// engine holds the state now; a snapshot file is only ever a state to import into it: a
/// restored backup, a peer's state fetched by a catch-up, or a data directory of the format
/// from before the engine (<see cref="EngineImport"/>).
/// </summary>
internal sealed class SnapshotStore(string directory)
{
    private const string Prefix = "snapshot-";
    private const string Suffix = ".snap";

    /// <summary>The file name of a snapshot through <paramref name="stamp"/>; names sort in stamp order.</summary>
    public static string FileNameFor(KvReplica.Clock.Stamp stamp) =>
        $"{Prefix}{stamp.Time.ToString("D20", CultureInfo.InvariantCulture)}-{stamp.ReplicaId.ToString("D7", CultureInfo.InvariantCulture)}{Suffix}";

    /// <summary>The snapshot files, newest first.</summary>
    public IEnumerable<string> NewestFirst() => Snapshots().Reverse();

    /// <summary>Deletes every snapshot file and leftover temporary file (once the engine holds their state).</summary>
    public void DeleteAll()
    {
        if (!Directory.Exists(directory))
        {
            return;
        }
        bool any = false;
        foreach (string file in Directory.EnumerateFiles(directory, Prefix + "*"))
        {
            File.Delete(file);
            any = true;
        }
        if (any)
        {
            DirectorySync.Fsync(directory);
        }
    }

    /// <summary>The newest snapshot file and the stamp its name gives, or null when there is none.</summary>
    public (string Path, KvReplica.Clock.Stamp Through)? Newest()
    {
        string? path = Snapshots().LastOrDefault();
        if (path is null)
        {
            return null;
        }
        string[] parts = Path.GetFileName(path)[Prefix.Length..^Suffix.Length].Split('-');
        if (parts.Length != 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long time) || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int replica))
        {
            throw new IOException($"{path} is not named like a snapshot (snapshot-<time>-<replica>.snap)");
        }
        return (path, new KvReplica.Clock.Stamp(time, replica));
    }

    private IEnumerable<string> Snapshots() =>
        Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory, Prefix + "*" + Suffix).Order(StringComparer.Ordinal)
            : [];
}
