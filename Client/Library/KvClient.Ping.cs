using System.Diagnostics;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client;

// PING: the cheapest request there is, timed.
public sealed partial class KvClient
{
    // A key starting with NUL is reserved: the replica's admission refuses a GET of it with
    // InvalidRequest in its event loop, before the total order, the store and any permission
    // check. So its answer costs one trip through that loop, and every authenticated user gets it.
    private const string PingKey = "\0ping";

    /// <summary>
    /// Times one request to the connected replica (connecting first if no connection is open, and
    /// failing over like any request). The replica answers from its event loop without reading
    /// the store or ordering anything, so the time is the network round trip plus that loop's
    /// responsiveness. Needs no rights beyond being logged in.
    /// </summary>
    /// <exception cref="KvException">No replica answered within the request timeout.</exception>
    public async Task<KvPingResult> PingAsync(CancellationToken ct = default)
    {
        long started = Stopwatch.GetTimestamp();
        try
        {
            await ExecuteAsync(Operation.Get, PingKey, null, ct).ConfigureAwait(false);
        }
        catch (KvException e) when (e.Error == ErrorCode.InvalidRequest)
        {
            // The expected answer: the reserved key was refused.
        }
        return new KvPingResult(ConnectedReplica, Stopwatch.GetElapsedTime(started));
    }
}

/// <summary>What <see cref="KvClient.PingAsync"/> measured: the replica that answered (null if the connection closed right after) and the time from sending to the answer.</summary>
public readonly record struct KvPingResult(ReplicaAddress? Replica, TimeSpan RoundTrip);
