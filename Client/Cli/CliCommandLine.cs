using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Reflection;
using KvReplica.Client.Cli.Bench;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client.Cli;

/// <summary>
/// The client's process arguments, parsed by System.CommandLine: the options (anywhere on the
/// line), the cluster.json path, and a subcommand per one-shot entry of <see cref="CommandTable"/>
/// (plus <c>bench</c> and its options). The lines of the prompt and of batch input are not process
/// arguments: <see cref="CommandLineParser"/> reads those.
/// </summary>
internal static class CliCommandLine
{
    /// <summary>What the process arguments ask for.</summary>
    internal abstract record Outcome;

    /// <summary>Run a mode with these arguments.</summary>
    internal sealed record Run(CliArguments Arguments) : Outcome;

    /// <summary>Print this text on stdout and exit 0 (--help, --version).</summary>
    internal sealed record Print(string Text) : Outcome;

    /// <summary>Bad arguments: print the message and the usage on stderr, exit 2.</summary>
    internal sealed record Invalid(string Message) : Outcome;

    /// <summary><c>client --version</c>: this build's version and the protocol it speaks.</summary>
    public static string VersionLine
    {
        get
        {
            string version = typeof(CliCommandLine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
            // The SDK appends "+<commit>"; the version alone is what a person compares.
            return $"client {version.Split('+')[0]} (protocol {ProtocolVersion.Current})";
        }
    }

    public static Outcome Parse(IReadOnlyList<string> args)
    {
        var config = new Argument<string?>("cluster.json") { Arity = ArgumentArity.ZeroOrOne, Description = "the cluster's configuration file" };
        var replica = WholeNumber("--replica", "id", "try this replica first (then the others by id)", 1, int.MaxValue);
        var timeout = WholeNumber("--timeout", "ms", "per-request deadline (default: clientRequestTimeoutMs of cluster.json)", 1, 3_600_000);
        var local = new Option<bool>("--local") { Description = "GET answers from the contacted replica alone", Recursive = true };
        var user = new Option<string?>("--user") { HelpName = "name", Description = "authenticate as this user (or KVREPLICA_USER)", Recursive = true };
        var passwordFile = new Option<string?>("--password-file") { HelpName = "file", Description = "the user's password, first line (or KVREPLICA_PASSWORD)", Recursive = true };
        var json = new Option<bool>("--json") { Description = "one JSON object per result line", Recursive = true };
        var interactive = new Option<bool>("--interactive", "-i") { Description = "the kv> prompt even when stdin is not a terminal" };
        var version = new Option<bool>("--version") { Description = "print the client and protocol versions" };

        var root = new RootCommand("KvReplica client");
        // Our own --version prints the protocol version too.
        foreach (var builtIn in root.Options.OfType<VersionOption>().ToList())
        {
            root.Options.Remove(builtIn);
        }
        foreach (Option option in (Option[])[replica, timeout, local, user, passwordFile, json, interactive, version])
        {
            root.Options.Add(option);
        }
        // An option this parser does not know would otherwise be taken for the config path.
        config.Validators.Add(result =>
        {
            if (result.Tokens is [{ Value: ['-', ..] option }])
            {
                result.AddError($"unknown option '{option}'");
            }
        });
        root.Arguments.Add(config);
        // Without an action System.CommandLine would demand a subcommand; no subcommand means a line mode.
        root.SetAction(_ => ExitCodes.Ok);

        var subcommands = new Dictionary<Command, (CommandSpec Spec, IReadOnlyList<Argument> Arguments, IReadOnlyList<(CommandOption Spec, Option Option)> Options)>();
        var bench = new BenchOptions.CommandLine();
        foreach (var spec in CommandTable.All.Where(c => (c.Modes & CommandModes.OneShot) != 0))
        {
            var command = new Command(spec.Word, spec.Help);
            // Command words are case-insensitive on lines; on the command line the upper-case spelling works too.
            foreach (string alias in spec.Aliases.Where(a => char.IsLetter(a[0])).Select(a => a.ToLowerInvariant()).Prepend(spec.Name).Concat(spec.Aliases).Distinct().Where(a => a != spec.Word))
            {
                command.Aliases.Add(alias);
            }
            var arguments = spec.Arguments.Select(a => a.Many
                ? (Argument)new Argument<string[]>(a.Name) { Description = a.Description, Arity = a.Optional ? ArgumentArity.ZeroOrMore : ArgumentArity.OneOrMore }
                : new Argument<string>(a.Name) { Description = a.Description, Arity = a.Optional ? ArgumentArity.ZeroOrOne : ArgumentArity.ExactlyOne }).ToList();
            foreach (var argument in arguments)
            {
                command.Arguments.Add(argument);
            }
            var options = spec.Options.Select(o => (o, o.ValueName is null
                ? (Option)new Option<bool>(o.Name) { Description = o.Description }
                : new Option<string>(o.Name) { Description = o.Description, HelpName = o.ValueName })).ToList();
            foreach (var (_, option) in options)
            {
                command.Options.Add(option);
            }
            if (spec.Kinds.Contains(CommandKind.Bench))
            {
                bench.AddTo(command);
            }
            root.Subcommands.Add(command);
            subcommands[command] = (spec, arguments, options);
        }

        var result = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (result.Action is HelpAction)
        {
            if (result.CommandResult.Command == root)
            {
                return new Print(HelpText.Full);
            }
            var output = new StringWriter();
            result.Invoke(new InvocationConfiguration { Output = output, Error = output });
            return new Print(output.ToString().TrimEnd());
        }
        if (result.GetValue(version))
        {
            return new Print(VersionLine);
        }
        if (result.Errors.Count > 0)
        {
            return new Invalid(result.Errors[0].Message);
        }
        var parsed = new CliArguments
        {
            ConfigPath = result.GetValue(config),
            PreferredReplicaId = result.GetValue(replica),
            ReadMode = result.GetValue(local) ? ReadMode.Local : ReadMode.Majority,
            RequestTimeout = result.GetValue(timeout) is int ms ? TimeSpan.FromMilliseconds(ms) : null,
            User = result.GetValue(user),
            PasswordFile = result.GetValue(passwordFile),
            Json = result.GetValue(json),
            Interactive = result.GetValue(interactive),
        };
        if (subcommands.TryGetValue(result.CommandResult.Command, out var chosen))
        {
            var words = chosen.Arguments.SelectMany(a => result.GetResult(a)?.Tokens.Select(t => t.Value) ?? []).ToList();
            if (chosen.Options.Count > 0)
            {
                // The command's parser reads its options from the words, as on a line, and refuses
                // a misspelt one. After --, a word that only looks like an option is passed quoted,
                // so it stays a word (a prefix or a key).
                if (result.Tokens.Any(t => t.Type == TokenType.DoubleDash))
                {
                    words = [.. words.Select(w => w.StartsWith('-') ? ValueFormatter.Quote(System.Text.Encoding.UTF8.GetBytes(w)) : w)];
                }
                foreach (var (option, parsedOption) in chosen.Options)
                {
                    if (result.GetResult(parsedOption) is not { Implicit: false } given)
                    {
                        continue;
                    }
                    words.Add(option.Name);
                    if (option.ValueName is not null)
                    {
                        words.Add(given.Tokens.Count > 0 ? given.Tokens[0].Value : "");
                    }
                }
            }
            parsed = parsed with
            {
                Command = chosen.Spec,
                CommandArguments = words,
                Bench = chosen.Spec.Kinds.Contains(CommandKind.Bench) ? bench.Read(result) : null,
            };
        }
        if (parsed.User is "" || parsed.PasswordFile is "")
        {
            return new Invalid($"{(parsed.User is "" ? "--user" : "--password-file")} needs a value");
        }
        return new Run(parsed);
    }

    private static Option<int?> WholeNumber(string name, string helpName, string description, int min, int max) => new(name)
    {
        HelpName = helpName,
        Description = description,
        Recursive = true,
        CustomParser = argument =>
        {
            string text = argument.Tokens.Count == 1 ? argument.Tokens[0].Value : "";
            if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) && value >= min && value <= max)
            {
                return value;
            }
            argument.AddError($"{name}: '{text}' is not a whole number in {min}..{max}");
            return null;
        },
    };
}
