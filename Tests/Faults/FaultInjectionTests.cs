using KvReplica.Tests.Integration;
using KvReplica.Tests.Linearizability;
using NUnit.Framework;

namespace KvReplica.Tests.Faults;

/// <summary>
/// Jepsen-style fault injection on real <c>node</c> processes: for at least 30 s, 5 concurrent
/// clients run a mixed PUT/GET/DELETE workload on a 3-replica cluster with default timeouts
/// while one nemesis injects faults, one after another; between faults the cluster must become
/// whole again (all three replicas members of one view). The recorded history must be
/// linearizable, and each nemesis has availability requirements of its own (see
/// <see cref="Nemesis.Requirements"/>). Artefacts (history, replica logs, fault timeline,
/// figures) are kept under <c>test-results/faults/&lt;nemesis&gt;/</c>, pass or fail, and
/// <c>test-results/faults/summary.md</c> gathers the figures. The partition tests need root and
/// iproute2 (network namespaces); CI runs as root.
/// </summary>
[TestFixture]
[Category("Faults")]
[NonParallelizable]
public sealed class FaultInjectionTests
{
    [OneTimeSetUp]
    public static async Task RemoveWhatCrashedRunsLeftAsync()
    {
        // Replicas and namespaces of an earlier test process that died without cleaning up.
        FaultCluster.CleanStale();
        try
        {
            await NetworkLab.CleanStaleAsync();
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            // No `ip` here: there cannot be namespaces to clean either. The partition tests say so when they run.
            TestContext.Progress.WriteLine($"[faults] no stale namespaces looked for: {e.Message}");
        }
    }

    [Test]
    public Task SIGKILL_and_restart_of_random_replicas_keeps_the_history_linearizable_and_writes_resume_within_2_s() =>
        FaultRunner.RunAsync(new KillNemesis());

    [Test]
    public Task SIGSTOP_past_the_suspicion_timeout_and_SIGCONT_keeps_the_history_linearizable_and_the_majority_writing() =>
        FaultRunner.RunAsync(new PauseNemesis());

    [Test]
    public Task Isolating_a_replica_from_its_peers_keeps_the_history_linearizable_and_the_minority_refuses_with_no_majority() =>
        FaultRunner.RunAsync(new IsolateNemesis());

    [Test]
    public Task One_way_network_cuts_between_two_replicas_keep_the_history_linearizable_and_the_cluster_heals() =>
        FaultRunner.RunAsync(new OneWayCutNemesis());

    /// <summary>
    /// Re-runs the checker on a saved history: <c>HISTORY=test-results/faults/kill/history.jsonl</c>
    /// (absolute, or relative to the repository root), optionally <c>CHECK_SECONDS</c> for the
    /// checker's budget (default 120).
    /// </summary>
    [Test]
    public void Replay_a_saved_history_when_HISTORY_is_set()
    {
        string? path = Environment.GetEnvironmentVariable("HISTORY");
        if (string.IsNullOrEmpty(path))
        {
            Assert.Ignore("HISTORY is not set; set it to a saved history.jsonl to check that history again");
        }
        if (!Path.IsPathRooted(path))
        {
            path = Path.Combine(BuiltExecutables.RepositoryRoot, path);
        }
        Assert.That(File.Exists(path), Is.True, $"HISTORY={path} does not exist (note that ./run_tests.sh deletes test-results/ before it runs: copy the file elsewhere first)");
        var budget = TimeSpan.FromSeconds(int.TryParse(Environment.GetEnvironmentVariable("CHECK_SECONDS"), out int s) && s > 0 ? s : 120);
        var history = HistoryFile.Read(path);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = LinearizabilityChecker.Check(history, budget);
        TestContext.Progress.WriteLine($"{path}: {history.Count} operations, {history.Count(o => o.Outcome == KvOutcomeKind.Unknown)} unknown: {result.Verdict} in {clock.ElapsedMilliseconds} ms");
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Linearizable), result.Explanation);
    }
}
