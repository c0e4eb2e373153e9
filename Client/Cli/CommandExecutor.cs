namespace KvReplica.Client.Cli;

/// <summary>Runs a parsed command through its <see cref="CommandTable"/> entry, in any mode, and never throws for an operating error.</summary>
internal static class CommandExecutor
{
    /// <summary>
    /// Runs <paramref name="command"/>. Operation failures become an error result whose reason ends
    /// with what to do next (<see cref="ErrorAdvice"/>); only <paramref name="ct"/> firing throws.
    /// </summary>
    public static async Task<CommandResult> ExecuteAsync(CommandContext context, ParsedCommand command, CancellationToken ct)
    {
        var spec = CommandTable.ForKind(command.Kind);
        string? key = spec.Arguments.FirstOrDefault()?.Name == "key" ? command.Key : null;
        if ((spec.Modes & context.Mode) == 0)
        {
            return CommandResult.Failed(spec.Word, key, $"{spec.Name} does not run here{spec.ModesNote}; {spec.Help}");
        }
        try
        {
            return await spec.RunAsync(context, command, ct).ConfigureAwait(false);
        }
        catch (KvInvalidRequestException e)
        {
            return CommandResult.Failed(spec.Word, key, ErrorAdvice.ForInvalidRequest(e.Reason, context.ConfigPath));
        }
        catch (KvException e)
        {
            return CommandResult.Failed(spec.Word, key, ErrorAdvice.For(e, context.ConfigPath));
        }
        catch (ObjectDisposedException)
        {
            return CommandResult.Failed(spec.Word, key, "the client is closed; start it again");
        }
    }
}
