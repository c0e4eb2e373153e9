using KvReplica.Store;
using KvReplica.Store.Persistence;

namespace KvReplica.Node.Storage;

/// <summary>
/// <c>node &lt;id&gt; &lt;config&gt; --restore &lt;file&gt;</c>: seeds an empty data directory from a
/// backup made by <c>client &lt;config&gt; backup</c>, so the replica starts from that state.
/// </summary>
/// <remarks>
/// The whole backup is read and checked (every record's CRC, the footer's counts) before
/// anything is written, and it is written as an ordinary snapshot (temporary file, fsync,
/// rename, directory fsync), so an interrupted restore leaves the directory empty, never half
/// seeded. A directory that already holds a log or snapshots is refused: restoring over live data
/// would silently throw writes away.
/// </remarks>
internal static class BackupRestore
{
    /// <summary>Returns the line to print on success; throws <see cref="NodeStartupException"/> with one line otherwise.</summary>
    public static string Seed(string backupPath, string dataDirectory)
    {
        if (!File.Exists(backupPath))
        {
            throw new NodeStartupException($"backup file '{backupPath}' not found");
        }
        if (Directory.Exists(dataDirectory) && Directory.EnumerateFiles(dataDirectory).Any(f => Path.GetFileName(f) is var name && (name.StartsWith("wal-", StringComparison.Ordinal) || name.StartsWith("snapshot-", StringComparison.Ordinal))))
        {
            throw new NodeStartupException($"data directory {dataDirectory} already holds a log or snapshots; move it away (or delete it) before restoring into it");
        }
        KvStore store;
        try
        {
            using var file = new FileStream(backupPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            store = SnapshotFormat.Read(file);
        }
        catch (StorageCorruptionException e)
        {
            throw new NodeStartupException($"backup file '{backupPath}' is damaged or not a backup: {e.Message}");
        }
        catch (IOException e)
        {
            throw new NodeStartupException($"backup file '{backupPath}' cannot be read: {e.Message}");
        }
        Directory.CreateDirectory(dataDirectory);
        using var exclusive = LockDirectory(dataDirectory);
        string path = new SnapshotStore(dataDirectory).Save(store);
        return $"restored {store.Count} keys through write {store.LastApplied} into {path}; start the replica as usual";
    }

    private static FileStream LockDirectory(string dataDirectory)
    {
        try
        {
            return new FileStream(Path.Combine(dataDirectory, ReplicaStorage.LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new NodeStartupException($"data directory {dataDirectory} is in use by a running replica; stop it before restoring");
        }
    }
}
