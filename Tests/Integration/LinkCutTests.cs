using System.Diagnostics;
using NUnit.Framework;

namespace KvReplica.Tests.Integration;

/// <summary>
/// Kills live TCP connections between replicas (and to clients) with <c>ss -K</c> while writes
/// flow: the reliable links must reconnect and resend so that nothing is lost, duplicated or
/// reordered, and every replica ends with exactly the acknowledged values.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class LinkCutTests
{
    [Test]
    public async Task Connections_cut_during_writes_lose_nothing_and_replicas_converge()
    {
        await using var cluster = await LocalCluster.StartAsync();
        const int writesPerClient = 1500;
        var writers = new[] { 1, 2 }.Select(via => ClientProcess.RunAsync(cluster.ConfigPath,
            Enumerable.Range(0, writesPerClient).Select(i => $"PUT w{via}-{i} value-{via}-{i}"),
            TimeSpan.FromSeconds(120), "--replica", via.ToString())).ToList();

        // Cut every established connection a few times while the writers run.
        var ports = cluster.Replicas.Select(r => r.Port).ToList();
        int cuts = 0;
        var clock = Stopwatch.StartNew();
        while (!writers.All(w => w.IsCompleted) && cuts < 6 && clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.WhenAny(Task.WhenAll(writers), Task.Delay(150));
            await LocalCluster.CutConnectionsServedAtAsync(ports);
            cuts++;
        }
        var results = await Task.WhenAll(writers);
        Assert.That(cuts, Is.GreaterThan(0), "the writers finished before any connection could be cut");
        await cluster.WaitUntilAsync(() => cluster.Replicas.Any(r => cluster.Log(r.Id).Contains(" down (")),
            TimeSpan.FromSeconds(10), "a replica to log a peer link going down (proof the cut happened)");
        foreach (var result in results)
        {
            Assert.That(result.Lines, Has.Count.EqualTo(writesPerClient));
            Assert.That(result.Lines.Distinct(), Is.EqualTo(new[] { "OK" }), result.Stderr);
        }

        foreach (var (id, _) in cluster.Replicas)
        {
            foreach (int via in new[] { 1, 2 })
            {
                var read = await ClientProcess.RunAsync(cluster.ConfigPath,
                    Enumerable.Range(0, writesPerClient).Select(i => $"GET w{via}-{i}"), TimeSpan.FromSeconds(120), "--replica", id.ToString(), "--local");
                Assert.That(read.Lines, Is.EqualTo(Enumerable.Range(0, writesPerClient).Select(i => $"value-{via}-{i}")),
                    $"replica {id} holds every value written through replica {via}");
            }
        }
    }
}
