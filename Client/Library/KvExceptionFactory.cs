using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client;

/// <summary>
/// Every exception the client throws to its caller is made here, so that the types, the error
/// codes and the wording stay the same wherever a failure is detected.
/// </summary>
internal static class KvExceptionFactory
{
    /// <summary>Connecting to a cluster with TLS without credentials: every replica would refuse.</summary>
    public static KvUnavailableException CredentialsRequired() =>
        new("authentication required: this cluster uses TLS; give a user and password (KvClientOptions.Credentials; client --user NAME with --password-file or KVREPLICA_PASSWORD)", everyReplicaRejected: true);

    /// <summary>No replica could be reached (or every one refused, when <paramref name="everyReplicaRejected"/>).</summary>
    public static KvUnavailableException Unavailable(string message, bool everyReplicaRejected) => new(message, everyReplicaRejected);

    /// <summary>The connect deadline passed before any replica accepted.</summary>
    public static KvUnavailableException NoConnectionWithin(TimeSpan timeout, string? lastFailure) =>
        new(lastFailure ?? $"no replica accepted a connection within {timeout.TotalMilliseconds:0} ms", everyReplicaRejected: false);

    /// <summary>A key or value that breaks a data-model rule; <paramref name="reason"/> is <see cref="RequestValidation"/>'s.</summary>
    public static KvInvalidRequestException InvalidRequest(string reason) =>
        new(reason, reason.StartsWith("value", StringComparison.Ordinal) ? "value" : "key");

    /// <summary>A final refusal (such as InvalidRequest or PermissionDenied): the request will never succeed as sent.</summary>
    public static KvException Refused(ClientReply reply) => new(reply.Error, Describe(reply));

    /// <summary>The deadline passed while a replica kept answering with a retryable error (Busy, NoMajority, ShuttingDown).</summary>
    public static KvException StillFailing(ClientReply reply, TimeSpan timeout) =>
        new(reply.Error, $"{Describe(reply)} (still failing after {timeout.TotalMilliseconds:0} ms)");

    /// <summary>
    /// The deadline passed with no answer. <paramref name="outcomeUnknown"/>: a write reached a
    /// connection and may have been applied; the message says so, as <see cref="KvTimeoutException.OutcomeUnknown"/> does.
    /// </summary>
    public static KvTimeoutException Timeout(ReplicaAddress? replica, TimeSpan timeout, string? lastProblem, bool isWrite, bool outcomeUnknown)
    {
        string took = $"{timeout.TotalMilliseconds:0} ms";
        string detail = lastProblem is not null ? $"; last problem: {lastProblem}" : "";
        string outcome = !isWrite ? ""
            : outcomeUnknown ? "; the write may or may not have been applied (at most once)"
            : "; the write was not sent, so it was not applied";
        return new KvTimeoutException(replica is not null
            ? $"no reply from {replica} within {took}{detail}{outcome}"
            : $"no reply within {took}{detail}{outcome}", isWrite && outcomeUnknown);
    }

    /// <summary>The client was disposed while the request was in flight.</summary>
    public static ObjectDisposedException DisposedInFlight() =>
        new(nameof(KvClient), "the client was disposed while the request was in flight");

    /// <summary>A replica's error reply as one line: its code and message.</summary>
    public static string Describe(ClientReply reply)
    {
        string message = string.IsNullOrWhiteSpace(reply.ErrorMessage) ? "no details given" : OneLine(reply.ErrorMessage);
        // These two messages say what they are ("permission denied: ..."); the code name would only repeat it.
        return reply.Error is ErrorCode.PermissionDenied or ErrorCode.AuthenticationRequired ? message : $"{reply.Error}: {message}";
    }

    private static string OneLine(string text) =>
        text.Contains('\n') || text.Contains('\r') ? text.ReplaceLineEndings(" ") : text;
}
