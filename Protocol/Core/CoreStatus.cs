namespace KvReplica.Protocol.Core;

/// <summary>
/// The phase a replica's core is in, the map of what it may do (TigerBeetle keeps its replica's
/// status the same way). Kept in step with the view it installed and the view it promised.
/// </summary>
public enum CoreStatus
{
    /// <summary>A member of the installed view, in no view change: it stamps, acknowledges and delivers.</summary>
    Active,

    /// <summary>
    /// A member that promised to join a newer view than it installed: it delivers nothing and
    /// acknowledges nothing beyond what it reported when it joined, until a view is installed.
    /// </summary>
    Wedged,

    /// <summary>A newer view excludes it: it serves nothing, and asks to rejoin.</summary>
    Removed,

    /// <summary>
    /// Removed, and promised a newer view than it installed (normally the view change that adds
    /// it back): as removed, and wedged as well.
    /// </summary>
    Rejoining,
}
