using System.IO.Pipelines;
using System.Net.Sockets;
using System.Security.Cryptography;
using KvReplica.Client.Transport;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client.Backup;

/// <summary>What a finished backup download wrote.</summary>
/// <param name="ReplicaId">The replica that took the snapshot.</param>
/// <param name="Bytes">Size of the file.</param>
/// <param name="ThroughTime">Stamp (time) of the last write included.</param>
/// <param name="ThroughReplica">Stamp (replica id) of the last write included.</param>
public sealed record BackupResult(int ReplicaId, long Bytes, long ThroughTime, int ThroughReplica);

/// <summary>
/// Downloads a backup (docs/protocol.md, "Backup"): asks one replica for a fresh snapshot of its
/// store (the state after one point of the total order, which every replica passes through
/// identically) and writes the streamed file, checking offsets and the SHA-256 the replica sends
/// last. The file is written under a temporary name, fsynced and renamed only when it is whole,
/// so a failed download never leaves something that looks like a backup.
/// </summary>
public static class BackupDownloader
{
    /// <summary>
    /// Tries the replicas in order (<paramref name="preferredReplicaId"/> first) until one serves
    /// the backup. Throws <see cref="IOException"/> with one line when none can.
    /// </summary>
    public static async Task<BackupResult> DownloadAsync(ClusterConfig config, int? preferredReplicaId, string path, CancellationToken ct = default)
    {
        var order = config.Replicas.OrderBy(r => r.Id == preferredReplicaId ? 0 : 1).ThenBy(r => r.Id).ToList();
        var failures = new List<string>();
        foreach (var replica in order)
        {
            try
            {
                return await DownloadFromAsync(config, replica, path, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or FrameException or HandshakeRejectedException or Transport.ProtocolViolationException)
            {
                failures.Add($"replica {replica.Id}: {e.Message}");
            }
        }
        throw new IOException($"no replica could serve the backup ({string.Join("; ", failures)})");
    }

    private static Task<BackupResult> DownloadFromAsync(ClusterConfig config, ReplicaAddress replica, string path, CancellationToken ct) =>
        ReceiveStreamAsync(config, replica, PeerKind.Backup, 0, [path], ct);

    /// <summary>
    /// Opens a connection of <paramref name="kind"/> (<see cref="PeerKind.Backup"/>, or
    /// <see cref="PeerKind.CatchUp"/> for a replica fetching a peer's state) and writes each part
    /// of the stream to the matching path in <paramref name="paths"/>. Every part is checked
    /// (offsets without gaps, its SHA-256), written under a temporary name, fsynced and renamed
    /// into place only when whole. Throws <see cref="IOException"/> (and socket or frame
    /// exceptions) with one line on any failure; nothing partial is left behind.
    /// </summary>
    public static async Task<BackupResult> ReceiveStreamAsync(ClusterConfig config, ReplicaAddress replica, PeerKind kind, int selfReplicaId, IReadOnlyList<string> paths, CancellationToken ct)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(replica.Host, replica.Port, ct).ConfigureAwait(false);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var reader = PipeReader.Create(stream);
        var writer = PipeWriter.Create(stream);
        FrameCodec.WriteFrame(writer, new Hello { ProtocolVersion = ProtocolVersion.Current, ClusterName = config.ClusterName, Kind = kind, ReplicaId = selfReplicaId });
        await writer.FlushAsync(ct).ConfigureAwait(false);
        switch (await ReplicaConnection.ReadFrameAsync(reader, config.MaxFrameBytes, "handshake", ct).ConfigureAwait(false))
        {
            case HelloAccepted:
                break;
            case HelloRejected rejected:
                throw new HandshakeRejectedException(rejected.Reason);
            case var other:
                throw new Transport.ProtocolViolationException($"answered the handshake with {other.GetType().Name}");
        }

        long total = 0;
        BackupChunk? last = null;
        for (int part = 0; part < paths.Count; part++)
        {
            string partial = paths[part] + ".partial";
            try
            {
                using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                long written = 0;
                await using (var file = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
                {
                    last = null;
                    while (last is null)
                    {
                        var message = await ReplicaConnection.ReadFrameAsync(reader, config.MaxFrameBytes, "snapshot stream", ct).ConfigureAwait(false);
                        if (message is not BackupChunk chunk)
                        {
                            throw new Transport.ProtocolViolationException($"sent {message.GetType().Name} in the snapshot stream");
                        }
                        if (chunk.Error is not null)
                        {
                            throw new IOException($"replica {replica.Id} failed to make the snapshot: {chunk.Error}");
                        }
                        if (chunk.Part != part || chunk.Offset != written)
                        {
                            throw new IOException($"chunk of part {chunk.Part} at offset {chunk.Offset}, expected part {part} at {written}");
                        }
                        await file.WriteAsync(chunk.Data, ct).ConfigureAwait(false);
                        sha.AppendData(chunk.Data);
                        written += chunk.Data.Length;
                        if (chunk.Last)
                        {
                            byte[] expected = chunk.Sha256 ?? throw new IOException($"the last chunk of part {part} has no checksum");
                            if (!CryptographicOperations.FixedTimeEquals(expected, sha.GetHashAndReset()))
                            {
                                throw new IOException($"the SHA-256 of part {part} does not match what replica {replica.Id} sent; the transfer was damaged");
                            }
                            file.Flush(flushToDisk: true);
                            last = chunk;
                        }
                    }
                }
                File.Move(partial, paths[part], overwrite: true);
                total += written;
            }
            finally
            {
                if (File.Exists(partial))
                {
                    File.Delete(partial);
                }
            }
        }
        return new BackupResult(replica.Id, total, last!.ThroughTime, last.ThroughReplica);
    }
}
