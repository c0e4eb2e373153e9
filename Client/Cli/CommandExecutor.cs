namespace KvReplica.Client.Cli;

/// <summary>How a command turned out, which decides the one-shot exit code.</summary>
internal enum ResultKind
{
    Ok,
    Value,
    NotFound,
    Error,
}

/// <summary>One result line (without terminator) and its kind.</summary>
internal readonly record struct CommandResult(ResultKind Kind, string Line)
{
    // The reason may echo what a user typed or a replica sent (a key, a command word): control
    // and escape characters in it are printed escaped, never passed to the terminal.
    public static CommandResult Failed(string reason) =>
        new(ResultKind.Error, "ERROR " + ValueFormatter.EscapeUnprintable(reason.ReplaceLineEndings(" ")));

    public int ExitCode => Kind switch
    {
        ResultKind.Ok or ResultKind.Value => ExitCodes.Ok,
        ResultKind.NotFound => ExitCodes.NotFound,
        _ => ExitCodes.Error,
    };
}

/// <summary>Runs GET, PUT and DELETE against a <see cref="KvClient"/> and renders the result line.</summary>
internal sealed class CommandExecutor(KvClient client)
{
    /// <summary>
    /// Runs <paramref name="command"/> (GET, PUT or DELETE). Operation failures become an ERROR
    /// result, never an exception; only <paramref name="ct"/> firing throws.
    /// </summary>
    public async Task<CommandResult> ExecuteAsync(ParsedCommand command, CancellationToken ct)
    {
        try
        {
            switch (command.Kind)
            {
                case CommandKind.Put:
                    await client.PutAsync(command.Key, command.Value ?? [], ct).ConfigureAwait(false);
                    return new CommandResult(ResultKind.Ok, "OK");
                case CommandKind.Get:
                    var found = await client.GetAsync(command.Key, ct).ConfigureAwait(false);
                    return found.Found
                        ? new CommandResult(ResultKind.Value, ValueFormatter.Format(found.Value.Span))
                        : new CommandResult(ResultKind.NotFound, "(not found)");
                case CommandKind.Delete:
                    bool existed = await client.DeleteAsync(command.Key, ct).ConfigureAwait(false);
                    return existed ? new CommandResult(ResultKind.Ok, "OK") : new CommandResult(ResultKind.NotFound, "(not found)");
                case CommandKind.UserAdd:
                    await client.PutUserAsync(command.Key, command.Words![0], [.. command.Words.Skip(1)], ct).ConfigureAwait(false);
                    return new CommandResult(ResultKind.Ok, "OK");
                case CommandKind.RoleAdd:
                    var grants = command.Words!.Where(g => !g.Equals("admin", StringComparison.OrdinalIgnoreCase)).Select(ToGrant).ToList();
                    await client.PutRoleAsync(command.Key, grants, admin: command.Words!.Any(g => g.Equals("admin", StringComparison.OrdinalIgnoreCase)), ct).ConfigureAwait(false);
                    return new CommandResult(ResultKind.Ok, "OK");
                case CommandKind.UserDelete or CommandKind.RoleDelete:
                    bool deleted = command.Kind == CommandKind.UserDelete
                        ? await client.DeleteUserAsync(command.Key, ct).ConfigureAwait(false)
                        : await client.DeleteRoleAsync(command.Key, ct).ConfigureAwait(false);
                    return deleted ? new CommandResult(ResultKind.Ok, "OK") : new CommandResult(ResultKind.NotFound, "(not found)");
                default:
                    return CommandResult.Failed($"{command.Kind} is not an operation");
            }
        }
        catch (KvInvalidRequestException e)
        {
            return CommandResult.Failed(e.Reason);
        }
        catch (KvException e)
        {
            return CommandResult.Failed(e.Message);
        }
        catch (ObjectDisposedException)
        {
            return CommandResult.Failed("the client is closed");
        }
    }

    // "read:app/" or "readwrite:" ("" and "*" are every key).
    private static Protocol.Auth.RoleGrant ToGrant(string text)
    {
        int colon = text.IndexOf(':', StringComparison.Ordinal);
        string prefix = text[(colon + 1)..];
        return new Protocol.Auth.RoleGrant
        {
            Write = text[..colon].Equals("readwrite", StringComparison.OrdinalIgnoreCase),
            Prefix = prefix == "*" ? "" : prefix,
        };
    }
}
