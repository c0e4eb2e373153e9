using System.Net.Sockets;
using KvReplica.Node;
using KvReplica.Node.Transport;
using KvReplica.Protocol.Config;
using NUnit.Framework;

namespace KvReplica.Tests.Node;

[TestFixture]
[Category("Unit")]
public sealed class PeerSocketsTests
{
    [Test]
    public void A_peer_socket_gets_tcp_user_timeout_of_twice_the_suspicion_timeout()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Ignore("TCP_USER_TIMEOUT exists on Linux only");
        }
        var config = new ClusterConfig { ClusterName = "c", Replicas = [new ReplicaAddress(1, "127.0.0.1", 1)], SuspicionTimeout = TimeSpan.FromMilliseconds(1500) };
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        PeerSockets.Configure(socket, config);
        Span<byte> value = stackalloc byte[sizeof(int)];
        socket.GetRawSocketOption(6, ConnectionLimits.TcpUserTimeoutOption, value);
        Assert.That(BitConverter.ToInt32(value), Is.EqualTo(3000));
        Assert.That(PeerSockets.Timeout(config), Is.EqualTo(TimeSpan.FromSeconds(3)));
    }
}
