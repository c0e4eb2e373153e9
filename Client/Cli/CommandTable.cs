using System.Globalization;
using System.Text.Json;
using KvReplica.Client.Cli.Bench;
using KvReplica.Protocol.Wire;
using KvReplica.Transport;

namespace KvReplica.Client.Cli;

/// <summary>Parses what follows the command word on a prompt or batch line; <c>pos</c> is just past the word.</summary>
internal delegate LineParseResult LineArgumentsParser(string line, int pos);

/// <summary>Parses a one-shot command's process arguments (after the command word); null and an error on bad input.</summary>
internal delegate ParsedCommand? ProcessArgumentsParser(IReadOnlyList<string> args, out string? error);

/// <summary>Runs a parsed command. Library failures may escape as <see cref="KvException"/>: <see cref="CommandExecutor"/> turns them into results.</summary>
internal delegate Task<CommandResult> CommandRunner(CommandContext context, ParsedCommand command, CancellationToken ct);

/// <summary>One argument of a command, for the one-shot command line and its help: <c>Many</c> takes the rest of the words; <c>Optional</c> may be left out.</summary>
internal sealed record CommandArgument(string Name, string Description, bool Many = false, bool Optional = false);

/// <summary>
/// Everything about one command, declared once: its word and aliases, its arguments and help
/// line, the modes it runs in, how its line and its process arguments are parsed, and how it runs
/// and renders (the <see cref="CommandResult"/> it returns carries both its text and its JSON).
/// </summary>
internal sealed record CommandSpec
{
    /// <summary>The command word, upper case, as lines spell it (GET); one-shot uses it lower case.</summary>
    public required string Name { get; init; }
    public IReadOnlyList<string> Aliases { get; init; } = [];
    /// <summary>The kinds <see cref="CommandLineParser"/> gives this command's lines (USER has ADD and DELETE).</summary>
    public required IReadOnlyList<CommandKind> Kinds { get; init; }
    /// <summary>How a line spells it, e.g. <c>GET &lt;key&gt;</c>.</summary>
    public required string Synopsis { get; init; }
    public required string Help { get; init; }
    public CommandModes Modes { get; init; } = CommandModes.All;
    public IReadOnlyList<CommandArgument> Arguments { get; init; } = [];
    /// <summary>The <c>--name</c> options it takes, on a line and as process arguments alike.</summary>
    public IReadOnlyList<CommandOption> Options { get; init; } = [];
    public required LineArgumentsParser ParseLine { get; init; }
    public required ProcessArgumentsParser ParseArguments { get; init; }
    public required CommandRunner RunAsync { get; init; }

    /// <summary>The name JSON and one-shot use: lower case.</summary>
    public string Word => Name.ToLowerInvariant();

    /// <summary>The modes it runs in, for the help text; empty when it runs in every mode.</summary>
    public string ModesNote => Modes switch
    {
        CommandModes.All => "",
        CommandModes.Lines => " (prompt and batch only)",
        CommandModes.OneShot => " (one-shot only)",
        _ => $" ({Modes})",
    };
}

/// <summary>
/// The client's commands. Adding one is one entry in <see cref="All"/>: the line parser, the
/// one-shot command line (<see cref="CliCommandLine"/>), HELP, the executor and both output
/// formats pick it up from here.
/// </summary>
internal static class CommandTable
{
    public static readonly IReadOnlyList<CommandSpec> All =
    [
        new()
        {
            Name = "PUT", Kinds = [CommandKind.Put], Synopsis = "PUT <key> <value>", Help = "store a value; prints OK",
            Arguments = [Key, new("value", "the value: the rest of the words joined by blanks, or one quoted string", Many: true)],
            ParseLine = CommandLineParser.ParsePut,
            ParseArguments = ParsePutArguments,
            RunAsync = DataCommands.PutAsync,
        },
        new()
        {
            Name = "GET", Kinds = [CommandKind.Get], Synopsis = "GET <key> [--version]",
            Help = "prints the value, or (not found); --version: <value> (version T@R)",
            Arguments = [Key], Options = [DataCommands.VersionOption],
            ParseLine = DataCommands.Line(DataCommands.ParseGet),
            ParseArguments = DataCommands.Arguments(DataCommands.ParseGet),
            RunAsync = DataCommands.GetAsync,
        },
        new()
        {
            Name = "DELETE", Aliases = ["DEL"], Kinds = [CommandKind.Delete], Synopsis = "DELETE <key>", Help = "(also DEL) prints OK if the key existed, else (not found)",
            Arguments = [Key],
            ParseLine = (line, pos) => CommandLineParser.ParseKeyOnly(CommandKind.Delete, "DELETE", line, pos),
            ParseArguments = (IReadOnlyList<string> args, out string? error) => ParseKeyArgument(CommandKind.Delete, "delete", args, out error),
            RunAsync = async (context, command, ct) =>
            {
                var client = await context.ClientAsync(ct).ConfigureAwait(false);
                bool existed = await client.DeleteAsync(command.Key, ct).ConfigureAwait(false);
                return existed ? CommandResult.Ok("delete", command.Key) : CommandResult.NotFound("delete", command.Key);
            },
        },
        new()
        {
            Name = "UPDATE", Kinds = [CommandKind.Update], Synopsis = "UPDATE <key> <value>",
            Help = "store a value only if the key exists; prints OK, or (not found) and stores nothing",
            Arguments = [Key, Value],
            ParseLine = (line, pos) => CommandLineParser.ParseConditionalWrite(CommandKind.Update, "UPDATE", withVersion: false, line, pos),
            ParseArguments = (IReadOnlyList<string> args, out string? error) => CommandLineParser.ParseConditionalWrite(CommandKind.Update, "update", withVersion: false, args, out error),
            RunAsync = DataCommands.UpdateAsync,
        },
        new()
        {
            Name = "CAS", Kinds = [CommandKind.CompareAndSet], Synopsis = "CAS <key> <version> <value>",
            Help = "store a value only if the key's version is <version> (T@R as printed; 0: only if absent); prints OK <new version>, or CONFLICT <current version> / CONFLICT (absent) (exit code 5)",
            Arguments = [Key, new("version", "the version the key must have (time@replica as GET --version prints it), or 0: the key must be absent"), Value],
            ParseLine = (line, pos) => CommandLineParser.ParseConditionalWrite(CommandKind.CompareAndSet, "CAS", withVersion: true, line, pos),
            ParseArguments = (IReadOnlyList<string> args, out string? error) => CommandLineParser.ParseConditionalWrite(CommandKind.CompareAndSet, "cas", withVersion: true, args, out error),
            RunAsync = DataCommands.CompareAndSetAsync,
        },
        new()
        {
            Name = "PUTNX", Aliases = ["PUT-IF-ABSENT"], Kinds = [CommandKind.PutIfAbsent], Synopsis = "PUTNX <key> <value>",
            Help = "(also PUT-IF-ABSENT) store a value only if the key is absent; prints OK <version>, or CONFLICT <current version> (exit code 5)",
            Arguments = [Key, Value],
            ParseLine = (line, pos) => CommandLineParser.ParseConditionalWrite(CommandKind.PutIfAbsent, "PUTNX", withVersion: false, line, pos),
            ParseArguments = (IReadOnlyList<string> args, out string? error) => CommandLineParser.ParseConditionalWrite(CommandKind.PutIfAbsent, "putnx", withVersion: false, args, out error),
            RunAsync = DataCommands.CompareAndSetAsync,
        },
        new()
        {
            Name = "EXISTS", Kinds = [CommandKind.Exists], Synopsis = "EXISTS <key>",
            Help = "prints 1 <version> if the key exists, else 0 (exit code 1)",
            Arguments = [Key],
            ParseLine = (line, pos) => CommandLineParser.ParseKeyOnly(CommandKind.Exists, "EXISTS", line, pos),
            ParseArguments = (IReadOnlyList<string> args, out string? error) => ParseKeyArgument(CommandKind.Exists, "exists", args, out error),
            RunAsync = DataCommands.ExistsAsync,
        },
        new()
        {
            Name = "MSET", Kinds = [CommandKind.MultiSet], Synopsis = "MSET <key> <value> [<key> <value>]...",
            Help = "store every pair at once (one version for all); each value one word or a quoted string; prints OK <revision>",
            Arguments = [new("pairs", "key value key value ...: each a word, or a quoted string", Many: true)],
            ParseLine = DataCommands.Line(DataCommands.ParseMultiSet),
            ParseArguments = DataCommands.Arguments(DataCommands.ParseMultiSet),
            RunAsync = DataCommands.MultiSetAsync,
        },
        new()
        {
            Name = "MGET", Kinds = [CommandKind.MultiGet], Synopsis = "MGET <key>...",
            Help = "read the keys at one point of the order; prints their values on one line, in order, separated by a blank: each a word (quoted if it has a blank) or (not found)",
            Arguments = [new("keys", "the keys to read", Many: true)],
            ParseLine = DataCommands.Line(DataCommands.ParseMultiGet),
            ParseArguments = DataCommands.Arguments(DataCommands.ParseMultiGet),
            RunAsync = DataCommands.MultiGetAsync,
        },
        new()
        {
            Name = "TXN", Kinds = [CommandKind.Txn], Synopsis = TxnLineParser.Grammar,
            Help = "atomically: if every compare holds, the THEN operations, else the ELSE ones; prints THEN <revision> or ELSE <revision> (exit code 5); see \"Transactions\" below",
            Arguments = [new("words", "[IF <cmp> [AND <cmp>]...] THEN <op> [; <op>]... [ELSE <op> [; <op>]...] (quote ; for the shell)", Many: true)],
            ParseLine = DataCommands.Line(DataCommands.ParseTxn, semicolons: true),
            ParseArguments = DataCommands.Arguments(DataCommands.ParseTxn, semicolons: true),
            RunAsync = DataCommands.TxnAsync,
        },
        new()
        {
            Name = "LIST", Aliases = ["SCAN"], Kinds = [CommandKind.List], Synopsis = "LIST [prefix] [--limit N] [--values] [--cursor C]",
            Help = "(also SCAN) the keys that begin with prefix, in key order, at one revision: one per line (batch: one line), with --values key value; --limit ends a page with (more=C), continue with --cursor C; (none) if no key matches",
            Arguments = [new("prefix", "only keys that begin with this (default: every key)", Optional: true)],
            Options = [DataCommands.LimitOption, DataCommands.ValuesOption, DataCommands.CursorOption],
            ParseLine = DataCommands.Line(DataCommands.ParseList),
            ParseArguments = DataCommands.Arguments(DataCommands.ParseList),
            RunAsync = DataCommands.ListAsync,
        },
        new()
        {
            Name = "WATCH", Kinds = [CommandKind.Watch], Synopsis = "WATCH [prefix] [--after R] [--count N]",
            Help = "print each change to keys that begin with prefix as it comes, PUT <key> <value> <revision> or DELETE <key> <revision>, until N events or Ctrl+C (batch: needs --count, prints one line)",
            Arguments = [new("prefix", "only keys that begin with this (default: every key)", Optional: true)],
            Options = [WatchCommand.AfterOption, WatchCommand.CountOption],
            ParseLine = DataCommands.Line(WatchCommand.Parse),
            ParseArguments = DataCommands.Arguments(WatchCommand.Parse),
            RunAsync = WatchCommand.RunAsync,
        },
        new()
        {
            Name = "STATUS", Kinds = [CommandKind.Status], Synopsis = "STATUS",
            Help = "admin: each replica's view, members, suspects, delivered position, pending writes and lag, or why it is unreachable",
            ParseLine = (line, pos) => NoArguments(CommandKind.Status, "STATUS", line, pos),
            ParseArguments = (IReadOnlyList<string> args, out string? error) => NoArguments(CommandKind.Status, "status", args, out error),
            RunAsync = StatusCommand.RunAsync,
        },
        new()
        {
            Name = "PING", Kinds = [CommandKind.Ping], Synopsis = "PING",
            Help = "time one round trip to the connected replica: PONG replica <id> <ms> ms",
            ParseLine = (line, pos) => NoArguments(CommandKind.Ping, "PING", line, pos),
            ParseArguments = (IReadOnlyList<string> args, out string? error) => NoArguments(CommandKind.Ping, "ping", args, out error),
            RunAsync = async (context, command, ct) =>
            {
                var client = await context.ClientAsync(ct).ConfigureAwait(false);
                var pong = await client.PingAsync(ct).ConfigureAwait(false);
                double ms = Math.Round(pong.RoundTrip.TotalMilliseconds, 3);
                string replica = pong.Replica is { } r ? r.Id.ToString(CultureInfo.InvariantCulture) : "?";
                return CommandResult.Ok("ping", json: json =>
                {
                    if (pong.Replica is { } answered)
                    {
                        json.WriteNumber("replica", answered.Id);
                    }
                    json.WriteNumber("ms", ms);
                }, text: string.Create(CultureInfo.InvariantCulture, $"PONG replica {replica} {ms:0.0##} ms"));
            },
        },
        new()
        {
            Name = "BACKUP", Kinds = [CommandKind.Backup], Synopsis = "BACKUP <file>",
            Help = "admin: a snapshot of the cluster (as of one point in the write order) into <file>; node <id> <config> --restore <file> restores it",
            Arguments = [new("file", "the file to write (a quoted string on a line if it has blanks)")],
            ParseLine = ParseBackupLine,
            ParseArguments = (IReadOnlyList<string> args, out string? error) =>
            {
                error = args.Count == 1 && args[0].Length > 0 ? null : "backup needs exactly one argument: the file to write";
                return error is null ? new ParsedCommand(CommandKind.Backup, args[0]) : null;
            },
            RunAsync = RunBackupAsync,
        },
        new()
        {
            Name = "USER", Kinds = [CommandKind.UserAdd, CommandKind.UserDelete], Synopsis = "USER ADD <name> <password> [role...] | USER DELETE <name>",
            Help = "admin: create or replace a user, or delete one",
            Arguments = [new("words", "ADD <name> <password> [role...] or DELETE <name>", Many: true)],
            ParseLine = (line, pos) => ParseAccessLine("USER", line, pos),
            ParseArguments = (IReadOnlyList<string> args, out string? error) => CommandLineParser.ParseAccessCommand("USER", args, out var command, out error) ? command : null,
            RunAsync = async (context, command, ct) =>
            {
                var client = await context.ClientAsync(ct).ConfigureAwait(false);
                if (command.Kind == CommandKind.UserAdd)
                {
                    await client.PutUserAsync(command.Key, command.Words![0], [.. command.Words.Skip(1)], ct).ConfigureAwait(false);
                    return CommandResult.Ok("user", json: json => json.WriteString("name", command.Key));
                }
                return await client.DeleteUserAsync(command.Key, ct).ConfigureAwait(false)
                    ? CommandResult.Ok("user", json: json => json.WriteString("name", command.Key))
                    : CommandResult.NotFound("user", null);
            },
        },
        new()
        {
            Name = "ROLE", Kinds = [CommandKind.RoleAdd, CommandKind.RoleDelete], Synopsis = "ROLE ADD <name> <grant>... | ROLE DELETE <name>",
            Help = "admin: create or replace a role, or delete one; a grant is read:PREFIX, readwrite:PREFIX (PREFIX empty or * = every key) or admin",
            Arguments = [new("words", "ADD <name> <grant>... or DELETE <name>", Many: true)],
            ParseLine = (line, pos) => ParseAccessLine("ROLE", line, pos),
            ParseArguments = (IReadOnlyList<string> args, out string? error) => CommandLineParser.ParseAccessCommand("ROLE", args, out var command, out error) ? command : null,
            RunAsync = async (context, command, ct) =>
            {
                var client = await context.ClientAsync(ct).ConfigureAwait(false);
                if (command.Kind == CommandKind.RoleAdd)
                {
                    bool admin = command.Words!.Any(g => g.Equals("admin", StringComparison.OrdinalIgnoreCase));
                    var grants = command.Words!.Where(g => !g.Equals("admin", StringComparison.OrdinalIgnoreCase)).Select(ToGrant).ToList();
                    await client.PutRoleAsync(command.Key, grants, admin, ct).ConfigureAwait(false);
                    return CommandResult.Ok("role", json: json => json.WriteString("name", command.Key));
                }
                return await client.DeleteRoleAsync(command.Key, ct).ConfigureAwait(false)
                    ? CommandResult.Ok("role", json: json => json.WriteString("name", command.Key))
                    : CommandResult.NotFound("role", null);
            },
        },
        new()
        {
            Name = "HELP", Aliases = ["?"], Kinds = [CommandKind.Help], Synopsis = "HELP",
            Help = "this text (in batch mode: one line naming the commands)",
            ParseLine = (line, pos) => NoArguments(CommandKind.Help, "HELP", line, pos),
            ParseArguments = (IReadOnlyList<string> args, out string? error) => NoArguments(CommandKind.Help, "help", args, out error),
            RunAsync = (context, command, ct) => Task.FromResult(HelpResult(context.Mode)),
        },
        new()
        {
            Name = "EXIT", Aliases = ["QUIT"], Kinds = [CommandKind.Exit], Synopsis = "EXIT", Modes = CommandModes.Lines,
            Help = "(also QUIT, or end of input) leave; prints nothing",
            ParseLine = (line, pos) => LineParseResult.Of(new ParsedCommand(CommandKind.Exit)),
            ParseArguments = (IReadOnlyList<string> args, out string? error) => NoArguments(CommandKind.Exit, "exit", args, out error),
            RunAsync = (context, command, ct) => Task.FromResult(new CommandResult { Command = "exit", Kind = ResultKind.Exit }),
        },
        new()
        {
            Name = "BENCH", Kinds = [CommandKind.Bench], Synopsis = "bench [options]", Modes = CommandModes.OneShot,
            Help = "closed-loop load test: ops/s and p50/p99/p999 latency of PUTs and GETs (options: client bench --help)",
            ParseLine = (line, pos) => LineParseResult.Fail("bench runs as a command of its own: client <config> bench [options] (client bench --help lists them)"),
            ParseArguments = (IReadOnlyList<string> args, out string? error) => NoArguments(CommandKind.Bench, "bench", args, out error),
            RunAsync = async (context, command, ct) =>
            {
                int exit = await BenchRunner.RunAsync(context.Config, context.Options, context.Bench ?? new BenchOptions(), context.Stdout, context.Stderr, ct).ConfigureAwait(false);
                // The report is already on stdout; only the exit code is left to give.
                return new CommandResult { Command = "bench", Kind = exit == ExitCodes.Ok ? ResultKind.Exit : ResultKind.Error, Error = exit == ExitCodes.Ok ? null : "bench failed (the reason is on stderr)" };
            },
        },
    ];

    private static CommandArgument Key => new("key", $"1 to {Limits.MaxKeyBytes} bytes of UTF-8 text; a leading \" makes it a quoted string with escapes");

    private static CommandArgument Value => new("value", "the value: the rest of the words joined by blanks, or one quoted string", Many: true);

    /// <summary>The command that <paramref name="word"/> names (any case, aliases too), or null.</summary>
    public static CommandSpec? Find(string word)
    {
        string upper = word.ToUpperInvariant();
        return All.FirstOrDefault(c => c.Name == upper || c.Aliases.Contains(upper));
    }

    /// <summary>The command a parsed line belongs to.</summary>
    public static CommandSpec ForKind(CommandKind kind) => All.First(c => c.Kinds.Contains(kind));

    /// <summary>The batch-mode HELP line and the prompt's HELP text.</summary>
    private static CommandResult HelpResult(CommandModes mode)
    {
        string[] words = [.. All.Where(c => (c.Modes & CommandModes.Lines) != 0).Select(c => c.Name)];
        string line = $"commands: {string.Join(' ', words)}; `client --help` prints what each does";
        return CommandResult.Ok("help", json: json =>
        {
            json.WriteStartArray("commands");
            foreach (string word in words)
            {
                json.WriteStringValue(word.ToLowerInvariant());
            }
            json.WriteEndArray();
        }, text: mode == CommandModes.Batch ? line : HelpText.Full);
    }

    private static LineParseResult NoArguments(CommandKind kind, string name, string line, int pos) =>
        line.AsSpan(pos).Trim(" \t").IsEmpty ? LineParseResult.Of(new ParsedCommand(kind)) : LineParseResult.Fail($"{name} takes no arguments");

    private static ParsedCommand? NoArguments(CommandKind kind, string name, IReadOnlyList<string> args, out string? error)
    {
        error = args.Count == 0 ? null : $"{name} takes no arguments";
        return error is null ? new ParsedCommand(kind) : null;
    }

    private static ParsedCommand? ParseKeyArgument(CommandKind kind, string name, IReadOnlyList<string> args, out string? error)
    {
        if (args.Count != 1)
        {
            error = $"{name} needs exactly one key";
            return null;
        }
        return CommandLineParser.TryParseKeyText(args[0], out string key, out error) ? new ParsedCommand(kind, key) : null;
    }

    private static ParsedCommand? ParsePutArguments(IReadOnlyList<string> args, out string? error)
    {
        if (args.Count < 2)
        {
            error = "put needs a key and a value";
            return null;
        }
        if (!CommandLineParser.TryParseKeyText(args[0], out string key, out error)
            || !CommandLineParser.TryParseValueText(string.Join(' ', args.Skip(1)), out byte[] value, out error))
        {
            return null;
        }
        return new ParsedCommand(CommandKind.Put, key, value);
    }

    private static LineParseResult ParseAccessLine(string noun, string line, int pos)
    {
        var words = line[pos..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        return CommandLineParser.ParseAccessCommand(noun, words, out var access, out string? error) ? LineParseResult.Of(access!) : LineParseResult.Fail(error!);
    }

    // BACKUP <file>: one word, or one quoted string for a path with blanks.
    private static LineParseResult ParseBackupLine(string line, int pos)
    {
        string rest = line[pos..].Trim(' ', '\t');
        if (rest.Length == 0)
        {
            return LineParseResult.Fail("BACKUP needs the file to write");
        }
        if (rest[0] != '"')
        {
            return rest.IndexOfAny([' ', '\t']) < 0
                ? LineParseResult.Of(new ParsedCommand(CommandKind.Backup, rest))
                : LineParseResult.Fail("BACKUP takes one file; quote a path that contains blanks");
        }
        int end = 0;
        if (!CommandLineParser.TryParseQuoted(rest, ref end, out byte[] bytes, out string? error))
        {
            return LineParseResult.Fail(error!);
        }
        return end == rest.Length && bytes.Length > 0
            ? LineParseResult.Of(new ParsedCommand(CommandKind.Backup, System.Text.Encoding.UTF8.GetString(bytes)))
            : LineParseResult.Fail("BACKUP takes one file; quote a path that contains blanks");
    }

    private static async Task<CommandResult> RunBackupAsync(CommandContext context, ParsedCommand command, CancellationToken ct)
    {
        string path = command.Key;
        try
        {
            var result = await SnapshotStreamReceiver.DownloadAsync(context.Dial, context.Options.PreferredReplicaId, path, ct).ConfigureAwait(false);
            return CommandResult.Ok("backup", json: json =>
            {
                json.WriteString("file", path);
                json.WriteNumber("bytes", result.Bytes);
                json.WriteNumber("replica", result.ReplicaId);
                json.WriteString("through", string.Create(CultureInfo.InvariantCulture, $"{result.ThroughTime}.{result.ThroughReplica}"));
            }, text: string.Create(CultureInfo.InvariantCulture,
                $"backup: {result.Bytes} bytes through write {result.ThroughTime}.{result.ThroughReplica} from replica {result.ReplicaId} written to {path}"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            string next = e.Message.Contains("permission denied", StringComparison.Ordinal)
                ? "backups are for admins: log in as one with --user"
                : e.Message.StartsWith("no replica could serve", StringComparison.Ordinal)
                    ? $"start the replicas or check the network; `client {context.ConfigPath} status` shows each one"
                    : "check that the file's directory exists and is writable, or give another path";
            return CommandResult.Failed("backup", null, $"backup failed: {e.Message}; {next}");
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
