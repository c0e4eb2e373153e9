using System.Net.Sockets;
using KvReplica.Protocol.Config;

namespace KvReplica.Node.Transport;

/// <summary>The socket options of every peer link (both directions): see <see cref="ConnectionLimits.PeerTimeoutSuspicions"/>.</summary>
internal static class PeerSockets
{
    /// <summary>The connect deadline and TCP_USER_TIMEOUT of a peer link: <see cref="ConnectionLimits.PeerTimeoutSuspicions"/> suspicion timeouts.</summary>
    public static TimeSpan Timeout(ClusterConfig config) => config.SuspicionTimeout * ConnectionLimits.PeerTimeoutSuspicions;

    /// <summary>
    /// Sets TCP_USER_TIMEOUT (Linux): data sent and not acknowledged for <see cref="Timeout"/>
    /// aborts the connection, so a link whose packets vanish (a one-way cut, a peer machine gone
    /// without a reset) fails and is redialled instead of waiting out TCP's retransmissions.
    /// Elsewhere the option does not exist and the link keeps TCP's default behaviour.
    /// </summary>
    public static void Configure(Socket socket, ClusterConfig config)
    {
        socket.NoDelay = true;
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        int ms = (int)Math.Min(int.MaxValue, Timeout(config).TotalMilliseconds);
        // Raw: SetSocketOption maps SocketOptionName values to the platform's and rejects 18.
        Span<byte> value = stackalloc byte[sizeof(int)];
        BitConverter.TryWriteBytes(value, ms);
        socket.SetRawSocketOption(6 /* IPPROTO_TCP */, ConnectionLimits.TcpUserTimeoutOption, value);
    }
}

internal sealed class HandshakeException(string message) : Exception(message);

internal sealed class PeerRestartedException(string message) : Exception(message);
