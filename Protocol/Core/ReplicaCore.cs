using KvReplica.Clock;
using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Core;

/// <summary>
/// One replica's protocol logic as a deterministic state machine: Lamport total-order multicast
/// with all-member acknowledgement, exactly-once client writes, and majority reads.
/// </summary>
/// <remarks>
/// <para>Sans-I/O, in the style of etcd-io/raft's RawNode: the driver feeds inputs
/// (<see cref="OnClientRequest"/>, <see cref="OnPeerMessage"/>, <see cref="Tick"/>), collects
/// outputs with <see cref="TakeReady"/>, and calls <see cref="Advance"/> once it persisted them,
/// before it sends them. The core never touches a socket, file, thread, clock or
/// unseeded random source, so the simulation can run whole clusters from one seed.</para>
/// <para>Not thread-safe: the driver calls it from one thread (or under one lock).</para>
/// <para>The protocol and its correctness argument are in docs/design.md.</para>
/// </remarks>
public sealed partial class ReplicaCore
{
    private readonly ReplicaCoreOptions _options;
    private readonly IReplicatedStateMachine _stateMachine;
    private readonly LamportClock _clock = new();
    private HoldBackQueue<WriteEntry> _holdBack;
    // The current view's members, and the members other than this replica (view changes replace both).
    private int[] _members;
    private int[] _peers;
    private Ready _ready = new();
    // The round TakeReady handed over last, which Advance marks persisted.
    private Ready? _handedOver;
    // Set once the core stopped for good (fell behind, or found its state lost): see CoreStop.
    private CoreStop? _stop;
    private long _now;
    // One entry per configured replica (itself included): see PeerProgress.
    private readonly Dictionary<int, PeerProgress> _progress = new();
    // The replica's phase; kept in step with _promised and _viewNumber by UpdateStatus.
    private CoreStatus _status;

    /// <param name="options">Identity, view and timeouts.</param>
    /// <param name="stateMachine">The store, already holding every write up to <paramref name="recovered"/>'s LastDelivered.</param>
    /// <param name="recovered">
    /// What the replica read back from its data directory (empty for an empty one): the core then
    /// stamps no write until every peer has sent it a batch. Null only for a core known to be new
    /// to a new cluster (tests, the simulation's first start).
    /// </param>
    public ReplicaCore(ReplicaCoreOptions options, IReplicatedStateMachine stateMachine, CoreRecoveryState? recovered = null)
    {
        _options = options;
        _stateMachine = stateMachine;
        _configured = [.. options.Members.Distinct().Order()];
        if (!_configured.Contains(options.SelfId))
        {
            throw new ArgumentException($"replica {options.SelfId} is not among the members {string.Join(",", _configured)}", nameof(options));
        }
        _members = recovered?.ViewMembers is { Count: > 0 } viewMembers ? [.. viewMembers.Order()] : _configured;
        // A view it was to enter on a coordinator's catch-up is logged without it once it did.
        bool removed = !_members.Contains(options.SelfId) || recovered?.LastView?.CaughtUp.Contains(options.SelfId) == true;
        _status = removed ? CoreStatus.Removed : CoreStatus.Active;
        _peers = [.. _members.Where(m => m != options.SelfId)];
        _holdBack = new HoldBackQueue<WriteEntry>(removed ? _configured : _members);
        foreach (int m in _configured)
        {
            _progress[m] = new PeerProgress(m);
        }
        if (recovered is not null)
        {
            Recover(recovered);
            // The writes replayed from the log are the recent ones a rejoining peer may lack.
            _recentFrom = recovered.ReplayedAfter;
            foreach (var write in recovered.Replayed)
            {
                Remember(write.Stamp, ToEntry(write));
            }
            // A replica started from a data directory (the Node always is, even an empty one)
            // cannot know it is not behind what it once promised until each peer has spoken.
            foreach (int peer in _peers)
            {
                _progress[peer].NotHeardSinceStart = true;
            }
        }
        // Every link starts afresh, at first start as after a restart: the first batch to each
        // peer re-sends this replica's undelivered writes (see OnPeerRestarted).
        foreach (int peer in _peers)
        {
            _progress[peer].ResendPending = true;
        }
    }

    /// <summary>This replica's id.</summary>
    public int SelfId => _options.SelfId;

    /// <summary>
    /// Members of the current view, in id order; for a removed replica, of the newest view it
    /// learned of (which may even list it, if it missed the catch-up that would have added it).
    /// </summary>
    public IReadOnlyList<int> Members => Removed && _installedView is { } learned ? [.. learned.Members.Order()] : _members;

    /// <summary>A majority of the configured replicas (a read needs this many answers, a view this many members).</summary>
    public int Majority => _configured.Length / 2 + 1;

    /// <summary>Current Lamport time.</summary>
    public long ClockNow => _clock.Now;

    /// <summary>Stamp of the last delivered write.</summary>
    public Stamp LastDelivered => _holdBack.LastDelivered;

    /// <summary>Writes held and not yet delivered.</summary>
    public int PendingWrites => _holdBack.Count;

    /// <summary>
    /// Whether the core stopped for good (<see cref="Ready.Stop"/> says why). It then ignores
    /// every input, and every <see cref="TakeReady"/> hands over only the stop.
    /// </summary>
    public bool Stopped => _stop is not null;

    /// <summary>
    /// Advances the core's notion of time to <paramref name="nowMs"/> (monotonic milliseconds; never
    /// decreases). Fires heartbeats and times out reads and writes that waited too long.
    /// </summary>
    public void Tick(long nowMs)
    {
        if (_stop is not null)
        {
            return;
        }
        if (nowMs < _now)
        {
            throw new ArgumentOutOfRangeException(nameof(nowMs), $"time went backwards from {_now} to {nowMs}");
        }
        _now = nowMs;
        if (_now - _lastBatchSentAt >= _options.HeartbeatIntervalMs)
        {
            _acksChanged = true;
        }
        ExpireReads();
        ExpireWrites();
        DetectFailures();
    }

    /// <summary>
    /// Hands over everything the core produced since the last call; see <see cref="Ready"/> for
    /// the order in which the driver must act on it.
    /// </summary>
    public Ready TakeReady()
    {
        if (_stop is not null)
        {
            // Nothing of the round it stopped in is logged or sent, as if it never happened.
            _ready = new Ready();
            _handedOver = new Ready { Stop = _stop };
            return _handedOver;
        }
        FlushOrderBatch();
        FlushWatches();
        _handedOver = _ready;
        _ready = new Ready();
        return _handedOver;
    }

    /// <summary>
    /// The driver persisted <paramref name="ready"/> (the round <see cref="TakeReady"/> handed
    /// over last) as its remarks require: its messages and replies may now be read and sent.
    /// Throws <see cref="InvalidOperationException"/> for any other round, or a stopped one.
    /// </summary>
    public void Advance(Ready ready)
    {
        if (!ReferenceEquals(ready, _handedOver))
        {
            throw new InvalidOperationException("Advance takes the round TakeReady handed over last");
        }
        if (ready.Stop is not null)
        {
            throw new InvalidOperationException($"the core stopped ({ready.Stop.Kind}): nothing of its round is to be persisted or sent");
        }
        ready.MarkPersisted();
    }

    // Stops the core for good; the next TakeReady hands over only the stop.
    private void StopWith(CoreStopKind kind, string reason) => _stop ??= new CoreStop(kind, reason);

    /// <summary>
    /// The link to <paramref name="peer"/> starts afresh because the peer restarted (the driver
    /// saw a new incarnation and reset the link). Messages queued for the old incarnation are
    /// dropped, and the next batch to the peer re-sends every write this replica stamped that is
    /// not yet delivered here, ahead of any acknowledgement: the restarted peer may have lost the
    /// ones it had not logged, and the FIFO argument of the delivery rule needs this replica's
    /// writes to precede its acknowledgements on the new link. Read queries of the old
    /// incarnation still waiting here behind a fence are dropped too: the new one numbers its
    /// reads from 1 again and would take an old answer, possibly for another key, as its own.
    /// </summary>
    public void OnPeerRestarted(int peer)
    {
        if (_stop is not null)
        {
            return;
        }
        if (Array.IndexOf(_configured, peer) < 0 || peer == SelfId)
        {
            throw new ArgumentOutOfRangeException(nameof(peer), $"replica {peer} is not a configured peer");
        }
        if (Array.IndexOf(_peers, peer) < 0)
        {
            // Not in the view (removed): nothing is sent to it until it rejoins.
            return;
        }
        // Its clock starts again: what it sent before, and what it heard from us, no longer count.
        var progress = _progress[peer];
        progress.LastSentAt = 0;
        progress.EchoedAt = null;
        _ready.Outbox.RemoveAll(m => m.To == peer);
        DropFencedReadsFor(peer);
        progress.ResendPending = true;
    }

    /// <summary>A client request arrived on connection <paramref name="connectionId"/>.</summary>
    public void OnClientRequest(long connectionId, ClientRequest request)
    {
        if (_stop is not null)
        {
            return;
        }
        string? invalid = RequestValidation.Check(request, _options.MaxValueBytes);
        if (invalid is not null)
        {
            ReplyError(connectionId, request.RequestId, ErrorCode.InvalidRequest, invalid);
            return;
        }
        switch (request.Operation)
        {
            case Operation.Get or Operation.Exists:
                StartRead(connectionId, request);
                break;
            case Operation.Put or Operation.Delete or Operation.Update or Operation.CompareAndSet or Operation.Txn:
                StartWrite(connectionId, request);
                break;
            case Operation.MultiGet or Operation.Scan:
                StartRangeRead(connectionId, request);
                break;
            case Operation.Watch:
                StartWatch(connectionId, request);
                break;
            case Operation.Status:
                _ready.ReplyOutbox.Add(new ClientResponse(connectionId, new ClientReply
                {
                    RequestId = request.RequestId,
                    Status = ReplyStatus.Ok,
                    ReplicaStatus = new ReplicaStatus
                    {
                        ReplicaId = SelfId,
                        ViewNumber = _viewNumber,
                        Members = [.. Members],
                        Suspected = SuspectedIds(),
                        DeliveredTime = LastDelivered.Time,
                        DeliveredReplica = LastDelivered.ReplicaId,
                        PendingWrites = _holdBack.Count,
                        Wedged = Wedged,
                        Removed = Removed,
                    },
                }));
                break;
            default:
                // User and role changes reach the core only rewritten by the Node's access
                // control into writes of their reserved keys.
                ReplyError(connectionId, request.RequestId, ErrorCode.InvalidRequest, $"{request.Operation} is handled by the replica's access control, not the core");
                break;
        }
    }

    /// <summary>
    /// A message from peer <paramref name="from"/> arrived, in FIFO order on its link. Throws
    /// <see cref="ProtocolViolationException"/>, with no state changed, if the message breaks the
    /// protocol. It may stop the core (<see cref="Ready.Stop"/>): this replica fell behind, or
    /// the peer shows that this replica lost state it had promised.
    /// </summary>
    public void OnPeerMessage(int from, PeerMessage? message)
    {
        if (_stop is not null)
        {
            return;
        }
        if (from == SelfId || Array.IndexOf(_configured, from) < 0)
        {
            throw new ProtocolViolationException($"message from replica {from}, which is not a configured replica");
        }
        // Every message is checked whole before anything below acts on any of it, whatever
        // state this replica is in: a malformed one changes nothing and closes the link.
        ValidateShape(from, message);
        if (message is ViewInstall learned && (Removed || Array.IndexOf(_peers, from) < 0 || learned.Number > _viewNumber))
        {
            // A newer view, possibly one without this replica (it learns it was removed).
            InstallView(learned);
            return;
        }
        if (message is OrderBatch early && early.View > _viewNumber)
        {
            // From a member of a view this replica has not installed yet (links overtake each
            // other: the install comes from the coordinator). The batch waits, in order, for
            // that install: it may add this replica back or the sender, and this replica may
            // enter it on the coordinator's state, which must not wipe what the batch carries.
            _earlyBatches.Add((from, early));
            return;
        }
        if (Removed)
        {
            // Removed, it takes part only in the view change that adds it back. Anything else
            // is from before its removal: what still matters of it comes again with the
            // catch-up, or in the members' re-sends once it is added back.
            switch (message)
            {
                case ViewPropose propose:
                    ReceivePropose(from, propose);
                    break;
                case CatchUpWrites catchUp:
                    ReceiveCatchUp(catchUp);
                    break;
                case JoinRefused refused:
                    StopWith(CoreStopKind.FellBehind, FellBehind(from, refused));
                    break;
            }
            return;
        }
        if (Array.IndexOf(_peers, from) < 0)
        {
            if (message is JoinRequest request)
            {
                ReceiveJoinRequest(from, request);
            }
            else if (message is ViewJoin rejoin)
            {
                // A removed replica joining the view change that adds it back.
                ReceiveJoin(from, rejoin);
            }
            else
            {
                TellRemoved(from);
            }
            return;
        }
        if (message is JoinRequest rejoinRequest)
        {
            // Not a sign of life as a member: a member that only asks to rejoin acknowledges
            // nothing, and must be suspected if it cannot be brought back.
            ReceiveJoinRequest(from, rejoinRequest);
            return;
        }
        switch (message)
        {
            case ViewPropose propose:
                ReceivePropose(from, propose);
                break;
            case ViewJoin join:
                ReceiveJoin(from, join);
                break;
            case ViewInstall install:
                InstallView(install);
                break;
            case CatchUpWrites catchUp:
                // A member that missed a view: the coordinator's state, ahead of the install.
                ReceiveCatchUp(catchUp);
                break;
            case JoinRefused refused when Wedged && refused.ViewNumber == _promised:
                StopWith(CoreStopKind.FellBehind, FellBehind(from, refused));
                return;
            case JoinRefused:
                break;
            case OrderBatch batch:
                ReceiveBatch(from, batch);
                break;
            case ReadQuery query:
                ReceiveReadQuery(from, query);
                break;
            case ReadAnswer answer:
                ReceiveReadAnswer(from, answer);
                break;
            case ReadIndexQuery indexQuery:
                ReceiveReadIndexQuery(from, indexQuery);
                break;
            case ReadIndexAnswer indexAnswer:
                ReceiveReadIndexAnswer(indexAnswer);
                break;
            default:
                throw new ProtocolViolationException($"unexpected peer message {message.GetType().Name}");
        }
        // A sign of life, recorded only once the message was found valid (a violation changes
        // nothing), and not by a core the message stopped.
        if (_stop is null)
        {
            Heard(from);
        }
    }

    private string FellBehind(int from, JoinRefused refused) =>
        $"replica {SelfId} cannot rejoin from replica {from}'s recent writes: it delivered through {LastDelivered}, and replica {from} keeps only writes after {new Stamp(refused.KeptAfterTime, refused.KeptAfterReplica)}; starting afresh to catch up from a snapshot";

    private void ReplyError(long connectionId, long requestId, ErrorCode code, string message) =>
        _ready.ReplyOutbox.Add(new ClientResponse(connectionId, new ClientReply
        {
            RequestId = requestId,
            Status = ReplyStatus.Error,
            Error = code,
            ErrorMessage = message,
        }));
}
