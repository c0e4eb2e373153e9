using System.Net.Sockets;
using System.Security.Cryptography;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

namespace KvReplica.Transport;

/// <summary>What a finished backup download wrote.</summary>
/// <param name="ReplicaId">The replica that took the snapshot.</param>
/// <param name="Bytes">Size of the file.</param>
/// <param name="ThroughTime">Stamp (time) of the last write included.</param>
/// <param name="ThroughReplica">Stamp (replica id) of the last write included.</param>
public sealed record BackupResult(int ReplicaId, long Bytes, long ThroughTime, int ThroughReplica);

/// <summary>
/// Receives the snapshot streams replicas serve (docs/protocol.md, "Backup"): a backup, a fresh
/// snapshot of one replica's store (the state after one point of the total order, which every
/// replica passes through identically), and a catch-up, a replica's snapshot and log suffix for a
/// peer that lost its own. Files are written under temporary names, checked (offsets, SHA-256),
/// fsynced and renamed only when whole, so a failed download never leaves something that looks
/// like a finished one.
/// </summary>
public static class SnapshotStreamReceiver
{
    /// <summary>
    /// Tries the replicas in order (<paramref name="preferredReplicaId"/> first) until one serves
    /// the backup. Throws <see cref="IOException"/> with one line when none can.
    /// </summary>
    public static async Task<BackupResult> DownloadAsync(DialSettings settings, int? preferredReplicaId, string path, CancellationToken ct = default)
    {
        var order = settings.Config.Replicas.OrderBy(r => r.Id == preferredReplicaId ? 0 : 1).ThenBy(r => r.Id).ToList();
        var failures = new List<string>();
        foreach (var replica in order)
        {
            try
            {
                return await DownloadFromAsync(settings, replica, path, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or FrameException or HandshakeRejectedException or UnexpectedMessageException)
            {
                failures.Add($"replica {replica.Id}: {e.Message}");
            }
        }
        throw new IOException($"no replica could serve the backup ({string.Join("; ", failures)})");
    }

    private static Task<BackupResult> DownloadFromAsync(DialSettings settings, ReplicaAddress replica, string path, CancellationToken ct) =>
        ReceiveStreamAsync(settings, replica, PeerKind.Backup, [path], new StreamProgress(), ct);

    /// <summary>
    /// Opens a connection of <paramref name="kind"/> (<see cref="PeerKind.Backup"/>, or
    /// <see cref="PeerKind.CatchUp"/> for a replica fetching a peer's state) and writes each part
    /// of the stream to the matching path in <paramref name="paths"/>. Every part is checked
    /// (offsets without gaps, the SHA-256 of the whole file), written under a temporary name
    /// (<c>.partial</c>), fsynced and renamed into place only when whole. Throws
    /// <see cref="IOException"/> (or a socket or frame exception) with one line on failure.
    /// </summary>
    /// <remarks>
    /// A catch-up stream can be resumed: <paramref name="progress"/> records how far it got, and
    /// passing it back (same paths, same peer) asks only for the rest. A broken connection then
    /// costs the bytes in flight, not the whole transfer.
    /// </remarks>
    public static async Task<BackupResult> ReceiveStreamAsync(DialSettings settings, ReplicaAddress replica, PeerKind kind,
        IReadOnlyList<string> paths, StreamProgress progress, CancellationToken ct)
    {
        await using var connection = await ReplicaDialer.OpenAsync(settings, replica, kind, ct).ConfigureAwait(false);
        bool resuming = progress.Started;
        if (kind == PeerKind.CatchUp)
        {
            await connection.SendAsync(resuming
                ? new CatchUpRequest
                {
                    ResumeThroughTime = progress.ThroughTime,
                    ResumeThroughReplica = progress.ThroughReplica,
                    ResumeSuffixFrom = progress.SuffixFrom,
                    ResumeSuffixThrough = progress.SuffixThrough,
                    ResumePart = progress.Part,
                    ResumeOffset = progress.Offset,
                }
                : new CatchUpRequest(), ct).ConfigureAwait(false);
        }

        BackupChunk? last = null;
        for (int part = resuming ? progress.Part : 0; part < paths.Count; part++)
        {
            string partial = paths[part] + ".partial";
            long written = resuming && part == progress.Part ? progress.Offset : 0;
            await using (var file = new FileStream(partial, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read, 1 << 20))
            {
                file.SetLength(written);
                file.Seek(written, SeekOrigin.Begin);
                progress.Part = part;
                progress.Offset = written;
                last = null;
                while (last is null)
                {
                    var message = await connection.ReadFrameAsync("snapshot stream", ct).ConfigureAwait(false);
                    if (message is not BackupChunk chunk)
                    {
                        throw new UnexpectedMessageException($"sent {message.GetType().Name} in the snapshot stream");
                    }
                    if (chunk.Error is not null)
                    {
                        progress.Reset();
                        throw new IOException($"replica {replica.Id} cannot serve the snapshot: {chunk.Error}");
                    }
                    if (chunk.Part != part || chunk.Offset != written)
                    {
                        throw new IOException($"chunk of part {chunk.Part} at offset {chunk.Offset}, expected part {part} at {written}");
                    }
                    await file.WriteAsync(chunk.Data, ct).ConfigureAwait(false);
                    written += chunk.Data.Length;
                    (progress.ThroughTime, progress.ThroughReplica, progress.SuffixFrom, progress.SuffixThrough, progress.Offset) = (chunk.ThroughTime, chunk.ThroughReplica, chunk.SuffixFrom, chunk.SuffixThrough, written);
                    progress.Started = true;
                    if (chunk.Last)
                    {
                        file.Flush(flushToDisk: true);
                        last = chunk;
                    }
                }
            }
            byte[] expected = last.Sha256 ?? throw new IOException($"the last chunk of part {part} has no checksum");
            byte[] actual;
            await using (var check = new FileStream(partial, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20))
            {
                actual = await SHA256.HashDataAsync(check, ct).ConfigureAwait(false);
            }
            if (!CryptographicOperations.FixedTimeEquals(expected, actual))
            {
                File.Delete(partial);
                progress.Reset();
                throw new IOException($"the SHA-256 of part {part} does not match what replica {replica.Id} sent; the transfer was damaged");
            }
            File.Move(partial, paths[part], overwrite: true);
            progress.Bytes += written;
            resuming = false;
        }
        return new BackupResult(replica.Id, progress.Bytes, last!.ThroughTime, last.ThroughReplica);
    }
}

/// <summary>How far a snapshot stream got, so that a broken one can be resumed (see <see cref="SnapshotStreamReceiver.ReceiveStreamAsync"/>).</summary>
public sealed class StreamProgress
{
    /// <summary>Whether a chunk has arrived, so that the fields below name the stream.</summary>
    public bool Started { get; internal set; }
    /// <summary>The stream's snapshot stamp (zero for an empty store's snapshot).</summary>
    public long ThroughTime { get; internal set; }
    public int ThroughReplica { get; internal set; }
    /// <summary>Catch-up streams: the log segments of the suffix.</summary>
    public int SuffixFrom { get; internal set; }
    public int SuffixThrough { get; internal set; }
    /// <summary>The part being received, and the bytes of it already in its <c>.partial</c> file.</summary>
    public int Part { get; internal set; }
    public long Offset { get; internal set; }
    /// <summary>Bytes of the parts completed.</summary>
    public long Bytes { get; internal set; }

    /// <summary>Forget the stream: the next attempt asks for a fresh one.</summary>
    public void Reset() => (Started, ThroughTime, ThroughReplica, SuffixFrom, SuffixThrough, Part, Offset, Bytes) = (false, 0, 0, 0, 0, 0, 0, 0);
}
