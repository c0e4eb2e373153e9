using KvReplica.Store.Persistence;

namespace KvReplica.Node.Storage;

/// <summary>
/// Loads a snapshot file (a backup, a peer's state fetched by a catch-up, or the snapshot of a
/// data directory from before the storage engine) into a data directory's engine, atomically:
/// it is built in <c>engine.importing/</c> and renamed to <c>engine/</c> only once the whole
/// snapshot has read back intact, so a crash or a damaged file leaves no half-loaded engine.
/// </summary>
internal static class EngineImport
{
    private const string ImportingName = LmdbEngine.DirectoryName + ".importing";

    /// <summary>
    /// Imports <paramref name="snapshotFile"/> as the engine of <paramref name="dataDirectory"/>,
    /// which must have none. Returns the number of keys. Throws
    /// <see cref="StorageCorruptionException"/> for a damaged snapshot (nothing is left behind).
    /// </summary>
    public static long Import(string snapshotFile, string dataDirectory, long engineMaxBytes)
    {
        string target = LmdbEngine.PathIn(dataDirectory);
        if (Directory.Exists(target))
        {
            throw new IOException($"{target} already exists; a snapshot is imported only into a data directory without an engine");
        }
        string importing = Path.Combine(dataDirectory, ImportingName);
        DeleteLeftover(dataDirectory);
        long keys;
        try
        {
            using var engine = LmdbEngine.Open(importing, engineMaxBytes, sync: true);
            using var file = new FileStream(snapshotFile, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
            keys = SnapshotFormat.ReadInto(file, engine).KeyCount;
        }
        catch
        {
            Directory.Delete(importing, recursive: true);
            throw;
        }
        Directory.Move(importing, target);
        DirectorySync.Fsync(dataDirectory);
        return keys;
    }

    /// <summary>Removes what an import interrupted by a crash left.</summary>
    public static void DeleteLeftover(string dataDirectory)
    {
        string importing = Path.Combine(dataDirectory, ImportingName);
        if (Directory.Exists(importing))
        {
            Directory.Delete(importing, recursive: true);
        }
    }
}
