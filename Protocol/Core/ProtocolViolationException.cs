namespace KvReplica.Protocol.Core;

/// <summary>
/// A peer sent something the protocol never allows (a write out of FIFO order, an ack vector of
/// mismatched lengths, an unknown operation). Connection-fatal: the core has not changed its
/// state; the driver closes the link that carried the message and logs this reason.
/// </summary>
public sealed class ProtocolViolationException(string message) : Exception(message);
