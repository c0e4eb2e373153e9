using KvReplica.Client;
using KvReplica.Protocol.Wire;

namespace KvReplica.Tests.Faults;

/// <summary>One injected fault: what, to whom, when it started and was healed, and what the test saw meanwhile.</summary>
internal sealed class Fault
{
    public required int Number { get; init; }

    /// <summary>For a person: "SIGKILL replica 2".</summary>
    public required string What { get; init; }

    /// <summary>The replica the survivors are expected to remove (null when the fault names none, as a one-way cut).</summary>
    public int? Victim { get; init; }

    public required long StartUs { get; init; }

    public long HealUs { get; set; }

    /// <summary>For a person: "restart replica 2".</summary>
    public string Heal { get; set; } = "";

    /// <summary>When STATUS first showed the whole cluster again after the heal (null if it never did).</summary>
    public long? WholeUs { get; set; }

    /// <summary>What a write and a majority read sent to the isolated replica alone got back (isolation only).</summary>
    public string? MinorityProbe { get; set; }

    public bool MinorityRefusedWithNoMajority { get; set; }

    /// <summary>What a write sent only to the replicas left in the view got back, once they had installed it (faults with a victim that stays down or cut off).</summary>
    public string? MajorityProbe { get; set; }

    /// <summary>When that write was acknowledged, if it was before the heal.</summary>
    public long? MajorityWriteAckedAtUs { get; set; }
}

/// <summary>What a nemesis needs to act on the cluster and to say what it did.</summary>
internal sealed record FaultContext(FaultCluster Cluster, NetworkLab? Lab, RunClock Clock, Action<string> Timeline);

/// <summary>Figures measured for one fault from the history and the replicas' view lines.</summary>
/// <param name="NewView">The first view installed after the fault started without the victim (any smaller view when there is no victim), by a replica other than the victim, before the cluster was whole again.</param>
/// <param name="LongestWriteGapUs">Longest stretch from the fault's start to its heal with no write acknowledged (counting from the start, up to the heal).</param>
/// <param name="WritesResumedBeforeHeal">A workload write was acknowledged after <paramref name="NewView"/> and before the heal (reported, not required: see <see cref="Nemesis.ProbeMajorityAsync"/>).</param>
/// <param name="RecoveryGapUs">Longest stretch without an acknowledged write from the heal until the cluster was whole again.</param>
internal sealed record FaultMeasures(ViewInstall? NewView, long LongestWriteGapUs, bool WritesResumedBeforeHeal, long? RecoveryGapUs);

/// <summary>A kind of fault, injected again and again during a run: one call injects one fault, holds it and heals it.</summary>
internal abstract class Nemesis
{
    /// <summary>Folder name of the artefacts, e.g. "kill".</summary>
    public abstract string Name { get; }

    /// <summary>One line for the summary.</summary>
    public abstract string Title { get; }

    public virtual bool UsesNetworkNamespaces => false;

    /// <summary>Injects one fault, holds it for a random time, heals it; returns its record with start and heal times.</summary>
    public abstract Task<Fault> RunOneAsync(FaultContext context, int number, Random random);

    /// <summary>What this kind of fault must not break beyond linearizability, as failure messages (none when all hold).</summary>
    public virtual IEnumerable<string> Requirements(Fault fault, FaultMeasures measures) => [];

    /// <summary>
    /// Once a replica other than <paramref name="victim"/> logs a view without it, sends one
    /// write through a client that knows only the replicas of that view, with whatever time is
    /// left until <paramref name="healAtUs"/>; records the outcome in <paramref name="fault"/>.
    /// </summary>
    /// <remarks>
    /// This is the cluster's availability, apart from the workload's clients: a KvClient
    /// connected to a stopped replica (its connection stays open) waits for its full request
    /// timeout before it fails over, and clients never move back, so at times every workload
    /// client sits on the victim and no workload write can complete before the heal while the
    /// majority would take them.
    /// </remarks>
    protected static async Task ProbeMajorityAsync(FaultContext context, Fault fault, int victim, long healAtUs)
    {
        var cluster = context.Cluster;
        ViewInstall? view = null;
        while (context.Clock.NowUs < healAtUs
            && (view = cluster.Views.FirstOrDefault(v => v.AtUs >= fault.StartUs && v.Replica != victim && !v.Members.Contains(victim))) is null)
        {
            await Task.Delay(20);
        }
        long left = healAtUs - context.Clock.NowUs;
        if (view is null || left < 50_000)
        {
            fault.MajorityProbe = $"no view without replica {victim} before the heal, so no write was sent to the majority";
            return;
        }
        var members = cluster.Config with { Replicas = [.. cluster.Config.Replicas.Where(r => view.Members.Contains(r.Id))] };
        long sent = context.Clock.NowUs;
        try
        {
            await using var client = await KvClient.ConnectAsync(members, new KvClientOptions { RequestTimeout = TimeSpan.FromMicroseconds(left), Credentials = cluster.Credentials });
            await client.PutAsync($"probe-{fault.Number}-majority", "written while the fault lasted");
            fault.MajorityWriteAckedAtUs = context.Clock.NowUs;
            fault.MajorityProbe = $"a write to replicas {string.Join(",", view.Members)} was acknowledged {Ms(fault.MajorityWriteAckedAtUs.Value - fault.StartUs)} after the fault ({Ms(fault.MajorityWriteAckedAtUs.Value - sent)} after it was sent)";
        }
        catch (KvException e)
        {
            fault.MajorityProbe = $"a write to replicas {string.Join(",", view.Members)}, sent {Ms(sent - fault.StartUs)} after the fault, failed before the heal: {e.Message}";
        }
    }

    /// <summary>A majority that lost one member installs a view without it and takes writes before the fault ends.</summary>
    protected static IEnumerable<string> MajorityGoesOn(Fault fault, FaultMeasures measures)
    {
        if (measures.NewView is null || measures.NewView.AtUs >= fault.HealUs)
        {
            yield return $"fault {fault.Number} ({fault.What}): the other replicas installed no view without replica {fault.Victim} in the {Ms(fault.HealUs - fault.StartUs)} before the heal";
        }
        else if (fault.MajorityWriteAckedAtUs is null || fault.MajorityWriteAckedAtUs >= fault.HealUs)
        {
            yield return $"fault {fault.Number} ({fault.What}): the replicas left in the view did not take a write before the heal: {fault.MajorityProbe}";
        }
    }

    protected static TimeSpan Between(Random random, double fromSeconds, double toSeconds) =>
        TimeSpan.FromSeconds(fromSeconds + random.NextDouble() * (toSeconds - fromSeconds));

    protected static string Ms(long us) => $"{us / 1000.0:0} ms";

    /// <summary>Holds the fault until the run clock reaches <paramref name="atUs"/>.</summary>
    protected static async Task WaitUntilAsync(FaultContext context, long atUs)
    {
        long left = atUs - context.Clock.NowUs;
        if (left > 0)
        {
            await Task.Delay(TimeSpan.FromMicroseconds(left));
        }
    }
}

/// <summary>SIGKILL a random replica, leave it down for 2.5-4 s, start it again from the same data directory.</summary>
internal sealed class KillNemesis : Nemesis
{
    /// <summary>The issue's requirement: with default timeouts, writes resume within 2 s of a replica being killed.</summary>
    public static readonly TimeSpan WritesResumeWithin = TimeSpan.FromSeconds(2);

    public override string Name => "kill";

    public override string Title => "SIGKILL a random replica, restart it 2.5-4 s later from the same data directory";

    public override async Task<Fault> RunOneAsync(FaultContext context, int number, Random random)
    {
        int victim = context.Cluster.Ids[random.Next(context.Cluster.Ids.Count)];
        // Longer than WritesResumeWithin, so a stall longer than that is seen in full.
        var down = Between(random, 2.5, 4);
        var fault = new Fault { Number = number, What = $"SIGKILL replica {victim}", Victim = victim, StartUs = context.Clock.NowUs };
        context.Cluster.Kill(victim);
        context.Timeline($"fault {number}: {fault.What} (down for {down.TotalMilliseconds:0} ms)");
        await Task.Delay(down);
        fault.HealUs = context.Clock.NowUs;
        fault.Heal = $"restart replica {victim}";
        context.Cluster.Restart(victim);
        context.Timeline($"fault {number}: {fault.Heal}");
        return fault;
    }

    public override IEnumerable<string> Requirements(Fault fault, FaultMeasures measures)
    {
        if (measures.LongestWriteGapUs > WritesResumeWithin.TotalMicroseconds)
        {
            yield return $"fault {fault.Number} ({fault.What}): writes resumed only {Ms(measures.LongestWriteGapUs)} after the kill (longest stretch with no acknowledged write while it was down); required within {WritesResumeWithin.TotalMilliseconds:0} ms";
        }
    }
}

/// <summary>SIGSTOP a random replica for 2.5-4.5 s (well past the 1 s suspicion timeout), then SIGCONT: it is falsely suspected and removed, and must rejoin.</summary>
internal sealed class PauseNemesis : Nemesis
{
    public override string Name => "pause";

    public override string Title => "SIGSTOP a random replica for 2.5-4.5 s, then SIGCONT (falsely suspected, removed, must rejoin)";

    public override async Task<Fault> RunOneAsync(FaultContext context, int number, Random random)
    {
        int victim = context.Cluster.Ids[random.Next(context.Cluster.Ids.Count)];
        var paused = Between(random, 2.5, 4.5);
        var fault = new Fault { Number = number, What = $"SIGSTOP replica {victim}", Victim = victim, StartUs = context.Clock.NowUs };
        context.Cluster.Pause(victim);
        context.Timeline($"fault {number}: {fault.What} (for {paused.TotalMilliseconds:0} ms)");
        long healAt = fault.StartUs + (long)paused.TotalMicroseconds;
        await ProbeMajorityAsync(context, fault, victim, healAt);
        context.Timeline($"fault {number}: {fault.MajorityProbe}");
        await WaitUntilAsync(context, healAt);
        fault.HealUs = context.Clock.NowUs;
        fault.Heal = $"SIGCONT replica {victim}";
        context.Cluster.Resume(victim);
        context.Timeline($"fault {number}: {fault.Heal}");
        return fault;
    }

    public override IEnumerable<string> Requirements(Fault fault, FaultMeasures measures) => MajorityGoesOn(fault, measures);
}

/// <summary>
/// Cuts a random replica off from both peers (both directions) for 3-4.5 s while clients still
/// reach it: the other two must go on, and the isolated one must refuse writes and majority
/// reads with "no majority".
/// </summary>
internal sealed class IsolateNemesis : Nemesis
{
    public override string Name => "isolate";

    public override string Title => "network partition: a random replica cut off from both peers (clients still reach it) for 3-4.5 s";

    public override bool UsesNetworkNamespaces => true;

    public override async Task<Fault> RunOneAsync(FaultContext context, int number, Random random)
    {
        var cluster = context.Cluster;
        var lab = context.Lab ?? throw new InvalidOperationException("isolation needs network namespaces");
        int victim = cluster.Ids[random.Next(cluster.Ids.Count)];
        var hold = Between(random, 3, 4.5);
        var fault = new Fault { Number = number, What = $"isolate replica {victim} from its peers", Victim = victim, StartUs = context.Clock.NowUs };
        await lab.IsolateAsync(victim);
        context.Timeline($"fault {number}: {fault.What} (for {hold.TotalMilliseconds:0} ms)");
        long healAt = fault.StartUs + (long)hold.TotalMicroseconds;
        // Both sides at once: the majority must take a write, the isolated replica refuse one.
        await Task.WhenAll(ProbeMajorityAsync(context, fault, victim, healAt), ProbeMinorityAsync(context, fault, victim, healAt));
        context.Timeline($"fault {number}: {fault.MajorityProbe}");
        context.Timeline($"fault {number}: the isolated replica {victim}, asked alone: {fault.MinorityProbe}");
        await WaitUntilAsync(context, healAt);
        fault.HealUs = context.Clock.NowUs;
        fault.Heal = "delete the cut routes";
        await lab.HealAsync();
        context.Timeline($"fault {number}: heal ({fault.Heal})");
        return fault;
    }

    // Once the isolated replica suspects both peers, a write and a majority read sent to it alone
    // must be refused with "no majority" (before any ordering). Its STATUS tells when it suspects.
    private static async Task ProbeMinorityAsync(FaultContext context, Fault fault, int victim, long deadlineUs)
    {
        var cluster = context.Cluster;
        var address = cluster.Config.Find(victim)!;
        int[] peers = [.. cluster.Ids.Where(id => id != victim)];
        ReplicaStatus? status = null;
        while (context.Clock.NowUs < deadlineUs)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            try
            {
                status = await ReplicaStatusQuery.AskAsync(cluster.Dial, address, timeout.Token);
                if (peers.All(status.Suspected.Contains))
                {
                    break;
                }
            }
            catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException)
            {
                // Clients reach it, so this is worth retrying until the deadline.
            }
            await Task.Delay(50);
        }
        if (status is null || !peers.All(status.Suspected.Contains))
        {
            fault.MinorityProbe = $"replica {victim} did not suspect both peers before the heal (last STATUS: {(status is null ? "none" : FaultCluster.Describe((victim, status, null)))})";
            return;
        }
        // A client that knows only the isolated replica, so it cannot fail over to the majority.
        var alone = cluster.Config with { Replicas = [address] };
        var answers = new List<string>();
        bool refused = true;
        await using (var client = await KvClient.ConnectAsync(alone, new KvClientOptions { RequestTimeout = TimeSpan.FromSeconds(1), Credentials = cluster.Credentials }))
        {
            foreach (var (what, call) in new (string, Func<Task>)[]
            {
                ("PUT", () => client.PutAsync($"probe-{fault.Number}", "minority")),
                ("GET", () => client.GetAsync($"probe-{fault.Number}")),
            })
            {
                try
                {
                    await call();
                    answers.Add($"{what} succeeded");
                    refused = false;
                }
                catch (KvException e)
                {
                    answers.Add($"{what}: {e.Message}");
                    refused &= e.Error == ErrorCode.NoMajority && e.Message.Contains("no majority:", StringComparison.Ordinal);
                }
            }
        }
        fault.MinorityProbe = string.Join("; ", answers);
        fault.MinorityRefusedWithNoMajority = refused;
    }

    public override IEnumerable<string> Requirements(Fault fault, FaultMeasures measures)
    {
        foreach (string failure in MajorityGoesOn(fault, measures))
        {
            yield return failure;
        }
        if (!fault.MinorityRefusedWithNoMajority)
        {
            yield return $"fault {fault.Number} ({fault.What}): the isolated replica did not refuse a write and a majority read with 'no majority: ...': {fault.MinorityProbe}";
        }
    }
}

/// <summary>
/// Drops packets in one direction only, from one random replica to another, for 2.5-4 s; each
/// of the two still reaches the third, and clients reach all three.
/// </summary>
internal sealed class OneWayCutNemesis : Nemesis
{
    public override string Name => "one-way-cut";

    public override string Title => "network partition: packets from one random replica to another dropped (one direction only) for 2.5-4 s";

    public override bool UsesNetworkNamespaces => true;

    public override async Task<Fault> RunOneAsync(FaultContext context, int number, Random random)
    {
        var lab = context.Lab ?? throw new InvalidOperationException("a one-way cut needs network namespaces");
        var ids = context.Cluster.Ids;
        int from = ids[random.Next(ids.Count)];
        int to = ids.Where(id => id != from).ElementAt(random.Next(ids.Count - 1));
        var hold = Between(random, 2.5, 4);
        var fault = new Fault { Number = number, What = $"drop packets from replica {from} to replica {to}", StartUs = context.Clock.NowUs };
        await lab.CutAsync(from, to);
        context.Timeline($"fault {number}: {fault.What} (for {hold.TotalMilliseconds:0} ms)");
        await Task.Delay(hold);
        fault.HealUs = context.Clock.NowUs;
        fault.Heal = "delete the cut route";
        await lab.HealAsync();
        context.Timeline($"fault {number}: heal ({fault.Heal})");
        return fault;
    }
}
