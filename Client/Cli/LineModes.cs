using KvReplica.Client.Cli.LineEditing;

namespace KvReplica.Client.Cli;

/// <summary>The interactive prompt and batch mode: both read one command per line and run it through <see cref="CommandExecutor"/>.</summary>
internal static class LineModes
{
    public const string Prompt = "kv> ";

    /// <summary>
    /// Batch mode: no prompt and no banner; exactly one result line per command (one JSON object
    /// with <paramref name="json"/>), written and flushed as each command completes, in input order
    /// (commands run one after another, so a GET sees the PUT on the line before it). Blank and
    /// <c>#</c> lines produce nothing; HELP prints one line; EXIT or end of input stops. Returns
    /// <see cref="ExitCodes.Error"/> if any line printed ERROR, else <see cref="ExitCodes.Degraded"/>
    /// if a STATUS found the cluster not whole, else <see cref="ExitCodes.Ok"/>.
    /// </summary>
    public static async Task<int> RunBatchAsync(CommandContext context, TextReader input, TextWriter output, bool json, CancellationToken ct)
    {
        bool anyError = false;
        bool anyDegraded = false;
        while (await input.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            var result = await RunLineAsync(context, line, ct).ConfigureAwait(false);
            if (result is null)
            {
                continue;
            }
            if (result.Kind == ResultKind.Exit)
            {
                break;
            }
            anyError |= result.Kind == ResultKind.Error;
            anyDegraded |= result.Kind == ResultKind.Degraded;
            foreach (string printed in ResultRenderer.Lines(result, json, oneLine: true))
            {
                await output.WriteLineAsync(printed.AsMemory(), ct).ConfigureAwait(false);
            }
            await output.FlushAsync(ct).ConfigureAwait(false);
        }
        return anyError ? ExitCodes.Error : anyDegraded ? ExitCodes.Degraded : ExitCodes.Ok;
    }

    /// <summary>
    /// The interactive prompt: a banner, then <c>kv&gt; </c> before each command until EXIT or end
    /// of input. Returns 0. When <paramref name="input"/> and <paramref name="output"/> are the
    /// process's terminal, lines are read through the line editor (<see cref="LineEditor"/>: editing
    /// keys, Tab completion, a history kept in <c>~/.kvreplica_history</c>); otherwise whole lines
    /// are read as they come.
    /// </summary>
    public static async Task<int> RunInteractiveAsync(CommandContext context, TextReader input, TextWriter output, bool json, CancellationToken ct)
    {
        var editing = ConsoleTerminal.Serves(input, output) ? OpenLineEditor() : null;
        string where = context.ConnectedClient?.ConnectedReplica is { } replica ? $"connected to {replica}" : "connected";
        await output.WriteLineAsync($"KvReplica client, {where}. Type HELP for commands, EXIT to leave.".AsMemory(), ct).ConfigureAwait(false);
        while (true)
        {
            string? line;
            if (editing is not null)
            {
                // The editor writes its own line break on Ctrl+D.
                line = editing.ReadLine(Prompt);
                if (line is null)
                {
                    return ExitCodes.Ok;
                }
            }
            else
            {
                await output.WriteAsync(Prompt.AsMemory(), ct).ConfigureAwait(false);
                await output.FlushAsync(ct).ConfigureAwait(false);
                line = await input.ReadLineAsync(ct).ConfigureAwait(false);
                if (line is null)
                {
                    await output.WriteLineAsync().ConfigureAwait(false);
                    return ExitCodes.Ok;
                }
            }
            var result = await RunLineAsync(context, line, ct).ConfigureAwait(false);
            if (result is null)
            {
                continue;
            }
            if (result.Kind == ResultKind.Exit)
            {
                return ExitCodes.Ok;
            }
            foreach (string printed in ResultRenderer.Lines(result, json, oneLine: false))
            {
                await output.WriteLineAsync(printed.AsMemory(), ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Parses and runs one line; null for a blank or comment line.</summary>
    private static async Task<CommandResult?> RunLineAsync(CommandContext context, string line, CancellationToken ct)
    {
        var parsed = CommandLineParser.ParseLine(line);
        if (parsed.IsSkipped)
        {
            return null;
        }
        if (parsed.Command is null)
        {
            return CommandResult.Failed(FirstWord(line), null, parsed.Error!);
        }
        return await CommandExecutor.ExecuteAsync(context, parsed.Command, ct).ConfigureAwait(false);
    }

    // The command a line that did not parse was meant to be, for JSON's "command".
    private static string FirstWord(string line)
    {
        string word = line.Trim().Split([' ', '\t'], 2)[0];
        return CommandTable.Find(word)?.Word ?? word.ToLowerInvariant();
    }

    private static TerminalLineReader OpenLineEditor()
    {
        var file = HistoryFile.DefaultPath() is { } path
            ? new HistoryFile(path, warning => Console.Error.WriteLine($"client: {warning}"))
            : null;
        var editor = new LineEditor(new History(History.DefaultCapacity, file), CommandLineParser.WordsAfter);
        return new TerminalLineReader(new ConsoleTerminal(), editor);
    }
}
