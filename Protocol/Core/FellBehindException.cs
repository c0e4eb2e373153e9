namespace KvReplica.Protocol.Core;

/// <summary>
/// A removed replica asked to rejoin, but the coordinator no longer keeps every write delivered
/// since this replica's last one (docs/design.md §9). Nothing is wrong with its data: the Node
/// starts the replica afresh in the same process, which fetches a member's snapshot and log at
/// start-up and then asks to rejoin again.
/// </summary>
public sealed class FellBehindException(string message) : Exception(message);
