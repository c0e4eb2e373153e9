using KvReplica.Node.Transport;
using KvReplica.Protocol.Wire;
using KvReplica.Transport;

namespace KvReplica.Node;

/// <summary>What the network and the timer hand to the core loop, one at a time, in arrival order.</summary>
internal abstract record CoreInput;

/// <summary>A request from a client connection, with the user it authenticated as (null with authentication off).</summary>
internal sealed record ClientRequestInput(long ConnectionId, ClientRequest Request, string? User) : CoreInput;

/// <summary>A client is authenticating as <paramref name="User"/>: its SCRAM verifier, from the replicated store (null: no such user).</summary>
internal sealed record CredentialLookupInput(string User, TaskCompletionSource<KvReplica.Protocol.Auth.ScramCredential?> Credential) : CoreInput;

/// <summary>Whether <paramref name="User"/> holds an administrator role (backup connections).</summary>
internal sealed record AdminCheckInput(string? User, TaskCompletionSource<bool> Allowed) : CoreInput;

/// <summary>An envelope from the peer's process <paramref name="Incarnation"/> (envelopes of a process since restarted are dropped).</summary>
internal sealed record PeerEnvelopeInput(PeerLink From, long Incarnation, ReplicaEnvelope Envelope, FramedConnection Connection) : CoreInput;

/// <summary>The peer's handshake showed a new process (<paramref name="Incarnation"/>): it must be re-sent our undelivered writes.</summary>
internal sealed record PeerRestartedInput(PeerLink Peer, long Incarnation) : CoreInput;

internal sealed record TickInput(long NowMs) : CoreInput;

/// <summary>A client connection closed: its watches end.</summary>
internal sealed record ClientClosedInput(long ConnectionId) : CoreInput;

/// <summary>A backup connection wants the state as of now; the core loop commits the engine and hands back a view of it.</summary>
internal sealed record BackupInput(TaskCompletionSource<KvReplica.Node.Storage.BackupSource> Source) : CoreInput;

/// <summary>A restarting peer asks what this replica knows; the core loop answers with the core's summary.</summary>
internal sealed record StateSummaryInput(TaskCompletionSource<StateSummary> Summary) : CoreInput;

/// <summary>A peer catching up: open the files of a fresh transfer, or of the one it resumes, on the core loop.</summary>
internal sealed record TransferInput(CatchUpRequest Request, TaskCompletionSource<KvReplica.Node.Storage.TransferFiles> Files) : CoreInput;
