using KvReplica.Protocol.Wire;

namespace KvReplica.Client;

/// <summary>
/// An operation failed. <see cref="Error"/> carries the replica's error code when a replica
/// answered with an error, and <see cref="ErrorCode.None"/> when the failure happened on the
/// client's side (see <see cref="KvTimeoutException"/>, <see cref="KvUnavailableException"/>).
/// The message is one line, meant for a person. Every instance is made by the client itself
/// (one factory, so the wording stays consistent); applications only catch them.
/// </summary>
public class KvException : Exception
{
    internal KvException(ErrorCode error, string message) : base(message)
    {
        Error = error;
    }

    /// <summary>The replica's error code, or <see cref="ErrorCode.None"/> for client-side failures.</summary>
    public ErrorCode Error { get; }
}

/// <summary>
/// The request timeout passed while no replica answered the request (a replica was connected, or
/// the client was between replicas). <see cref="OutcomeUnknown"/> says whether a write may have
/// been applied; the message says the same for a person.
/// </summary>
public sealed class KvTimeoutException : KvException
{
    internal KvTimeoutException(string message, bool outcomeUnknown) : base(ErrorCode.None, message)
    {
        OutcomeUnknown = outcomeUnknown;
    }

    /// <summary>
    /// True when the operation is a write that reached a replica's connection and no outcome came
    /// back: the cluster may or may not have applied it (at most once: a retry with the same client
    /// id and sequence number is never applied twice), so read the key to find out. False for a
    /// read, and for a write that never left the client: that write was not applied.
    /// </summary>
    public bool OutcomeUnknown { get; }
}

/// <summary>
/// No replica could be reached or every one refused the handshake. The message lists each replica
/// with what went wrong, e.g. <c>no replica reachable: replica 1 at 127.0.0.1:7101: connection refused; ...</c>;
/// a handshake refusal carries the replica's reason verbatim.
/// </summary>
public sealed class KvUnavailableException : KvException
{
    internal KvUnavailableException(string message, bool everyReplicaRejected) : base(ErrorCode.None, message)
    {
        EveryReplicaRejected = everyReplicaRejected;
    }

    /// <summary>True when every replica answered but refused the handshake (wrong cluster name or protocol version): retrying cannot help.</summary>
    public bool EveryReplicaRejected { get; }
}

/// <summary>
/// The request breaks a data-model rule (empty or oversized key, oversized value) and was not sent.
/// The message is the rule's one-line reason from <see cref="RequestValidation"/>.
/// </summary>
public sealed class KvInvalidRequestException : ArgumentException
{
    internal KvInvalidRequestException(string message, string paramName) : base(message, paramName)
    {
        Reason = message;
    }

    /// <summary>The reason alone, without the parameter name that <see cref="ArgumentException.Message"/> appends.</summary>
    public string Reason { get; }
}
