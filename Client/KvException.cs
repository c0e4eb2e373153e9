using KvReplica.Protocol.Wire;

namespace KvReplica.Client;

/// <summary>
/// An operation failed. <see cref="Error"/> carries the replica's error code when a replica
/// answered with an error, and <see cref="ErrorCode.None"/> when the failure happened on the
/// client's side (see <see cref="KvTimeoutException"/>, <see cref="KvUnavailableException"/>).
/// The message is one line, meant for a person.
/// </summary>
public class KvException : Exception
{
    public KvException(ErrorCode error, string message) : base(message)
    {
        Error = error;
    }

    public KvException(ErrorCode error, string message, Exception inner) : base(message, inner)
    {
        Error = error;
    }

    /// <summary>The replica's error code, or <see cref="ErrorCode.None"/> for client-side failures.</summary>
    public ErrorCode Error { get; }
}

/// <summary>
/// The request timeout passed while a replica was connected but had not answered. A write that
/// timed out may or may not have been applied (exactly once, if at all).
/// </summary>
public sealed class KvTimeoutException(string message) : KvException(ErrorCode.None, message);

/// <summary>
/// No replica could be reached or every one refused the handshake. The message lists each replica
/// with what went wrong, e.g. <c>no replica reachable: replica 1 at 127.0.0.1:7101: connection refused; ...</c>;
/// a handshake refusal carries the replica's reason verbatim.
/// </summary>
public sealed class KvUnavailableException(string message, bool everyReplicaRejected) : KvException(ErrorCode.None, message)
{
    /// <summary>True when every replica answered but refused the handshake (wrong cluster name or protocol version): retrying cannot help.</summary>
    public bool EveryReplicaRejected { get; } = everyReplicaRejected;
}

/// <summary>
/// The request breaks a data-model rule (empty or oversized key, oversized value) and was not sent.
/// The message is the rule's one-line reason from <see cref="RequestValidation"/>.
/// </summary>
public sealed class KvInvalidRequestException(string message, string paramName) : ArgumentException(message, paramName)
{
    /// <summary>The reason alone, without the parameter name that <see cref="ArgumentException.Message"/> appends.</summary>
    public string Reason { get; } = message;
}
