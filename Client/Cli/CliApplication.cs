using KvReplica.Protocol.Config;
using KvReplica.Transport;

namespace KvReplica.Client.Cli;

/// <summary>
/// The <c>client</c> command: argument handling, config loading and dispatch to the one-shot,
/// batch, interactive and bench modes. Operating errors become one line and an exit code
/// (<see cref="ExitCodes"/>), never a stack trace.
/// </summary>
internal static class CliApplication
{
    /// <summary>Runs the command described by <paramref name="args"/>; returns the process exit code (<see cref="ExitCodes"/>).</summary>
    public static async Task<int> RunAsync(string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr, bool stdinIsTerminal, CancellationToken ct)
    {
        try
        {
            return await RunCoreAsync(args, stdin, stdout, stderr, stdinIsTerminal, ct).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            // Typically stdout or stdin went away (a closed pipe): an operating error, not a bug.
            try
            {
                await stderr.WriteLineAsync($"client: {e.Message}").ConfigureAwait(false);
            }
            catch (IOException)
            {
                // Nowhere left to report it.
            }
            return ExitCodes.Error;
        }
    }

    private static async Task<int> RunCoreAsync(string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr, bool stdinIsTerminal, CancellationToken ct)
    {
        CliArguments arguments;
        switch (CliCommandLine.Parse(args))
        {
            case CliCommandLine.Print print:
                await stdout.WriteLineAsync(print.Text).ConfigureAwait(false);
                return ExitCodes.Ok;
            case CliCommandLine.Invalid invalid:
                return UsageError(stderr, invalid.Message);
            case CliCommandLine.Run run:
                arguments = run.Arguments;
                break;
            default:
                throw new InvalidOperationException("unknown outcome of the command line");
        }
        if (arguments.Command?.Kinds.Contains(CommandKind.Help) == true)
        {
            await stdout.WriteLineAsync(HelpText.Full).ConfigureAwait(false);
            return ExitCodes.Ok;
        }
        if (arguments.ConfigPath is null)
        {
            return UsageError(stderr, "missing the cluster.json path: client <cluster.json> [command]");
        }
        ParsedCommand? oneShot = null;
        if (arguments.Command is { } spec)
        {
            oneShot = spec.ParseArguments(arguments.CommandArguments, out string? commandError);
            if (oneShot is null)
            {
                return UsageError(stderr, $"{commandError}; usage: client <cluster.json> {spec.Word}{spec.Synopsis[spec.Name.Length..]}");
            }
        }
        ClusterConfig config;
        try
        {
            config = ClusterConfigFile.Load(arguments.ConfigPath);
        }
        catch (ConfigException e)
        {
            await stderr.WriteLineAsync($"client: {e.Message}; fix it, or give the path of the cluster's cluster.json (README, \"cluster.json\", lists the fields)").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        if (arguments.PreferredReplicaId is int preferred && config.Find(preferred) is null)
        {
            return UsageError(stderr, $"--replica {preferred}: no such replica in {arguments.ConfigPath} (ids: {string.Join(", ", config.Replicas.Select(r => r.Id))})");
        }
        var credentials = ReadCredentials(arguments, out string? credentialsError);
        if (credentialsError is not null)
        {
            return UsageError(stderr, credentialsError);
        }
        DialSettings dial;
        try
        {
            dial = DialSettings.ForClient(config, credentials);
        }
        catch (ConfigException e)
        {
            await stderr.WriteLineAsync($"client: {e.Message}; fix the tls paths in {arguments.ConfigPath}").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        var options = new KvClientOptions
        {
            PreferredReplicaId = arguments.PreferredReplicaId,
            ReadMode = arguments.ReadMode,
            RequestTimeout = arguments.RequestTimeout,
            Credentials = credentials,
        };

        if (oneShot is not null)
        {
            await using var context = new CommandContext(config, arguments.ConfigPath, options, dial, CommandModes.OneShot)
            {
                Bench = arguments.Bench,
                Stdout = stdout,
                Stderr = stderr,
                Json = arguments.Json,
            };
            var result = await CommandExecutor.ExecuteAsync(context, oneShot, ct).ConfigureAwait(false);
            foreach (string line in ResultRenderer.Lines(result, arguments.Json, oneLine: false))
            {
                await stdout.WriteLineAsync(line).ConfigureAwait(false);
            }
            return result.ExitCode;
        }

        bool prompt = stdinIsTerminal || arguments.Interactive;
        await using (var context = new CommandContext(config, arguments.ConfigPath, options, dial, prompt ? CommandModes.Prompt : CommandModes.Batch)
        {
            Stdout = stdout,
            Stderr = stderr,
            Json = arguments.Json,
        })
        {
            try
            {
                // Connect before the first line, so a cluster that is down is reported at once.
                await context.ClientAsync(ct).ConfigureAwait(false);
            }
            catch (KvException e)
            {
                await stderr.WriteLineAsync($"client: {ErrorAdvice.For(e, arguments.ConfigPath)}").ConfigureAwait(false);
                return ExitCodes.Error;
            }
            return prompt
                ? await LineModes.RunInteractiveAsync(context, stdin, stdout, arguments.Json, ct).ConfigureAwait(false)
                : await LineModes.RunBatchAsync(context, stdin, stdout, arguments.Json, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Builds a one-shot command from process arguments by its <see cref="CommandTable"/> entry:
    /// <c>get KEY</c>, <c>delete KEY</c>, <c>put KEY VALUE...</c> (the value is the remaining
    /// arguments joined by single spaces; a key or value that starts with <c>"</c> is read as a
    /// quoted string with escapes, as on a line), and the others.
    /// </summary>
    public static ParsedCommand? ParseOneShot(string command, IReadOnlyList<string> args, out string? error)
    {
        if (CommandTable.Find(command) is not { } spec)
        {
            error = $"unknown command '{command}'";
            return null;
        }
        return spec.ParseArguments(args, out error);
    }

    /// <summary>
    /// The user and password to authenticate with: <c>--user</c> or KVREPLICA_USER, and the password
    /// from <c>--password-file</c> (its first line) or KVREPLICA_PASSWORD. Null when no user is given.
    /// </summary>
    private static ClientCredentials? ReadCredentials(CliArguments arguments, out string? error)
    {
        error = null;
        string? user = arguments.User ?? Environment.GetEnvironmentVariable("KVREPLICA_USER");
        if (string.IsNullOrEmpty(user))
        {
            return null;
        }
        string? password = Environment.GetEnvironmentVariable("KVREPLICA_PASSWORD");
        if (arguments.PasswordFile is { } file)
        {
            try
            {
                password = File.ReadLines(file).FirstOrDefault() ?? "";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                error = $"--password-file {file}: {e.Message}";
                return null;
            }
        }
        if (string.IsNullOrEmpty(password))
        {
            error = $"user {user} needs a password: --password-file FILE or KVREPLICA_PASSWORD";
            return null;
        }
        return new ClientCredentials(user, password);
    }

    private static int UsageError(TextWriter stderr, string message)
    {
        stderr.WriteLine($"client: {message}");
        stderr.WriteLine(HelpText.Usage);
        stderr.WriteLine("client --help lists the commands and options.");
        return ExitCodes.Usage;
    }
}
