using System.Buffers;
using System.Globalization;
using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Store.Persistence;

namespace KvReplica.Node.Storage;

/// <summary>What opening the log found.</summary>
/// <param name="Writes">Every intact logged write, oldest first.</param>
/// <param name="TruncatedTail">Null, or what was cut off the newest segment and where (for the log line).</param>
internal sealed record WalRecovery(IReadOnlyList<WriteCommand> Writes, string? TruncatedTail);

/// <summary>
/// The write-ahead log on disk: numbered segment files (<c>wal-000001.log</c>, ...) of
/// <see cref="WriteAheadLog"/> records in one directory. Appends come in group-commit batches,
/// one write and at most one fsync each; segments roll at a size limit, and whole segments
/// older than a snapshot are deleted.
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
        var writes = new List<WriteCommand>();
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
            writes.AddRange(scan.Writes);
            segmentMax = scan.Writes.Select(w => w.Stamp).DefaultIfEmpty(Stamp.Zero).Max();
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
        var current = new FileStream(SegmentPath(directory, currentIndex), FileMode.Append, FileAccess.Write, FileShare.Read);
        if (indexes.Count == 0)
        {
            DirectorySync.Fsync(directory);
        }
        recovery = new WalRecovery(writes, truncated);
        var wal = new WalFile(directory, policy, segmentBytes, current, currentIndex, indexes.Count > 0 ? segmentMax : Stamp.Zero);
        wal._closedSegments.AddRange(closed);
        return wal;
    }

    /// <summary>
    /// Appends one group-commit batch with a single write, and fsyncs it under the
    /// <see cref="FsyncPolicy.Always"/> policy before returning. Rolls to a new segment afterwards
    /// when the current one has reached the size limit.
    /// </summary>
    public void Append(IReadOnlyList<WriteCommand> batch)
    {
        if (batch.Count == 0)
        {
            return;
        }
        _batch.ResetWrittenCount();
        WriteAheadLog.Append(_batch, batch);
        _current.Write(_batch.WrittenSpan);
        _current.Flush(flushToDisk: false);
        foreach (var write in batch)
        {
            _currentMax = write.Stamp > _currentMax ? write.Stamp : _currentMax;
        }
        _unsynced = true;
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

    private void Roll()
    {
        Sync();
        _current.Dispose();
        _closedSegments.Add((_currentIndex, _currentMax));
        _currentMax = Stamp.Zero;
        _currentIndex++;
        _current = new FileStream(SegmentPath(_directory, _currentIndex), FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        DirectorySync.Fsync(_directory);
    }

    /// <summary>
    /// Deletes closed segments, oldest first, while every write in the segment is at or before
    /// <paramref name="snapshotStamp"/>; returns how many.
    /// </summary>
    public int DeleteSegmentsThrough(Stamp snapshotStamp)
    {
        int deleted = 0;
        while (_closedSegments.Count > 0 && _closedSegments[0].Max <= snapshotStamp)
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
        Sync();
        _current.Dispose();
    }
}
