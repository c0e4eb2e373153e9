using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

namespace KvReplica.Tests.Client;

/// <summary>
/// An in-process stand-in for a replica: accepts clients on 127.0.0.1, answers the handshake
/// (or rejects it), records every request and hands it to a test-supplied handler together with
/// a way to reply on the same connection.
/// </summary>
internal sealed class FakeReplica : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Action<ClientRequest, FakeConnection> _onRequest;
    private readonly string? _rejectReason;
    private readonly ConcurrentDictionary<FakeConnection, byte> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private int _accepted;

    private FakeReplica(int id, Action<ClientRequest, FakeConnection> onRequest, string? rejectReason)
    {
        Id = id;
        _onRequest = onRequest;
        _rejectReason = rejectReason;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptLoopAsync();
    }

    public int Id { get; }
    public int Port { get; }
    public ReplicaAddress Address => new(Id, "127.0.0.1", Port);
    public ConcurrentQueue<ClientRequest> Received { get; } = new();
    public ConcurrentQueue<Hello> Hellos { get; } = new();
    public int ConnectionsAccepted => Volatile.Read(ref _accepted);

    /// <summary>A replica with the given request handler.</summary>
    public static FakeReplica Start(int id, Action<ClientRequest, FakeConnection> onRequest) => new(id, onRequest, null);

    /// <summary>A replica that answers every handshake with HelloRejected and closes.</summary>
    public static FakeReplica Rejecting(int id, string reason) => new(id, (_, _) => { }, reason);

    /// <summary>A replica that keeps an in-memory map and answers every request at once.</summary>
    public static FakeReplica WithStore(int id)
    {
        var store = new ConcurrentDictionary<string, byte[]>();
        long clock = 0;
        return Start(id, (request, connection) =>
        {
            var reply = new ClientReply { RequestId = request.RequestId, Status = ReplyStatus.Ok };
            switch (request.Operation)
            {
                case Operation.Put:
                    store[request.Key] = request.Value!;
                    break;
                case Operation.Delete:
                    reply.Status = store.TryRemove(request.Key, out _) ? ReplyStatus.Ok : ReplyStatus.NotFound;
                    break;
                case Operation.Get when store.TryGetValue(request.Key, out var value):
                    reply.Value = value;
                    reply.VersionTime = Interlocked.Increment(ref clock);
                    reply.VersionReplica = id;
                    break;
                default:
                    reply.Status = ReplyStatus.NotFound;
                    break;
            }
            connection.Reply(reply);
        });
    }

    /// <summary>A port nothing listens on (connecting to it is refused).</summary>
    public static int UnusedPort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    /// <summary>Stops listening and drops every connection, as a crashed replica would.</summary>
    public void Crash()
    {
        _stopping.Cancel();
        _listener.Stop();
        foreach (var connection in _connections.Keys)
        {
            connection.Drop();
        }
    }

    public ValueTask DisposeAsync()
    {
        Crash();
        return ValueTask.CompletedTask;
    }

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                var socket = await _listener.AcceptSocketAsync(_stopping.Token);
                Interlocked.Increment(ref _accepted);
                var connection = new FakeConnection(socket);
                _connections[connection] = 0;
                _ = ServeAsync(connection);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }
    }

    private async Task ServeAsync(FakeConnection connection)
    {
        var reader = PipeReader.Create(connection.Stream);
        bool handshaken = false;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(_stopping.Token);
                var buffer = result.Buffer;
                try
                {
                    while (FrameCodec.TryReadFrame(ref buffer, Limits.DefaultMaxFrameBytes, out var message))
                    {
                        if (!handshaken)
                        {
                            Hellos.Enqueue((Hello)message);
                            if (_rejectReason is not null)
                            {
                                connection.Send(new HelloRejected { Reason = _rejectReason });
                                connection.Drop();
                                return;
                            }
                            connection.Send(new HelloAccepted { ProtocolVersion = ProtocolVersion.Current, ReplicaId = Id, MaxFrameBytes = Limits.DefaultMaxFrameBytes });
                            handshaken = true;
                            continue;
                        }
                        var request = (ClientRequest)message;
                        Received.Enqueue(request);
                        _onRequest(request, connection);
                    }
                    if (result.IsCompleted)
                    {
                        return;
                    }
                }
                finally
                {
                    reader.AdvanceTo(buffer.Start, buffer.End);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
            // The client went away or the replica "crashed".
        }
        finally
        {
            connection.Drop();
            _connections.TryRemove(connection, out _);
        }
    }
}

/// <summary>One accepted client connection of a <see cref="FakeReplica"/>.</summary>
internal sealed class FakeConnection(Socket socket)
{
    private readonly Lock _writeGate = new();

    public NetworkStream Stream { get; } = new(socket, ownsSocket: true);

    public void Reply(ClientReply reply) => Send(reply);

    public void Send(Message message)
    {
        byte[] frame = FrameCodec.ToFrameBytes(message);
        try
        {
            lock (_writeGate)
            {
                Stream.Write(frame);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The connection is gone; the client will re-send elsewhere.
        }
    }

    public void Drop() => Stream.Dispose();
}

internal static class Eventually
{
    /// <summary>Waits until <paramref name="condition"/> holds, failing the test if it does not within <paramref name="timeout"/>.</summary>
    public static async Task HoldsAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                NUnit.Framework.Assert.Fail($"timed out after {timeout.TotalSeconds:0.#} s waiting for: {what}");
            }
            await Task.Delay(10);
        }
    }
}
