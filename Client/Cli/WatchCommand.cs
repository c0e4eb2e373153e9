using System.Runtime.InteropServices;
using System.Text.Json;

namespace KvReplica.Client.Cli;

/// <summary>
/// WATCH [prefix] [--after R] [--count N]: the changes to the keys that begin with the prefix, one
/// line each as they come: <c>PUT &lt;key&gt; &lt;value&gt; &lt;revision&gt;</c> or
/// <c>DELETE &lt;key&gt; &lt;revision&gt;</c>, key and value as words
/// (<see cref="ValueFormatter.FormatToken(ReadOnlySpan{byte})"/>).
/// </summary>
/// <remarks>
/// At the prompt and one-shot it streams until <c>--count</c> events or Ctrl+C (one-shot: SIGTERM
/// too), which ends the watch, not the client: the prompt comes back, one-shot exits 0. Batch mode
/// prints one line per command, so there it needs <c>--count</c> and prints the N events on one
/// line joined by <c> | </c> (JSON: one object with <c>events</c>) once the N-th has come.
/// </remarks>
internal static class WatchCommand
{
    public static readonly CommandOption AfterOption = new("--after", "R", "first the changes after revision R (a version as printed: T@R), then live ones; default: from now");
    public static readonly CommandOption CountOption = new("--count", "N", "stop after N events (needed in batch mode)");

    public const int MaxCount = 1_000_000;

    public static ParsedCommand? Parse(IReadOnlyList<ArgToken> tokens, out string? error)
    {
        if (!CommandLineParser.TrySplitOptions("WATCH", tokens, [AfterOption, CountOption], out var words, out var options, out error)
            || !DataCommands.TryPrefix("WATCH", words, out string prefix, out error))
        {
            return null;
        }
        var after = KvVersion.None;
        if (options.TryGetValue(AfterOption.Name, out string? afterText) && !CommandLineParser.TryVersion(afterText!, "--after", out after, out error))
        {
            return null;
        }
        int? count = null;
        if (options.TryGetValue(CountOption.Name, out string? countText))
        {
            if (!CommandLineParser.TryWholeNumber("--count", countText, 1, MaxCount, out int n, out error))
            {
                return null;
            }
            count = n;
        }
        return new ParsedCommand(CommandKind.Watch, prefix) { Version = after, Count = count };
    }

    public static async Task<CommandResult> RunAsync(CommandContext context, ParsedCommand command, CancellationToken ct)
    {
        if (context.Mode == CommandModes.Batch)
        {
            return command.Count is null
                ? CommandResult.Failed("watch", null,
                    $"WATCH in batch mode needs --count N: batch prints one line per command, and a watch without a count never ends; to stream, run `client {context.ConfigPath} watch [prefix]`, which stops on Ctrl+C or SIGTERM")
                : await CollectAsync(context, command, ct).ConfigureAwait(false);
        }
        var client = await context.ClientAsync(ct).ConfigureAwait(false);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // Ctrl+C (and, one-shot, SIGTERM) ends the watch; the handler cancels the signal's default
        // action, so the prompt comes back and one-shot returns normally with exit code 0.
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var terminate = context.Mode == CommandModes.OneShot ? PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop) : null;
        if (context.Mode == CommandModes.Prompt)
        {
            await context.Stderr.WriteLineAsync($"(watching {(command.Key.Length == 0 ? "every key" : ValueFormatter.FormatToken(command.Key) + "*")}; Ctrl+C stops)").ConfigureAwait(false);
        }
        int seen = 0;
        try
        {
            await foreach (var change in client.WatchAsync(command.Key, command.Version, stop.Token).ConfigureAwait(false))
            {
                string line = context.Json ? ResultRenderer.Json(EventResult(change)) : Text(change);
                await context.Stdout.WriteLineAsync(line.AsMemory(), stop.Token).ConfigureAwait(false);
                await context.Stdout.FlushAsync(stop.Token).ConfigureAwait(false);
                if (++seen == command.Count)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            // Interrupted: the watch is over, and that is its normal end.
        }
        return new CommandResult { Command = "watch", Kind = ResultKind.Streamed };

        void Stop(PosixSignalContext signal)
        {
            signal.Cancel = true;
            stop.Cancel();
        }
    }

    /// <summary>One event as text: <c>PUT key value revision</c> or <c>DELETE key revision</c>.</summary>
    public static string Text(KvWatchEvent change) => change.Deleted
        ? $"DELETE {ValueFormatter.FormatToken(change.Key)} {change.Revision}"
        : $"PUT {ValueFormatter.FormatToken(change.Key)} {ValueFormatter.FormatToken(change.Value.Span)} {change.Revision}";

    // One event as one JSON object of its own: command, key, status, value, then event and revision.
    private static CommandResult EventResult(KvWatchEvent change) => new()
    {
        Command = "watch",
        Kind = ResultKind.Ok,
        Key = change.Key,
        Value = change.Deleted ? null : change.Value.ToArray(),
        JsonFields = j => WriteEventFields(j, change),
    };

    private static void WriteEventFields(Utf8JsonWriter json, KvWatchEvent change)
    {
        json.WriteString("event", change.Deleted ? "delete" : "put");
        json.WriteString("revision", change.Revision.ToString());
    }

    private static async Task<CommandResult> CollectAsync(CommandContext context, ParsedCommand command, CancellationToken ct)
    {
        var client = await context.ClientAsync(ct).ConfigureAwait(false);
        var events = new List<KvWatchEvent>();
        await foreach (var change in client.WatchAsync(command.Key, command.Version, ct).ConfigureAwait(false))
        {
            events.Add(change);
            if (events.Count == command.Count)
            {
                break;
            }
        }
        return new CommandResult
        {
            Command = "watch",
            Kind = ResultKind.Ok,
            TextLines = [.. events.Select(Text)],
            JsonFields = j =>
            {
                j.WriteStartArray("events");
                foreach (var change in events)
                {
                    j.WriteStartObject();
                    j.WriteString("key", change.Key);
                    if (!change.Deleted)
                    {
                        ResultRenderer.WriteValue(j, change.Value.Span);
                    }
                    WriteEventFields(j, change);
                    j.WriteEndObject();
                }
                j.WriteEndArray();
            },
        };
    }
}
