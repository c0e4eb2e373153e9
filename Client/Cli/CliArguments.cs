using System.Globalization;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client.Cli;

/// <summary>
/// The parsed process arguments: <c>client [options] &lt;config&gt; [options] [command [args...]]</c>.
/// Options may appear anywhere before the command word; everything after it belongs to the command.
/// </summary>
internal sealed record CliArguments
{
    public string? ConfigPath { get; init; }
    public int? PreferredReplicaId { get; init; }
    public ReadMode ReadMode { get; init; } = ReadMode.Majority;
    public TimeSpan? RequestTimeout { get; init; }
    public bool ShowHelp { get; init; }
    /// <summary>--user: the user to authenticate as (else KVREPLICA_USER).</summary>
    public string? User { get; init; }
    /// <summary>--password-file: where the user's password is (else KVREPLICA_PASSWORD).</summary>
    public string? PasswordFile { get; init; }
    /// <summary>Lower-cased command word (get, put, delete, bench), or null for REPL/batch mode.</summary>
    public string? Command { get; init; }
    public IReadOnlyList<string> CommandArguments { get; init; } = [];

    /// <summary>Parses <paramref name="args"/>; on failure returns null and a one-line <paramref name="error"/>.</summary>
    public static CliArguments? Parse(IReadOnlyList<string> args, out string? error)
    {
        var parsed = new CliArguments();
        error = null;
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            switch (arg)
            {
                case "-h" or "--help":
                    parsed = parsed with { ShowHelp = true };
                    continue;
                case "--local":
                    parsed = parsed with { ReadMode = ReadMode.Local };
                    continue;
                case "--replica":
                    if (!TryInt(args, ref i, arg, 1, int.MaxValue, out int replica, out error))
                    {
                        return null;
                    }
                    parsed = parsed with { PreferredReplicaId = replica };
                    continue;
                case "--user" or "--password-file":
                    if (i + 1 >= args.Count || args[i + 1].Length == 0)
                    {
                        error = $"{arg} needs a value";
                        return null;
                    }
                    parsed = arg == "--user" ? parsed with { User = args[++i] } : parsed with { PasswordFile = args[++i] };
                    continue;
                case "--timeout":
                    if (!TryInt(args, ref i, arg, 1, 3_600_000, out int ms, out error))
                    {
                        return null;
                    }
                    parsed = parsed with { RequestTimeout = TimeSpan.FromMilliseconds(ms) };
                    continue;
            }
            if (arg.StartsWith("--", StringComparison.Ordinal))
            {
                error = $"unknown option '{arg}'";
                return null;
            }
            if (parsed.ConfigPath is null)
            {
                parsed = parsed with { ConfigPath = arg };
                continue;
            }
            string command = arg.ToLowerInvariant();
            if (command is not ("get" or "put" or "delete" or "del" or "bench" or "backup" or "status" or "user" or "role" or "help"))
            {
                error = $"unknown command '{arg}'; expected get, put, delete, bench, backup, status, user, role or help";
                return null;
            }
            return parsed with { Command = command == "del" ? "delete" : command, CommandArguments = [.. args.Skip(i + 1)] };
        }
        return parsed;
    }

    private static bool TryInt(IReadOnlyList<string> args, ref int i, string option, int min, int max, out int value, out string? error)
    {
        value = 0;
        if (i + 1 >= args.Count)
        {
            error = $"{option} needs a value";
            return false;
        }
        string text = args[++i];
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out value) || value < min || value > max)
        {
            error = $"{option}: '{text}' is not a whole number in {min}..{max}";
            return false;
        }
        error = null;
        return true;
    }
}
