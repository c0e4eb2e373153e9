using System.Security.Cryptography;
using KvReplica.Protocol.Wire;

namespace KvReplica.Transport;

/// <summary>
/// The sending side of a backup or catch-up stream (docs/protocol.md, "Backup and catch-up
/// streams"): each part is the concatenation of some files, sent as <see cref="BackupChunk"/>s
/// and closed by a chunk that carries the part's SHA-256.
/// </summary>
public static class SnapshotStreamSender
{
    /// <summary>
    /// Streams the concatenation of <paramref name="sources"/> as part <paramref name="part"/>, from
    /// byte <paramref name="skip"/> on, in chunks of at most <paramref name="chunkBytes"/>, through
    /// <paramref name="send"/>. Each send waits for the socket to drain (the pipe's flush), so a slow
    /// reader slows the stream instead of filling memory: one chunk is all it holds, however large
    /// the files. The final chunk's SHA-256 covers the whole part, skipped bytes included, so a
    /// reader that pieced it together over several connections checks the whole.
    /// </summary>
    /// <param name="send">Sends one chunk and waits until it is handed to the socket.</param>
    /// <param name="template">The stream's header fields (what it runs through), copied into every chunk.</param>
    /// <param name="part">0 for the snapshot, 1 for the log suffix.</param>
    /// <param name="sources">The part's files, in order, each read to its end.</param>
    /// <param name="skip">Bytes of the part the reader already has (a resumed stream).</param>
    /// <param name="chunkBytes">The largest chunk.</param>
    /// <param name="cancellation">Stops the stream.</param>
    /// <returns>The bytes sent (those after <paramref name="skip"/>).</returns>
    /// <exception cref="IOException"><paramref name="skip"/> is past the end of the part.</exception>
    public static async Task<long> SendPartAsync(Func<BackupChunk, CancellationToken, ValueTask> send, BackupChunk template, int part, IReadOnlyList<Stream> sources, long skip, int chunkBytes, CancellationToken cancellation)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[chunkBytes];
        long offset = 0, sent = 0;
        foreach (var source in sources)
        {
            while (true)
            {
                int want = offset < skip ? (int)Math.Min(buffer.Length, skip - offset) : buffer.Length;
                int read = await source.ReadAsync(buffer.AsMemory(0, want), cancellation).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }
                sha.AppendData(buffer, 0, read);
                if (offset >= skip)
                {
                    await send(Chunk(template, part, offset, buffer[..read]), cancellation).ConfigureAwait(false);
                    sent += read;
                }
                offset += read;
            }
        }
        if (offset < skip)
        {
            throw new IOException($"resume offset {skip} is past the end of part {part} ({offset} bytes)");
        }
        var last = Chunk(template, part, offset, []);
        last.Last = true;
        last.Sha256 = sha.GetHashAndReset();
        await send(last, cancellation).ConfigureAwait(false);
        return sent;
    }

    private static BackupChunk Chunk(BackupChunk template, int part, long offset, byte[] data) => new()
    {
        Part = part,
        Offset = offset,
        Data = data,
        ThroughTime = template.ThroughTime,
        ThroughReplica = template.ThroughReplica,
        SuffixFrom = template.SuffixFrom,
        SuffixThrough = template.SuffixThrough,
    };
}
