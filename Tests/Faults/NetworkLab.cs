using System.Text.RegularExpressions;

namespace KvReplica.Tests.Faults;

/// <summary>
/// One Linux network namespace per replica, each joined to the root namespace by a veth pair,
/// so that the links between replicas can be cut with routes while the test's clients (in the
/// root namespace) still reach every replica. Needs root and iproute2 (<c>ip</c>) only.
/// </summary>
/// <remarks>
/// <para>Layout for replica <c>i</c> of a run: namespace <c>kvf&lt;pid&gt;x&lt;n&gt;-i</c>; veth
/// <c>kvf&lt;pid&gt;x&lt;n&gt;h i</c> (root end, <c>10.S.i.1/24</c>) and <c>...n i</c> (inside,
/// <c>10.S.i.2/24</c>, default route via the root end). The root namespace forwards between the
/// pairs (<c>net.ipv4.ip_forward=1</c>, restored at the end). The test process id in every name
/// tells a stale leftover (its process is gone) from a run in progress elsewhere, and S is a
/// /16 no route of the root namespace uses yet.</para>
/// <para>A cut is a blackhole route inside the sending replica's namespace. Traffic between
/// replicas is forwarded through the root namespace, so a route there would cut the clients too,
/// and clients connect from the root ends' addresses, which no cut names. Routes act on
/// established connections at once (a route change invalidates every socket's cached route; the
/// replicas' links go silent within a few milliseconds, checked by hand with a probe), and
/// nothing tells the endpoints: no reset, no error on send, exactly like a real partition. So
/// connections are deliberately not killed (<c>ss -K</c>) at the start of a cut: the failure
/// detector has to notice silence, which is what it is for, instead of a closed link that a
/// real partition never produces. New connections fail at once (EINVAL) while a cut lasts.
/// After a heal the stalled connections resume with TCP's next retransmission.</para>
/// <para>A one-way cut (a route in one namespace only) drops packets in that direction only;
/// reverse-path filtering is switched off inside the namespaces so that packets from the cut
/// peer are still accepted (with strict filtering they would be dropped too, making every cut
/// two-way). TCP needs both directions, so a connection through a one-way cut stalls once its
/// first unacknowledged segments are out; what remains one-sided is which replica can still
/// reach which, and the replicas on either side of the cut still reach the third.</para>
/// </remarks>
internal sealed partial class NetworkLab : IAsyncDisposable
{
    private const string Prefix = "kvf";
    private static int s_runs;

    private readonly string _run;
    private readonly int _subnet;
    private readonly IReadOnlyList<int> _ids;
    private readonly HashSet<(int From, int To)> _cuts = [];
    private readonly List<string> _created = [];
    private bool _forwardingWasOff;
    private bool _disposed;

    private NetworkLab(string run, int subnet, IReadOnlyList<int> ids)
    {
        _run = run;
        _subnet = subnet;
        _ids = ids;
    }

    /// <summary>The namespace replica <paramref name="id"/> runs in.</summary>
    public string Namespace(int id) => $"{_run}-{id}";

    /// <summary>The address replica <paramref name="id"/> listens on (inside its namespace).</summary>
    public string Address(int id) => $"10.{_subnet}.{id}.2";

    private string HostLink(int id) => $"{_run}h{id}";

    private string InnerLink(int id) => $"{_run}n{id}";

    /// <summary>
    /// Cleans up what crashed earlier runs left, then builds one namespace per id. Throws
    /// <see cref="InvalidOperationException"/> with iproute2's message when something cannot be
    /// built (not root, no <c>ip</c>); whatever was built is removed again.
    /// </summary>
    public static async Task<NetworkLab> CreateAsync(IReadOnlyList<int> ids)
    {
        if (ids.Any(id => id is < 1 or > 254))
        {
            throw new ArgumentOutOfRangeException(nameof(ids), "replica ids must fit in one address byte (1-254)");
        }
        NetworkLab? lab = null;
        try
        {
            await CleanStaleAsync();
            string run = $"{Prefix}{Environment.ProcessId}x{Interlocked.Increment(ref s_runs)}";
            lab = new NetworkLab(run, await FreeSubnetAsync(), ids);
            await lab.BuildAsync();
            return lab;
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or IOException or UnauthorizedAccessException)
        {
            if (lab is not null)
            {
                await lab.DisposeAsync();
            }
            throw new InvalidOperationException($"cannot build the network namespaces for the partition tests (they need root and iproute2's `ip`; .ci/run installs it): {e.Message}", e);
        }
    }

    private async Task BuildAsync()
    {
        foreach (int id in _ids)
        {
            string ns = Namespace(id);
            await Shell.RunAsync("ip", "netns", "add", ns);
            _created.Add(ns);
            await Shell.RunAsync("ip", "link", "add", HostLink(id), "type", "veth", "peer", "name", InnerLink(id), "netns", ns);
            await Shell.RunAsync("ip", "addr", "add", $"10.{_subnet}.{id}.1/24", "dev", HostLink(id));
            await Shell.RunAsync("ip", "link", "set", HostLink(id), "up");
            await Shell.RunAsync("ip", "-n", ns, "addr", "add", $"{Address(id)}/24", "dev", InnerLink(id));
            await Shell.RunAsync("ip", "-n", ns, "link", "set", InnerLink(id), "up");
            await Shell.RunAsync("ip", "-n", ns, "link", "set", "lo", "up");
            await Shell.RunAsync("ip", "-n", ns, "route", "add", "default", "via", $"10.{_subnet}.{id}.1");
            // See the remarks: a one-way cut must not turn into a two-way one.
            await Shell.RunAsync("ip", "netns", "exec", ns, "sh", "-c",
                $"echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter && echo 0 > /proc/sys/net/ipv4/conf/{InnerLink(id)}/rp_filter");
        }
        const string forwarding = "/proc/sys/net/ipv4/ip_forward";
        if ((await File.ReadAllTextAsync(forwarding)).Trim() == "0")
        {
            await File.WriteAllTextAsync(forwarding, "1");
            _forwardingWasOff = true;
        }
    }

    /// <summary>Drops every packet from replica <paramref name="from"/> to replica <paramref name="to"/> (not the other way).</summary>
    public async Task CutAsync(int from, int to)
    {
        if (_cuts.Add((from, to)))
        {
            await Shell.RunAsync("ip", "-n", Namespace(from), "route", "add", "blackhole", $"{Address(to)}/32");
        }
    }

    /// <summary>Cuts <paramref name="id"/> from every other replica in both directions; clients still reach it.</summary>
    public async Task IsolateAsync(int id)
    {
        foreach (int peer in _ids.Where(p => p != id))
        {
            await CutAsync(id, peer);
            await CutAsync(peer, id);
        }
    }

    /// <summary>Removes every cut.</summary>
    public async Task HealAsync()
    {
        foreach (var (from, to) in _cuts.ToList())
        {
            await Shell.RunAsync("ip", "-n", Namespace(from), "route", "del", "blackhole", $"{Address(to)}/32");
            _cuts.Remove((from, to));
        }
    }

    /// <summary>Kills whatever still runs in the namespaces, deletes them (and so the veth pairs) and restores forwarding. Safe twice; never throws.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (string ns in _created)
        {
            await DeleteNamespaceAsync(ns);
        }
        foreach (int id in _ids)
        {
            // Deleting a namespace deletes the pair with its inner end; this catches a pair whose
            // namespace was never made.
            await Shell.TryRunAsync("ip", "link", "del", HostLink(id));
        }
        if (_forwardingWasOff && !(await LiveRunsAsync()).Any())
        {
            // Only when no other run (another test process) still needs it.
            await File.WriteAllTextAsync("/proc/sys/net/ipv4/ip_forward", "0");
        }
    }

    /// <summary>Removes namespaces and veths whose test process is gone, with any replica still running in them.</summary>
    public static async Task CleanStaleAsync()
    {
        var listed = await Shell.TryRunAsync("ip", "netns", "list");
        foreach (Match m in NamespaceName().Matches(listed.Output))
        {
            if (!Shell.IsAlive(int.Parse(m.Groups["pid"].Value)))
            {
                await DeleteNamespaceAsync(m.Value);
            }
        }
        var links = await Shell.TryRunAsync("ip", "-o", "link", "show");
        foreach (Match m in LinkName().Matches(links.Output))
        {
            if (!Shell.IsAlive(int.Parse(m.Groups["pid"].Value)))
            {
                await Shell.TryRunAsync("ip", "link", "del", m.Groups["name"].Value);
            }
        }
    }

    private static async Task<IEnumerable<string>> LiveRunsAsync()
    {
        var listed = await Shell.TryRunAsync("ip", "netns", "list");
        return NamespaceName().Matches(listed.Output).Where(m => Shell.IsAlive(int.Parse(m.Groups["pid"].Value))).Select(m => m.Value);
    }

    private static async Task DeleteNamespaceAsync(string ns)
    {
        // A namespace outlives its name while processes run in it: stop them first.
        var pids = await Shell.TryRunAsync("ip", "netns", "pids", ns);
        foreach (string pid in pids.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            try
            {
                using var process = System.Diagnostics.Process.GetProcessById(int.Parse(pid));
                process.Kill(entireProcessTree: true);
                process.WaitForExit(10_000);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
            {
                // Gone already.
            }
        }
        await Shell.TryRunAsync("ip", "netns", "del", ns);
    }

    // A /16 under 10/8 that no route or address of the root namespace touches.
    private static async Task<int> FreeSubnetAsync()
    {
        string routes = (await Shell.RunAsync("ip", "-4", "route", "show", "table", "all")) + (await Shell.RunAsync("ip", "-4", "addr", "show"));
        var taken = UsedTenSubnets().Matches(routes).Select(m => int.Parse(m.Groups[1].Value)).ToHashSet();
        bool tenSlashEight = routes.Contains("10.0.0.0/8", StringComparison.Ordinal);
        var free = Enumerable.Range(100, 150).Where(s => !taken.Contains(s)).ToList();
        if (tenSlashEight || free.Count == 0)
        {
            throw new InvalidOperationException("no free 10.S.0.0/16 for the replicas' namespaces: the root namespace routes 10.0.0.0/8 or every 10.100-249 subnet is in use");
        }
        // Start from a spot that depends on the process, so that two runs at once rarely race for one.
        return free[Environment.ProcessId % free.Count];
    }

    [GeneratedRegex(@"^kvf(?<pid>\d+)x\d+-\d+", RegexOptions.Multiline)]
    private static partial Regex NamespaceName();

    [GeneratedRegex(@"^\d+: (?<name>kvf(?<pid>\d+)x\d+h\d+)[@:]", RegexOptions.Multiline)]
    private static partial Regex LinkName();

    [GeneratedRegex(@"\b10\.(\d+)\.")]
    private static partial Regex UsedTenSubnets();
}
