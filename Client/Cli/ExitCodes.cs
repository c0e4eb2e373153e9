namespace KvReplica.Client.Cli;

/// <summary>Process exit codes of the <c>client</c> command.</summary>
internal static class ExitCodes
{
    /// <summary>Success: OK or a value (one-shot); every line ran without ERROR (batch); normal exit (REPL, bench).</summary>
    public const int Ok = 0;

    /// <summary>One-shot GET or DELETE: the key does not exist.</summary>
    public const int NotFound = 1;

    /// <summary>Bad command line or unusable cluster.json; nothing was sent.</summary>
    public const int Usage = 2;

    /// <summary>An operation failed (one-shot), at least one batch line printed ERROR, or the cluster could not be reached.</summary>
    public const int Error = 3;
}
