namespace KvReplica.Node.Storage;

/// <summary>
/// Tells a full disk apart from other I/O failures. A full disk is an operating condition with
/// its own exit code and remedy (free space, start again); any other failure under the log is
/// treated as internal.
/// </summary>
internal static class DiskFull
{
    // .NET on Unix puts the raw errno into the HResult of an IOException it does not map to a
    // more specific type. Linux numbers; EDQUOT (a quota) leaves the replica in the same state.
    public const int NoSpaceLeft = 28;
    public const int QuotaExceeded = 122;

    /// <summary>Whether <paramref name="failure"/> or an exception inside it is a full disk or an exceeded quota.</summary>
    public static bool IsCause(Exception? failure)
    {
        for (var e = failure; e is not null; e = e.InnerException)
        {
            if (e is IOException { HResult: NoSpaceLeft or QuotaExceeded })
            {
                return true;
            }
            if (e is AggregateException aggregate && aggregate.InnerExceptions.Any(IsCause))
            {
                return true;
            }
        }
        return false;
    }
}
