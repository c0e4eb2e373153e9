using System.Net.Sockets;
using System.Threading.Channels;
using KvReplica.Protocol.Wire;

namespace KvReplica.Node.Transport;

/// <summary>
/// One client connection's outgoing side: replies queue here from the core loop and one writer
/// task sends them, flushing only when the queue runs dry so that a burst of replies shares a
/// single system call.
/// </summary>
internal sealed class ClientSession(long id, FramedConnection connection)
{
    private readonly Channel<ClientReply> _replies = Channel.CreateUnbounded<ClientReply>(new UnboundedChannelOptions { SingleReader = true });

    public long Id { get; } = id;

    public void Enqueue(ClientReply reply) => _replies.Writer.TryWrite(reply);

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
                while (reader.TryRead(out var reply))
                {
                    connection.Write(reply);
                }
                await connection.FlushAsync(stopping).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // The connection closed; replies still queued have nobody to go to.
            connection.Abort();
        }
    }
}
