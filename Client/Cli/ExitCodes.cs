namespace KvReplica.Client.Cli;

/// <summary>Process exit codes of the <c>client</c> command (README, "Exit codes of the client").</summary>
internal static class ExitCodes
{
    /// <summary>Success: OK or a value (one-shot); every line ran without ERROR (batch); normal exit (prompt, bench); --help, --version.</summary>
    public const int Ok = 0;

    /// <summary>One-shot GET, DELETE, UPDATE or EXISTS (or USER/ROLE DELETE): the key or name does not exist.</summary>
    public const int NotFound = 1;

    /// <summary>Bad command line or unusable cluster.json; nothing was sent.</summary>
    public const int Usage = 2;

    /// <summary>An operation failed (one-shot), at least one batch line printed ERROR, or the cluster could not be reached.</summary>
    public const int Error = 3;

    /// <summary>
    /// STATUS answered, but the cluster is not whole: a replica is unreachable, removed from the
    /// view, or in a view without a majority of the configured replicas. In batch mode: a STATUS
    /// line said so and no line printed ERROR.
    /// </summary>
    public const int Degraded = 4;

    /// <summary>
    /// One-shot CAS or PUTNX: the key's version was not the one required (the write was not made);
    /// TXN: a compare failed, so the ELSE branch ran. Batch mode does not count it as an error.
    /// </summary>
    public const int ConditionFailed = 5;
}
