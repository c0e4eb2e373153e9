using System.Buffers;
using System.Text;
using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using KvReplica.Store.Engine;
using KvReplica.Store.Persistence;
using KvReplica.Tests.Linearizability;
using MessagePack;

namespace KvReplica.Tests.Simulation;

/// <summary>A deliberately broken disk, to prove the checks notice lost state.</summary>
public enum DiskFault
{
    None,
    /// <summary>
    /// On restart the log loses its last one to three held writes (and what follows them), although
    /// they were appended before the messages that promised them were sent: the persist-before-send
    /// rule broken, as by a disk that acknowledges an fsync it did not do.
    /// </summary>
    ForgetLastHeldWrites,
    /// <summary>
    /// The storage engine commits the applied point in one transaction and the writes it covers in
    /// the next (<see cref="MemoryEngine"/>'s <c>splitAppliedPoint</c>), so a crash while the
    /// writes' commit is made durable leaves a point that claims writes the engine lacks.
    /// </summary>
    SplitEngineCommit,
}

/// <summary>A deliberately broken transport, to prove the link faults reach the link's duplicate check.</summary>
public enum TransportFault
{
    None,
    /// <summary>An envelope the receiving link recognises as a duplicate is handed to the core anyway.</summary>
    DuplicatesReachTheCore,
}

/// <summary>Knobs of one simulated run.</summary>
public sealed record SimulationSettings
{
    public int Replicas { get; init; } = 3;
    public int Clients { get; init; } = 4;
    public int OpsPerClient { get; init; } = 15;
    public int Keys { get; init; } = 3;
    /// <summary>Simulated milliseconds the network gets to quiet down after the last operation.</summary>
    public long QuiesceMs { get; init; } = 3000;

    /// <summary>
    /// Delivered writes each replica keeps to bring a removed one back; a small window makes
    /// rejoins fall back to a fresh start with a snapshot catch-up.
    /// </summary>
    public int RecentDeliveredWrites { get; init; } = 50_000;
    /// <summary>Builds each replica's state machine; tests of the checkers plug in a broken one.</summary>
    public Func<IStorageEngine, IReplicatedStateMachine> StoreFactory { get; init; } = engine => new KvStore(engine);
    /// <summary>
    /// Crash events per run (0: none). Each one that falls before the clients are done crashes a
    /// replica that is up. Recovery rebuilds a <see cref="KvStore"/>, so crashes need that store.
    /// </summary>
    public int Crashes { get; init; }
    /// <summary>
    /// Pauses per run (0: none), as SIGSTOP or a long GC pause: the replica processes nothing for
    /// 0.2 to 3 s, then everything that arrived meanwhile, in order. Longer than the suspicion
    /// timeout, the others remove it: a false suspicion.
    /// </summary>
    public int Pauses { get; init; }
    /// <summary>
    /// Partitions per run (0: none), each 0.3 to 4 s: one replica isolated, a majority/minority
    /// split, or one direction of one link cut (asymmetric). What an established connection
    /// carries across a cut link waits (TCP retransmits it) and crosses in order when it heals; no
    /// connection can be opened across it meanwhile. Partitions may overlap pauses and link faults.
    /// </summary>
    public int Partitions { get; init; }
    /// <summary>
    /// Link faults per run (0: none): a connection between two replicas breaks (sometimes the one
    /// the other way too). Envelopes in flight on it are lost from a random point on; the sender
    /// redials with the Node's backoff and the resume handshake re-sends what the receiver had not
    /// taken in, so some envelopes arrive twice and the real <c>ReliableLink</c> must drop them.
    /// </summary>
    public int LinkFaults { get; init; }
    /// <summary>
    /// How long, in simulated ms, writes may take once every fault has healed (null: derived from
    /// the suspicion timeout, see <c>SimulatedCluster.LivenessBoundMs</c>).
    /// </summary>
    public long? LivenessBoundMs { get; init; }
    /// <summary>Percentage of crashes that tear the batch being written (a prefix of it reaches the disk).</summary>
    public int TornCrashPercent { get; init; } = 35;
    /// <summary>Percentage of crashes that come after a batch is durable, while its messages are being sent.</summary>
    public int MidSendCrashPercent { get; init; } = 20;
    /// <summary>After a drain that delivered writes, the storage engine commits with probability 1 in this.</summary>
    public int EngineCommitOneIn { get; init; } = 25;
    /// <summary>Percentage of engine commits during which the replica crashes: the commit is lost, or made but the log not yet truncated.</summary>
    public int CrashInEngineCommitPercent { get; init; } = 10;
    /// <summary>A client with no reply after this long records the outcome as unknown and moves on.</summary>
    public long ClientTimeoutMs { get; init; } = 8000;
    public DiskFault DiskFault { get; init; } = DiskFault.None;
    public TransportFault TransportFault { get; init; } = TransportFault.None;
    /// <summary>Clients also issue UPDATE, CAS, put-if-absent, EXISTS, TXN, MGET and paged LIST (false: PUT, DELETE and GET only).</summary>
    public bool ExtendedOperations { get; init; } = true;
    /// <summary>Watchers per run: each streams the changes of every key from a random replica, moving on when that replica's process dies.</summary>
    public int Watchers { get; init; } = 1;
}

/// <summary>What the fault injection did in one run, to prove the faults really happen.</summary>
public sealed record SimulationStats(
    int Crashes,
    int TornCrashes,
    int TornEntriesLost,
    int TornTailsTruncated,
    int Restarts,
    int RestartsFromEngine,
    int RecoveredHeldWrites,
    int ReplayedWrites,
    int EngineCommits,
    int ClientTimeouts,
    int ForgottenEntries,
    int RepeatedRestartNotices,
    int RunsWithEveryReplicaDown,
    int CrashesMidSend,
    int UnsentMessages,
    int CoveredEntriesKept,
    int ViewsInstalled = 0,
    int Rejoins = 0,
    int FreshStarts = 0,
    int CatchUps = 0,
    int Pauses = 0,
    int Partitions = 0,
    int LinkFaults = 0,
    int LinkFaultsAmidOtherFaults = 0,
    int EnvelopesLost = 0,
    int DuplicatesDropped = 0,
    int Resumes = 0,
    int ResentEnvelopes = 0,
    int DisposablesDropped = 0,
    int LivenessProbes = 0,
    long SlowestProbeMs = 0,
    int LostEngineCommits = 0,
    int CrashesBeforeLogTruncation = 0)
{
    public static SimulationStats operator +(SimulationStats a, SimulationStats b) => new(
        a.Crashes + b.Crashes, a.TornCrashes + b.TornCrashes, a.TornEntriesLost + b.TornEntriesLost,
        a.TornTailsTruncated + b.TornTailsTruncated, a.Restarts + b.Restarts, a.RestartsFromEngine + b.RestartsFromEngine,
        a.RecoveredHeldWrites + b.RecoveredHeldWrites, a.ReplayedWrites + b.ReplayedWrites, a.EngineCommits + b.EngineCommits,
        a.ClientTimeouts + b.ClientTimeouts, a.ForgottenEntries + b.ForgottenEntries,
        a.RepeatedRestartNotices + b.RepeatedRestartNotices, a.RunsWithEveryReplicaDown + b.RunsWithEveryReplicaDown,
        a.CrashesMidSend + b.CrashesMidSend, a.UnsentMessages + b.UnsentMessages, a.CoveredEntriesKept + b.CoveredEntriesKept,
        a.ViewsInstalled + b.ViewsInstalled, a.Rejoins + b.Rejoins, a.FreshStarts + b.FreshStarts, a.CatchUps + b.CatchUps, a.Pauses + b.Pauses, a.Partitions + b.Partitions,
        a.LinkFaults + b.LinkFaults, a.LinkFaultsAmidOtherFaults + b.LinkFaultsAmidOtherFaults, a.EnvelopesLost + b.EnvelopesLost,
        a.DuplicatesDropped + b.DuplicatesDropped, a.Resumes + b.Resumes, a.ResentEnvelopes + b.ResentEnvelopes,
        a.DisposablesDropped + b.DisposablesDropped, a.LivenessProbes + b.LivenessProbes, Math.Max(a.SlowestProbeMs, b.SlowestProbeMs),
        a.LostEngineCommits + b.LostEngineCommits, a.CrashesBeforeLogTruncation + b.CrashesBeforeLogTruncation);

    public static readonly SimulationStats None = new(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}

/// <summary>A check that failed; the message names the seed, the simulated time and what broke.</summary>
public sealed class SimulationFailure(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// A whole cluster of replica cores, their disks, their clients and the network between them, run
/// on one thread from one seed: the same seed replays the same run exactly (TigerBeetle's VOPR idea).
/// </summary>
/// <remarks>
/// <para>Peer messages travel as the Node sends them: wrapped by the real <c>ReliableLink</c> in
/// envelopes, over one connection per ordered replica pair, dialled by the sender and opened by
/// the Node's handshake (incarnations, and where to resume). The network delays every
/// transmission randomly, keeps each connection FIFO and interleaves connections at random. Link
/// faults break connections (losing what was in flight from a random point) and the resume
/// handshake makes up for it, with duplicates the link must drop; see SimulatedCluster.Links.cs.
/// Clients run closed loops of PUT, DELETE, GET, UPDATE, CAS, EXISTS, TXN, MGET and paged LIST on
/// a few keys (SimulatedCluster.Operations.cs), through random replicas, and sometimes send the
/// same write to a second replica as a timed-out client would; a watcher streams every change.</para>
/// <para>Each replica has a simulated disk: a write-ahead log (the real record format, as bytes)
/// and an optional snapshot (the real snapshot format). Every Ready is driven as the Node drives
/// it: log the newly held writes and the delivered-through marker, then send, then reply. Replicas
/// crash at random moments, sometimes in the middle of writing a batch (a torn tail, nothing of
/// that batch sent), and restart from snapshot + log with a new incarnation; links to and from the
/// old incarnation are dead, and peers learn of the restart from the handshake of a new one.</para>
/// <para>After every event the agreement checkers run. Once every fault has healed, writes at
/// every member of the view must complete within a bound (SimulatedCluster.Liveness.cs); then the
/// network quiets down and convergence, recoverability and linearizability are checked.</para>
/// </remarks>
public sealed partial class SimulatedCluster
{
    private abstract record Event;
    private sealed record ClientArrival(int Replica, int Incarnation, int Client, ClientRequest Request) : Event;
    private sealed record ClientReplyArrival(int Client, ClientReply Reply) : Event;
    private sealed record TickEvent(int Replica, int Incarnation) : Event;
    private sealed record ClientStart(int Client) : Event;
    private sealed record ClientTimeout(int Client, long RequestId) : Event;
    private sealed record CrashEvent : Event;
    private sealed record RestartEvent(int Replica) : Event;
    private sealed record PauseEvent : Event;
    private sealed record PartitionEvent : Event;
    private sealed record HealEvent(long Partition) : Event;
    private sealed record ResumeEvent(int Replica) : Event;

    private sealed class SimClient(int id, ulong clientId, int concurrency)
    {
        public int Id { get; } = id;
        public ulong ClientId { get; } = clientId;
        /// <summary>Operations this client keeps in flight at once (pipelining).</summary>
        public int Concurrency { get; } = concurrency;
        public long NextSequence = 1;
        public int Started;
        public int Done;
        public long RequestId;
        public readonly Dictionary<long, (ClientRequest Request, long InvokedAt)> Pending = new();
        /// <summary>
        /// Write sequences without a reply; AckedBelow is the smallest of them. A write that timed
        /// out stays here for good: the client never learned its outcome, and a copy of it may still
        /// be delivered, so it must not promise the replicas it has that reply.
        /// </summary>
        public readonly SortedSet<long> UnansweredWrites = [];
    }

    private sealed class SimReplica(int id, ReplicaCoreOptions options)
    {
        public int Id { get; } = id;
        public ReplicaCoreOptions Options { get; } = options;
        public ReplicaCore? Core;
        public IReplicatedStateMachine? Store;
        public bool Up => Core is not null;
        public int Incarnation = 1;
        /// <summary>This process's transport state per peer (the Node's PeerLinks); a new process starts afresh.</summary>
        public Dictionary<int, SimPeerLink> Links = new();
        /// <summary>A crash due inside a drain: the next one with something to write (or to send) crashes half-way.</summary>
        public (bool MidSend, long By)? CrashInDrain;
        /// <summary>The last view it installed left it out (a removed replica); survives restarts, like its log.</summary>
        public bool WasRemoved;
        /// <summary>Its next start fetches a member's snapshot and log first (it fell behind the members' recent writes).</summary>
        public bool CatchUpOnRestart;
        /// <summary>Paused: events for it wait here, in arrival order, until it resumes.</summary>
        public List<Event>? HeldWhilePaused;

        // The disk: what survives a crash.
        public readonly MemoryStream Log = new();
        public MemoryEngine Engine = null!;
        /// <summary>An engine commit made but not yet seen complete by the process (the Node's background commit).</summary>
        public EngineCommit? CommitInFlight;

        // The checkers' view: how far along the canonical order this replica's store is, and the
        // client writes it applied (non-duplicates) at each of those positions.
        public int DeliveredCount;
        public readonly List<(ulong ClientId, long Sequence)?> AppliedAt = [];
        public readonly HashSet<(ulong, long)> Applied = [];

        public ReplicaCore LiveCore => Core ?? throw new InvalidOperationException($"replica {Id} is down");
        public IReplicatedStateMachine LiveStore => Store ?? throw new InvalidOperationException($"replica {Id} is down");
        public ReadOnlySpan<byte> LogBytes => Log.GetBuffer().AsSpan(0, (int)Log.Length);
    }

    private readonly long _seed;
    private readonly SimulationSettings _settings;
    private readonly Random _random;
    private readonly PriorityQueue<Event, (long Time, long Order)> _events = new();
    private readonly Dictionary<int, SimReplica> _replicas = new();
    private readonly List<SimClient> _clients = [];
    private readonly List<KvOperation> _history = [];
    // Client writes recorded with an unknown outcome (their index in the history), and every
    // client write delivered anywhere, by client id and sequence number.
    private readonly List<(int Index, ulong ClientId, long Sequence)> _unknownWrites = [];
    private readonly HashSet<(ulong, long)> _deliveredAnywhere = [];
    private readonly List<WriteCommand> _canonical = [];
    private readonly Dictionary<Stamp, int> _canonicalIndex = new();
    private readonly ArrayBufferWriter<byte> _scratch = new();
    private long _now;
    private long _order;
    private int _crashEventsLeft;
    private int _crashes, _tornCrashes, _tornEntriesLost, _tornTails, _restarts, _restartsFromEngine;
    private int _recoveredHeld, _replayed, _engineCommits, _clientTimeouts, _forgotten, _repeatedNotices, _lostEngineCommits, _crashesBeforeTruncation;
    private bool _everyReplicaWasDown;
    private int _crashesMidSend, _unsentMessages, _coveredKept, _viewsInstalled, _rejoins, _freshStarts, _catchUps, _pauses, _partitions;
    // Whether the write at each position of the canonical order was a retry the store recognised:
    // the store decides it, so every replica must decide it alike.
    private readonly List<bool> _canonicalDuplicate = [];

    public SimulatedCluster(long seed, SimulationSettings settings)
    {
        _seed = seed;
        _settings = settings;
        _random = new Random(unchecked((int)seed ^ (int)(seed >> 32)));
        var ids = Enumerable.Range(1, settings.Replicas).ToArray();
        foreach (int id in ids)
        {
            var replica = new SimReplica(id, new ReplicaCoreOptions
            {
                SelfId = id,
                Members = ids,
                HeartbeatIntervalMs = 20,
                ReadTimeoutMs = 2000,
                WriteTimeoutMs = 5000,
                RecentDeliveredWrites = settings.RecentDeliveredWrites,
            });
            replica.Engine = NewEngine();
            replica.Store = settings.StoreFactory(replica.Engine);
            if (settings.Crashes > 0 && replica.Store is not KvStore)
            {
                throw new ArgumentException("crashes need the KvStore: recovery rebuilds one from the engine and log", nameof(settings));
            }
            replica.Core = new ReplicaCore(replica.Options, replica.Store);
            replica.Links = FreshLinks(id, ids);
            _replicas[id] = replica;
            Schedule(_random.Next(0, 10), new TickEvent(id, 1));
            StartOutboundLoops(replica);
        }
        for (int c = 1; c <= settings.Clients; c++)
        {
            // Three clients in ten pipeline 2 or 3 operations, so pipelined sequences reach the
            // replicas out of order and exercise the exactly-once watermark.
            int concurrency = _random.Next(10) < 3 ? 2 + _random.Next(2) : 1;
            var client = new SimClient(c, (ulong)_random.NextInt64(1, long.MaxValue), concurrency);
            _clients.Add(client);
            for (int k = 0; k < concurrency; k++)
            {
                Schedule(_random.Next(0, 20), new ClientStart(c));
            }
        }
        for (int w = 0; w < settings.Watchers; w++)
        {
            _watchers.Add(new SimWatcher(w));
            Schedule(_random.Next(0, 1500), new WatchOpen(w));
        }
        _crashEventsLeft = settings.Crashes;
        if (_crashEventsLeft > 0)
        {
            Schedule(_random.Next(0, 400), new CrashEvent());
        }
        for (int p = 0; p < settings.Pauses; p++)
        {
            Schedule(_random.Next(0, 3000), new PauseEvent());
        }
        for (int p = 0; p < settings.Partitions; p++)
        {
            Schedule(_random.Next(0, 4000), new PartitionEvent());
        }
        for (int f = 0; f < settings.LinkFaults; f++)
        {
            Schedule(_random.Next(0, 4000), new LinkFaultEvent());
        }
    }

    /// <summary>Operations performed, for the summary line.</summary>
    public int Operations => _history.Count;

    /// <summary>The most operations one client had in flight at once (above 1 means pipelining happened).</summary>
    public int MaxInFlight { get; private set; }

    /// <summary>Writes delivered (in the agreed order).</summary>
    public int WritesDelivered => _canonical.Count;

    /// <summary>What the fault injection did.</summary>
    public SimulationStats Stats => new(_crashes, _tornCrashes, _tornEntriesLost, _tornTails, _restarts, _restartsFromEngine,
        _recoveredHeld, _replayed, _engineCommits, _clientTimeouts, _forgotten, _repeatedNotices, _everyReplicaWasDown ? 1 : 0,
        _crashesMidSend, _unsentMessages, _coveredKept, _viewsInstalled, _rejoins, _freshStarts, _catchUps, _pauses, _partitions,
        _linkFaults, _linkFaultsAmidOthers, _envelopesLost, _duplicatesDropped, _resumes, _resentEnvelopes, _disposablesDropped,
        _probes?.Count(p => p.CompletedAt is not null) ?? 0, SlowestProbeMs, _lostEngineCommits, _crashesBeforeTruncation);

    /// <summary>Runs to the end and checks everything; throws <see cref="SimulationFailure"/> on any violation.</summary>
    public void Run()
    {
        while (_events.TryDequeue(out var next, out var at))
        {
            _now = at.Time;
            if (Finished())
            {
                break;
            }
            try
            {
                Dispatch(next);
                // Every live core's own invariants, after every step (an InvariantViolationException
                // fails the seed below, naming the invariant).
                foreach (var r in _replicas.Values)
                {
                    r.Core?.CheckInvariants();
                }
            }
            catch (SimulationFailure)
            {
                throw;
            }

            catch (Exception e)
            {
                // StateLostException, ProtocolViolationException, InvariantViolationException, a recovery error: a correct
                // cluster never raises any of them, so each one fails the run with its seed.
                Fail($"{e.GetType().Name} handling {next.GetType().Name}: {e.Message}", e);
            }
            if (_probes is null && ClientsDone)
            {
                if (EveryFaultHealed())
                {
                    StartProbes();
                }
                else
                {
                    _clientsDoneAt ??= _now;
                    if (_now - _clientsDoneAt > NeverHealsMs)
                    {
                        Fail($"the faults never healed in {NeverHealsMs} ms after the clients were done: {DescribeUnhealed()}");
                    }
                }
            }
        }
        CheckQuiescent();
        CheckEveryDiskRecoversTheLiveState();
        AppendFinalReads();
        CheckWatchers();
        var verdict = LinearizabilityChecker.Check(HistoryForChecking(), TimeSpan.FromSeconds(30));
        if (!verdict.IsLinearizable)
        {
            Fail($"history {verdict.Verdict}: {verdict.Explanation}");
        }
    }

    // No fault starts once the clients are done, so the last one heals within a few seconds
    // (the longest pause or partition, a restart, the redial backoff); far longer means a
    // replica or a link is stuck.
    private const long NeverHealsMs = 60_000;
    private long? _clientsDoneAt;

    // Every replica up, none paused or about to crash, no link cut, every connection up.
    private bool EveryFaultHealed() =>
        _replicas.Values.All(r => r.Up && r.HeldWhilePaused is null && r.CrashInDrain is null) && _cutLinks.Count == 0 && EveryLinkConnected();

    private string DescribeUnhealed() =>
        $"down [{string.Join(",", _replicas.Values.Where(r => !r.Up).Select(r => r.Id))}], paused [{string.Join(",", _replicas.Values.Where(r => r.HeldWhilePaused is not null).Select(r => r.Id))}], " +
        $"cut links {_cutLinks.Count}, links: {DescribeLinks()}";

    // An event on its way: across the network first (a cut link holds it), then into the process
    // (a paused one holds it). What a paused process held had already crossed the network.
    private void Dispatch(Event e)
    {
        if (WireOf(e) is { } wire && _cutLinks.TryGetValue(wire, out var waiting))
        {
            waiting.Messages.Add(e);
            return;
        }
        if (TargetOf(e) is int target && _replicas[target].HeldWhilePaused is { } held)
        {
            held.Add(e);
            return;
        }
        Handle(e);
    }

    // Writes whose outcome the client never learned (a timeout, an error such as the refusal of a
    // removed replica) but that no replica ever delivered, not even in memory before a crash,
    // changed nothing any read could see, so the checker need not place them: each one it must
    // place, or leave out, doubles its search, and a run with a removed replica refusing many
    // writes could exhaust its time budget. Every unknown write that was delivered anywhere stays.
    private List<KvOperation> HistoryForChecking()
    {
        var drop = _unknownWrites.Where(w => !_deliveredAnywhere.Contains((w.ClientId, w.Sequence))).Select(w => w.Index).ToHashSet();
        return [.. _history.Where((_, i) => !drop.Contains(i))];
    }

    private bool ClientsDone => _clients.All(c => c.Done >= _settings.OpsPerClient && c.Pending.Count == 0);

    private void Schedule(long delay, Event e) => _events.Enqueue(e, (_now + delay, ++_order));

    // The process an event happens in (paused, it waits).
    private static int? TargetOf(Event e) => e switch
    {
        TickEvent t => t.Replica,
        ClientArrival a => a.Replica,
        DialEvent d => d.Replica,
        HelloArrival h => h.Connection.To,
        HelloAcceptedArrival h => h.Connection.From,
        EnvelopeArrival a => a.Connection.To,
        ConnectionLost l => l.Connection.From,
        _ => null,
    };

    // The direction of the network an event crosses (cut, it waits).
    private static (int From, int To)? WireOf(Event e) => e switch
    {
        HelloArrival h => (h.Connection.From, h.Connection.To),
        HelloAcceptedArrival h => (h.Connection.To, h.Connection.From),
        EnvelopeArrival { Queued: false } a => (a.Connection.From, a.Connection.To),
        _ => null,
    };

    private sealed class CutLink(long partition)
    {
        public long Partition { get; } = partition;
        public List<Event> Messages { get; } = [];
    }

    // Links cut by a partition, each with what waits to cross it.
    private readonly Dictionary<(int From, int To), CutLink> _cutLinks = new();
    private long _partitionCount;

    private void StartPartition()
    {
        // One partition at a time (each link is cut by at most one). It may overlap a pause:
        // what waited on a cut link crosses the network at the heal and then, if its replica is
        // still paused, waits behind what that replica already holds (see Dispatch).
        if (ClientsDone || _cutLinks.Count > 0)
        {
            return;
        }
        long partition = ++_partitionCount;
        int[] ids = [.. _replicas.Keys];
        var links = new List<(int, int)>();
        switch (_random.Next(3))
        {
            case 0:
            {
                int isolated = ids[_random.Next(ids.Length)];
                links.AddRange(ids.Where(o => o != isolated).SelectMany(o => new[] { (isolated, o), (o, isolated) }));
                break;
            }
            case 1:
            {
                var minority = ids.OrderBy(_ => _random.Next()).Take((ids.Length - 1) / 2).ToHashSet();
                links.AddRange(from a in ids from b in ids where a != b && minority.Contains(a) != minority.Contains(b) select (a, b));
                break;
            }
            default:
            {
                int a = ids[_random.Next(ids.Length)];
                int b = ids.Where(o => o != a).ElementAt(_random.Next(ids.Length - 1));
                links.Add((a, b));
                break;
            }
        }
        foreach (var link in links)
        {
            _cutLinks[link] = new CutLink(partition);
        }
        _partitions++;
        Schedule(_random.Next(300, 4001), new HealEvent(partition));
    }

    // The links come back; what waited crosses first, in order (FIFO per connection).
    private void Heal(long partition)
    {
        foreach (var (link, cut) in _cutLinks.Where(c => c.Value.Partition == partition).ToList())
        {
            _cutLinks.Remove(link);
            foreach (var message in cut.Messages)
            {
                Dispatch(message);
            }
        }
    }

    private void StartPause()
    {
        var candidates = _replicas.Values.Where(r => r.Up && r.HeldWhilePaused is null && r.CrashInDrain is null).ToList();
        if (candidates.Count == 0 || ClientsDone)
        {
            return;
        }
        var paused = candidates[_random.Next(candidates.Count)];
        paused.HeldWhilePaused = [];
        _pauses++;
        Schedule(_random.Next(200, 3001), new ResumeEvent(paused.Id));
    }

    // Everything that arrived while it was paused is handled now, in the order it arrived: the
    // process's sockets and timers queued it (links stay FIFO).
    private void Resume(SimReplica r)
    {
        var held = r.HeldWhilePaused!;
        r.HeldWhilePaused = null;
        foreach (var e in held)
        {
            Handle(e);
        }
    }

    private void Handle(Event e)
    {
        switch (e)
        {
            case TickEvent tick:
            {
                var r = _replicas[tick.Replica];
                if (!r.Up || r.Incarnation != tick.Incarnation)
                {
                    break; // the timer died with its process; the restart started a new one
                }
                r.LiveCore.Tick(_now);
                Drain(r);
                Schedule(5 + _random.Next(0, 6), tick);
                break;
            }
            case DialEvent dial:
                Dial(dial);
                break;
            case HelloArrival hello:
                AnswerHello(hello.Connection);
                break;
            case HelloAcceptedArrival accepted:
                CompleteHandshake(accepted);
                break;
            case EnvelopeArrival envelope:
                ArriveEnvelope(envelope);
                break;
            case ConnectionLost lost:
                LoseConnection(lost.Connection);
                break;
            case LinkFaultEvent:
                StartLinkFault();
                break;
            case ProbeTimeout probeTimeout:
                OnProbeTimeout(probeTimeout);
                break;
            case ProbeRetry retry:
                SendProbe(_probes![retry.Replica - 1]);
                break;
            case ProbeDeadline:
                CheckProbesAtDeadline();
                break;
            case ClientArrival a:
            {
                var r = _replicas[a.Replica];
                if (!r.Up || r.Incarnation != a.Incarnation)
                {
                    break; // its connection died with the process: the client hears nothing
                }
                r.LiveCore.OnClientRequest(a.Client, a.Request);
                Drain(r);
                break;
            }
            case ClientReplyArrival reply when reply.Client >= WatcherConnectionBase:
                OnWatchReply(reply.Client - WatcherConnectionBase, reply.Reply);
                break;
            case WatchOpen open:
                OpenWatch(_watchers[open.Watcher]);
                break;
            case WatchCheck check:
                CheckWatchConnection(_watchers[check.Watcher]);
                break;
            case ClientReplyArrival reply when reply.Client >= ProbeConnectionBase:
                OnProbeReply(reply.Client - ProbeConnectionBase, reply.Reply);
                break;
            case ClientReplyArrival reply:
                Complete(reply.Client, reply.Reply);
                break;
            case ClientStart s:
                StartOperation(_clients[s.Client - 1]);
                break;
            case ClientTimeout t:
                TimeOut(_clients[t.Client - 1], t.RequestId);
                break;
            case CrashEvent:
                StartCrash();
                break;
            case RestartEvent restart:
                Restart(_replicas[restart.Replica]);
                break;
            case PauseEvent:
                StartPause();
                break;
            case PartitionEvent:
                StartPartition();
                break;
            case HealEvent heal:
                Heal(heal.Partition);
                break;
            case ResumeEvent resume:
                Resume(_replicas[resume.Replica]);
                break;
        }
    }

    // Acts on the core's Ready exactly as the Node must: stop if the core stopped, persist
    // (through Store's ReadyRecords, as the Node does), advance, then send to peers, then reply
    // to clients.
    private void Drain(SimReplica r)
    {
        var ready = r.LiveCore.TakeReady();
        if (ready.Stop is { Kind: CoreStopKind.FellBehind })
        {
            // As the Node does: start again afresh, from a member's snapshot.
            StartAfresh(r);
            return;
        }
        if (ready.Stop is { Kind: CoreStopKind.StateLost } stateLost)
        {
            // A correct cluster never loses state it promised.
            Fail($"replica {r.Id} stopped (StateLost): {stateLost.Reason}");
        }
        if (ready.PeerViolations.Count > 0)
        {
            // Like a thrown ProtocolViolationException: a correct cluster never reports one.
            Fail($"replica {r.Id} found peer {ready.PeerViolations[0].Peer} broke the protocol: {ready.PeerViolations[0].Reason}");
        }
        var entries = ReadyRecords.ToLogEntries(ready);
        if (Trace && ready.Rebase is { } rebase)
        {
            Console.WriteLine($"t={_now} r{r.Id}: rebase held through [{string.Join(",", rebase.HeldThrough)}], delivered now {string.Join(" ", ready.Delivered.Select(d => d.Command.Stamp))}");
        }
        if (Trace && (ready.Joined is not null || ready.InstalledView is not null))
        {
            Console.WriteLine($"t={_now} r{r.Id}: joined {ready.Joined?.Number} view {ready.InstalledView?.Number} [{string.Join(",", ready.InstalledView?.Members ?? [])}] trims {string.Join(",", (ready.InstalledView?.TrimOrigins ?? []).Zip(ready.InstalledView?.TrimTimes ?? []).Select(t => $"{t.First}<={t.Second}"))} lastDelivered {r.LiveCore.LastDelivered}");
        }
        if (ready.InstalledView is { } installedView)
        {
            _viewsInstalled++;
            bool member = installedView.Members.Contains(r.Id);
            if (member && r.WasRemoved)
            {
                _rejoins++;
            }
            r.WasRemoved = !member;
        }
        // The batch as bytes, and where each record ends (to count what a torn write loses).
        _scratch.ResetWrittenCount();
        var ends = new List<int>(entries.Count);
        foreach (var entry in entries)
        {
            WriteAheadLog.Append(_scratch, [entry]);
            ends.Add(_scratch.WrittenCount);
        }
        var batch = _scratch.WrittenSpan;
        if (r.CrashInDrain is not null && ClientsDone)
        {
            r.CrashInDrain = null; // no crash once the clients are done: the end needs everyone up
        }
        bool tearing = r.CrashInDrain is { MidSend: false } tornAhead && (entries.Count > 0 || _now >= tornAhead.By);
        int tornCut = tearing ? _random.Next(batch.Length + 1) : batch.Length;
        // Deliveries whose marker never reached the disk, in a round that sent nothing, were
        // seen by nobody: the crash undoes them, and a view change may then trim those writes
        // (no one else can have delivered them: that needed this replica's logged acknowledgement).
        bool deliveriesDurable = !tearing || ready.LastDelivered == Stamp.Zero || ends[^1] <= tornCut;
        foreach (var delivered in ready.Delivered)
        {
            // Checked even when the batch is about to be torn: what a replica applied in memory
            // before crashing must agree with what everyone else delivered.
            CheckDelivery(r, delivered, establishes: deliveriesDurable);
            if (Trace && Environment.GetEnvironmentVariable("SIM_TRACE_KEY") is { } traced && delivered.Command.Key == traced)
            {
                Console.WriteLine($"t={_now} r{r.Id}: delivered {delivered.Command.Stamp} {delivered.Command.Operation} {traced}={(delivered.Command.Value is { } v ? System.Text.Encoding.UTF8.GetString(v) : "")} client {delivered.Command.ClientId:x}/{delivered.Command.Sequence}{(delivered.Duplicate ? " (duplicate)" : "")}");
            }
        }
        if (r.CrashInDrain is { MidSend: true } midSend && (ready.MessageCount > 0 || _now >= midSend.By))
        {
            // The batch is durable and the process dies while sending: each link got its own
            // random prefix of its messages (links are FIFO), the clients got nothing.
            r.Log.Write(batch);
            r.LiveCore.Advance(ready);
            foreach (var link in ready.Messages.GroupBy(m => m.To))
            {
                var messages = link.ToList();
                int sent = _random.Next(messages.Count + 1);
                foreach (var message in messages.Take(sent))
                {
                    Enqueue(r, message.To, message.Message);
                }
                Flush(r, link.Key);
                _unsentMessages += messages.Count - sent;
            }
            _crashesMidSend++;
            Crash(r);
            return;
        }
        if (r.CrashInDrain is { MidSend: false } torn && (entries.Count > 0 || _now >= torn.By))
        {
            // Power fails while the batch is being written: a prefix of its bytes (possibly none,
            // possibly all, possibly ending inside a record) is on the disk, and nothing of this
            // Ready was sent, since sending waits for the write to be durable.
            int cut = tornCut;
            r.Log.Write(batch[..cut]);
            _tornEntriesLost += ends.Count(end => end > cut);
            _tornCrashes++;
            Crash(r);
            return;
        }
        r.Log.Write(batch);
        r.LiveCore.Advance(ready);
        foreach (var message in ready.Messages)
        {
            Enqueue(r, message.To, message.Message);
        }
        foreach (int peer in ready.Messages.Select(m => m.To).Distinct())
        {
            Flush(r, peer);
        }
        foreach (var reply in ready.Replies)
        {
            if (Trace)
            {
                Console.WriteLine($"t={_now} r{r.Id}: reply to client {reply.ConnectionId} request {reply.Reply.RequestId}: {reply.Reply.Status} {(reply.Reply.Value is { } v ? System.Text.Encoding.UTF8.GetString(v) : "")} (view {r.LiveCore.ViewNumber}{(r.LiveCore.Removed ? " removed" : "")}, delivered {r.LiveCore.LastDelivered})");
            }
            Schedule(ReplyDelay(reply.ConnectionId), new ClientReplyArrival((int)reply.ConnectionId, reply.Reply));
        }
        if (r.Store is KvStore store)
        {
            if (r.CommitInFlight is not null && _random.Next(2) == 0)
            {
                CompleteEngineCommit(r, store);
            }
            if (ready.Delivered.Count > 0 && _random.Next(_settings.EngineCommitOneIn) == 0)
            {
                CommitEngine(r, store);
            }
        }
    }

    private MemoryEngine NewEngine() => new(splitAppliedPoint: _settings.DiskFault == DiskFault.SplitEngineCommit);

    // As the Node's ReplicaStorage.StartCommit and CollectCommit: the store hands what it applied
    // since the last commit (everything delivered, whose marker is already in the log) to the
    // engine, which commits it in one transaction with the stamp it reaches; the process sees the
    // commit complete later (the Node commits on a background thread), and meanwhile reads go
    // through the store's second overlay. Sometimes the replica crashes in the middle: while the
    // commit is being made durable (the commit is lost, the log untouched), or after it and
    // before the process saw it complete and truncated the log.
    private void CommitEngine(SimReplica r, KvStore store)
    {
        CompleteEngineCommit(r, store);
        var commit = store.BeginCommit();
        if (commit is null)
        {
            return;
        }
        r.Engine.Commit(commit.Batch);
        _engineCommits++;
        int roll = _random.Next(100);
        if (!ClientsDone && _crashEventsLeft > 0 && roll < _settings.CrashInEngineCommitPercent)
        {
            if (roll % 2 == 0)
            {
                r.Engine.LoseLastCommit();
                _lostEngineCommits++;
            }
            else
            {
                _crashesBeforeTruncation++;
            }
            Crash(r);
            return;
        }
        r.CommitInFlight = commit;
    }

    // The commit is done: the store reads it from the engine again, and the log records it
    // covers are dropped. Held writes above it stay: they are not delivered yet, and they are
    // logged in hold order, not stamp order, so they can sit anywhere in the log. Half the time
    // only the covered records in a prefix of the log go, as when whole segments are deleted:
    // recovery must skip the rest.
    private void CompleteEngineCommit(SimReplica r, KvStore store)
    {
        if (r.CommitInFlight is not { } commit)
        {
            return;
        }
        r.CommitInFlight = null;
        store.CompleteCommit(commit);
        var through = store.CommittedThrough;
        var log = WriteAheadLog.Scan(r.LogBytes).Entries;
        int prunedBelow = _random.Next(2) == 0 ? log.Count : _random.Next(log.Count + 1);
        var kept = new List<LogEntry>(log.Count);
        for (int i = 0; i < log.Count; i++)
        {
            // Promises and views carry no stamp: no commit covers them (a Node re-logs them at
            // the start of every segment, so deleting old segments never loses them). Nor does
            // one cover a rebase: the undelivered writes it forgets may sit before it, and a
            // Node deletes only whole segments from the front, so never a rebase without them.
            bool covered = log[i].Held is { } w ? w.Stamp <= through
                : log[i].View is null && log[i].Join is null && log[i].Rebase is null && log[i].LastDelivered <= through;
            if (!covered || i >= prunedBelow)
            {
                kept.Add(log[i]);
                _coveredKept += covered ? 1 : 0;
            }
        }
        RewriteLog(r, kept);
    }

    private void RewriteLog(SimReplica r, IEnumerable<LogEntry> entries)
    {
        _scratch.ResetWrittenCount();
        WriteAheadLog.Append(_scratch, entries);
        r.Log.SetLength(0);
        r.Log.Write(_scratch.WrittenSpan);
    }

    private void StartCrash()
    {
        if (ClientsDone)
        {
            return; // the end of the run needs every replica up for the liveness checks
        }
        if (--_crashEventsLeft > 0)
        {
            // Sometimes a burst (several machines on one power feed), so that two or all
            // replicas are down at once; otherwise spread out.
            Schedule(_random.Next(100) < 30 ? _random.Next(0, 100) : _random.Next(50, 1500), new CrashEvent());
        }
        var candidates = _replicas.Values.Where(r => r.Up && r.CrashInDrain is null && r.HeldWhilePaused is null).ToList();
        if (candidates.Count == 0)
        {
            return; // every replica is already down or about to be
        }
        var victim = candidates[_random.Next(candidates.Count)];
        int roll = _random.Next(100);
        if (roll < _settings.TornCrashPercent)
        {
            // Crash inside the next drain that writes something (or within 200 ms regardless),
            // so the torn batch usually holds records.
            victim.CrashInDrain = (false, _now + 200);
        }
        else if (roll < _settings.TornCrashPercent + _settings.MidSendCrashPercent)
        {
            victim.CrashInDrain = (true, _now + 200);
        }
        else
        {
            // Between two drains: everything appended so far is durable.
            Crash(victim);
        }
    }

    private static readonly bool Trace = Environment.GetEnvironmentVariable("SIM_TRACE") == "1";

    private void Crash(SimReplica r)
    {
        if (Trace)
        {
            Console.WriteLine($"t={_now} r{r.Id}: crash (delivered through {r.LiveCore.LastDelivered})");
        }
        BreakConnectionsOf(r);
        r.Core = null;
        r.Store = null;
        r.CommitInFlight = null;
        r.CrashInDrain = null;
        _crashes++;
        _everyReplicaWasDown |= _replicas.Values.All(p => !p.Up);
        Schedule(_random.Next(20, 801), new RestartEvent(r.Id));
    }

    // A removed replica that fell further behind than the members' recent writes: the Node starts
    // the replica afresh in the same process, and its start-up finds the members ahead and fetches
    // one's snapshot and log (ReplicaService.RecoverAndCatchUpAsync) before it listens.
    private void StartAfresh(SimReplica r)
    {
        if (Trace)
        {
            Console.WriteLine($"t={_now} r{r.Id}: fell behind; starting afresh with a catch-up");
        }
        // The old host's connections close with it; the new one dials with a new incarnation.
        BreakConnectionsOf(r);
        r.Core = null;
        r.Store = null;
        r.CommitInFlight = null;
        r.CrashInDrain = null;
        r.CatchUpOnRestart = true;
        _freshStarts++;
        Schedule(_random.Next(20, 201), new RestartEvent(r.Id));
    }

    // The start-up catch-up: the data directory becomes a copy of the member that delivered most
    // (its snapshot and its whole log, as the catch-up stream sends them), and the checkers
    // follow this replica from that member's position in the agreed order.
    private bool FetchMemberState(SimReplica r)
    {
        var source = _replicas.Values.Where(p => p.Id != r.Id && p.Up && !p.LiveCore.Removed).MaxBy(p => p.DeliveredCount);
        if (source is null)
        {
            return false; // nobody to ask: it recovers its own state and will ask to rejoin again
        }
        // As a catch-up streams it: the member's engine as a snapshot, imported into a new engine.
        var engine = NewEngine();
        using (var view = source.Engine.OpenView())
        using (var stream = SnapshotFormat.OpenStream(view))
        {
            SnapshotFormat.ReadInto(stream, engine);
        }
        r.Engine = engine;
        r.Log.SetLength(0);
        r.Log.Write(source.LogBytes);
        r.DeliveredCount = source.DeliveredCount;
        r.AppliedAt.Clear();
        r.AppliedAt.AddRange(source.AppliedAt);
        _catchUps++;
        return true;
    }

    // A process start on an existing data directory, as the Node will do it: truncate a torn
    // tail, load the snapshot, replay the log, and start a core from the recovered state.
    private void Restart(SimReplica r)
    {
        if (Trace)
        {
            Console.WriteLine($"t={_now} r{r.Id}: restart");
        }
        bool caughtUp = r.CatchUpOnRestart && FetchMemberState(r);
        r.CatchUpOnRestart = false;
        var scan = WriteAheadLog.Scan(r.LogBytes);
        if (scan.TailProblem is not null)
        {
            r.Log.SetLength(scan.ValidBytes);
            _tornTails++;
        }
        var log = scan.Entries.ToList();
        if (_settings.DiskFault == DiskFault.ForgetLastHeldWrites)
        {
            ForgetLastHeldWrites(r, log);
        }
        // The engine is as of its last durable commit; what was applied after it is gone with the process.
        var store = new KvStore(r.Engine);
        _restartsFromEngine += r.Engine.Applied is null ? 0 : 1;
        var recovered = Recovery.Rebuild(store, log, out int replayed);
        if (caughtUp)
        {
            // As the Node does: the copied log's promises are the member's, not this replica's.
            recovered = recovered with { LastJoin = null };
        }
        _replayed += replayed;
        _recoveredHeld += recovered.Held.Count;
        _restarts++;

        // The checkers resume this replica where its recovered store is in the canonical order,
        // and that store must be exactly the canonical prefix applied to an empty store.
        int position = 0;
        if (recovered.LastDelivered != Stamp.Zero)
        {
            if (!_canonicalIndex.TryGetValue(recovered.LastDelivered, out int index))
            {
                Fail($"replica {r.Id} recovered through {recovered.LastDelivered}, which no replica delivered");
            }
            position = index + 1;
        }
        if (position > r.DeliveredCount)
        {
            Fail($"replica {r.Id} recovered through write #{position}, but had delivered only {r.DeliveredCount} before crashing");
        }
        CheckStoreIsCanonicalPrefix(r.Id, store, position, "after recovery");
        r.DeliveredCount = position;
        r.AppliedAt.RemoveRange(position, r.AppliedAt.Count - position);
        r.Applied.Clear();
        foreach (var applied in r.AppliedAt)
        {
            if (applied is { } write)
            {
                r.Applied.Add(write);
            }
        }

        r.Incarnation++;
        r.Store = store;
        r.Core = new ReplicaCore(r.Options, store, recovered);
        // A new process knows no peer: every link is fresh, and it dials every peer at once.
        // Each peer learns of the restart from the first handshake with it, either way.
        r.Links = FreshLinks(r.Id, _replicas.Keys);
        StartOutboundLoops(r);
        Schedule(_random.Next(0, 10), new TickEvent(r.Id, r.Incarnation));
        Drain(r);
    }

    // The broken disk: drop the last one to three held writes of the log and everything after them.
    private void ForgetLastHeldWrites(SimReplica r, List<LogEntry> log)
    {
        int drop = 1 + _random.Next(3);
        int cut = log.Count;
        for (int i = log.Count - 1; i >= 0 && drop > 0; i--)
        {
            if (log[i].Held is not null)
            {
                drop--;
                cut = i;
            }
        }
        if (cut == log.Count)
        {
            return; // no held write left to forget (a snapshot covered them all)
        }
        _forgotten += log.Count - cut;
        log.RemoveRange(cut, log.Count - cut);
        RewriteLog(r, log);
    }

    private void StartOperation(SimClient client)
    {
        if (client.Started >= _settings.OpsPerClient)
        {
            return;
        }
        client.Started++;
        string key = "k" + _random.Next(_settings.Keys);
        int roll = _random.Next(100);
        byte[] value = Encoding.UTF8.GetBytes($"c{client.Id}-{client.Started}");
        byte[]? casExpected = null;
        var request = (_settings.ExtendedOperations ? ExtendedRequest(client, roll, key, value, out casExpected) : null) ?? (_random.Next(100) switch
        {
            < 45 => new ClientRequest { Operation = Operation.Put, Key = key, Value = value },
            < 60 => new ClientRequest { Operation = Operation.Delete, Key = key },
            _ => new ClientRequest { Operation = Operation.Get, Key = key, ReadMode = _random.Next(4) == 0 ? ReadMode.Local : ReadMode.Majority },
        });
        if (RequestValidation.IsWrite(request.Operation))
        {
            request.ClientId = client.ClientId;
            request.Sequence = client.NextSequence++;
            client.UnansweredWrites.Add(request.Sequence);
            request.AckedBelow = client.UnansweredWrites.Min;
        }
        request.RequestId = ++client.RequestId;
        if (casExpected is not null)
        {
            _casExpected[(client.Id, request.RequestId)] = casExpected;
        }
        client.Pending[request.RequestId] = (request, _now);
        MaxInFlight = Math.Max(MaxInFlight, client.Pending.Count);
        int replica = 1 + _random.Next(_settings.Replicas);
        SendRequest(replica, client, request, _random.Next(0, 4));
        if (RequestValidation.IsWrite(request.Operation) && _random.Next(100) < 15)
        {
            // A client that timed out and retried elsewhere: same client id and sequence.
            int other = 1 + (replica % _settings.Replicas);
            SendRequest(other, client, request, _random.Next(0, 60));
        }
        Schedule(_settings.ClientTimeoutMs, new ClientTimeout(client.Id, request.RequestId));
    }

    // The request travels on the client's connection to the replica's current process; if that
    // process is down or dies before it arrives, the request is lost.
    private void SendRequest(int replica, SimClient client, ClientRequest request, long delay) =>
        Schedule(delay, new ClientArrival(replica, _replicas[replica].Incarnation, client.Id, request));

    private void Complete(int clientId, ClientReply reply)
    {
        var client = _clients[clientId - 1];
        if (!client.Pending.Remove(reply.RequestId, out var pending))
        {
            return; // the second answer to a duplicated write, or an answer after the client gave up
        }
        var (request, invokedAt) = pending;
        if (RequestValidation.IsWrite(request.Operation))
        {
            // Any reply is final for the client: after an error the outcome is unknown, and the
            // client will not retry this sequence again.
            client.UnansweredWrites.Remove(request.Sequence);
        }
        var outcome = reply.Status switch
        {
            ReplyStatus.Ok => KvOutcomeKind.Ok,
            ReplyStatus.NotFound => KvOutcomeKind.NotFound,
            ReplyStatus.ConditionFailed => KvOutcomeKind.ConditionFailed,
            _ => KvOutcomeKind.Unknown,
        };
        Record(client, request, invokedAt, outcome, reply.Status == ReplyStatus.Ok && request.Operation == Operation.Get ? reply.Value : null, reply);
    }

    private void TimeOut(SimClient client, long requestId)
    {
        if (!client.Pending.Remove(requestId, out var pending))
        {
            return; // answered in time
        }
        // No reply: the request or its reply died with a crashed process, or is very late. The
        // write may still be delivered (a copy may be held somewhere), so its outcome is unknown,
        // and its sequence stays unanswered (see SimClient.UnansweredWrites).
        _clientTimeouts++;
        Record(client, pending.Request, pending.InvokedAt, KvOutcomeKind.Unknown, null, null);
    }

    private void Record(SimClient client, ClientRequest request, long invokedAt, KvOutcomeKind outcome, byte[]? output, ClientReply? reply)
    {
        long returnedAt = outcome == KvOutcomeKind.Unknown ? long.MaxValue : _now;
        var operation = request.Operation switch
        {
            Operation.Put => new KvOperation(client.Id, request.Key, KvOperationKind.Put, request.Value, outcome, output, invokedAt, returnedAt),
            Operation.Delete => new KvOperation(client.Id, request.Key, KvOperationKind.Delete, request.Value, outcome, output, invokedAt, returnedAt),
            Operation.Get => new KvOperation(client.Id, request.Key, KvOperationKind.Get, request.Value, outcome, output, invokedAt, returnedAt),
            _ => null,
        };
        var checkedOperation = ToCheckedOperation(client, request, invokedAt, outcome, reply, returnedAt);
        operation ??= checkedOperation;
        if (operation is null)
        {
            return; // a LIST whose next page is on its way
        }
        client.Done++;
        if (RequestValidation.IsWrite(request.Operation) && operation.Outcome == KvOutcomeKind.Unknown)
        {
            _unknownWrites.Add((_history.Count, client.ClientId, request.Sequence));
        }
        _history.Add(operation);
        Schedule(_random.Next(0, 10), new ClientStart(client.Id));
    }

    private void CheckDelivery(SimReplica r, DeliveredWrite delivered, bool establishes = true)
    {
        var stamp = delivered.Command.Stamp;
        int index = r.DeliveredCount++;
        if (index > 0 && _canonical.Count > index - 1 && _canonical[index - 1].Stamp >= stamp)
        {
            Fail($"replica {r.Id} delivered {stamp} after {_canonical[index - 1].Stamp}: not in stamp order");
        }
        if (index < _canonical.Count)
        {
            if (_canonical[index].Stamp != stamp)
            {
                Fail($"agreement violated: replica {r.Id} delivered {stamp} as write #{index + 1}, others delivered {_canonical[index].Stamp}");
            }
            if (_canonicalDuplicate[index] != delivered.Duplicate)
            {
                Fail($"replica {r.Id} {(delivered.Duplicate ? "dropped" : "applied")} write #{index + 1} ({stamp}) as {(delivered.Duplicate ? "a retry" : "new")}, others did not");
            }
        }
        else if (index > _canonical.Count && establishes)
        {
            Fail($"replica {r.Id} delivered {stamp} as write #{index + 1}, but only {_canonical.Count} writes are known");
        }
        else if (establishes)
        {
            if (!_canonicalIndex.TryAdd(stamp, index))
            {
                Fail($"write {stamp} delivered twice");
            }
            _canonical.Add(delivered.Command);
            _canonicalDuplicate.Add(delivered.Duplicate);
        }
        var clientWrite = (delivered.Command.ClientId, delivered.Command.Sequence);
        _deliveredAnywhere.Add(clientWrite);
        bool applied = !delivered.Duplicate && delivered.Command.ClientId != 0;
        if (applied && !r.Applied.Add(clientWrite))
        {
            Fail($"replica {r.Id} applied client {clientWrite.Item1:x} sequence {clientWrite.Item2} twice");
        }
        r.AppliedAt.Add(applied ? clientWrite : null);
    }

    // A recovered store must be exactly what applying the first `count` writes of the canonical
    // order to an empty store gives: same entries, versions, exactly-once sessions (watermarks,
    // remembered results, recency) and per-origin positions.
    private void CheckStoreIsCanonicalPrefix(int replica, KvStore store, int count, string when)
    {
        var model = new KvStore();
        for (int i = 0; i < count; i++)
        {
            model.Apply(_canonical[i], out _);
        }
        string expected = Describe(model);
        string actual = Describe(store);
        if (actual != expected)
        {
            Fail($"replica {replica}'s store {when} is not the first {count} delivered writes applied in order:\n  expected {expected}\n  actual   {actual}");
        }
    }

    private static string Describe(KvStore store)
    {
        var text = new StringBuilder();
        // AppliedWrites is left out: a statistic of this process, which snapshots do not carry.
        text.Append("last ").Append(store.LastApplied).Append(", origins ");
        foreach (var (origin, time) in store.AppliedThroughByOrigin.OrderBy(o => o.Key))
        {
            text.Append(origin).Append(':').Append(time).Append(' ');
        }
        // The key count is kept apart from the entries (it is in the engine's applied point), so
        // a wrong count shows here as a difference from the canonical store.
        text.Append("| ").Append(store.KeyCount).Append(" entries ");
        foreach (var (key, value, version) in store.Entries())
        {
            text.Append(key).Append('=').Append(Convert.ToHexString(value)).Append('@').Append(version).Append(' ');
        }
        text.Append("| sessions ");
        foreach (var session in store.ExportSessions())
        {
            text.Append(session.ClientId.ToString("x")).Append(" floor ").Append(session.Floor).Append(' ');
            for (int i = 0; i < session.Sequences.Length; i++)
            {
                text.Append(session.Sequences[i]).Append('>').Append(session.Results[i]).Append(' ');
            }
        }
        return text.ToString();
    }

    private void CheckQuiescent()
    {
        foreach (var r in _replicas.Values.Where(r => !r.Up))
        {
            Fail($"replica {r.Id} is still down at the end of the run");
        }
        var (number, members) = MajorityView();
        foreach (var r in _replicas.Values)
        {
            // Every replica a view change removed has rejoined by now: the network is whole, and
            // every replica is a member of the majority view.
            if (!members.Contains(r.Id) || r.LiveCore.Removed || r.LiveCore.Wedged || r.LiveCore.ViewNumber != number)
            {
                Fail($"liveness: after the network quieted, replica {r.Id} is not back in view {number} [{string.Join(",", members)}]; {DescribeViews()}");
            }
            if (r.LiveCore.PendingWrites != 0 || r.DeliveredCount != _canonical.Count)
            {
                Fail($"liveness: after the network quieted, replica {r.Id} delivered {r.DeliveredCount} of {_canonical.Count} writes with {r.LiveCore.PendingWrites} still held; {DescribeViews()}");
            }
        }
        var reference = Contents(_replicas[members[0]].LiveStore);
        foreach (int m in members)
        {
            if (Contents(_replicas[m].LiveStore) != reference)
            {
                Fail($"replica {m}'s store differs from replica {members[0]}'s after quiescence");
            }
        }
        var unfinished = _clients.Where(c => c.Done < _settings.OpsPerClient).Select(c => c.Id).ToList();
        if (unfinished.Count > 0)
        {
            Fail($"liveness: clients {string.Join(",", unfinished)} never completed their operations");
        }
    }

    // Every replica killed at once after quiescence must come back with everything: its disk
    // alone (engine + log) rebuilds the store it has in memory, with nothing left held.
    private void CheckEveryDiskRecoversTheLiveState()
    {
        foreach (var r in _replicas.Values)
        {
            if (r.Store is not KvStore live)
            {
                continue;
            }
            var scan = WriteAheadLog.Scan(r.LogBytes);
            if (scan.TailProblem is not null)
            {
                Fail($"replica {r.Id}'s log has a torn tail after a clean run: {scan.TailProblem}");
            }
            var store = new KvStore(r.Engine.Copy());
            var recovered = Recovery.Rebuild(store, scan.Entries, out _);
            // A removed replica still holds the writes it received before it learned of its removal.
            if (recovered.LastDelivered != live.LastApplied || recovered.Held.Count != r.LiveCore.PendingWrites || Describe(store) != Describe(live))
            {
                Fail($"replica {r.Id}'s disk does not rebuild its state: recovered through {recovered.LastDelivered} with {recovered.Held.Count} held, live through {live.LastApplied}:\n  live      {Describe(live)}\n  recovered {Describe(store)}");
            }
            CheckStoreIsCanonicalPrefix(r.Id, live, r.DeliveredCount, "at the end");
        }
    }

    // One last GET per key, read after everything else finished: a write that was acknowledged
    // and then lost (to a crash, or anything else) makes the history non-linearizable.
    private void AppendFinalReads()
    {
        var (_, members) = MajorityView();
        var store = _replicas[members[_random.Next(members.Length)]].LiveStore;
        for (int k = 0; k < _settings.Keys; k++)
        {
            string key = "k" + k;
            var value = store.Read(key);
            _history.Add(new KvOperation(0, key, KvOperationKind.Get, null, value.Found ? KvOutcomeKind.Ok : KvOutcomeKind.NotFound,
                value.Found ? value.Value : null, _now + 1, _now + 2));
        }
    }

    private string Contents(IReplicatedStateMachine store) =>
        string.Join("|", Enumerable.Range(0, _settings.Keys).Select(k => store.Read("k" + k)).Select(v => v.Found ? $"{Convert.ToHexString(v.Value!)}@{v.Version}" : "-"));

    private void Fail(string what, Exception? inner = null) =>
        throw new SimulationFailure($"seed {_seed} ({_settings.Replicas} replicas): {what} at t={_now}ms; replay with SEED={_seed} ./run_tests.sh", inner);
}
