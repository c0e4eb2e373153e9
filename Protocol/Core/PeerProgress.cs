namespace KvReplica.Protocol.Core;

/// <summary>
/// What one replica's core knows about one configured replica (itself included, for the
/// per-origin vectors), in one place instead of a collection per fact, as etcd-io/raft keeps a
/// <c>Progress</c> per follower. The core holds one for every configured replica and visits
/// them in id order wherever the order reaches an output.
/// </summary>
internal sealed class PeerProgress(int id)
{
    /// <summary>The replica this describes.</summary>
    public int Id { get; } = id;

    /// <summary>
    /// Largest time of this origin's writes that this replica holds (held or delivered): its entry
    /// in the cumulative acknowledgement vector sent to every peer.
    /// </summary>
    public long HeldThrough { get; set; }

    /// <summary>
    /// Largest time of this origin's writes delivered here; sent with every batch so that a peer
    /// that lost writes it acknowledged (a wiped or rolled-back data directory) finds out.
    /// </summary>
    public long DeliveredThrough { get; set; }

    /// <summary>Its link starts afresh: the next batch to it re-sends every undelivered write of ours.</summary>
    public bool ResendPending { get; set; }

    /// <summary>
    /// It has not sent a batch since this core started; until every peer has, this replica stamps
    /// no write (see ReplicaCore.StartWrite).
    /// </summary>
    public bool NotHeardSinceStart { get; set; }

    /// <summary>When (core time) it was last heard from, as a member; null before the first time.</summary>
    public long? LastHeardAt { get; set; }

    /// <summary>This replica suspects it of having failed (silent for the suspicion timeout).</summary>
    public bool Suspected { get; set; }

    /// <summary>What it said it suspects in its latest batch of this view (null: nothing heard in this view).</summary>
    public int[]? ReportedSuspects { get; set; }

    /// <summary>When it was last sent the installed view (it was removed, or missed the install); at most once per suspicion timeout.</summary>
    public long? ToldRemovedAt { get; set; }

    /// <summary>Since when it reports being wedged for a view change not installed here (null: it does not).</summary>
    public long? WedgedSince { get; set; }

    /// <summary>The SentAt of its newest batch (its clock), echoed back to it; 0 before any.</summary>
    public long LastSentAt { get; set; }

    /// <summary>The newest of our own SentAt it echoed (when it last heard from us, by our clock); null before any.</summary>
    public long? EchoedAt { get; set; }

    /// <summary>The view in which it last became a peer of this replica (0: from the start).</summary>
    public long PeerSince { get; set; }

    /// <summary>
    /// The view of the batch whose acknowledgements were last recorded for it in the hold-back
    /// queue; null since the queue's acknowledgements were last forgotten (checked by
    /// ReplicaCore.CheckInvariants: acknowledgements count only in the view they were sent in).
    /// </summary>
    public long? AckView { get; set; }

    /// <summary>
    /// Largest time of this origin's writes delivered here by the delivery rule since the
    /// hold-back queue's acknowledgements were last forgotten (checked by
    /// ReplicaCore.CheckInvariants: every member acknowledged it).
    /// </summary>
    public long StableDeliveredThrough { get; set; }
}
