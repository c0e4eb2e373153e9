using System.Diagnostics;
using System.Globalization;
using System.Text;
using KvReplica.Tests.Integration;
using KvReplica.Tests.Linearizability;
using NUnit.Framework;

namespace KvReplica.Tests.Faults;

/// <summary>
/// One fault run: a 3-replica cluster of real processes, a concurrent workload for at least
/// <see cref="WorkloadDuration"/>, one nemesis injecting faults one after another (each healed,
/// and the cluster whole again, before the next), then the linearizability check of the whole
/// history, the figures, and the artefacts under <c>test-results/faults/&lt;nemesis&gt;/</c>.
/// </summary>
/// <remarks>
/// Knobs (environment): <c>FAULT_SEED</c> fixes the nemesis's choices and the operation mix
/// (timing still varies); <c>FAULT_SECONDS</c> lengthens the workload for a soak.
/// </remarks>
internal static class FaultRunner
{
    public static readonly WorkloadShape Shape = new(Clients: 5, KeysPerEpoch: 5, KeyEpoch: TimeSpan.FromSeconds(2));

    /// <summary>How long the workload runs at least (faults keep coming until then).</summary>
    public static TimeSpan WorkloadDuration =>
        int.TryParse(Environment.GetEnvironmentVariable("FAULT_SECONDS"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int s) && s >= 30
            ? TimeSpan.FromSeconds(s) : TimeSpan.FromSeconds(30);

    // Generous for a rejoin with catch-up on a loaded 2-core machine, and for TCP's retransmission
    // back-off after a partition heals (the stalled connections resume at the next retransmission).
    private static readonly TimeSpan WholeDeadline = TimeSpan.FromSeconds(25);
    private static readonly TimeSpan CheckerBudget = TimeSpan.FromSeconds(60);

    /// <summary>Where the fault suite keeps its artefacts.</summary>
    public static string ArtefactRoot => Path.Combine(BuiltExecutables.RepositoryRoot, "test-results", "faults");

    public static async Task RunAsync(Nemesis nemesis)
    {
        int seed = int.TryParse(Environment.GetEnvironmentVariable("FAULT_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int fixedSeed)
            ? fixedSeed : Environment.TickCount & int.MaxValue;
        string artefacts = Path.Combine(ArtefactRoot, nemesis.Name);
        if (Directory.Exists(artefacts))
        {
            Directory.Delete(artefacts, recursive: true);
        }
        Directory.CreateDirectory(artefacts);
        TestContext.Progress.WriteLine($"[faults] {nemesis.Name}: FAULT_SEED={seed}; artefacts in {artefacts}");

        var clock = new RunClock();
        var timeline = new List<(long AtUs, string Text)>();
        void Note(string text)
        {
            long at = clock.NowUs;
            lock (timeline)
            {
                timeline.Add((at, text));
            }
            TestContext.Progress.WriteLine($"[faults {at / 1e6,7:0.000} s] {text}");
        }

        var failures = new List<string>();
        var faults = new List<Fault>();
        IReadOnlyList<RecordedOperation> operations = [];
        IReadOnlyList<ViewInstall> views = [];
        long workloadStart = 0;
        long workloadEnd = 0;
        NetworkLab? lab = null;
        FaultCluster? cluster = null;
        Workload? workload = null;
        using var stopWatching = new CancellationTokenSource();
        Task watching = Task.CompletedTask;
        try
        {
            if (nemesis.UsesNetworkNamespaces)
            {
                lab = await NetworkLab.CreateAsync([1, 2, 3]);
                Note($"network namespaces {lab.Namespace(1)}..{lab.Namespace(3)}, replicas at {lab.Address(1)}..{lab.Address(3)}");
            }
            cluster = await FaultCluster.StartAsync(nemesis.Name, clock, lab);
            Note($"started 3 replicas, config {cluster.ConfigPath}");
            await cluster.WaitUntilWholeAsync(TimeSpan.FromSeconds(30), "after start");
            Note("cluster whole");
            watching = WatchStatusAsync(cluster, Note, stopWatching.Token);
            workload = Workload.Start(cluster.Config, cluster.Credentials, clock, Shape, seed);
            workloadStart = clock.NowUs;
            Note($"workload started: {Shape.Clients} clients, {Shape.KeysPerEpoch} keys per {Shape.KeyEpoch.TotalSeconds:0} s");
            var context = new FaultContext(cluster, lab, clock, Note);
            await workload.WaitForMoreWritesAsync(20, TimeSpan.FromSeconds(20), "after start", () => cluster.LogTails(20));

            var random = new Random(seed);
            long duration = (long)WorkloadDuration.TotalMicroseconds;
            while (clock.NowUs - workloadStart < duration)
            {
                // Steady state between faults, so each fault starts from a cluster that is writing.
                await Task.Delay(1000);
                cluster.ThrowIfAReplicaDied();
                // Clients stay on the replica they failed over to, so this shifts from fault to fault.
                Note($"workload clients connected: {workload.DescribeConnections()}");
                var fault = await nemesis.RunOneAsync(context, faults.Count + 1, random);
                faults.Add(fault);
                fault.WholeUs = await cluster.WaitUntilWholeAsync(WholeDeadline, $"after fault {fault.Number} ({fault.What}) was healed ({fault.Heal})");
                Note($"fault {fault.Number}: cluster whole again, {(fault.WholeUs.Value - fault.HealUs) / 1000.0:0} ms after the heal");
            }
            long left = duration - (clock.NowUs - workloadStart);
            if (left > 0)
            {
                await Task.Delay(TimeSpan.FromMicroseconds(left));
            }
            await workload.WaitForMoreWritesAsync(20, TimeSpan.FromSeconds(15), "after the last fault was healed and the cluster was whole", () => cluster.LogTails(20));
        }
        catch (Exception e)
        {
            // Keep going: the history so far is still checked and every artefact written.
            failures.Add(e is FaultRunFailure ? e.Message : e.ToString());
            Note($"run stopped: {e.GetType().Name}: {FirstLine(e.Message)}");
        }
        finally
        {
            if (workload is not null)
            {
                Note("stopping the workload (each client finishes the operation in flight)");
                operations = await workload.StopAsync();
                workloadEnd = clock.NowUs;
            }
            await stopWatching.CancelAsync();
            await watching;
            if (cluster is not null)
            {
                views = cluster.Views;
                cluster.WriteLogs(artefacts);
                await cluster.DisposeAsync();
            }
            if (lab is not null)
            {
                await lab.DisposeAsync();
            }
        }

        string historyPath = Path.Combine(artefacts, "history.jsonl");
        HistoryFile.Write(historyPath, operations.Select(o => o.Operation));
        WriteFailedOperations(Path.Combine(artefacts, "failed-operations.txt"), operations);
        var checkClock = Stopwatch.StartNew();
        var verdict = LinearizabilityChecker.Check([.. operations.Select(o => o.Operation)], CheckerBudget);
        checkClock.Stop();
        Note($"checker: {verdict.Verdict} in {checkClock.ElapsedMilliseconds} ms");
        if (verdict.Verdict == Verdict.NotLinearizable)
        {
            failures.Insert(0, $"the history is not linearizable:\n{verdict.Explanation}");
            await File.WriteAllTextAsync(Path.Combine(artefacts, "violation.txt"), verdict.Explanation + "\n");
        }
        else if (verdict.Verdict == Verdict.Unknown)
        {
            failures.Insert(0, $"the checker could not decide within {CheckerBudget.TotalSeconds:0} s (inconclusive is not a pass): {verdict.Explanation}");
        }

        // A view counts for the fault it follows only until the cluster was whole again (or the next fault began).
        var measured = faults.Select((f, i) => (Fault: f, Measures: Measure(f, operations, views,
            f.WholeUs ?? (i + 1 < faults.Count ? faults[i + 1].StartUs : long.MaxValue)))).ToList();
        foreach (var (fault, measures) in measured.Where(m => m.Fault.HealUs > 0))
        {
            failures.AddRange(nemesis.Requirements(fault, measures));
        }
        if (failures.Count == 0 && faults.Count < 3)
        {
            failures.Add($"only {faults.Count} faults were injected in {WorkloadDuration.TotalSeconds:0} s; at least 3 were expected");
        }

        lock (timeline)
        {
            var merged = timeline.Select(t => (t.AtUs, Text: t.Text))
                .Concat(views.Select(v => (v.AtUs, Text: $"replica {v.Replica} installed view {v.Number}: members {string.Join(",", v.Members)}")))
                .OrderBy(t => t.AtUs);
            File.WriteAllLines(Path.Combine(artefacts, "fault-timeline.txt"),
                ["times in ms since the start of the run (the history's times are in microseconds on the same clock)", .. merged.Select(t => $"{t.AtUs / 1000.0,10:0.0}  {t.Text}")]);
        }
        string summary = Summarise(nemesis, seed, operations, verdict, checkClock.Elapsed, measured, workloadStart, workloadEnd, failures, artefacts);
        await File.WriteAllTextAsync(Path.Combine(artefacts, "summary.md"), summary);
        await WriteCombinedSummaryAsync();
        TestContext.Progress.WriteLine(summary);
        TestContext.Progress.WriteLine($"[faults] {nemesis.Name}: history {historyPath}; replay: HISTORY={historyPath} dotnet test Tests/KvReplica.Tests.csproj -c Release --no-build --filter Name=Replay_a_saved_history_when_HISTORY_is_set");

        if (failures.Count > 0)
        {
            Assert.Fail($"{nemesis.Name}: {string.Join("\n\n", failures)}\n\nartefacts (history, replica logs, fault timeline, summary): {artefacts}");
        }
    }

    // Notes in the timeline every change of what a replica's STATUS says about views and
    // suspicions (delivered position and pending writes left out: they change all the time), so
    // the timeline shows who suspected whom, and when, even where no view came of it.
    private static async Task WatchStatusAsync(FaultCluster cluster, Action<string> note, CancellationToken stop)
    {
        var last = new Dictionary<int, string>();
        while (!stop.IsCancellationRequested)
        {
            foreach (var answer in await cluster.StatusAsync(TimeSpan.FromMilliseconds(500)))
            {
                string now = answer.Status is { } st
                    ? $"view {st.ViewNumber} members {string.Join(",", st.Members)} suspects {(st.Suspected.Length == 0 ? "-" : string.Join(",", st.Suspected))}{(st.Wedged ? " (view change in progress)" : "")}{(st.Removed ? " (removed from the view)" : "")}"
                    : "unreachable";
                if (last.GetValueOrDefault(answer.Id) != now)
                {
                    last[answer.Id] = now;
                    note($"STATUS replica {answer.Id}: {now}");
                }
            }
            try
            {
                await Task.Delay(200, stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>The figures of one fault; see <see cref="FaultMeasures"/>.</summary>
    public static FaultMeasures Measure(Fault fault, IReadOnlyList<RecordedOperation> operations, IReadOnlyList<ViewInstall> views, long viewsUntilUs)
    {
        long[] writes = [.. operations
            .Where(o => Workload.IsWrite(o.Operation.Kind) && o.Operation.Outcome != KvOutcomeKind.Unknown)
            .Select(o => o.Operation.ReturnedAt)
            .Order()];
        var newView = views.FirstOrDefault(v => v.AtUs >= fault.StartUs && v.AtUs <= viewsUntilUs && v.Replica != fault.Victim
            && (fault.Victim is int victim ? !v.Members.Contains(victim) : v.Members.Count < 3));
        long end = fault.HealUs > 0 ? fault.HealUs : fault.StartUs;
        bool resumed = newView is not null && writes.Any(t => t >= newView.AtUs && t < end);
        long? recovery = fault.WholeUs is long whole ? LongestGap(writes, end, whole) : null;
        return new FaultMeasures(newView, LongestGap(writes, fault.StartUs, end), resumed, recovery);
    }

    /// <summary>Longest interval within [from, to] that holds none of the sorted <paramref name="times"/>.</summary>
    public static long LongestGap(long[] times, long from, long to)
    {
        long longest = 0;
        long previous = from;
        int i = Array.BinarySearch(times, from);
        for (i = i < 0 ? ~i : i; i < times.Length && times[i] < to; i++)
        {
            longest = Math.Max(longest, times[i] - previous);
            previous = times[i];
        }
        return Math.Max(longest, to - previous);
    }

    private static void WriteFailedOperations(string path, IReadOnlyList<RecordedOperation> operations)
    {
        File.WriteAllLines(path,
            ["operations that got no result, recorded as unknown (times in ms on the run clock): client, invoked, gave up, operation, last error",
             .. operations.Where(o => o.Error is not null).Select(o =>
                 $"client {o.Operation.Client} {o.Operation.InvokedAt / 1000.0:0.0} {o.GaveUpAtUs / 1000.0:0.0} {Describe(o.Operation)}: {o.Error}")]);
    }

    private static string Describe(KvOperation op) => op.ToString();

    private static string Summarise(Nemesis nemesis, int seed, IReadOnlyList<RecordedOperation> operations, CheckResult verdict, TimeSpan checkTime,
        IReadOnlyList<(Fault Fault, FaultMeasures Measures)> measured, long workloadStart, long workloadEnd, IReadOnlyList<string> failures, string artefacts)
    {
        static string Ms(long us) => $"{us / 1000.0:0}";
        var s = new StringBuilder();
        s.AppendLine($"## {nemesis.Name}: {nemesis.Title}");
        s.AppendLine();
        s.AppendLine($"Result: **{(failures.Count == 0 ? "PASS" : "FAIL")}**. FAULT_SEED={seed}; workload {(workloadEnd - workloadStart) / 1e6:0.0} s, {Shape.Clients} clients, {Shape.KeysPerEpoch} keys per {Shape.KeyEpoch.TotalSeconds:0} s; default timeouts (suspicion 1 s, write 5 s, read 2 s, client 6 s). Artefacts: `{Path.GetRelativePath(BuiltExecutables.RepositoryRoot, artefacts)}/`.");
        s.AppendLine();
        s.AppendLine("| operations | attempted | succeeded | failed (definite) | unknown |");
        s.AppendLine("|---|---:|---:|---:|---:|");
        var writes = operations.Where(o => Workload.IsWrite(o.Operation.Kind)).ToList();
        var reads = operations.Where(o => !Workload.IsWrite(o.Operation.Kind)).ToList();
        int Ok(List<RecordedOperation> ops) => ops.Count(o => o.Operation.Outcome != KvOutcomeKind.Unknown);
        // A failed GET has a known outcome (it changed nothing and returned nothing); a failed write's
        // outcome is never known through KvClient (see Workload's remarks).
        s.AppendLine($"| writes (PUT, DELETE, UPDATE, CAS, TXN) | {writes.Count} | {Ok(writes)} | 0 | {writes.Count - Ok(writes)} |");
        s.AppendLine($"| reads (GET and LIST, majority) | {reads.Count} | {Ok(reads)} | {reads.Count - Ok(reads)} | 0 |");
        s.AppendLine($"| all | {operations.Count} | {Ok(writes) + Ok(reads)} | {reads.Count - Ok(reads)} | {writes.Count - Ok(writes)} |");
        s.AppendLine();
        var reasons = operations.Where(o => o.ErrorKind is not null)
            .GroupBy(o => (Kind: Workload.IsWrite(o.Operation.Kind) ? "write" : "read", o.ErrorKind))
            .OrderBy(g => g.Key.Kind, StringComparer.Ordinal).ThenByDescending(g => g.Count())
            .Select(g => $"{g.Key.Kind}s {g.Key.ErrorKind}: {g.Count()}").ToList();
        s.AppendLine("A failed write is unknown, never failed: through KvClient no error proves that a write did not take effect (Tests/Faults/Workload.cs). A failed read is failed: it changed nothing.");
        s.AppendLine();
        s.AppendLine($"Failures by the last error the client saw: {(reasons.Count == 0 ? "none" : string.Join("; ", reasons))}.");
        s.AppendLine();
        s.AppendLine($"Linearizable: **{verdict.Verdict switch { Verdict.Linearizable => "yes", Verdict.NotLinearizable => "NO", _ => "unknown (checker timed out)" }}** ({operations.Count} operations, {operations.Select(o => o.Operation.Key).Distinct().Count()} keys, checked in {checkTime.TotalMilliseconds:0} ms){(verdict.Key is null ? "" : $"; key `{verdict.Key}`")}.");
        s.AppendLine();
        s.AppendLine("| # | fault | heal | held (ms) | fault → new view (ms) | longest write gap during the fault (ms) | workload writes after the new view, before the heal | heal → whole again (ms) | longest write gap heal → whole (ms) |");
        s.AppendLine("|---:|---|---|---:|---:|---:|---|---:|---:|");
        foreach (var (fault, m) in measured)
        {
            string view = m.NewView is null ? "none" : $"{Ms(m.NewView.AtUs - fault.StartUs)} (view {m.NewView.Number} at replica {m.NewView.Replica}: {string.Join(",", m.NewView.Members)})";
            string whole = fault.WholeUs is long w ? Ms(w - fault.HealUs) : "never";
            string recovery = m.RecoveryGapUs is long r ? Ms(r) : "-";
            string held = fault.HealUs > 0 ? Ms(fault.HealUs - fault.StartUs) : "-";
            s.AppendLine($"| {fault.Number} | {fault.What} | {fault.Heal} | {held} | {view} | {Ms(m.LongestWriteGapUs)} | {(m.WritesResumedBeforeHeal ? "yes" : "no")} | {whole} | {recovery} |");
        }
        if (measured.Count > 0)
        {
            s.AppendLine();
            var healed = measured.Where(x => x.Fault.HealUs > 0).ToList();
            if (healed.Count > 0)
            {
                s.AppendLine($"Longest write unavailability after a fault: {Ms(healed.Max(x => x.Measures.LongestWriteGapUs))} ms (the longest stretch with no acknowledged write between a fault's start and its heal, over {healed.Count} faults).");
            }
            var withView = measured.Where(x => x.Measures.NewView is not null).ToList();
            if (withView.Count > 0)
            {
                s.AppendLine($"Fault to new view: {Ms(withView.Min(x => x.Measures.NewView!.AtUs - x.Fault.StartUs))}-{Ms(withView.Max(x => x.Measures.NewView!.AtUs - x.Fault.StartUs))} ms ({withView.Count} of {measured.Count} faults led to a view without the victim; time the first replica's view line was read).");
            }
            if (nemesis is KillNemesis && healed.Count > 0)
            {
                s.AppendLine($"Writes resume within {Ms(healed.Max(x => x.Measures.LongestWriteGapUs))} ms of a kill (worst of {healed.Count} kills; required: within {KillNemesis.WritesResumeWithin.TotalMilliseconds:0} ms).");
            }
            var probed = measured.Where(x => x.Fault.MajorityProbe is not null || x.Fault.MinorityProbe is not null).ToList();
            if (probed.Count > 0)
            {
                s.AppendLine();
                s.AppendLine("Probes while a fault lasted (a client of the replicas left in the view; a client of the isolated replica alone):");
            }
            foreach (var (fault, _) in probed)
            {
                s.AppendLine($"- fault {fault.Number}: {fault.MajorityProbe}{(fault.MinorityProbe is null ? "" : $"; the isolated replica, asked alone: {fault.MinorityProbe}")}");
            }
        }
        if (failures.Count > 0)
        {
            s.AppendLine();
            s.AppendLine("Failures:");
            foreach (string failure in failures)
            {
                s.AppendLine($"- {FirstLine(failure)}");
            }
        }
        return s.ToString();
    }

    // Every nemesis's summary, in one file, whichever subset ran last.
    private static async Task WriteCombinedSummaryAsync()
    {
        var sections = Directory.EnumerateDirectories(ArtefactRoot).Order(StringComparer.Ordinal)
            .Select(d => Path.Combine(d, "summary.md")).Where(File.Exists).Select(File.ReadAllText);
        await File.WriteAllTextAsync(Path.Combine(ArtefactRoot, "summary.md"), "# Fault-injection suite\n\n" + string.Join("\n", sections));
    }

    private static string FirstLine(string text) => text.Split('\n')[0];
}
