using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

namespace KvReplica.Transport;

/// <summary>
/// Asks one replica what it holds and has delivered per origin (<see cref="StateSummary"/>). A
/// replica runs it against its peers while it starts, to find out whether it came back with less
/// than it once promised them (docs/design.md, "Catch-up").
/// </summary>
public static class StateQuery
{
    /// <summary>The replica's summary; throws <see cref="IOException"/>, socket or frame exceptions when it cannot be had.</summary>
    public static async Task<StateSummary> AskAsync(DialSettings settings, ReplicaAddress replica, CancellationToken ct)
    {
        await using var connection = await ReplicaDialer.OpenAsync(settings, replica, PeerKind.StateQuery, ct).ConfigureAwait(false);
        return await connection.ReadFrameAsync("state query", ct).ConfigureAwait(false) as StateSummary
            ?? throw new UnexpectedMessageException("answered the state query with something other than a StateSummary");
    }
}
