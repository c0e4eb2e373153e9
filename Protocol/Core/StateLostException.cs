namespace KvReplica.Protocol.Core;

/// <summary>
/// This replica's state is behind what it once promised its peers (a wiped or rolled-back data
/// directory). Fatal for the replica: it must stop rather than deliver a different order. The
/// message says what was found; the operator's remedy is in README.md ("Recovering a replica").
/// </summary>
public sealed class StateLostException(string message) : Exception(message);
