using System.Diagnostics;
using KvReplica.Clock;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Core;
using KvReplica.Store;
using KvReplica.Store.Engine;
using KvReplica.Store.Persistence;
using Microsoft.Extensions.Logging;

namespace KvReplica.Node.Storage;

/// <summary>
/// One replica's data directory: the write-ahead log, the storage engine holding the applied
/// state, and the lock that keeps a second process off them. Recovers the store and the core's
/// state at start-up, persists each round of the core's <see cref="Ready"/> (one group commit),
/// commits the engine in batches on a background thread and deletes the log it covers. Every
/// method runs on the core loop's thread.
/// </summary>
/// <remarks>
/// The log stays the source of order; the engine is a checkpoint of it (docs/design.md, "The
/// storage engine"). A commit writes the deliveries since the last one together with the stamp
/// they reach, in one transaction, and only after the log holding them is durable, so the
/// engine is never ahead of the log. Only when a commit has returned (durable) are the closed
/// log segments it covers deleted. Recovery opens the engine and replays the log after its
/// stamp; a crash anywhere in between replays a little more log, never less, and a write at or
/// below the engine's stamp is never applied twice.
/// </remarks>
internal sealed class ReplicaStorage : IDisposable
{
    public const string LockFileName = "LOCK";

    private readonly ClusterConfig _config;
    private readonly ILogger _logger;
    private readonly FileStream _lock;
    private readonly WalFile _wal;
    private readonly KvStore _store;
    private readonly List<LogEntry> _round = [];
    private Protocol.Wire.ViewJoin? _join;
    private Protocol.Wire.ViewInstall? _view;
    private readonly Stopwatch _sinceSync = Stopwatch.StartNew();
    private readonly Stopwatch _sinceCommit = Stopwatch.StartNew();
    private long _deliveredSinceCommit;
    // The engine commit running on a background thread, and the batch it commits.
    private Task? _commitRunning;
    private EngineCommit? _commitInFlight;
    // The view of the last catch-up, kept a while for a resume of a broken stream.
    private readonly PinnedTransfer _pinned = new();

    private ReplicaStorage(string directory, ClusterConfig config, ILogger logger, FileStream lockFile, WalFile wal, KvStore store)
    {
        Directory = directory;
        _config = config;
        _logger = logger;
        _lock = lockFile;
        _wal = wal;
        _store = store;
    }

    /// <summary>The data directory, absolute.</summary>
    public string Directory { get; }

    /// <summary>Engine commits made since start.</summary>
    public long EngineCommits { get; private set; }

    /// <summary>
    /// Locks <paramref name="directory"/>, opens the engine (first importing a snapshot file left
    /// by a restore, a catch-up or a data directory of the format before the engine), replays the
    /// log after the engine's applied stamp (truncating a torn tail) and returns the store and the
    /// core's recovery state. Throws <see cref="NodeStartupException"/> with one line for anything
    /// that stops the replica: another process holds the directory, the log is damaged before its
    /// tail, the engine cannot be opened.
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
        LmdbEngine? engine = null;
        try
        {
            string imported = ImportSnapshotFile(directory, config, logger);
            try
            {
                engine = LmdbEngine.Open(LmdbEngine.PathIn(directory), config.EngineMaxBytes, sync: config.Fsync != FsyncPolicy.None);
            }
            catch (Exception e) when (e is LightningDB.LightningException or IOException or DllNotFoundException)
            {
                throw new NodeStartupException($"the storage engine in {LmdbEngine.PathIn(directory)} cannot be opened: {e.Message}", DiskFull.IsCause(e) ? ExitCodes.DiskFull : ExitCodes.DamagedLog);
            }
            store = new KvStore(engine, historyChanges: config.HistoryChanges, historyBytes: config.HistoryBytes);
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
            var engineThrough = store.LastApplied;
            recovered = Recovery.Rebuild(store, log.Entries, out int replayed);
            Log.Recovered(logger, directory, imported, engineThrough.ToString(), store.KeyCount, replayed, log.Entries.Count, recovered.Held.Count, recovered.LastDelivered.ToString(), started.ElapsedMilliseconds);
            if (config.Fsync == FsyncPolicy.None)
            {
                Log.FsyncDisabled(logger);
            }
            var storage = new ReplicaStorage(directory, config, logger, lockFile, wal, store);
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
            engine?.Dispose();
            lockFile.Dispose();
            throw;
        }
    }

    // A data directory without an engine but with snapshot files (a restore, a catch-up, or the
    // format before the engine) gets the newest intact one imported; then the files go, since the
    // engine holds all they did. Returns what was imported, for the recovery line.
    private static string ImportSnapshotFile(string directory, ClusterConfig config, ILogger logger)
    {
        EngineImport.DeleteLeftover(directory);
        var snapshots = new SnapshotStore(directory);
        string result = "none";
        if (!System.IO.Directory.Exists(LmdbEngine.PathIn(directory)))
        {
            var files = snapshots.NewestFirst().ToList();
            foreach (string path in files)
            {
                try
                {
                    var importing = Stopwatch.StartNew();
                    long keys = EngineImport.Import(path, directory, config.EngineMaxBytes);
                    Log.SnapshotImported(logger, path, keys, importing.ElapsedMilliseconds);
                    result = Path.GetFileName(path);
                    break;
                }
                catch (StorageCorruptionException e)
                {
                    Log.SnapshotSkipped(logger, $"{path}: {e.Message}");
                }
            }
            if (files.Count > 0 && result == "none")
            {
                // The log before them may be gone: starting from the log alone could silently
                // drop writes. The files stay for the operator.
                throw new NodeStartupException($"every snapshot file in {directory} is damaged ({files.Count}), so its state cannot be loaded; restore this replica's data directory from a backup or another replica", ExitCodes.DamagedLog);
            }
        }
        snapshots.DeleteAll();
        return result;
    }

    /// <summary>
    /// Logs the round's newly held writes, then its delivered-through marker, as one group commit
    /// (fsynced before returning under the <c>always</c> policy), then commits the engine if a
    /// batch is due. The caller sends nothing of this round before it returns.
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
        _deliveredSinceCommit += ready.Delivered.Count;
        if (_config.Fsync == FsyncPolicy.Batch && _sinceSync.Elapsed >= _config.FsyncBatchInterval)
        {
            _wal.Sync();
            _sinceSync.Restart();
        }
        CollectCommit(wait: false);
        if (_deliveredSinceCommit >= _config.EngineCommitEveryWrites || _sinceCommit.Elapsed >= _config.EngineCommitInterval)
        {
            StartCommit();
        }
    }

    /// <summary>
    /// Starts a commit of what was applied since the last one, on a background thread, after
    /// making the log that holds it durable; does nothing while one is still running (the next
    /// round or tick tries again). The core loop goes on ordering meanwhile: reads find the
    /// batch in the store's second overlay until <see cref="CollectCommit"/> sees it done.
    /// </summary>
    private void StartCommit()
    {
        if (_commitRunning is not null || !_store.HasUncommitted)
        {
            return;
        }
        _sinceCommit.Restart();
        _deliveredSinceCommit = 0;
        // The engine must never be durable ahead of the log: a delivery whose round never
        // reached the disk may be undone by a view change, and an engine that kept it would diverge.
        _wal.Sync();
        _sinceSync.Restart();
        var commit = _store.BeginCommit();
        if (commit is null)
        {
            return;
        }
        var engine = _store.Engine;
        _commitInFlight = commit;
        _commitRunning = Task.Run(() => engine.Commit(commit.Batch));
    }

    /// <summary>
    /// If the background commit is done (or, with <paramref name="wait"/>, once it is), completes
    /// it in the store and deletes the closed log segments it covers (but none a catch-up may
    /// still resume from). A failed commit throws here, on the core loop: a full disk stops the
    /// replica as a failed log append does, and the log still holds everything.
    /// </summary>
    private void CollectCommit(bool wait)
    {
        if (_commitRunning is not { } running || (!wait && !running.IsCompleted))
        {
            return;
        }
        var commit = _commitInFlight!;
        _commitRunning = null;
        _commitInFlight = null;
        running.GetAwaiter().GetResult();
        _store.CompleteCommit(commit);
        EngineCommits++;
        int deleted = _wal.DeleteSegmentsThrough(_store.CommittedThrough, _pinned.KeepSegmentsFrom);
        if (deleted > 0 && _logger.IsEnabled(LogLevel.Debug))
        {
            _logger.LogDebug("deleted {Count} log segments the engine covers through {Stamp}", deleted, _store.CommittedThrough);
        }
    }

    /// <summary>
    /// Commits everything applied so far and waits for it (a backup, a catch-up and a clean stop
    /// need the engine to hold all this replica has delivered).
    /// </summary>
    public void CommitEngineNow()
    {
        CollectCommit(wait: true);
        StartCommit();
        CollectCommit(wait: true);
    }

    /// <summary>
    /// For a backup (core loop only): commits the engine, so the view includes everything this
    /// replica has delivered so far, and opens a view of that commit streamed as a snapshot.
    /// Writes go on while it streams.
    /// </summary>
    public BackupSource OpenBackup()
    {
        CommitEngineNow();
        var view = _store.Engine.OpenView();
        return new BackupSource(view.Applied?.LastApplied ?? Clock.Stamp.Zero, SnapshotFormat.OpenStream(view), view);
    }

    /// <summary>
    /// For a peer catching up (core loop only): commits the engine, rolls the log, so that every
    /// segment but the new empty one is closed and no longer changes, and opens a view of the
    /// engine (streamed as a snapshot) and those segments. Nothing is copied: the view is a read
    /// transaction, and the peer replays the segments itself.
    /// </summary>
    public TransferFiles OpenForTransfer()
    {
        CommitEngineNow();
        _wal.Roll();
        var indexes = _wal.ClosedSegmentIndexes;
        var lease = _pinned.Pin(_store.Engine, indexes[0]);
        return OpenTransfer(lease, indexes[0], indexes[^1]);
    }

    /// <summary>
    /// The rest of an earlier transfer, for a resume (core loop only): the same view of the
    /// engine, if it is still kept (<see cref="ConnectionLimits.TransferResumeWindow"/>), and the
    /// same segments; throws <see cref="IOException"/> when either is gone.
    /// </summary>
    public TransferFiles OpenForResume(Stamp snapshotThrough, int suffixFrom, int suffixThrough)
    {
        var indexes = _wal.ClosedSegmentIndexes;
        bool segmentsThere = suffixFrom <= suffixThrough && indexes.Contains(suffixFrom) && indexes.Contains(suffixThrough);
        var lease = segmentsThere ? _pinned.Resume(snapshotThrough) : null;
        if (lease is null)
        {
            throw new IOException($"the transfer of the engine through {snapshotThrough} with log segments {suffixFrom}..{suffixThrough} is no longer here; ask for a fresh one");
        }
        return OpenTransfer(lease, suffixFrom, suffixThrough);
    }

    private TransferFiles OpenTransfer(PinnedTransfer.Lease lease, int from, int to)
    {
        var segments = new List<FileStream>();
        try
        {
            for (int index = from; index <= to; index++)
            {
                segments.Add(OpenShared(_wal.PathOf(index)));
            }
            return new TransferFiles(lease.Through, from, to, SnapshotFormat.OpenStream(lease.View), segments, lease);
        }
        catch
        {
            foreach (var file in segments)
            {
                file.Dispose();
            }
            lease.Dispose();
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

    /// <summary>
    /// Under the <c>batch</c> policy, bounds how long a quiet replica leaves its last batch
    /// unsynced; commits the engine once the interval has passed; lets go of a catch-up's view
    /// nobody resumed.
    /// </summary>
    public void OnTick()
    {
        if (_config.Fsync == FsyncPolicy.Batch && _sinceSync.Elapsed >= _config.FsyncBatchInterval)
        {
            _wal.Sync();
            _sinceSync.Restart();
        }
        CollectCommit(wait: false);
        if (_sinceCommit.Elapsed >= _config.EngineCommitInterval)
        {
            StartCommit();
        }
        _pinned.ReleaseIfIdle(ConnectionLimits.TransferResumeWindow);
    }

    /// <summary>
    /// Replaces the state in <paramref name="directory"/> (whose storage must be closed) with a
    /// peer's: its snapshot and the log suffix after it, as fetched by a catch-up. The old log and
    /// engine are moved, not deleted, into <c>lost-&lt;time&gt;/</c> for inspection; the next
    /// <see cref="Open"/> imports the snapshot into a new engine. A crash half-way leaves a
    /// directory that recovery reads as behind, so the next start catches up again.
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
        if (System.IO.Directory.Exists(LmdbEngine.PathIn(directory)))
        {
            System.IO.Directory.Move(LmdbEngine.PathIn(directory), Path.Combine(lost, LmdbEngine.DirectoryName));
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
            // A clean stop leaves the engine current, so the next start replays no log.
            CommitEngineNow();
        }
        catch (IOException e)
        {
            // The failure that stops the replica (a full disk) was reported already; the log
            // still holds everything, and the next start replays it.
            _logger.LogDebug("no engine commit on the way out: {Reason}", e.Message);
        }
        _pinned.Dispose();
        _store.Engine.Dispose();
        _wal.Dispose();
        _lock.Dispose();
    }
}

/// <summary>A backup's source: a view of one engine commit, streamed in the snapshot format.</summary>
internal sealed record BackupSource(Stamp Through, Stream Snapshot, IDisposable View) : IDisposable
{
    public void Dispose()
    {
        Snapshot.Dispose();
        View.Dispose();
    }
}

/// <summary>
/// The view of the engine the last catch-up streamed, with the first log segment it sends, kept
/// after the stream ends for a while so that a broken stream can resume on the same bytes.
/// Leases are released from the connections' threads; the rest runs on the core loop.
/// </summary>
internal sealed class PinnedTransfer : IDisposable
{
    private readonly Lock _lock = new();
    private Pinned? _current;

    internal sealed class Pinned(IEngineView view, Stamp through, int firstSegment)
    {
        public IEngineView View { get; } = view;
        public Stamp Through { get; } = through;
        public int FirstSegment { get; } = firstSegment;
        public int Leases;
        public bool Retired;
        public long IdleSince = Environment.TickCount64;
    }

    /// <summary>The oldest log segment a kept transfer may still need; null when none is kept.</summary>
    public int? KeepSegmentsFrom
    {
        get
        {
            lock (_lock)
            {
                return _current?.FirstSegment;
            }
        }
    }

    /// <summary>A lease on a new view of <paramref name="engine"/>'s last commit, which becomes the kept one.</summary>
    public Lease Pin(IStorageEngine engine, int firstSegment)
    {
        var view = engine.OpenView();
        var pinned = new Pinned(view, view.Applied?.LastApplied ?? Stamp.Zero, firstSegment);
        lock (_lock)
        {
            Retire(_current);
            _current = pinned;
            pinned.Leases++;
        }
        return new Lease(this, pinned);
    }

    /// <summary>A lease on the kept view if it is the one through <paramref name="through"/>; else null.</summary>
    public Lease? Resume(Stamp through)
    {
        lock (_lock)
        {
            if (_current is not { } pinned || pinned.Through != through)
            {
                return null;
            }
            pinned.Leases++;
            return new Lease(this, pinned);
        }
    }

    /// <summary>Lets go of the kept view once nobody has used it for <paramref name="window"/>.</summary>
    public void ReleaseIfIdle(TimeSpan window)
    {
        lock (_lock)
        {
            if (_current is { Leases: 0 } idle && Environment.TickCount64 - idle.IdleSince >= window.TotalMilliseconds)
            {
                Retire(idle);
                _current = null;
            }
        }
    }

    // Caller holds the lock.
    private static void Retire(Pinned? pinned)
    {
        if (pinned is null)
        {
            return;
        }
        pinned.Retired = true;
        if (pinned.Leases == 0)
        {
            pinned.View.Dispose();
        }
    }

    private void Release(Pinned pinned)
    {
        lock (_lock)
        {
            pinned.Leases--;
            pinned.IdleSince = Environment.TickCount64;
            if (pinned.Retired && pinned.Leases == 0)
            {
                pinned.View.Dispose();
            }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            Retire(_current);
            _current = null;
        }
    }

    /// <summary>One transfer's hold on a kept view.</summary>
    public sealed class Lease(PinnedTransfer owner, Pinned pinned) : IDisposable
    {
        private int _released;

        public IEngineView View => pinned.View;

        public Stamp Through => pinned.Through;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                owner.Release(pinned);
            }
        }
    }
}

/// <summary>
/// What a peer catching up is sent, opened at one moment on the core loop: a view of the engine's
/// last commit (streamed in the snapshot format) and every log segment, which together rebuild
/// this replica's whole state at that moment. Named for a resume by the view's stamp and the
/// first and last segment. Open files stay readable if a commit deletes them.
/// </summary>
internal sealed record TransferFiles(Stamp SnapshotThrough, int SuffixFrom, int SuffixThrough, Stream Snapshot, IReadOnlyList<FileStream> Segments, IDisposable Lease) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        await Snapshot.DisposeAsync().ConfigureAwait(false);
        Lease.Dispose();
        foreach (var segment in Segments)
        {
            await segment.DisposeAsync().ConfigureAwait(false);
        }
    }
}
