using KvReplica.Node.Transport;
using KvReplica.Protocol.Wire;

namespace KvReplica.Node;

/// <summary>What the network and the timer hand to the core loop, one at a time, in arrival order.</summary>
internal abstract record CoreInput;

internal sealed record ClientRequestInput(long ConnectionId, ClientRequest Request) : CoreInput;

internal sealed record PeerEnvelopeInput(PeerLink From, ReplicaEnvelope Envelope, FramedConnection Connection) : CoreInput;

internal sealed record TickInput(long NowMs) : CoreInput;
