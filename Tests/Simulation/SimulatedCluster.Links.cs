using KvReplica.Protocol.Link;
using KvReplica.Protocol.Wire;
using MessagePack;

namespace KvReplica.Tests.Simulation;

// The transport between replicas, as Node/Transport/PeerLink.cs and Node/ReplicaService.cs run it:
// every peer message travels inside the real ReliableLink's envelopes, over connections that the
// simulation breaks, and across reconnects the product's resume handshake restores exactly-once
// FIFO delivery. Nothing here knows about hold-back queues or views: the core sees only what a
// ReliableLink hands it.
public sealed partial class SimulatedCluster
{
    // Node/Transport/PeerLink.cs: the outbound loop redials after 50 ms, doubling on every failed
    // attempt up to 2 s.
    private const long MinBackoffMs = 50;
    private const long MaxBackoffMs = 2000;

    /// <summary>
    /// What one replica process keeps about one peer (the Node's PeerLink): the link state of both
    /// directions, the peer process it belongs to, and the outbound connection that carries this
    /// replica's envelopes to the peer. The peer's envelopes come on the peer's own outbound
    /// connection, so each ordered pair of replicas has its own connection, dialled by the sender.
    /// </summary>
    private sealed class SimPeerLink
    {
        public ReliableLink Link = new();
        /// <summary>The peer process this link is with; null until the first handshake with it.</summary>
        public int? PeerIncarnation;
        /// <summary>Our connection to the peer: being dialled (handshake in flight) or established.</summary>
        public SimConnection? Outbound;
        /// <summary>
        /// PeerLink's <c>_outboundUp</c>: set by a completed handshake, cleared when the loop notices the
        /// connection is gone. While clear, messages whose loss costs nothing are not buffered.
        /// </summary>
        public bool OutboundUp;
        public long Backoff = MinBackoffMs;
        /// <summary>Bumped whenever a dial is scheduled, so that only the newest one runs.</summary>
        public long DialToken;
        /// <summary>Whether a handshake ever completed on this link (a later one is a resume).</summary>
        public bool EverConnected;
        /// <summary>The checker's count: the sequence number of the next envelope the core must get from the peer.</summary>
        public long NextToCore = 1;
    }

    /// <summary>
    /// One TCP connection carrying <see cref="From"/>'s envelopes to <see cref="To"/>. It is FIFO
    /// in each direction (the Hello and envelopes one way, the handshake answer the other); two
    /// connections are not ordered with each other.
    /// </summary>
    private sealed class SimConnection(int from, int fromIncarnation, int to, int toIncarnation)
    {
        public int From { get; } = from;
        public int FromIncarnation { get; } = fromIncarnation;
        public int To { get; } = to;
        /// <summary>The process of <see cref="To"/> that accepted the connection.</summary>
        public int ToIncarnation { get; } = toIncarnation;
        public bool Established;
        public bool Broken;
        /// <summary>The sequence number the send loop copies from next (PeerLink's <c>nextToSend</c>).</summary>
        public long NextToSend;
        /// <summary>Envelopes written to the connection, and those that reached the receiver, counted in order.</summary>
        public long Sent;
        public long Arrived;
        /// <summary>Envelopes written at or after this position were lost with the connection.</summary>
        public long LostFrom = long.MaxValue;
        /// <summary>
        /// When the connection broke while the receiver's core loop was behind: the envelopes
        /// that survived the break wait in its input queue until this time.
        /// </summary>
        public long SurvivorsQueuedUntil;
        /// <summary>Survivors waiting in the receiver's input queue: later ones queue behind them.</summary>
        public int Queued;
        // Arrival time of the last thing sent each way, so neither direction reorders.
        public long Tail;
        public long ReverseTail;
    }

    // The dialler's outbound loop tries to connect (Node: RunOutboundAsync).
    private sealed record DialEvent(int Replica, int Incarnation, int Peer, long Token) : Event;
    // The dialler's Hello (its id and incarnation) reaches the peer.
    private sealed record HelloArrival(SimConnection Connection) : Event;
    // The peer's HelloAccepted (its incarnation, and ResumeFrom: its NextExpected from the dialler) reaches the dialler.
    private sealed record HelloAcceptedArrival(SimConnection Connection, int Incarnation, long ResumeFrom) : Event;
    // An envelope reaches the receiver: Index is its position on the connection. Queued: it had
    // already crossed the network and waited in the receiver's input queue.
    private sealed record EnvelopeArrival(SimConnection Connection, long Index, ReplicaEnvelope Envelope, bool Queued = false) : Event;
    // The dialler's loop notices that its connection is gone (a reset, a closed socket, a failed write).
    private sealed record ConnectionLost(SimConnection Connection) : Event;
    private sealed record LinkFaultEvent : Event;

    private readonly List<ReplicaEnvelope> _pendingScratch = [];
    private int _linkFaults, _linkFaultsAmidOthers, _envelopesLost, _duplicatesDropped, _resumes, _resentEnvelopes, _disposablesDropped;

    private static Dictionary<int, SimPeerLink> FreshLinks(int self, IEnumerable<int> replicas) =>
        replicas.Where(p => p != self).ToDictionary(p => p, _ => new SimPeerLink());

    // A process starts its outbound loop to every peer: the first attempt is immediate.
    private void StartOutboundLoops(SimReplica r)
    {
        foreach (int peer in r.Links.Keys)
        {
            ScheduleDial(r, peer, _random.Next(0, 10));
        }
    }

    private void ScheduleDial(SimReplica r, int peer, long delay)
    {
        var link = r.Links[peer];
        Schedule(delay, new DialEvent(r.Id, r.Incarnation, peer, ++link.DialToken));
    }

    // A failed attempt or a lost connection: wait the current backoff, then double it.
    private void Redial(SimReplica r, int peer)
    {
        var link = r.Links[peer];
        ScheduleDial(r, peer, link.Backoff);
        link.Backoff = Math.Min(link.Backoff * 2, MaxBackoffMs);
    }

    // The network's delay for one transmission: usually a few milliseconds, sometimes a long
    // stall; never ahead of what went earlier the same way on the same connection.
    private long ArrivalTime(ref long tail)
    {
        long delay = _random.Next(100) < 5 ? _random.Next(50, 250) : _random.Next(0, 15);
        tail = Math.Max(_now + delay, tail);
        return tail;
    }

    private bool Cut(int from, int to) => _cutLinks.ContainsKey((from, to));

    private void Dial(DialEvent dial)
    {
        var r = _replicas[dial.Replica];
        if (!r.Up || r.Incarnation != dial.Incarnation)
        {
            return; // the loop died with its process
        }
        var link = r.Links[dial.Peer];
        if (dial.Token != link.DialToken || link.Outbound is not null)
        {
            return;
        }
        var peer = _replicas[dial.Peer];
        // A connection needs packets both ways. A peer that is down refuses it; across a cut the
        // attempt fails too (modelled as an unreachable host: the Node's connect has no timeout
        // of its own, so a cut that silently drops packets would stall it for the OS's SYN timeout).
        if (!peer.Up || Cut(r.Id, peer.Id) || Cut(peer.Id, r.Id))
        {
            Redial(r, peer.Id);
            return;
        }
        var connection = new SimConnection(r.Id, r.Incarnation, peer.Id, peer.Incarnation);
        link.Outbound = connection;
        _events.Enqueue(new HelloArrival(connection), (ArrivalTime(ref connection.Tail), ++_order));
    }

    // PeerLink.AcceptInboundAsync, on the peer's network thread: observe the dialler's
    // incarnation (announcing a restart to the core first), then answer with where to resume.
    // The answer reads NextExpected as the core loop has left it: envelopes that reached this
    // process but still wait in its input queue are not counted, so they will be sent again.
    private void AnswerHello(SimConnection connection)
    {
        var to = _replicas[connection.To];
        if (connection.Broken)
        {
            return; // the dialler learns it from ConnectionLost
        }
        if (!to.Up || to.Incarnation != connection.ToIncarnation)
        {
            Break(connection, noticeAfter: _random.Next(0, 20), keepInFlight: false);
            return;
        }
        bool restarted = ObserveIncarnation(to, connection.From, connection.FromIncarnation);
        var answer = new HelloAcceptedArrival(connection, to.Incarnation, to.Links[connection.From].Link.NextExpected);
        _events.Enqueue(answer, (ArrivalTime(ref connection.ReverseTail), ++_order));
        if (restarted)
        {
            AnnounceRestart(to, connection.From);
        }
    }

    // The end of RunOneConnectionAsync's handshake: observe the peer's incarnation, confirm what
    // it has, and send everything unconfirmed from its ResumeFrom on.
    private void CompleteHandshake(HelloAcceptedArrival accepted)
    {
        var connection = accepted.Connection;
        var r = _replicas[connection.From];
        if (!r.Up || r.Incarnation != connection.FromIncarnation)
        {
            return;
        }
        var link = r.Links[connection.To];
        if (link.Outbound != connection || connection.Broken)
        {
            return;
        }
        bool restarted = ObserveIncarnation(r, connection.To, accepted.Incarnation);
        link.Link.Confirm(accepted.ResumeFrom);
        connection.Established = true;
        connection.NextToSend = accepted.ResumeFrom;
        link.OutboundUp = true;
        link.Backoff = MinBackoffMs;
        if (link.EverConnected)
        {
            _resumes++;
            _resentEnvelopes += link.Link.UnconfirmedCount;
            if (Trace)
            {
                Console.WriteLine($"t={_now} r{r.Id}->r{connection.To}: resumed from envelope {accepted.ResumeFrom}, {link.Link.UnconfirmedCount} unconfirmed");
            }
        }
        link.EverConnected = true;
        Flush(r, connection.To);
        if (restarted)
        {
            AnnounceRestart(r, connection.To);
        }
    }

    // PeerLink.ObserveIncarnation: true when the peer is a new process (not the first one met).
    // Its link starts afresh: sequence numbers begin again at 1 on both sides, and everything
    // queued for the old process is dropped.
    private bool ObserveIncarnation(SimReplica r, int peer, int incarnation)
    {
        var link = r.Links[peer];
        if (link.PeerIncarnation == incarnation)
        {
            return false;
        }
        if (link.PeerIncarnation > incarnation)
        {
            Fail($"replica {r.Id} met incarnation {incarnation} of replica {peer} after incarnation {link.PeerIncarnation}: the simulated network is broken");
        }
        int? old = link.PeerIncarnation;
        link.PeerIncarnation = incarnation;
        if (old is null)
        {
            return false;
        }
        link.Link = new ReliableLink();
        link.EverConnected = false;
        link.NextToCore = 1;
        return true;
    }

    // The notice the Node puts on the core loop ahead of any envelope of the new process.
    private void AnnounceRestart(SimReplica r, int peer)
    {
        r.LiveCore.OnPeerRestarted(peer);
        if (_random.Next(10) == 0)
        {
            // The Node announces each incarnation once (whichever direction's handshake sees it
            // first), but telling the core twice must be harmless, so the simulation sometimes does.
            r.LiveCore.OnPeerRestarted(peer);
            _repeatedNotices++;
        }
        Drain(r);
    }

    // PeerLink.Enqueue: wrap the core's message in the link's next envelope, unless the link is
    // down and the message is one whose loss costs nothing (a batch without writes: its
    // acknowledgements are cumulative and re-sent with the next heartbeat; read traffic).
    private void Enqueue(SimReplica r, int peer, PeerMessage body)
    {
        var link = r.Links[peer];
        if (!link.OutboundUp && (body is ReadQuery or ReadAnswer || body is OrderBatch { Writes.Length: 0 }))
        {
            _disposablesDropped++;
            return;
        }
        link.Link.Wrap(body);
    }

    // PeerLink's send loop: everything not yet written to the current connection goes out, in
    // sequence order. On a connection that broke unnoticed, it goes nowhere.
    private void Flush(SimReplica r, int peer)
    {
        var link = r.Links[peer];
        if (!link.OutboundUp || link.Outbound is not { Established: true } connection)
        {
            return;
        }
        _pendingScratch.Clear();
        connection.NextToSend = link.Link.CopyPendingFrom(connection.NextToSend, _pendingScratch);
        foreach (var envelope in _pendingScratch)
        {
            // A copy through the wire format, as the bytes on a socket: the link keeps (and later
            // updates the confirmation of) its own envelope, and no replica shares an object with another.
            var copy = MessagePackSerializer.Deserialize<ReplicaEnvelope>(MessagePackSerializer.Serialize(envelope, FrameCodec.Options), FrameCodec.Options);
            _events.Enqueue(new EnvelopeArrival(connection, connection.Sent++, copy), (ArrivalTime(ref connection.Tail), ++_order));
        }
    }

    private void ArriveEnvelope(EnvelopeArrival arrival)
    {
        var connection = arrival.Connection;
        if (!arrival.Queued)
        {
            if (arrival.Index != connection.Arrived)
            {
                Fail($"envelope #{arrival.Index} of the connection {connection.From}->{connection.To} arrived after #{connection.Arrived - 1}: the simulated network reordered a connection");
            }
            connection.Arrived++;
            if (arrival.Index >= connection.LostFrom)
            {
                _envelopesLost++;
                return;
            }
            if (_now < connection.SurvivorsQueuedUntil || connection.Queued > 0)
            {
                connection.Queued++;
                _events.Enqueue(arrival with { Queued = true }, (Math.Max(_now, connection.SurvivorsQueuedUntil), ++_order));
                return;
            }
        }
        else
        {
            connection.Queued--;
        }
        var to = _replicas[connection.To];
        if (!to.Up || to.Incarnation != connection.ToIncarnation)
        {
            _envelopesLost++;
            return; // the receiving process died, and its socket buffers with it
        }
        var link = to.Links[connection.From];
        if (link.PeerIncarnation != connection.FromIncarnation)
        {
            // PeerLink.Accept: an envelope of a process since restarted is dropped. One of a
            // process not yet met cannot exist: its handshake comes first on the connection.
            if (link.PeerIncarnation is null || link.PeerIncarnation < connection.FromIncarnation)
            {
                Fail($"replica {to.Id} got an envelope from incarnation {connection.FromIncarnation} of replica {connection.From} before its handshake: the simulated network is broken");
            }
            return;
        }
        // The real link: drops a duplicate, throws ProtocolViolationException on a gap (which
        // fails the run: TCP plus the resume handshake never produce one).
        var body = link.Link.Accept(arrival.Envelope);
        if (body is null)
        {
            _duplicatesDropped++;
            if (_settings.TransportFault != TransportFault.DuplicatesReachTheCore)
            {
                return;
            }
            body = arrival.Envelope.Body;
        }
        // The link's contract, checked on what it hands over: every envelope of the peer's
        // process, once each, in the order it was wrapped.
        if (arrival.Envelope.Sequence != link.NextToCore)
        {
            Fail($"the link from replica {connection.From} handed envelope {arrival.Envelope.Sequence} to replica {to.Id}'s core after envelope {link.NextToCore - 1}: not exactly once in order");
        }
        link.NextToCore++;
        if (Trace && Environment.GetEnvironmentVariable("SIM_TRACE_LINK") is { } traced && traced == $"{connection.From}>{to.Id}")
        {
            Console.WriteLine($"t={_now} r{to.Id} from r{connection.From}: {body.GetType().Name}{(body is OrderBatch b ? $" view {b.View} writes {string.Join(",", b.Writes.Select(w => w.Time))}" : "")}");
        }
        // A core that fell behind stops; Drain then starts the replica afresh.
        to.LiveCore.OnPeerMessage(connection.From, body);
        Drain(to);
    }

    // The dialler's loop notices the connection is gone and redials after its backoff.
    private void LoseConnection(SimConnection connection)
    {
        var r = _replicas[connection.From];
        if (!r.Up || r.Incarnation != connection.FromIncarnation)
        {
            return;
        }
        var link = r.Links[connection.To];
        if (link.Outbound != connection)
        {
            return;
        }
        link.Outbound = null;
        link.OutboundUp = false;
        Redial(r, connection.To);
    }

    /// <summary>
    /// Breaks a connection. Of the envelopes in flight, a random prefix had already reached the
    /// receiver's process (it will still handle them) and the rest are lost, as is everything
    /// written afterwards, until the dialler notices after <paramref name="noticeAfter"/> ms
    /// (null: the dialler is dead).
    /// </summary>
    private void Break(SimConnection connection, long? noticeAfter, bool keepInFlight)
    {
        if (connection.Broken)
        {
            return;
        }
        connection.Broken = true;
        long inFlight = connection.Sent - connection.Arrived;
        if (Trace)
        {
            Console.WriteLine($"t={_now} r{connection.From}->r{connection.To}: connection broken with {inFlight} envelopes in flight");
        }
        // Envelopes held on a cut link never reached the receiver.
        bool reachable = keepInFlight && !Cut(connection.From, connection.To);
        connection.LostFrom = connection.Arrived + (reachable ? _random.NextInt64(inFlight + 1) : 0);
        if (reachable && _random.Next(2) == 0)
        {
            // The receiver's core loop is behind (a slow fsync, a long batch): what reached the
            // process waits in its input queue while its network thread answers the redial. The
            // answer's ResumeFrom is then below those envelopes, the dialler sends them again,
            // and the link must drop the second copies.
            connection.SurvivorsQueuedUntil = _now + _random.Next(50, 401);
        }
        if (noticeAfter is long after)
        {
            Schedule(after, new ConnectionLost(connection));
        }
    }

    // A link fault: a connection between two replicas breaks (a reset, a middlebox dropping its
    // state); sometimes the connection the other way breaks with it. Both sides then run the
    // resume handshake, each telling the other its NextExpected.
    //
    // Duplication is modelled only as this resend after a reconnect. The same envelope cannot
    // arrive twice on one connection: TCP does not duplicate, FramedConnection hands each frame
    // over once, and PeerLink's send loop advances past what it wrote. Across connections it
    // can, which is what happens here.
    private void StartLinkFault()
    {
        if (ClientsDone)
        {
            return; // the end of the run needs every fault healed
        }
        var connections = _replicas.Values.Where(r => r.Up)
            .SelectMany(r => r.Links.Values.Select(l => l.Outbound))
            .OfType<SimConnection>().Where(c => !c.Broken).ToList();
        if (connections.Count == 0)
        {
            return;
        }
        var connection = connections[_random.Next(connections.Count)];
        _linkFaults++;
        if (_cutLinks.Count > 0 || _replicas.Values.Any(r => !r.Up || r.HeldWhilePaused is not null))
        {
            _linkFaultsAmidOthers++;
        }
        // Noticed at once (a reset on the next write) or only after a while (a silent break).
        Break(connection, noticeAfter: _random.Next(4) == 0 ? _random.Next(50, 500) : _random.Next(0, 30), keepInFlight: true);
        if (_random.Next(2) == 0 && _replicas[connection.To].Links[connection.From].Outbound is { Broken: false } back
            && back.ToIncarnation == connection.FromIncarnation)
        {
            Break(back, noticeAfter: _random.Next(0, 30), keepInFlight: true);
        }
    }

    // A process dies: what it was sending may still reach the peers (the kernel flushes a killed
    // process's sockets; a peer that has not yet seen the restart handles it), what was coming
    // to it is lost, and every peer's loop notices its connection to it closing.
    private void BreakConnectionsOf(SimReplica r)
    {
        foreach (var link in r.Links.Values)
        {
            if (link.Outbound is { } outbound)
            {
                Break(outbound, noticeAfter: null, keepInFlight: true);
            }
        }
        foreach (var peer in _replicas.Values.Where(p => p.Id != r.Id && p.Up))
        {
            if (peer.Links[r.Id].Outbound is { } inbound && inbound.ToIncarnation == r.Incarnation)
            {
                Break(inbound, noticeAfter: _random.Next(0, 20), keepInFlight: false);
            }
        }
    }

    // Every replica process has an established, unbroken connection to the current process of
    // every peer, and knows that process.
    private bool EveryLinkConnected() => _replicas.Values.All(r => r.Up && r.Links.All(l =>
        l.Value.OutboundUp && l.Value.Outbound is { Established: true, Broken: false } c
        && c.ToIncarnation == _replicas[l.Key].Incarnation && l.Value.PeerIncarnation == _replicas[l.Key].Incarnation));

    private string DescribeLinks() => string.Join("; ", _replicas.Values.Where(r => r.Up).SelectMany(r => r.Links.Select(l =>
        $"{r.Id}->{l.Key}: {(l.Value.Outbound is { } c ? (c.Broken ? "broken" : c.Established ? "up" : "dialling") : "down")}, {l.Value.Link.UnconfirmedCount} unconfirmed")));
}
