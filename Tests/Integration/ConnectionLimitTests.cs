using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using KvReplica.Node;
using KvReplica.Protocol.Wire;
using NUnit.Framework;

namespace KvReplica.Tests.Integration;

/// <summary>
/// The limits of <see cref="ConnectionLimits"/> on a real <c>node</c> process over loopback: a
/// frame that stops arriving, a flood of connections that never say Hello, a client that never
/// reads its replies. In each case the replica closes what misbehaves and keeps serving.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class ConnectionLimitTests
{
    private static string ClusterName(LocalCluster cluster) => File.ReadAllText(cluster.ConfigPath).Split('"')[3];

    /// <summary>A raw client connection, handshake done.</summary>
    private sealed class RawClient(Socket socket) : IDisposable
    {
        private readonly ArrayBufferWriter<byte> _received = new();
        private long _nextRequest;

        public Socket Socket { get; } = socket;

        public static async Task<RawClient> ConnectAsync(LocalCluster cluster, int replica = 1)
        {
            var client = await TryConnectAsync(cluster, replica);
            Assert.That(client, Is.Not.Null, "handshake accepted");
            return client!;
        }

        /// <summary>Null if the replica closed the connection instead of accepting the handshake.</summary>
        public static async Task<RawClient?> TryConnectAsync(LocalCluster cluster, int replica = 1)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            var client = new RawClient(socket);
            try
            {
                await socket.ConnectAsync("127.0.0.1", cluster.Port(replica));
                await socket.SendAsync(FrameCodec.ToFrameBytes(new Hello { ProtocolVersion = ProtocolVersion.Current, ClusterName = ClusterName(cluster), Kind = PeerKind.Client }));
            }
            catch (SocketException)
            {
                client.Dispose();
                return null;
            }
            if (await client.ReadAsync(TimeSpan.FromSeconds(10)) is HelloAccepted)
            {
                return client;
            }
            client.Dispose();
            return null;
        }

        public Task SendAsync(ClientRequest request) => Socket.SendAsync(FrameCodec.ToFrameBytes(request));

        public ClientRequest Put(string key, byte[] value) => new() { RequestId = ++_nextRequest, Operation = Operation.Put, Key = key, Value = value, ClientId = 42, Sequence = _nextRequest, AckedBelow = 1 };

        public ClientRequest Get(string key) => new() { RequestId = ++_nextRequest, Operation = Operation.Get, Key = key };

        /// <summary>The next frame, or null when the replica closed the connection.</summary>
        public async Task<Message?> ReadAsync(TimeSpan deadline)
        {
            using var timeout = new CancellationTokenSource(deadline);
            var buffer = new byte[64 * 1024];
            while (true)
            {
                var sequence = new ReadOnlySequence<byte>(_received.WrittenMemory);
                if (FrameCodec.TryReadFrame(ref sequence, 32 << 20, out var message))
                {
                    byte[] rest = sequence.ToArray();
                    _received.Clear();
                    _received.Write(rest);
                    return message;
                }
                int n;
                try
                {
                    n = await Socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
                }
                catch (SocketException)
                {
                    return null;
                }
                if (n == 0)
                {
                    return null;
                }
                _received.Write(buffer.AsSpan(0, n));
            }
        }

        public async Task<ClientReply> RoundTripAsync(ClientRequest request)
        {
            await SendAsync(request);
            var reply = await ReadAsync(TimeSpan.FromSeconds(10));
            Assert.That(reply, Is.TypeOf<ClientReply>());
            return (ClientReply)reply!;
        }

        public void Dispose() => Socket.Dispose();
    }

    // Waits until the replica closes `socket` (end of stream or a reset); returns how long that took.
    private static async Task<TimeSpan> WaitForCloseAsync(Socket socket, TimeSpan deadline)
    {
        var clock = Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(deadline);
        var buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) > 0)
            {
            }
        }
        catch (SocketException)
        {
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"the connection was still open after {deadline.TotalSeconds:0} s");
        }
        return clock.Elapsed;
    }

    [Test]
    public async Task A_frame_header_with_no_body_is_closed_at_the_frame_deadline_and_the_replica_serves_on()
    {
        await using var cluster = await LocalCluster.StartAsync(count: 1);
        var progress = ConnectionLimits.FrameProgressTimeout;
        var stalled = new List<RawClient>();
        for (int i = 0; i < 20; i++)
        {
            var client = await RawClient.ConnectAsync(cluster);
            // A header promising 16 MiB (within maxFrameBytes), and nothing behind it.
            byte[] header = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(header, (16 << 20) - 1024);
            await client.Socket.SendAsync(header);
            stalled.Add(client);
        }
        var closes = await Task.WhenAll(stalled.Select(c => WaitForCloseAsync(c.Socket, progress + TimeSpan.FromSeconds(5))));
        TestContext.Out.WriteLine($"closed after {string.Join(", ", closes.Select(c => $"{c.TotalSeconds:0.0}"))} s");
        Assert.That(closes, Has.All.GreaterThan(progress - TimeSpan.FromSeconds(1)), "held until the deadline, not cut at once");
        Assert.That(cluster.Log(1), Does.Contain("a frame stopped arriving"));
        using var healthy = await RawClient.ConnectAsync(cluster);
        Assert.That((await healthy.RoundTripAsync(healthy.Put("k", [1, 2, 3]))).Status, Is.EqualTo(ReplyStatus.Ok));
        stalled.ForEach(c => c.Dispose());
    }

    [Test]
    public async Task A_large_frame_that_keeps_arriving_slowly_is_not_cut_off()
    {
        await using var cluster = await LocalCluster.StartAsync(count: 1);
        using var client = await RawClient.ConnectAsync(cluster);
        byte[] frame = FrameCodec.ToFrameBytes(client.Put("slow", new byte[512 * 1024]));
        // Past the progress timeout in all, but never silent for that long.
        var pause = ConnectionLimits.FrameProgressTimeout / 4;
        int pieces = 6;
        int piece = frame.Length / pieces + 1;
        for (int offset = 0; offset < frame.Length; offset += piece)
        {
            await client.Socket.SendAsync(frame.AsMemory(offset, Math.Min(piece, frame.Length - offset)));
            if (offset + piece < frame.Length)
            {
                await Task.Delay(pause);
            }
        }
        var reply = await client.ReadAsync(TimeSpan.FromSeconds(10));
        Assert.That(reply, Is.TypeOf<ClientReply>(), "the slow frame was taken whole");
        Assert.That(((ClientReply)reply!).Status, Is.EqualTo(ReplyStatus.Ok));
    }

    [Test]
    public async Task Connections_beyond_the_cap_that_never_say_hello_are_closed_at_once_and_clients_still_work()
    {
        await using var cluster = await LocalCluster.StartAsync(count: 1);
        using var before = await RawClient.ConnectAsync(cluster);
        int cap = ConnectionLimits.MaxUnauthenticatedConnections;
        var idle = new List<Socket>();
        var clock = Stopwatch.StartNew();
        int closedEarly = 0;
        for (int i = 0; i < cap + 100; i++)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync("127.0.0.1", cluster.Port(1));
                idle.Add(socket);
            }
            catch (SocketException)
            {
                // Reset by the replica before the connect even returned: refused at once.
                socket.Dispose();
                closedEarly++;
            }
        }
        // The excess is closed at once, well before the handshake deadline would close them;
        // the first `cap` are held until that deadline.
        foreach (var socket in idle.Skip(cap))
        {
            await WaitForCloseAsync(socket, ConnectionLimits.HandshakeTimeout - TimeSpan.FromSeconds(1));
            closedEarly++;
        }
        Assert.That(idle, Has.Count.GreaterThanOrEqualTo(cap), "the first ones are let in");
        Assert.That(closedEarly, Is.EqualTo(100));
        Assert.That(clock.Elapsed, Is.LessThan(ConnectionLimits.HandshakeTimeout - TimeSpan.FromSeconds(1)));
        // A client already connected is not affected.
        Assert.That((await before.RoundTripAsync(before.Put("during", [7]))).Status, Is.EqualTo(ReplyStatus.Ok));
        // Once the idle ones reach the handshake deadline and are closed, a new client gets in.
        using var after = await ConnectWithRetryAsync(cluster, ConnectionLimits.HandshakeTimeout + TimeSpan.FromSeconds(5));
        Assert.That((await after.RoundTripAsync(after.Get("during"))).Value, Is.EqualTo(new byte[] { 7 }));
        // One line about the refusals, not one per connection.
        int lines = cluster.Log(1).Split('\n').Count(l => l.Contains("connections were already waiting to complete their handshake", StringComparison.Ordinal));
        Assert.That(lines, Is.EqualTo(1), "the refusals are logged at most once per interval");
        idle.ForEach(s => s.Dispose());
    }

    private static async Task<RawClient> ConnectWithRetryAsync(LocalCluster cluster, TimeSpan deadline)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var client = await RawClient.TryConnectAsync(cluster);
            if (client is not null)
            {
                TestContext.Out.WriteLine($"a new client got in after {clock.Elapsed.TotalSeconds:0.0} s");
                return client;
            }
            if (clock.Elapsed > deadline)
            {
                Assert.Fail($"no new client got in within {deadline.TotalSeconds:0} s");
            }
            await Task.Delay(100);
        }
    }

    [Test]
    public async Task A_client_that_never_reads_its_replies_is_closed_instead_of_buffered()
    {
        await using var cluster = await LocalCluster.StartAsync(count: 1);
        using var writer = await RawClient.ConnectAsync(cluster);
        byte[] value = new byte[1000 * 1024];
        Assert.That((await writer.RoundTripAsync(writer.Put("big", value))).Status, Is.EqualTo(ReplyStatus.Ok));

        // 300 GETs of a ~1 MiB value (~300 MiB of replies) and not one byte read.
        using var greedy = await RawClient.ConnectAsync(cluster);
        greedy.Socket.ReceiveBufferSize = 64 * 1024;
        int asked = 0;
        try
        {
            for (; asked < 300; asked++)
            {
                await greedy.SendAsync(greedy.Get("big"));
            }
        }
        catch (SocketException)
        {
            // Closed by the replica while we were still asking: that is the point.
        }
        await cluster.WaitUntilAsync(() => cluster.Log(1).Contains("it is not reading its replies"), TimeSpan.FromSeconds(20), "the replica closing the connection that does not read");
        // What did reach us ends well short of what was asked: the rest was never buffered.
        int replies = 0;
        while (await greedy.ReadAsync(TimeSpan.FromSeconds(20)) is ClientReply)
        {
            replies++;
        }
        TestContext.Out.WriteLine($"{asked} GETs sent, {replies} replies received before the close");
        Assert.That(replies, Is.LessThan(asked));
        Assert.That(replies, Is.LessThanOrEqualTo((int)(ConnectionLimits.MaxQueuedReplyBytes / value.Length) + 32), "no more than the cap plus the sockets' buffers");
        // The replica goes on serving.
        Assert.That((await writer.RoundTripAsync(writer.Put("small", Encoding.UTF8.GetBytes("ok")))).Status, Is.EqualTo(ReplyStatus.Ok));
        Assert.That(cluster.IsRunning(1));
    }
}
