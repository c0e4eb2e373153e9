using KvReplica.Client.Cli.LineEditing;

namespace KvReplica.Client.Cli;

/// <summary>The interactive prompt and batch mode: both read one command per line.</summary>
internal static class LineModes
{
    public const string Prompt = "kv> ";

    /// <summary>
    /// Batch mode: no prompt and no banner; exactly one result line per command, written and flushed
    /// as each command completes, in input order (commands run one after another, so a GET sees the
    /// PUT on the line before it). Blank and <c>#</c> lines produce nothing; HELP prints the help
    /// text; EXIT or end of input stops. Returns <see cref="ExitCodes.Ok"/>, or
    /// <see cref="ExitCodes.Error"/> if any line printed ERROR.
    /// </summary>
    public static async Task<int> RunBatchAsync(KvClient client, TextReader input, TextWriter output, CancellationToken ct)
    {
        var executor = new CommandExecutor(client);
        bool anyError = false;
        while (await input.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            var parsed = CommandLineParser.ParseLine(line);
            if (parsed.IsSkipped)
            {
                continue;
            }
            CommandResult result;
            if (parsed.Command is null)
            {
                result = CommandResult.Failed(parsed.Error!);
            }
            else if (parsed.Command.Kind == CommandKind.Exit)
            {
                break;
            }
            else if (parsed.Command.Kind == CommandKind.Help)
            {
                await output.WriteLineAsync(HelpText.Full.AsMemory(), ct).ConfigureAwait(false);
                await output.FlushAsync(ct).ConfigureAwait(false);
                continue;
            }
            else
            {
                result = await executor.ExecuteAsync(parsed.Command, ct).ConfigureAwait(false);
            }
            anyError |= result.Kind == ResultKind.Error;
            await output.WriteLineAsync(result.Line.AsMemory(), ct).ConfigureAwait(false);
            await output.FlushAsync(ct).ConfigureAwait(false);
        }
        return anyError ? ExitCodes.Error : ExitCodes.Ok;
    }

    /// <summary>
    /// The interactive prompt: a banner, then <c>kv&gt; </c> before each command until EXIT or end
    /// of input. Returns 0. When <paramref name="input"/> and <paramref name="output"/> are the
    /// process's terminal, lines are read through the line editor (<see cref="LineEditor"/>: editing
    /// keys, Tab completion, a history kept in <c>~/.kvreplica_history</c>); otherwise whole lines
    /// are read as they come.
    /// </summary>
    public static async Task<int> RunInteractiveAsync(KvClient client, TextReader input, TextWriter output, CancellationToken ct)
    {
        var executor = new CommandExecutor(client);
        var editing = ConsoleTerminal.Serves(input, output) ? OpenLineEditor() : null;
        string where = client.ConnectedReplica is { } replica ? $"connected to {replica}" : "connected";
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
            var parsed = CommandLineParser.ParseLine(line);
            if (parsed.IsSkipped)
            {
                continue;
            }
            if (parsed.Command is null)
            {
                await output.WriteLineAsync(CommandResult.Failed(parsed.Error!).Line.AsMemory(), ct).ConfigureAwait(false);
                continue;
            }
            switch (parsed.Command.Kind)
            {
                case CommandKind.Exit:
                    return ExitCodes.Ok;
                case CommandKind.Help:
                    await output.WriteLineAsync(HelpText.Full.AsMemory(), ct).ConfigureAwait(false);
                    continue;
                default:
                    var result = await executor.ExecuteAsync(parsed.Command, ct).ConfigureAwait(false);
                    await output.WriteLineAsync(result.Line.AsMemory(), ct).ConfigureAwait(false);
                    continue;
            }
        }
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
