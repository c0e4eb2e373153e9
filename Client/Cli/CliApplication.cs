using KvReplica.Client.Cli.Bench;
using KvReplica.Client.Transport;
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
        var arguments = CliArguments.Parse(args, out string? usageError);
        if (arguments is null)
        {
            return UsageError(stderr, usageError!);
        }
        if (arguments.ShowHelp || arguments.Command == "help")
        {
            await stdout.WriteLineAsync(HelpText.Full).ConfigureAwait(false);
            return ExitCodes.Ok;
        }
        if (arguments.ConfigPath is null)
        {
            return UsageError(stderr, "missing the cluster.json path");
        }
        ClusterConfig config;
        try
        {
            config = ClusterConfigFile.Load(arguments.ConfigPath);
        }
        catch (ConfigException e)
        {
            await stderr.WriteLineAsync($"client: {e.Message}").ConfigureAwait(false);
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
            await stderr.WriteLineAsync($"client: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        var options = new KvClientOptions
        {
            PreferredReplicaId = arguments.PreferredReplicaId,
            ReadMode = arguments.ReadMode,
            RequestTimeout = arguments.RequestTimeout,
            Credentials = credentials,
        };

        if (arguments.Command == "bench")
        {
            var benchOptions = BenchOptions.Parse(arguments.CommandArguments, out string? benchError);
            if (benchOptions is null)
            {
                return UsageError(stderr, benchError!);
            }
            return await BenchRunner.RunAsync(config, options, benchOptions, stdout, stderr, ct).ConfigureAwait(false);
        }
        if (arguments.Command == "status")
        {
            foreach (string line in await ReplicaStatusQuery.DescribeClusterAsync(dial, arguments.RequestTimeout ?? TimeSpan.FromSeconds(2), ct).ConfigureAwait(false))
            {
                await stdout.WriteLineAsync(line).ConfigureAwait(false);
            }
            return ExitCodes.Ok;
        }
        if (arguments.Command == "backup")
        {
            return await RunBackupAsync(dial, arguments, stdout, stderr, ct).ConfigureAwait(false);
        }
        if (arguments.Command is not null)
        {
            return await RunOneShotAsync(config, options, arguments, stdout, stderr, ct).ConfigureAwait(false);
        }

        KvClient client;
        try
        {
            client = await KvClient.ConnectAsync(config, options, ct).ConfigureAwait(false);
        }
        catch (KvException e)
        {
            await stderr.WriteLineAsync($"client: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Error;
        }
        await using (client.ConfigureAwait(false))
        {
            return stdinIsTerminal
                ? await LineModes.RunInteractiveAsync(client, stdin, stdout, ct).ConfigureAwait(false)
                : await LineModes.RunBatchAsync(client, stdin, stdout, ct).ConfigureAwait(false);
        }
    }

    private static async Task<int> RunBackupAsync(DialSettings dial, CliArguments arguments, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        if (arguments.CommandArguments.Count != 1)
        {
            return UsageError(stderr, "backup needs exactly one argument: the file to write");
        }
        string path = arguments.CommandArguments[0];
        try
        {
            var result = await SnapshotStreamReceiver.DownloadAsync(dial, arguments.PreferredReplicaId, path, ct).ConfigureAwait(false);
            await stdout.WriteLineAsync(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"backup: {result.Bytes} bytes through write {result.ThroughTime}.{result.ThroughReplica} from replica {result.ReplicaId} written to {path}")).ConfigureAwait(false);
            return ExitCodes.Ok;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            await stderr.WriteLineAsync($"client: backup failed: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Error;
        }
    }

    private static async Task<int> RunOneShotAsync(ClusterConfig config, KvClientOptions options, CliArguments arguments,
        TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        var command = ParseOneShot(arguments.Command!, arguments.CommandArguments, out string? error);
        if (command is null)
        {
            return UsageError(stderr, error!);
        }
        CommandResult result;
        try
        {
            await using var client = await KvClient.ConnectAsync(config, options, ct).ConfigureAwait(false);
            result = await new CommandExecutor(client).ExecuteAsync(command, ct).ConfigureAwait(false);
        }
        catch (KvException e)
        {
            result = CommandResult.Failed(e.Message);
        }
        await stdout.WriteLineAsync(result.Line).ConfigureAwait(false);
        return result.ExitCode;
    }

    /// <summary>
    /// Builds a one-shot command from process arguments: <c>get KEY</c>, <c>delete KEY</c>,
    /// <c>put KEY VALUE...</c>. The value is the remaining arguments joined by single spaces; a key
    /// or value that starts with <c>"</c> is read as a quoted string with escapes, as on a line.
    /// </summary>
    public static ParsedCommand? ParseOneShot(string command, IReadOnlyList<string> args, out string? error)
    {
        if (command is "user" or "role")
        {
            return CommandLineParser.ParseAccessCommand(command.ToUpperInvariant(), args, out var access, out error) ? access : null;
        }
        int wanted = command == "put" ? 2 : 1;
        if (args.Count < wanted || (command != "put" && args.Count > 1))
        {
            error = command == "put" ? "put needs a key and a value" : $"{command} needs exactly one key";
            return null;
        }
        if (!CommandLineParser.TryParseKeyText(args[0], out string key, out error))
        {
            return null;
        }
        if (command != "put")
        {
            return new ParsedCommand(command == "get" ? CommandKind.Get : CommandKind.Delete, key);
        }
        if (!CommandLineParser.TryParseValueText(string.Join(' ', args.Skip(1)), out byte[] value, out error))
        {
            return null;
        }
        return new ParsedCommand(CommandKind.Put, key, value);
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
        return ExitCodes.Usage;
    }
}
