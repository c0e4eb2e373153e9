using System.Diagnostics;
using KvReplica.Clock;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Core;
using KvReplica.Store;
using KvReplica.Store.Persistence;
using Microsoft.Extensions.Logging;

namespace KvReplica.Node.Storage;

/// <summary>
/// One replica's data directory: the write-ahead log, the snapshots and the lock that keeps a
/// second process off them. Recovers the store and the core's state at start-up, persists each
/// round of the core's <see cref="Ready"/> (one group commit), and takes snapshots in the
/// background. Every method except the snapshot builder runs on the core loop's thread.
/// </summary>
/// <remarks>
/// A snapshot must not stop writes, so it is not taken from the live store. Instead the log is
/// rolled at a round boundary, which freezes everything logged so far in closed segments, and a
/// background task rebuilds the state at the last delivered-through marker of those segments
/// from the previous snapshot plus them (exactly what recovery would do), then saves it. Only
/// when that snapshot is durable are the segments it covers deleted, back on the core thread.
/// </remarks>
internal sealed class ReplicaStorage : IDisposable
{
    public const string LockFileName = "LOCK";

    private readonly ClusterConfig _config;
    private readonly ILogger _logger;
    private readonly FileStream _lock;
    private readonly WalFile _wal;
    private readonly SnapshotStore _snapshots;
    private readonly List<LogEntry> _round = [];
    private Protocol.Wire.ViewJoin? _join;
    private Protocol.Wire.ViewInstall? _view;
    private readonly Stopwatch _sinceSync = Stopwatch.StartNew();
    private long _deliveredSinceSnapshot;
    private Task<SnapshotCut>? _snapshotInProgress;
    // Backups asked for since the current snapshot started: they need a snapshot that starts
    // after they were asked, so they wait for the next one.
    private readonly List<TaskCompletionSource<SnapshotCut>> _backupsWaiting = [];
    private readonly List<TaskCompletionSource<SnapshotCut>> _backupsOfCurrent = [];
    private bool _snapshotFailedLogged;

    private ReplicaStorage(string directory, ClusterConfig config, ILogger logger, FileStream lockFile, WalFile wal, SnapshotStore snapshots)
    {
        Directory = directory;
        _config = config;
        _logger = logger;
        _lock = lockFile;
        _wal = wal;
        _snapshots = snapshots;
    }

    /// <summary>The data directory, absolute.</summary>
    public string Directory { get; }

    /// <summary>
    /// Locks <paramref name="directory"/>, loads the newest valid snapshot, replays the log after
    /// it (truncating a torn tail) and returns the store and the core's recovery state. Throws
    /// <see cref="NodeStartupException"/> with one line for anything that stops the replica:
    /// another process holds the directory, the log is damaged before its tail.
    /// </summary>
    public static ReplicaStorage Open(string directory, ClusterConfig config, ILogger logger, out KvStore store, out CoreRecoveryState recovered)
    {
        var started = Stopwatch.StartNew();
        FileStream lockFile;
        try
        {
            System.IO.Directory.CreateDirectory(directory);
            // FileShare.None takes an exclusive advisory lock (flock) on Unix: two replicas
            // configured with the same directory would otherwise interleave their logs.
            lockFile = new FileStream(Path.Combine(directory, LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new NodeStartupException($"data directory {directory} is in use by another process (or unusable: {e.Message}); each replica needs its own dataDir");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new NodeStartupException($"data directory {directory} cannot be written: {e.Message}");
        }
        try
        {
            var snapshots = new SnapshotStore(directory);
            var loaded = snapshots.LoadNewestValid(skipped => Log.SnapshotSkipped(logger, skipped));
            store = loaded?.Store ?? new KvStore();
            WalFile wal;
            WalRecovery log;
            try
            {
                wal = WalFile.Open(directory, config.Fsync, config.WalSegmentBytes, out log);
            }
            catch (StorageCorruptionException e)
            {
                throw new NodeStartupException($"write-ahead log is damaged, refusing to start: {e.Message}. Restore this replica's data directory from a backup or another replica", ExitCodes.DamagedLog);
            }
            if (log.TruncatedTail is not null)
            {
                Log.WalTailTruncated(logger, log.TruncatedTail);
            }
            recovered = Recovery.Rebuild(store, log.Entries, out int replayed);
            Log.Recovered(logger, directory, loaded?.Path ?? "none", store.Count, replayed, recovered.Held.Count, recovered.LastDelivered.ToString(), started.ElapsedMilliseconds);
            if (config.Fsync == FsyncPolicy.None)
            {
                Log.FsyncDisabled(logger);
            }
            var storage = new ReplicaStorage(directory, config, logger, lockFile, wal, snapshots);
            if (recovered.LastView is not null || recovered.LastJoin is not null)
            {
                storage._join = recovered.LastJoin;
                storage._view = recovered.LastView;
                wal.Preamble = storage.ViewPreamble();
            }
            return storage;
        }
        catch
        {
            lockFile.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Logs the round's newly held writes, then its delivered-through marker, as one group commit
    /// (fsynced before returning under the <c>always</c> policy). The caller sends nothing of
    /// this round before it returns.
    /// </summary>
    public void Persist(Ready ready)
    {
        _round.Clear();
        ReadyRecords.AppendTo(ready, _round);
        if (ready.Joined is not null || ready.InstalledView is not null)
        {
            _join = ready.Joined ?? _join;
            _view = ready.InstalledView ?? _view;
            _wal.Preamble = ViewPreamble();
        }
        _wal.Append(_round);
        _deliveredSinceSnapshot += ready.Delivered.Count;
        if (_config.Fsync == FsyncPolicy.Batch && _sinceSync.Elapsed >= _config.FsyncBatchInterval)
        {
            _wal.Sync();
            _sinceSync.Restart();
        }
        CollectSnapshot();
        if (_snapshotInProgress is null
            && (_backupsWaiting.Count > 0 || _deliveredSinceSnapshot >= _config.SnapshotEveryWrites || _wal.BytesSinceRoll >= _config.SnapshotEveryLogBytes))
        {
            StartSnapshot();
        }
    }

    /// <summary>
    /// Asks for a snapshot cut after everything this replica has delivered so far, for a backup;
    /// completes with its stamp and file once it is durable. Called on the core loop, after the
    /// round's <see cref="Persist"/>.
    /// </summary>
    public Task<SnapshotCut> SnapshotNow()
    {
        var waiter = new TaskCompletionSource<SnapshotCut>(TaskCreationOptions.RunContinuationsAsynchronously);
        _backupsWaiting.Add(waiter);
        CollectSnapshot();
        if (_snapshotInProgress is null)
        {
            StartSnapshot();
        }
        return waiter.Task;
    }

    /// <summary>
    /// For a peer catching up (core loop only): rolls the log, so that every segment but the new
    /// empty one is closed and no longer changes, and opens the newest snapshot and those
    /// segments. No snapshot is built: the peer replays the segments itself, so serving costs no
    /// memory beyond the stream's buffer, however large the store.
    /// </summary>
    public TransferFiles OpenForTransfer()
    {
        _wal.Roll();
        var newest = _snapshots.Newest();
        var indexes = _wal.ClosedSegmentIndexes;
        return Open(newest?.Through ?? Stamp.Zero, newest?.Path, indexes[0], indexes[^1]);
    }

    /// <summary>
    /// The files of an earlier transfer, for a resume (core loop only); throws
    /// <see cref="IOException"/> when any of them is gone (a later snapshot replaced them).
    /// </summary>
    public TransferFiles OpenForResume(Stamp snapshotThrough, int suffixFrom, int suffixThrough)
    {
        string? snapshot = snapshotThrough == Stamp.Zero ? null : Path.Combine(Directory, SnapshotStore.FileNameFor(snapshotThrough));
        var indexes = _wal.ClosedSegmentIndexes;
        bool segmentsThere = suffixFrom <= suffixThrough && indexes.Contains(suffixFrom) && indexes.Contains(suffixThrough);
        if ((snapshot is not null && !File.Exists(snapshot)) || !segmentsThere)
        {
            throw new IOException($"the transfer of snapshot {snapshotThrough} with log segments {suffixFrom}..{suffixThrough} is no longer here (a newer snapshot replaced it); ask for a fresh one");
        }
        return Open(snapshotThrough, snapshot, suffixFrom, suffixThrough);
    }

    private TransferFiles Open(Stamp through, string? snapshot, int from, int to)
    {
        var opened = new List<FileStream>();
        try
        {
            Stream snapshotStream;
            if (snapshot is null)
            {
                // No snapshot yet, so no segment was ever deleted: the log holds everything.
                var empty = new MemoryStream();
                SnapshotFormat.Write(empty, new KvStore());
                empty.Position = 0;
                snapshotStream = empty;
            }
            else
            {
                snapshotStream = OpenShared(snapshot);
                opened.Add((FileStream)snapshotStream);
            }
            var segments = new List<FileStream>();
            for (int index = from; index <= to; index++)
            {
                var segment = OpenShared(_wal.PathOf(index));
                opened.Add(segment);
                segments.Add(segment);
            }
            return new TransferFiles(through, from, to, snapshotStream, segments);
        }
        catch
        {
            foreach (var file in opened)
            {
                file.Dispose();
            }
            throw;
        }
    }

    private static FileStream OpenShared(string path) => new(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 20);

    private List<LogEntry> ViewPreamble()
    {
        var preamble = new List<LogEntry>();
        if (_view is not null)
        {
            preamble.Add(LogEntry.InstalledView(_view));
        }
        if (_join is not null && _join.Number > (_view?.Number ?? 0))
        {
            preamble.Add(LogEntry.Joined(_join));
        }
        return preamble;
    }

    /// <summary>Under the <c>batch</c> policy, bounds how long a quiet replica leaves its last batch unsynced.</summary>
    public void OnTick()
    {
        if (_config.Fsync == FsyncPolicy.Batch && _sinceSync.Elapsed >= _config.FsyncBatchInterval)
        {
            _wal.Sync();
            _sinceSync.Restart();
        }
        CollectSnapshot();
        if (_snapshotInProgress is null && _backupsWaiting.Count > 0)
        {
            StartSnapshot();
        }
    }

    private void StartSnapshot()
    {
        _backupsOfCurrent.AddRange(_backupsWaiting);
        _backupsWaiting.Clear();
        _deliveredSinceSnapshot = 0;
        // The only part of a snapshot on the core thread, so the only pause writes see.
        var rolling = Stopwatch.StartNew();
        _wal.Roll();
        double rollMs = rolling.Elapsed.TotalMilliseconds;
        var segments = _wal.ClosedSegmentPaths;
        _snapshotInProgress = Task.Run(() => BuildSnapshot(segments, rollMs));
    }

    // Off the core thread: previous snapshot + frozen segments -> new snapshot, saved durably.
    private SnapshotCut BuildSnapshot(IReadOnlyList<string> segments, double rollMs)
    {
        var started = Stopwatch.StartNew();
        var store = _snapshots.LoadNewestValid(skipped => Log.SnapshotSkipped(_logger, skipped))?.Store ?? new KvStore();
        var entries = new List<LogEntry>();
        foreach (string segment in segments)
        {
            var scan = WriteAheadLog.Scan(File.ReadAllBytes(segment));
            if (scan.TailProblem is not null)
            {
                throw new StorageCorruptionException($"{segment}: {scan.TailProblem} in a closed segment");
            }
            entries.AddRange(scan.Entries);
        }
        Recovery.Rebuild(store, entries, out _);
        string path = _snapshots.Save(store);
        Log.SnapshotSaved(_logger, path, store.Count, store.LastApplied.ToString(), started.ElapsedMilliseconds, rollMs);
        return new SnapshotCut(store.LastApplied, path);
    }

    private void CollectSnapshot()
    {
        if (_snapshotInProgress is not { IsCompleted: true } done)
        {
            return;
        }
        _snapshotInProgress = null;
        if (done.IsCompletedSuccessfully)
        {
            _snapshotFailedLogged = false;
            int deleted = _wal.DeleteSegmentsThrough(done.Result.Through);
            if (deleted > 0 && _logger.IsEnabled(LogLevel.Debug))
            {
                _logger.LogDebug("deleted {Count} log segments covered by the snapshot through {Stamp}", deleted, done.Result.Through);
            }
            foreach (var backup in _backupsOfCurrent)
            {
                backup.TrySetResult(done.Result);
            }
        }
        else
        {
            string reason = done.Exception?.GetBaseException().Message ?? "cancelled";
            if (!_snapshotFailedLogged)
            {
                // The log still holds everything, so nothing is lost; the next threshold retries.
                _snapshotFailedLogged = true;
                Log.SnapshotFailed(_logger, reason);
            }
            foreach (var backup in _backupsOfCurrent)
            {
                backup.TrySetException(new IOException($"the snapshot for the backup failed: {reason}"));
            }
        }
        _backupsOfCurrent.Clear();
    }

    /// <summary>
    /// Replaces the state in <paramref name="directory"/> (whose storage must be closed) with a
    /// peer's: its snapshot and the log suffix after it, as fetched by a catch-up. The old log and
    /// snapshots are moved, not deleted, into <c>lost-&lt;time&gt;/</c> for inspection. A crash
    /// half-way leaves a directory that recovery reads as behind, so the next start catches up again.
    /// </summary>
    public static string InstallPeerState(string directory, string snapshotFile, string suffixFile, Stamp through)
    {
        string lost = Path.Combine(directory, "lost-" + DateTime.UtcNow.ToString("yyyyMMdd-HHmmss-fff", System.Globalization.CultureInfo.InvariantCulture));
        System.IO.Directory.CreateDirectory(lost);
        foreach (string file in System.IO.Directory.EnumerateFiles(directory))
        {
            string name = Path.GetFileName(file);
            if (name.StartsWith("wal-", StringComparison.Ordinal) || name.StartsWith("snapshot-", StringComparison.Ordinal))
            {
                File.Move(file, Path.Combine(lost, name));
            }
        }
        DirectorySync.Fsync(lost);
        File.Move(snapshotFile, Path.Combine(directory, SnapshotStore.FileNameFor(through)));
        // The suffix is in log format, so it becomes the first segment of the new log.
        File.Move(suffixFile, Path.Combine(directory, "wal-000001.log"));
        DirectorySync.Fsync(directory);
        return lost;
    }

    public void Dispose()
    {
        try
        {
            _snapshotInProgress?.Wait(TimeSpan.FromSeconds(30));
        }
        catch (AggregateException)
        {
        }
        CollectSnapshot();
        foreach (var backup in _backupsWaiting.Concat(_backupsOfCurrent))
        {
            backup.TrySetException(new IOException("the replica is stopping"));
        }
        _wal.Dispose();
        _lock.Dispose();
    }
}

/// <summary>A durable snapshot: the stamp it includes through, and its file.</summary>
internal sealed record SnapshotCut(Stamp Through, string SnapshotPath);

/// <summary>
/// What a peer catching up is sent, opened at one moment on the core loop: the newest snapshot
/// (an empty store's when there is none yet) and every log segment after it, which together
/// rebuild this replica's whole state at that moment. Named for a resume by the snapshot's stamp
/// and the first and last segment. Open files stay readable if a later snapshot deletes them.
/// </summary>
internal sealed record TransferFiles(Stamp SnapshotThrough, int SuffixFrom, int SuffixThrough, Stream Snapshot, IReadOnlyList<FileStream> Segments) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        await Snapshot.DisposeAsync().ConfigureAwait(false);
        foreach (var segment in Segments)
        {
            await segment.DisposeAsync().ConfigureAwait(false);
        }
    }
}
