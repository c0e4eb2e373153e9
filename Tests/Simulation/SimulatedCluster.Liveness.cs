using System.Text;
using KvReplica.Protocol.Wire;
using KvReplica.Tests.Linearizability;

namespace KvReplica.Tests.Simulation;

// Liveness once every fault has healed. The moment the clients are done and every replica is up,
// unpaused, with no link cut and every connection re-established, a probe client writes through
// every replica, retrying errors (busy during a view change, no majority while suspicions clear)
// with the same sequence number, as a client library does. Within the bound, every replica that is
// a member of the current majority view must have answered its write with OK.
//
// A replica outside that view may refuse; at the very end every replica must be back in it
// (CheckQuiescent), and a rejoined replica's write must complete in time like any member's.
public sealed partial class SimulatedCluster
{
    // Replies to probes come on connection ids above every client's.
    private const int ProbeConnectionBase = 1_000_000;
    // Probe operations appear in the history as client 1000 + replica id.
    private const int ProbeHistoryClientBase = 1000;
    // After the probes, the other replicas deliver the last writes within a round trip or two.
    private const long ProbeSettleMs = 1000;

    private sealed record ProbeRetry(int Replica) : Event;
    // No answer within this long: the request died with its replica's process (a replica that fell
    // behind starts afresh), so the probe client sends it again, as a client library would.
    private sealed record ProbeTimeout(int Replica, long RequestId) : Event;
    private const long ProbeAttemptTimeoutMs = 1000;
    private sealed record ProbeDeadline : Event;

    private sealed class Probe(int replica, long sequence)
    {
        public int Replica { get; } = replica;
        public long Sequence { get; } = sequence;
        public long RequestId;
        public int Attempts;
        public long InvokedAt;
        public long? CompletedAt;
        public string LastAnswer = "no answer yet";
        /// <summary>Its replica is outside the view at the deadline: it is no longer retried.</summary>
        public bool Abandoned;
    }

    private List<Probe>? _probes;
    private ulong _probeClientId;
    private long _healedAt;
    private long? _probesDoneAt;
    private long _probeRequestIds;

    /// <summary>
    /// How long writes may take once every fault has healed, in simulated ms. Derived from the
    /// suspicion timeout S (1 s by default): a view change still in progress when the last fault
    /// heals may be abandoned only after S, a member left wedged by it makes the coordinator
    /// propose again only after reporting itself wedged for S, and a third S covers a proposal
    /// that then loses a member to a suspicion raised during the faults; 1 s on top covers the
    /// message delays of the joins, the install and the write's own round trip, each of which the
    /// simulated network can stall for up to 250 ms. 3 S + 1 s: 4 s of simulated time by default.
    /// </summary>
    public long LivenessBoundMs => _settings.LivenessBoundMs ?? 3 * _replicas[1].Options.SuspicionTimeoutMs + 1000;

    /// <summary>The longest any probe write took from the moment every fault had healed (0: no probe ran).</summary>
    public long SlowestProbeMs { get; private set; }

    // The run ends once the probes are done and the network has had time to quiet down.
    private bool Finished() =>
        _probesDoneAt is long done && _now > Math.Max(_healedAt + _settings.QuiesceMs, done + ProbeSettleMs);

    private void StartProbes()
    {
        _healedAt = _now;
        _probeClientId = (ulong)_random.NextInt64(1, long.MaxValue);
        _probes = [.. _replicas.Keys.Order().Select((id, i) => new Probe(id, i + 1))];
        foreach (var probe in _probes)
        {
            probe.InvokedAt = _now;
            SendProbe(probe);
        }
        Schedule(LivenessBoundMs, new ProbeDeadline());
    }

    private string ProbeKey(Probe probe) => "k" + ((probe.Replica - 1) % _settings.Keys);

    private static byte[] ProbeValue(Probe probe) => Encoding.UTF8.GetBytes($"probe-{probe.Replica}");

    private void SendProbe(Probe probe)
    {
        if (probe.CompletedAt is not null || probe.Abandoned)
        {
            return;
        }
        probe.Attempts++;
        var request = new ClientRequest
        {
            RequestId = ++_probeRequestIds,
            Operation = Operation.Put,
            Key = ProbeKey(probe),
            Value = ProbeValue(probe),
            ClientId = _probeClientId,
            // A retry reuses the sequence number: if an earlier attempt was stamped and is
            // delivered after all, the store applies the write once and answers with its result.
            Sequence = probe.Sequence,
            AckedBelow = _probes!.Where(p => p.CompletedAt is null).Min(p => p.Sequence),
        };
        probe.RequestId = request.RequestId;
        Schedule(_random.Next(0, 4), new ClientArrival(probe.Replica, _replicas[probe.Replica].Incarnation, ProbeConnectionBase + probe.Replica, request));
        Schedule(ProbeAttemptTimeoutMs, new ProbeTimeout(probe.Replica, request.RequestId));
    }

    private void OnProbeTimeout(ProbeTimeout timeout)
    {
        var probe = _probes![timeout.Replica - 1];
        if (probe.RequestId == timeout.RequestId && probe.CompletedAt is null && !probe.Abandoned)
        {
            probe.LastAnswer = $"no answer within {ProbeAttemptTimeoutMs} ms";
            SendProbe(probe);
        }
    }

    private void OnProbeReply(int replica, ClientReply reply)
    {
        var probe = _probes![replica - 1];
        if (reply.RequestId != probe.RequestId || probe.CompletedAt is not null || probe.Abandoned)
        {
            return;
        }
        if (reply.Status != ReplyStatus.Ok)
        {
            probe.LastAnswer = $"{reply.Status} {reply.Error}: {reply.ErrorMessage}";
            Schedule(_random.Next(20, 60), new ProbeRetry(replica));
            return;
        }
        probe.CompletedAt = _now;
        SlowestProbeMs = Math.Max(SlowestProbeMs, _now - _healedAt);
        _history.Add(new KvOperation(ProbeHistoryClientBase + replica, ProbeKey(probe), KvOperationKind.Put, ProbeValue(probe),
            KvOutcomeKind.Ok, null, probe.InvokedAt, _now));
        if (_probes.All(p => p.CompletedAt is not null))
        {
            _probesDoneAt = _now;
        }
    }

    private void CheckProbesAtDeadline()
    {
        if (_probesDoneAt is not null)
        {
            return;
        }
        var (number, members) = MajorityView();
        var stuck = _probes!.Where(p => p.CompletedAt is null && members.Contains(p.Replica)).ToList();
        if (stuck.Count > 0)
        {
            Fail($"liveness: {LivenessBoundMs} ms after every fault healed (t={_healedAt}ms), writes at replica{(stuck.Count > 1 ? "s" : "")} " +
                $"{string.Join(",", stuck.Select(p => p.Replica))} of view {number} [{string.Join(",", members)}] have not completed " +
                $"({string.Join("; ", stuck.Select(p => $"replica {p.Replica}: attempts {p.Attempts}, last answer: {p.LastAnswer}"))}); {DescribeViews()}");
        }
        // The others were refused as outside the view; their outcome stays unknown to the client.
        foreach (var probe in _probes!.Where(p => p.CompletedAt is null))
        {
            probe.Abandoned = true;
            _unknownWrites.Add((_history.Count, _probeClientId, probe.Sequence));
            _history.Add(new KvOperation(ProbeHistoryClientBase + probe.Replica, ProbeKey(probe), KvOperationKind.Put, ProbeValue(probe),
                KvOutcomeKind.Unknown, null, probe.InvokedAt, long.MaxValue));
        }
        _probesDoneAt = _now;
    }

    /// <summary>
    /// The current majority view: the highest view installed by a replica that is not removed,
    /// and its members (a view is only ever installed with a majority of the configured replicas).
    /// </summary>
    private (long Number, int[] Members) MajorityView()
    {
        var inView = _replicas.Values.Where(r => r.Up && !r.LiveCore.Removed).ToList();
        if (inView.Count == 0)
        {
            Fail("every replica that is up considers itself removed from the view");
        }
        long top = inView.Max(r => r.LiveCore.ViewNumber);
        var holders = inView.Where(r => r.LiveCore.ViewNumber == top).ToList();
        int[] members = [.. holders[0].LiveCore.Members];
        foreach (var other in holders.Skip(1).Where(h => !h.LiveCore.Members.SequenceEqual(members)))
        {
            Fail($"replicas {holders[0].Id} and {other.Id} installed view {top} with different members: [{string.Join(",", members)}] and [{string.Join(",", other.LiveCore.Members)}]");
        }
        return (top, members);
    }

    private string DescribeViews() => "views: " + string.Join("; ", _replicas.Values.Where(r => r.Up).Select(x =>
        $"{x.Id}: view {x.LiveCore.ViewNumber} [{string.Join(",", x.LiveCore.Members)}]{(x.LiveCore.Wedged ? " wedged" : "")}{(x.LiveCore.Removed ? " removed" : "")} " +
        $"suspects [{string.Join(",", x.LiveCore.Suspected)}] pending {x.LiveCore.PendingWrites}"));
}
