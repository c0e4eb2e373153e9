namespace KvReplica.Node;

/// <summary>
/// Every exit code of <c>node</c>, documented in the README ("Exit codes"). Each one but
/// <see cref="Stopped"/> comes with one line on stderr saying why; none comes from an unhandled
/// exception. Operators and scripts act on them, so they never change meaning.
/// </summary>
internal static class ExitCodes
{
    /// <summary>Stopped by SIGTERM or SIGINT (Ctrl+C), or <c>--help</c> and <c>--restore</c> finished.</summary>
    public const int Stopped = 0;

    /// <summary>
    /// Refused to start: its port is taken, its host does not resolve, its data directory is in
    /// use or cannot be written, or a <c>--restore</c> failed. Fix that and start it again.
    /// </summary>
    public const int StartupRefused = 1;

    /// <summary>Bad command line or cluster.json (the line names the option or field).</summary>
    public const int Usage = 2;

    /// <summary>
    /// Its data is behind what its peers know it promised (a lost, replaced or rolled-back data
    /// directory, detected while the peers were unreachable at start-up). Start it again once
    /// they are up: it then catches up from them first.
    /// </summary>
    public const int StateLost = 3;

    /// <summary>
    /// Its stored state is damaged: the write-ahead log before its last record, the storage
    /// engine, or every snapshot file it should import. Nothing is skipped silently, so it does
    /// not start. Restore its data directory (README, "Recovering a replica").
    /// </summary>
    public const int DamagedLog = 4;

    /// <summary>
    /// Its disk filled up: it could not log what it was given, so it acknowledged none of it and
    /// left. Free space and start it again; it rejoins by itself.
    /// </summary>
    public const int DiskFull = 5;

    /// <summary>An internal failure (a bug, or an I/O error other than a full disk). EX_SOFTWARE of sysexits.h.</summary>
    public const int InternalFailure = 70;
}
