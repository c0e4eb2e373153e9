using System.Buffers;
using System.Globalization;
using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Config;
using KvReplica.Store.Persistence;

namespace KvReplica.Node.Storage;

/// <summary>What opening the log found.</summary>
/// <param name="Entries">Every intact log entry, oldest first.</param>
/// <param name="TruncatedTail">Null, or what was cut off the newest segment and where (for the log line).</param>
internal sealed record WalRecovery(IReadOnlyList<LogEntry> Entries, string? TruncatedTail);

/// <summary>
/// The write-ahead log on disk: numbered segment files (<c>wal-000001.log</c>, ...) of
/// <see cref="WriteAheadLog"/> records in one directory. Appends come in group-commit batches,
/// one write and at most one fsync each; segments roll at a size limit, and whole segments
/// the storage engine covers are deleted.
/// </summary>
/// <remarks>
/// Only the newest segment can have a torn tail (it is the only one written to), so a torn or
/// corrupt tail there is truncated and reported; the same in an older segment, or damage in
/// the middle of any segment, is corruption and stops the replica. Not thread-safe.
/// </remarks>
internal sealed class WalFile : IDisposable
{
    private const string Prefix = "wal-";
    private const string Suffix = ".log";

    private readonly string _directory;
    private readonly FsyncPolicy _policy;
    private readonly long _segmentBytes;
    // Each closed segment with the largest stamp it holds: writes may be logged out of stamp order
    // (held writes arrive in hold order), so the last one is not necessarily the largest.
    private readonly List<(int Index, Stamp Max)> _closedSegments = [];
    private readonly ArrayBufferWriter<byte> _batch = new(64 * 1024);
    private FileStream _current;
    private int _currentIndex;
    private Stamp _currentMax;
    private bool _unsynced;
    // An append failed (typically a full disk): the file may end in part of a batch.
    private bool _failed;

    private WalFile(string directory, FsyncPolicy policy, long segmentBytes, FileStream current, int currentIndex, Stamp currentMax)
    {
        _directory = directory;
        _policy = policy;
        _segmentBytes = segmentBytes;
        _current = current;
        _currentIndex = currentIndex;
        _currentMax = currentMax;
    }

    /// <summary>Number of segment files, the open one included.</summary>
    public int SegmentCount => _closedSegments.Count + 1;

    /// <summary>
    /// Opens (creating if needed) the log in <paramref name="directory"/>, reads every intact
    /// write and truncates a torn tail. Throws <see cref="StorageCorruptionException"/> naming the
    /// file and offset for damage that is not a torn tail.
    /// </summary>
    public static WalFile Open(string directory, FsyncPolicy policy, long segmentBytes, out WalRecovery recovery)
    {
        Directory.CreateDirectory(directory);
        var indexes = Directory.EnumerateFiles(directory, Prefix + "*" + Suffix)
            .Select(f => Path.GetFileName(f)[Prefix.Length..^Suffix.Length])
            .Select(n => int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out int i) ? i : -1)
            .Where(i => i > 0).Order().ToList();
        var entries = new List<LogEntry>();
        var closed = new List<(int, Stamp)>();
        string? truncated = null;
        Stamp segmentMax = Stamp.Zero;
        for (int n = 0; n < indexes.Count; n++)
        {
            string path = SegmentPath(directory, indexes[n]);
            WalScan scan;
            try
            {
                scan = WriteAheadLog.Scan(File.ReadAllBytes(path));
            }
            catch (StorageCorruptionException e)
            {
                throw new StorageCorruptionException($"{path}: {e.Message}");
            }
            entries.AddRange(scan.Entries);
            segmentMax = scan.Entries.Select(StampOf).DefaultIfEmpty(Stamp.Zero).Max();
            bool newest = n == indexes.Count - 1;
            if (scan.TailProblem is not null)
            {
                if (!newest)
                {
                    throw new StorageCorruptionException($"{path}: {scan.TailProblem}, but a newer segment follows it, so this is damage, not a torn write");
                }
                using (var file = new FileStream(path, FileMode.Open, FileAccess.Write))
                {
                    file.SetLength(scan.ValidBytes);
                    file.Flush(flushToDisk: true);
                }
                truncated = $"{path}: {scan.TailProblem}; truncated to {scan.ValidBytes} bytes";
            }
            if (!newest)
            {
                closed.Add((indexes[n], segmentMax));
            }
        }
        int currentIndex = indexes.Count > 0 ? indexes[^1] : 1;
        var current = OpenSegment(SegmentPath(directory, currentIndex), FileMode.Append);
        if (indexes.Count == 0)
        {
            DirectorySync.Fsync(directory);
        }
        recovery = new WalRecovery(entries, truncated);
        var wal = new WalFile(directory, policy, segmentBytes, current, currentIndex, indexes.Count > 0 ? segmentMax : Stamp.Zero);
        wal._closedSegments.AddRange(closed);
        return wal;
    }

    /// <summary>
    /// Appends one group-commit batch with a single write, and fsyncs it under the
    /// <see cref="FsyncPolicy.Always"/> policy before returning. Rolls to a new segment afterwards
    /// when the current one has reached the size limit.
    /// </summary>
    public void Append(IReadOnlyList<LogEntry> batch)
    {
        if (batch.Count == 0)
        {
            return;
        }
        if (_failed)
        {
            throw new IOException("an earlier append to the write-ahead log failed; nothing more can be appended after its torn tail");
        }
        _batch.ResetWrittenCount();
        WriteAheadLog.Append(_batch, batch);
        try
        {
            _current.Write(_batch.WrittenSpan);
        }
        catch (IOException)
        {
            // Part of the batch may be in the file: a torn tail, which the next start truncates.
            // Nothing may be appended after it, or it would be damage in the middle of the log.
            _failed = true;
            throw;
        }
        foreach (var entry in batch)
        {
            var stamp = StampOf(entry);
            _currentMax = stamp > _currentMax ? stamp : _currentMax;
        }
        _unsynced = true;
        BytesSinceRoll += _batch.WrittenCount;
        if (_policy == FsyncPolicy.Always)
        {
            Sync();
        }
        if (_current.Length >= _segmentBytes)
        {
            Roll();
        }
    }

    /// <summary>Forces appended batches to disk (the <see cref="FsyncPolicy.Batch"/> timer calls this).</summary>
    public void Sync()
    {
        if (_unsynced && _policy != FsyncPolicy.None)
        {
            _current.Flush(flushToDisk: true);
        }
        _unsynced = false;
    }

    private static Stamp StampOf(LogEntry entry) => entry.Held?.Stamp ?? entry.LastDelivered;

    /// <summary>Bytes appended since the newest segment was started (drives snapshots by log size).</summary>
    public long BytesSinceRoll { get; private set; }

    /// <summary>Indexes of the closed segments, oldest first.</summary>
    public IReadOnlyList<int> ClosedSegmentIndexes => [.. _closedSegments.Select(c => c.Index)];

    /// <summary>The path of segment <paramref name="index"/> in this log's directory.</summary>
    public string PathOf(int index) => SegmentPath(_directory, index);

    /// <summary>
    /// Closes the current segment (synced) and starts a new one, so that everything appended so
    /// far is in closed segments that no longer change.
    /// </summary>
    public void Roll()
    {
        Sync();
        BytesSinceRoll = 0;
        _current.Dispose();
        _closedSegments.Add((_currentIndex, _currentMax));
        _currentMax = Stamp.Zero;
        _currentIndex++;
        try
        {
            _current = OpenSegment(SegmentPath(_directory, _currentIndex), FileMode.CreateNew);
            if (Preamble.Count > 0)
            {
                // Records that must outlive the deletion of the segments they were first written to.
                _batch.ResetWrittenCount();
                WriteAheadLog.Append(_batch, Preamble);
                _current.Write(_batch.WrittenSpan);
                _current.Flush(flushToDisk: _policy != FsyncPolicy.None);
                BytesSinceRoll += _batch.WrittenCount;
            }
        }
        catch (IOException)
        {
            // No new segment, or one with part of its preamble (a full disk): nothing more may be
            // appended, and the closed segment is already synced.
            _failed = true;
            throw;
        }
        DirectorySync.Fsync(_directory);
    }

    /// <summary>
    /// Records written again at the start of every new segment: the latest promised and installed
    /// view, which carry no stamp, so no snapshot covers them and deleting old segments must not lose them.
    /// </summary>
    public IReadOnlyList<LogEntry> Preamble { get; set; } = [];

    /// <summary>
    /// Deletes closed segments, oldest first, while every write in the segment is at or before
    /// <paramref name="engineStamp"/> (the storage engine's durable applied point), stopping at
    /// segment <paramref name="keepFrom"/>; returns how many.
    /// </summary>
    public int DeleteSegmentsThrough(Stamp engineStamp, int? keepFrom = null)
    {
        int deleted = 0;
        while (_closedSegments.Count > 0 && _closedSegments[0].Max <= engineStamp && (keepFrom is null || _closedSegments[0].Index < keepFrom))
        {
            File.Delete(SegmentPath(_directory, _closedSegments[0].Index));
            _closedSegments.RemoveAt(0);
            deleted++;
        }
        if (deleted > 0)
        {
            DirectorySync.Fsync(_directory);
        }
        return deleted;
    }

    private static string SegmentPath(string directory, int index) =>
        Path.Combine(directory, $"{Prefix}{index.ToString("D6", CultureInfo.InvariantCulture)}{Suffix}");

    public void Dispose()
    {
        try
        {
            Sync();
        }
        catch (Exception e) when (_failed && e is IOException or ObjectDisposedException)
        {
            // The failure that broke the log was reported when it happened; closing the log on
            // the way out must not throw it again.
        }
        _current.Dispose();
    }

    // Unbuffered: every batch is already one write, and after a failed write (a full disk) a
    // FileStream buffer would try the same bytes again when it is disposed, and throw again.
    private static FileStream OpenSegment(string path, FileMode mode) =>
        new(path, mode, FileAccess.Write, FileShare.Read, bufferSize: 0);
}
