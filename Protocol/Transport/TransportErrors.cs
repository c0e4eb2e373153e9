using System.Net.Sockets;
using KvReplica.Protocol.Wire;

namespace KvReplica.Transport;

/// <summary>The replica refused the handshake; <see cref="Exception.Message"/> is its reason, verbatim.</summary>
public sealed class HandshakeRejectedException(string reason) : Exception(reason);

/// <summary>
/// The replica sent a message the protocol does not allow at that point of the exchange (a reply
/// out of turn, a wrong answer to the handshake). Connection-fatal; not the core's
/// <c>KvReplica.Protocol.Core.ProtocolViolationException</c>, which is about a peer's replicated messages.
/// </summary>
public sealed class UnexpectedMessageException(string message) : Exception(message);

/// <summary>Turns transport exceptions into short lower-case phrases for error messages.</summary>
public static class ConnectionErrors
{
    /// <summary>A short phrase for <paramref name="e"/>, such as "connection refused".</summary>
    public static string Describe(Exception e)
    {
        switch (e)
        {
            case SocketException socket:
                return socket.SocketErrorCode switch
                {
                    SocketError.ConnectionRefused => "connection refused",
                    SocketError.ConnectionReset => "connection reset by the replica",
                    SocketError.ConnectionAborted => "connection aborted",
                    SocketError.TimedOut => "timed out",
                    SocketError.HostNotFound or SocketError.NoData => "host not found",
                    SocketError.HostUnreachable => "host unreachable",
                    SocketError.NetworkUnreachable => "network unreachable",
                    SocketError.Shutdown or SocketError.OperationAborted => "connection closed",
                    _ => socket.Message,
                };
            case IOException { InnerException: SocketException inner }:
                return Describe(inner);
            case FrameException frame:
                return $"bad frame from the replica: {frame.Message}";
            case UnexpectedMessageException violation:
                return $"protocol violation: the replica {violation.Message}";
            case ObjectDisposedException or OperationCanceledException:
                return "connection closed";
            default:
                return e.Message;
        }
    }
}
