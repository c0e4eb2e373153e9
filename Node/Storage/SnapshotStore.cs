using System.Globalization;
using KvReplica.Store;
using KvReplica.Store.Persistence;

namespace KvReplica.Node.Storage;

/// <summary>
/// Snapshot files in a data directory, named by the stamp they include
/// (<c>snapshot-&lt;time&gt;-&lt;replica&gt;.snap</c>, so names sort in stamp order). A snapshot is
/// written to a temporary file, fsynced, renamed into place and the directory fsynced, so a
/// crash leaves either the old set or the new one, never a half-written snapshot under a real name.
/// </summary>
internal sealed class SnapshotStore(string directory)
{
    private const string Prefix = "snapshot-";
    private const string Suffix = ".snap";

    /// <summary>Writes a snapshot of <paramref name="store"/>, keeps it and the one before, deletes older ones; returns its path.</summary>
    public string Save(KvStore store)
    {
        Directory.CreateDirectory(directory);
        var stamp = store.LastApplied;
        string path = Path.Combine(directory, FileNameFor(stamp));
        string temporary = path + ".tmp";
        try
        {
            using var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
            SnapshotFormat.Write(file, store);
            file.Flush(flushToDisk: true);
        }
        catch (IOException)
        {
            // A half-written snapshot on a full disk would keep the log from being written too.
            File.Delete(temporary);
            throw;
        }
        File.Move(temporary, path, overwrite: true);
        DirectorySync.Fsync(directory);
        foreach (string old in Snapshots().SkipLast(2))
        {
            File.Delete(old);
        }
        return path;
    }

    /// <summary>The file name of a snapshot through <paramref name="stamp"/>; names sort in stamp order.</summary>
    public static string FileNameFor(KvReplica.Clock.Stamp stamp) =>
        $"{Prefix}{stamp.Time.ToString("D20", CultureInfo.InvariantCulture)}-{stamp.ReplicaId.ToString("D7", CultureInfo.InvariantCulture)}{Suffix}";

    /// <summary>
    /// Loads the newest snapshot that reads back intact, reporting each damaged one skipped
    /// through <paramref name="skipped"/>; null when there is none. Leftover temporary files
    /// from a crash mid-save are deleted.
    /// </summary>
    public (KvStore Store, string Path)? LoadNewestValid(Action<string> skipped)
    {
        if (!Directory.Exists(directory))
        {
            return null;
        }
        foreach (string leftover in Directory.EnumerateFiles(directory, Prefix + "*" + Suffix + ".tmp"))
        {
            File.Delete(leftover);
        }
        foreach (string path in Snapshots().Reverse())
        {
            try
            {
                using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
                return (SnapshotFormat.Read(file), path);
            }
            catch (StorageCorruptionException e)
            {
                skipped($"{path}: {e.Message}");
            }
        }
        return null;
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
