using KvReplica.Store.Persistence;

namespace KvReplica.Node.Storage;

/// <summary>
/// <c>node &lt;id&gt; &lt;config&gt; --restore &lt;file&gt;</c>: seeds an empty data directory from a
/// backup made by <c>client &lt;config&gt; backup</c>, so the replica starts from that state.
/// </summary>
/// <remarks>
/// The backup is loaded straight into the directory's storage engine through
/// <see cref="EngineImport"/>: built aside and renamed into place only once every record's CRC
/// and the footer's counts have checked out, so an interrupted or failed restore leaves the
/// directory without an engine, never half seeded, and a backup of any size needs no copy in
/// memory. A directory that already holds a log, an engine or snapshots is refused: restoring
/// over live data would silently throw writes away.
/// </remarks>
internal static class BackupRestore
{
    /// <summary>Returns the line to print on success; throws <see cref="NodeStartupException"/> with one line otherwise.</summary>
    public static string Seed(string backupPath, string dataDirectory, long engineMaxBytes)
    {
        if (!File.Exists(backupPath))
        {
            throw new NodeStartupException($"backup file '{backupPath}' not found");
        }
        if (Directory.Exists(dataDirectory) && (Directory.Exists(LmdbEngine.PathIn(dataDirectory)) || Directory.EnumerateFiles(dataDirectory).Any(f => Path.GetFileName(f) is var name && (name.StartsWith("wal-", StringComparison.Ordinal) || name.StartsWith("snapshot-", StringComparison.Ordinal)))))
        {
            throw new NodeStartupException($"data directory {dataDirectory} already holds a log, a storage engine or snapshots; move it away (or delete it) before restoring into it");
        }
        Directory.CreateDirectory(dataDirectory);
        using var exclusive = LockDirectory(dataDirectory);
        try
        {
            long keys = EngineImport.Import(backupPath, dataDirectory, engineMaxBytes);
            using var engine = LmdbEngine.Open(LmdbEngine.PathIn(dataDirectory), engineMaxBytes, sync: true);
            return $"restored {keys} keys through write {engine.Applied?.LastApplied} into {LmdbEngine.PathIn(dataDirectory)}; start the replica as usual";
        }
        catch (StorageCorruptionException e)
        {
            throw new NodeStartupException($"backup file '{backupPath}' is damaged or not a backup: {e.Message}");
        }
        catch (IOException e)
        {
            throw new NodeStartupException($"backup file '{backupPath}' cannot be restored: {e.Message}", DiskFull.IsCause(e) ? ExitCodes.DiskFull : ExitCodes.StartupRefused);
        }
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
