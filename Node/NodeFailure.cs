namespace KvReplica.Node;

/// <summary>
/// The replica cannot start (port in use, unresolvable host, damaged log); the message is the one
/// line to show and <see cref="ExitCode"/> the code to exit with.
/// </summary>
internal sealed class NodeStartupException(string message, int exitCode = ExitCodes.StartupRefused) : Exception(message)
{
    /// <summary>One of <see cref="ExitCodes"/>.</summary>
    public int ExitCode { get; } = exitCode;
}

/// <summary>Why a running replica stopped by itself: its exit code (<see cref="ExitCodes"/>) and the one line for stderr.</summary>
internal sealed record NodeFailure(int ExitCode, string Reason);
