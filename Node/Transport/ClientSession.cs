using System.Net.Sockets;
using System.Threading.Channels;
using KvReplica.Protocol.Wire;
using KvReplica.Transport;
using Microsoft.Extensions.Logging;

namespace KvReplica.Node.Transport;

/// <summary>
/// One client connection's outgoing side: replies queue here from the core loop and one writer
/// task sends them, flushing only when the queue runs dry so that a burst of replies shares a
/// single system call.
/// </summary>
/// <remarks>
/// The core loop never waits for a client, so a client that keeps asking but stops reading would
/// have its replies pile up here without bound (its socket's send buffer full, the writer stuck in
/// a flush). Beyond <see cref="ConnectionLimits.MaxQueuedReplyBytes"/> queued and unsent, the
/// connection is closed instead, with a log line.
/// </remarks>
internal sealed class ClientSession(long id, FramedConnection connection, ILogger logger)
{
    private readonly Channel<ClientReply> _replies = Channel.CreateUnbounded<ClientReply>(new UnboundedChannelOptions { SingleReader = true });
    private long _queuedBytes;
    private int _overflowed;

    public long Id { get; } = id;

    /// <summary>Replies queued and not yet handed to the socket, as <see cref="ConnectionLimits.MaxQueuedReplyBytes"/> counts them.</summary>
    public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    private static long Cost(ClientReply reply) =>
        (reply.Value?.Length ?? 0) + ConnectionLimits.ReplyOverheadBytes
        + (reply.Entries?.Sum(e => 2L * e.Key.Length + (e.Value?.Length ?? 0) + 32) ?? 0)
        + (reply.Events?.Sum(e => 2L * e.Key.Length + (e.Value?.Length ?? 0) + 32) ?? 0);

    public void Enqueue(ClientReply reply)
    {
        long queued = Interlocked.Add(ref _queuedBytes, Cost(reply));
        if (queued > ConnectionLimits.MaxQueuedReplyBytes)
        {
            if (Interlocked.Exchange(ref _overflowed, 1) == 0)
            {
                Log.ClientNotReading(logger, Id, queued, ConnectionLimits.MaxQueuedReplyBytes);
                Abort();
            }
            return;
        }
        _replies.Writer.TryWrite(reply);
    }

    public void Complete() => _replies.Writer.TryComplete();

    public void Abort()
    {
        Complete();
        connection.Abort();
    }

    public async Task RunWriterAsync(CancellationToken stopping)
    {
        var reader = _replies.Reader;
        try
        {
            while (await reader.WaitToReadAsync(stopping).ConfigureAwait(false))
            {
                long taken = 0;
                while (reader.TryRead(out var reply))
                {
                    connection.Write(reply);
                    taken += Cost(reply);
                }
                await connection.FlushAsync(stopping).ConfigureAwait(false);
                // Counted as queued until the socket took them: a flush that never completes
                // (the client does not read) keeps them counted.
                Interlocked.Add(ref _queuedBytes, -taken);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // The connection closed; replies still queued have nobody to go to.
            connection.Abort();
        }
    }
}
