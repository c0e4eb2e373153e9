using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

/// <summary>A message for one peer replica.</summary>
public readonly record struct Outgoing(int To, PeerMessage Message);

/// <summary>A reply for one client connection (identified by the number the Node gave it).</summary>
public readonly record struct ClientResponse(long ConnectionId, ClientReply Reply);

/// <summary>
/// A message from <paramref name="Peer"/> that broke the protocol, found while the core handled
/// another input (a batch that waited for a view install): the driver closes that peer's link and
/// logs <paramref name="Reason"/>, as for a <see cref="ProtocolViolationException"/>.
/// </summary>
public readonly record struct PeerViolation(int Peer, string Reason);

/// <summary>A write delivered (applied) in total order, with the result it produced.</summary>
public readonly record struct DeliveredWrite(WriteCommand Command, ReplyStatus Result, bool Duplicate);

/// <summary>Why the core stopped for good (see <see cref="CoreStop"/>).</summary>
public enum CoreStopKind
{
    /// <summary>
    /// A removed replica asked to rejoin, but the coordinator no longer keeps every write
    /// delivered since this replica's last one (docs/design.md §9). Nothing is wrong with its
    /// data: the driver starts the replica afresh, which fetches a member's snapshot and log at
    /// start-up and then asks to rejoin again.
    /// </summary>
    FellBehind,

    /// <summary>
    /// This replica's state is behind what it once promised its peers (a wiped or rolled-back
    /// data directory). Fatal for the replica: it must stop rather than deliver a different
    /// order. The operator's remedy is in README.md ("Recovering a replica").
    /// </summary>
    StateLost,
}

/// <summary>
/// The core stopped: it takes no more input, and the round it stopped in is not to be logged or
/// sent. <paramref name="Reason"/> says what was found, for the log.
/// </summary>
public sealed record CoreStop(CoreStopKind Kind, string Reason);

/// <summary>
/// What the core asks the outside world to do after a batch of inputs, as in etcd-io/raft's
/// Ready: taken with <see cref="ReplicaCore.TakeReady"/>, each output list handed over once.
/// </summary>
/// <remarks>
/// The driver (Node, or the simulation) must act in this order:
/// <list type="number">
/// <item>if <see cref="Stop"/> is set, stop: nothing else of the round is logged or sent;</item>
/// <item>persist <see cref="Rebase"/>, <see cref="NewlyHeld"/>, <see cref="Joined"/>,
/// <see cref="InstalledView"/>, then the <see cref="LastDelivered"/> marker, to the
/// write-ahead log, durable under the fsync policy (Store's <c>ReadyRecords</c> is the one
/// mapping to log records), then call <see cref="ReplicaCore.Advance"/>. Persist before you
/// send: an acknowledgement or a write we send promises that we hold it, and a crash must not
/// make us forget it. <see cref="Messages"/> and <see cref="Replies"/> throw
/// <see cref="InvalidOperationException"/> until the round was advanced;</item>
/// <item>send <see cref="Messages"/> to peers, in list order per peer (links are FIFO, and the
/// ordering proof depends on it);</item>
/// <item>send <see cref="Replies"/> to clients.</item>
/// </list>
/// </remarks>
public sealed class Ready
{
    // Filled by the core; readable by the driver only once the round is persisted.
    internal List<Outgoing> Outbox { get; } = [];
    internal List<ClientResponse> ReplyOutbox { get; } = [];

    /// <summary>Messages to peers, in send order per peer. Throws until <see cref="ReplicaCore.Advance"/> marked the round persisted.</summary>
    public IReadOnlyList<Outgoing> Messages => Persisted ? Outbox : throw NotPersisted();

    /// <summary>Replies to clients. Throws until <see cref="ReplicaCore.Advance"/> marked the round persisted.</summary>
    public IReadOnlyList<ClientResponse> Replies => Persisted ? ReplyOutbox : throw NotPersisted();

    /// <summary>How many messages the round sends: readable before <see cref="ReplicaCore.Advance"/>, their contents are not.</summary>
    public int MessageCount => Outbox.Count;

    /// <summary>Whether the driver persisted this round and said so with <see cref="ReplicaCore.Advance"/>.</summary>
    public bool Persisted { get; private set; }

    /// <summary>Set if the core stopped for good in this round; then nothing else of it may be logged or sent.</summary>
    public CoreStop? Stop { get; internal set; }

    public List<DeliveredWrite> Delivered { get; } = [];

    /// <summary>Peers whose link must be closed for a message that broke the protocol (see <see cref="PeerViolation"/>).</summary>
    public List<PeerViolation> PeerViolations { get; } = [];

    /// <summary>Writes this replica started holding (stamped here or received), in the order held.</summary>
    public List<WriteCommand> NewlyHeld { get; } = [];

    /// <summary>Stamp of the last write delivered in this round, or <see cref="Clock.Stamp.Zero"/> if none was.</summary>
    public Clock.Stamp LastDelivered { get; set; }

    /// <summary>
    /// The join this replica just sent to a view change (null if none): its promise and the
    /// acknowledgements it froze. Persist it before sending, or a restart could promise twice, or
    /// acknowledge more than it reported.
    /// </summary>
    public ViewJoin? Joined { get; set; }

    /// <summary>A view this replica installed (null if none): persist it before sending, with its trims.</summary>
    public ViewInstall? InstalledView { get; set; }

    /// <summary>
    /// A removed replica being added back replaced what it held (null if not): persist it
    /// first in the round, before <see cref="NewlyHeld"/>, which then holds what the catch-up carried.
    /// </summary>
    public HeldRebase? Rebase { get; set; }

    internal void MarkPersisted() => Persisted = true;

    private static InvalidOperationException NotPersisted() =>
        new("persist before you send: log this round and call ReplicaCore.Advance before reading its messages or replies");
}
