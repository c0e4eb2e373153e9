using KvReplica.Protocol.Core;
using System.Buffers.Binary;
using System.Globalization;
using KvReplica.Clock;
using KvReplica.Store.Engine;
using KvReplica.Store.Persistence;

// make-backup <file> <keys> <value-bytes>: writes a backup file (the snapshot format `client
// backup` produces) of <keys> keys bench-0 .. bench-<keys - 1> (the keys `client bench` uses)
// with <value-bytes>-byte values, as if one
// replica had applied one write per key. `node <id> <config> --restore <file>` seeds a replica
// from it, which is how the storage measurements get a store of tens of millions of keys in
// minutes instead of filling it through the write path (docs/design.md, section 10).
if (args.Length != 3 || !long.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out long keys) || keys < 0
    || !int.TryParse(args[2], NumberStyles.None, CultureInfo.InvariantCulture, out int valueBytes) || valueBytes < 0)
{
    Console.Error.WriteLine("usage: make-backup <file> <keys> <value-bytes>");
    return 2;
}
var started = System.Diagnostics.Stopwatch.StartNew();
using (var engine = new SyntheticEngine(keys, valueBytes))
using (var view = engine.OpenView())
using (var snapshot = SnapshotFormat.OpenStream(view))
using (var file = new FileStream(args[0], FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
{
    snapshot.CopyTo(file, 1 << 20);
    file.Flush(flushToDisk: true);
}
Console.WriteLine($"make-backup: {keys} keys of {valueBytes} bytes into {args[0]} ({new FileInfo(args[0]).Length >> 20} MiB) in {started.Elapsed.TotalSeconds:0.0} s");
return 0;

/// <summary>
/// An engine that has "applied" key i at stamp (i + 1, 1), produced on the fly. Its keys come in
/// numeric, not key, order: an import takes any order, and only this tool's output needs it.
/// </summary>
internal sealed class SyntheticEngine(long keys, int valueBytes) : IStorageEngine, IEngineView
{
    public AppliedPoint? Applied { get; } = new(new Stamp(Math.Max(keys, 1), 1), new Dictionary<int, long> { [1] = Math.Max(keys, 1) }, keys, keys, 0);

    public bool TryGet(string key, out byte[] value, out Stamp version) => throw new NotSupportedException();

    public bool Contains(string key) => throw new NotSupportedException();

    public void Refresh()
    {
    }

    public IReadOnlyList<SessionRecord> LoadSessions() => [];

    public void Commit(EngineBatch batch) => throw new NotSupportedException();

    public IEngineView OpenView() => this;

    public IEnumerable<StoredEntry> Scan(KeyRange range)
    {
        for (long i = 0; i < keys; i++)
        {
            var value = new byte[valueBytes];
            // Distinct, not compressible to nothing: the key number, then a pattern.
            for (int b = 0; b < value.Length; b++)
            {
                value[b] = (byte)('a' + ((i + b) % 26));
            }
            if (value.Length >= 8)
            {
                BinaryPrimitives.WriteInt64LittleEndian(value, i);
            }
            yield return new StoredEntry("bench-" + i.ToString(CultureInfo.InvariantCulture), value, new Stamp(i + 1, 1));
        }
    }

    public IEnumerable<SessionRecord> Sessions() => [];

    public void Dispose()
    {
    }
}
