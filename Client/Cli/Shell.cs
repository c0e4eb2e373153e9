using System.Text;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client.Cli;

/// <summary>Runs commands against a <see cref="KvClient"/> and turns each outcome into one result line.</summary>
internal sealed class Shell(KvClient client)
{
    public const string HelpText = """
        Commands (any case):
          PUT key value     set key; value is the rest of the line, or a "quoted string"
          GET key           print the value, or (not found)
          DELETE key        remove key (DEL also works); (not found) if it was absent
          HELP              this text
          EXIT | QUIT       leave
        Quoted keys and values take the escapes \n \r \t \\ \" \0 \xNN \u{HEX}.
        Values that are not plain text are printed quoted with the same escapes.
        Results: OK, the value, (not found), or ERROR <reason>.
        """;

    /// <summary>Executes one parsed command; returns its result line, or null for none.</summary>
    public async Task<(string? Line, bool IsError)> ExecuteAsync(Command command, CancellationToken cancellationToken)
    {
        try
        {
            switch (command)
            {
                case Command.Put put:
                    await client.PutAsync(put.Key, put.Value, cancellationToken).ConfigureAwait(false);
                    return ("OK", false);
                case Command.Get get:
                    var result = await client.GetAsync(get.Key, cancellationToken).ConfigureAwait(false);
                    return (result.Found ? ValueFormatter.Format(result.Value ?? []) : "(not found)", false);
                case Command.Delete delete:
                    return (await client.DeleteAsync(delete.Key, cancellationToken).ConfigureAwait(false) ? "OK" : "(not found)", false);
                case Command.Help:
                    return (HelpText.TrimEnd(), false);
                default:
                    return (null, false);
            }
        }
        catch (KvException e)
        {
            return ($"ERROR {e.Message}", true);
        }
        catch (KvTimeoutException e)
        {
            return ($"ERROR {e.Message}", true);
        }
        catch (ArgumentException e)
        {
            return ($"ERROR {e.Message}", true);
        }
    }

    /// <summary>
    /// Reads commands until EOF or EXIT. Interactive: a prompt before each line. Batch: no prompt,
    /// exactly one result line per command, flushed as it completes. Returns the exit code.
    /// </summary>
    public async Task<int> RunAsync(TextReader input, TextWriter output, bool interactive, CancellationToken cancellationToken)
    {
        bool anyError = false;
        while (true)
        {
            if (interactive)
            {
                output.Write("kv> ");
                output.Flush();
            }
            string? line = await input.ReadLineAsync(cancellationToken).ConfigureAwait(false);
            if (line is null)
            {
                break;
            }
            Command command;
            try
            {
                command = CommandLine.Parse(line);
            }
            catch (CommandSyntaxException e)
            {
                output.WriteLine($"ERROR {e.Message}");
                output.Flush();
                anyError = true;
                continue;
            }
            if (command is Command.Exit)
            {
                break;
            }
            var (result, isError) = await ExecuteAsync(command, cancellationToken).ConfigureAwait(false);
            anyError |= isError;
            if (result is not null)
            {
                output.WriteLine(result);
                output.Flush();
            }
        }
        return anyError && !interactive ? 3 : 0;
    }
}
