using System.Globalization;

namespace KvReplica.Client.Cli;

/// <summary>
/// STATUS: every replica's own account of itself, asked on a connection of its own, and whether
/// the cluster is whole. It is degraded (exit code <see cref="ExitCodes.Degraded"/>, JSON status
/// <c>degraded</c>) when any replica is unreachable, removed from the view, or in a view with
/// fewer members than a majority of the configured replicas.
/// </summary>
internal static class StatusCommand
{
    public static async Task<CommandResult> RunAsync(CommandContext context, ParsedCommand command, CancellationToken ct)
    {
        var answers = await ReplicaStatusQuery.AskEveryReplicaAsync(context.Dial, context.StatusTimeout, ct).ConfigureAwait(false);
        if (answers.All(a => a.Refused))
        {
            return CommandResult.Failed("status", null, $"{answers[0].Error}; STATUS is for admins: log in as one with --user");
        }
        int majority = context.Config.Replicas.Count / 2 + 1;
        long newest = answers.Where(a => a.Status is not null).Select(a => a.Status!.DeliveredTime).DefaultIfEmpty(0).Max();
        var problems = new List<string>();
        var lines = new List<string>();
        foreach (var answer in answers)
        {
            if (answer.Status is not { } s)
            {
                lines.Add($"replica {answer.Replica.Id}: unreachable ({answer.Error})");
                problems.Add($"replica {answer.Replica.Id} unreachable");
                continue;
            }
            bool minority = s.Members.Length < majority;
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"replica {s.ReplicaId}: view {s.ViewNumber} members {string.Join(",", s.Members)} suspects {(s.Suspected.Length == 0 ? "-" : string.Join(",", s.Suspected))} delivered {s.DeliveredTime}.{s.DeliveredReplica} pending {s.PendingWrites} lag {newest - s.DeliveredTime}")
                + (s.Wedged ? " (view change in progress)" : "")
                + (s.Removed ? " (removed from the view; must rejoin)" : "")
                + (minority && !s.Removed ? $" (in a minority: {s.Members.Length} of {context.Config.Replicas.Count} members)" : ""));
            if (s.Removed)
            {
                problems.Add($"replica {s.ReplicaId} removed from the view");
            }
            else if (minority)
            {
                problems.Add($"replica {s.ReplicaId} in a minority");
            }
        }
        if (problems.Count > 0)
        {
            lines.Add($"not whole: {string.Join(", ", problems)}; start the replicas that are down (bin/node <id> {context.ConfigPath}) or check the network between them");
        }
        return new CommandResult
        {
            Command = "status",
            Kind = problems.Count > 0 ? ResultKind.Degraded : ResultKind.Ok,
            TextLines = lines,
            JsonFields = json =>
            {
                json.WriteStartArray("replicas");
                foreach (var answer in answers)
                {
                    json.WriteStartObject();
                    json.WriteNumber("id", answer.Replica.Id);
                    json.WriteBoolean("reachable", answer.Status is not null);
                    if (answer.Status is { } s)
                    {
                        json.WriteNumber("view", s.ViewNumber);
                        WriteNumbers(json, "members", s.Members);
                        WriteNumbers(json, "suspects", s.Suspected);
                        json.WriteString("delivered", string.Create(CultureInfo.InvariantCulture, $"{s.DeliveredTime}.{s.DeliveredReplica}"));
                        json.WriteNumber("pending", s.PendingWrites);
                        json.WriteNumber("lag", newest - s.DeliveredTime);
                        json.WriteBoolean("viewChange", s.Wedged);
                        json.WriteBoolean("removed", s.Removed);
                        json.WriteBoolean("minority", s.Members.Length < majority);
                    }
                    else
                    {
                        json.WriteString("error", answer.Error);
                    }
                    json.WriteEndObject();
                }
                json.WriteEndArray();
                if (problems.Count > 0)
                {
                    json.WriteString("problem", string.Join(", ", problems));
                }
            },
        };
    }

    private static void WriteNumbers(System.Text.Json.Utf8JsonWriter json, string name, int[] numbers)
    {
        json.WriteStartArray(name);
        foreach (int n in numbers)
        {
            json.WriteNumberValue(n);
        }
        json.WriteEndArray();
    }
}
