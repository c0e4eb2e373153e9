using KvReplica.Protocol.Wire;

namespace KvReplica.Client.Cli;

/// <summary>
/// Every error the client prints says what to do next: the library's one-line reason, then
/// <c>; </c> and the next step. The steps are chosen here, in one place, by the kind of failure.
/// </summary>
internal static class ErrorAdvice
{
    /// <summary>The reason of <paramref name="e"/> with the next step; <paramref name="config"/> is the cluster.json path as given.</summary>
    public static string For(KvException e, string config) => $"{e.Message}; {NextStep(e, config)}";

    /// <summary>A key or value the client refused before sending it.</summary>
    public static string ForInvalidRequest(string reason, string config) => reason switch
    {
        _ when reason.StartsWith("key", StringComparison.Ordinal) => $"{reason}; a key is 1 to {Limits.MaxKeyBytes} bytes of UTF-8 text",
        _ when reason.StartsWith("value", StringComparison.Ordinal) => $"{reason}; store a smaller value, or raise maxValueBytes in {config} on every replica",
        _ => reason,
    };

    private static string NextStep(KvException e, string config) => e switch
    {
        KvUnavailableException { EveryReplicaRejected: true } when e.Message.Contains("authentication failed", StringComparison.Ordinal) =>
            "check --user and the password (--password-file or KVREPLICA_PASSWORD)",
        KvUnavailableException { EveryReplicaRejected: true } when e.Message.StartsWith("authentication required", StringComparison.Ordinal) =>
            "log in with --user and --password-file",
        KvUnavailableException { EveryReplicaRejected: true } =>
            $"check that {config} is this cluster's file and that client and node are the same version (--version)",
        KvUnavailableException =>
            $"start the replicas (bin/node <id> {config}) or check their hosts and ports in {config}; `client {config} status` shows each one",
        KvTimeoutException { OutcomeUnknown: true } =>
            $"GET the key to learn whether the write was applied; `client {config} status` shows whether the cluster is whole",
        KvTimeoutException =>
            $"the cluster may be overloaded or cut off: `client {config} status` shows each replica, or retry with a longer --timeout",
        _ => e.Error switch
        {
            ErrorCode.NoMajority => $"start more replicas or check the network; `client {config} status` shows which are down",
            ErrorCode.Busy => "the cluster is overloaded: retry later, or send fewer requests at once",
            ErrorCode.ShuttingDown => "the replica is stopping: retry, or pick another with --replica",
            ErrorCode.PermissionDenied when e.Message.Contains("(admin only)", StringComparison.Ordinal) => "log in as an admin with --user",
            ErrorCode.PermissionDenied => "ask an admin for a role that grants it (ROLE ADD, USER ADD)",
            ErrorCode.AuthenticationRequired => "log in with --user and --password-file",
            ErrorCode.InvalidRequest => "fix the request (HELP lists each command's arguments)",
            ErrorCode.Compacted =>
                "the replicas no longer keep changes that old: read the current state again (LIST or GET), then WATCH with a newer --after (or none: from now), or start LIST again without --cursor",
            _ => $"`client {config} status` shows the state of each replica",
        },
    };
}
