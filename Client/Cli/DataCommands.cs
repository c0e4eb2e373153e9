using System.Text.Json;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client.Cli;

/// <summary>Parses a command's words (after the command word) into a command; null and one error line on bad input.</summary>
internal delegate ParsedCommand? TokenParser(IReadOnlyList<ArgToken> tokens, out string? error);

/// <summary>
/// The parsers and runners of the data commands beyond PUT and DELETE: GET with its version,
/// UPDATE, CAS, PUTNX, EXISTS, MSET, MGET, TXN and LIST (WATCH is <see cref="WatchCommand"/>).
/// Their entries in <see cref="CommandTable"/> point here; README, "Commands", shows each output.
/// </summary>
internal static class DataCommands
{
    public static readonly CommandOption VersionOption = new("--version", null, "print the value's version too: <value> (version T@R)");
    public static readonly CommandOption LimitOption = new("--limit", "N", $"one page of at most N keys (1..{Limits.MaxScanLimit}), then (more=<cursor>) if there are more");
    public static readonly CommandOption ValuesOption = new("--values", null, "print each key's value after it");
    public static readonly CommandOption CursorOption = new("--cursor", "C", "continue where the page that printed (more=C) stopped (same prefix)");

    /// <summary>A line parser from a token parser.</summary>
    public static LineArgumentsParser Line(TokenParser parse, bool semicolons = false) => (line, pos) =>
    {
        if (!CommandLineParser.TryTokenize(line, pos, semicolons, out var tokens, out string? error))
        {
            return LineParseResult.Fail(error!);
        }
        return parse(tokens, out error) is { } command ? LineParseResult.Of(command) : LineParseResult.Fail(error!);
    };

    /// <summary>A one-shot argument parser from a token parser.</summary>
    public static ProcessArgumentsParser Arguments(TokenParser parse, bool semicolons = false) =>
        (IReadOnlyList<string> args, out string? error) =>
            CommandLineParser.TryTokenize(args, semicolons, out var tokens, out error) ? parse(tokens, out error) : null;

    /// <summary>How versions and revisions print: <c>time@replica</c>, or <c>0</c> for none (as CAS takes it).</summary>
    public static string VersionText(KvVersion version) => version == KvVersion.None ? "0" : version.ToString();

    // ---- parsers ----

    public static ParsedCommand? ParseGet(IReadOnlyList<ArgToken> tokens, out string? error)
    {
        if (!CommandLineParser.TrySplitOptions("GET", tokens, [VersionOption], out var words, out var options, out error))
        {
            return null;
        }
        if (words.Count != 1)
        {
            error = words.Count == 0 ? "GET needs a key" : "GET takes one key; quote a key that contains blanks";
            return null;
        }
        return CommandLineParser.TryKey(words[0], out string key, out error)
            ? new ParsedCommand(CommandKind.Get, key) { WithVersion = options.ContainsKey(VersionOption.Name) }
            : null;
    }

    public static ParsedCommand? ParseMultiSet(IReadOnlyList<ArgToken> tokens, out string? error)
    {
        if (tokens.Count == 0 || tokens.Count % 2 != 0)
        {
            error = tokens.Count == 0
                ? "MSET needs at least one <key> <value> pair"
                : $"MSET takes <key> <value> pairs, but got an odd number of words ({tokens.Count}); quote a value that contains blanks";
            return null;
        }
        var pairs = new List<KeyValuePair<string, byte[]>>();
        for (int i = 0; i < tokens.Count; i += 2)
        {
            if (!CommandLineParser.TryKey(tokens[i], out string key, out error))
            {
                return null;
            }
            pairs.Add(new(key, tokens[i + 1].Bytes));
        }
        error = null;
        return new ParsedCommand(CommandKind.MultiSet) { Pairs = pairs };
    }

    public static ParsedCommand? ParseMultiGet(IReadOnlyList<ArgToken> tokens, out string? error)
    {
        var keys = new List<string>();
        error = tokens.Count == 0 ? "MGET needs at least one key" : null;
        foreach (var token in tokens)
        {
            if (!CommandLineParser.TryKey(token, out string key, out error))
            {
                return null;
            }
            keys.Add(key);
        }
        return error is null ? new ParsedCommand(CommandKind.MultiGet) { Keys = keys } : null;
    }

    public static ParsedCommand? ParseTxn(IReadOnlyList<ArgToken> tokens, out string? error) =>
        TxnLineParser.Parse(tokens, out error) is { } plan ? new ParsedCommand(CommandKind.Txn) { Txn = plan } : null;

    public static ParsedCommand? ParseList(IReadOnlyList<ArgToken> tokens, out string? error)
    {
        if (!CommandLineParser.TrySplitOptions("LIST", tokens, [LimitOption, ValuesOption, CursorOption], out var words, out var options, out error)
            || !TryPrefix("LIST", words, out string prefix, out error))
        {
            return null;
        }
        int? limit = null;
        if (options.TryGetValue(LimitOption.Name, out string? limitText))
        {
            if (!CommandLineParser.TryWholeNumber("--limit", limitText, 1, Limits.MaxScanLimit, out int n, out error))
            {
                return null;
            }
            limit = n;
        }
        KvScanCursor? cursor = null;
        if (options.TryGetValue(CursorOption.Name, out string? cursorText) && !KvScanCursor.TryParse(prefix, cursorText!, out cursor))
        {
            error = $"--cursor: '{cursorText}' is not a cursor; give the text between (more= and ) that LIST printed";
            return null;
        }
        return new ParsedCommand(CommandKind.List, prefix)
        {
            Limit = limit,
            Cursor = cursor,
            WithValues = options.ContainsKey(ValuesOption.Name),
        };
    }

    /// <summary>An optional prefix: no word (every key), or one.</summary>
    public static bool TryPrefix(string command, IReadOnlyList<ArgToken> words, out string prefix, out string? error)
    {
        prefix = "";
        error = null;
        if (words.Count > 1)
        {
            error = $"{command} takes at most one prefix; quote a prefix that contains blanks";
            return false;
        }
        if (words.Count == 0)
        {
            return true;
        }
        return CommandLineParser.TryKey(words[0], out prefix, out error);
    }

    // ---- runners ----

    public static async Task<CommandResult> GetAsync(CommandContext context, ParsedCommand command, CancellationToken ct)
    {
        var client = await context.ClientAsync(ct).ConfigureAwait(false);
        var found = await client.GetAsync(command.Key, ct).ConfigureAwait(false);
        var version = found.Version;
        Action<Utf8JsonWriter> json = j => j.WriteString("version", VersionText(version));
        if (!found.Found)
        {
            return CommandResult.NotFound("get", command.Key) with { JsonFields = json };
        }
        var result = CommandResult.Found("get", command.Key, found.Value.ToArray()) with { JsonFields = json };
        return command.WithVersion ? result with { TextLines = [$"{result.TextLines[0]} (version {version})"] } : result;
    }

    public static async Task<CommandResult> PutAsync(CommandContext context, ParsedCommand command, CancellationToken ct)
    {
        var client = await context.ClientAsync(ct).ConfigureAwait(false);
        var version = await client.PutAsync(command.Key, command.Value ?? [], ct).ConfigureAwait(false);
        return CommandResult.Ok("put", command.Key, json: j => j.WriteString("version", VersionText(version)));
    }

    public static async Task<CommandResult> UpdateAsync(CommandContext context, ParsedCommand command, CancellationToken ct)
    {
        var client = await context.ClientAsync(ct).ConfigureAwait(false);
        var result = await client.UpdateAsync(command.Key, command.Value ?? [], ct).ConfigureAwait(false);
        Action<Utf8JsonWriter> json = j => j.WriteString("version", VersionText(result.Version));
        return result.Written ? CommandResult.Ok("update", command.Key, json) : CommandResult.NotFound("update", command.Key) with { JsonFields = json };
    }

    /// <summary>CAS and PUTNX: <c>OK &lt;new version&gt;</c>, or <c>CONFLICT &lt;current version&gt;</c> / <c>CONFLICT (absent)</c>.</summary>
    public static async Task<CommandResult> CompareAndSetAsync(CommandContext context, ParsedCommand command, CancellationToken ct)
    {
        var client = await context.ClientAsync(ct).ConfigureAwait(false);
        var expected = command.Kind == CommandKind.PutIfAbsent ? KvVersion.None : command.Version;
        var result = await client.CompareAndSetAsync(command.Key, expected, command.Value ?? [], ct).ConfigureAwait(false);
        string word = command.Kind == CommandKind.PutIfAbsent ? "putnx" : "cas";
        Action<Utf8JsonWriter> json = j => j.WriteString("version", VersionText(result.Version));
        if (result.Written)
        {
            return CommandResult.Ok(word, command.Key, json, text: $"OK {result.Version}");
        }
        string current = result.Version == KvVersion.None ? "(absent)" : result.Version.ToString();
        return new CommandResult { Command = word, Kind = ResultKind.Conflict, Key = command.Key, TextLines = [$"CONFLICT {current}"], JsonFields = json };
    }

    public static async Task<CommandResult> ExistsAsync(CommandContext context, ParsedCommand command, CancellationToken ct)
    {
        var client = await context.ClientAsync(ct).ConfigureAwait(false);
        var result = await client.ExistsAsync(command.Key, ct).ConfigureAwait(false);
        return new CommandResult
        {
            Command = "exists",
            Kind = result.Exists ? ResultKind.Ok : ResultKind.NotFound,
            Key = command.Key,
            TextLines = [result.Exists ? $"1 {result.Version}" : "0"],
            JsonFields = j =>
            {
                j.WriteBoolean("exists", result.Exists);
                j.WriteString("version", VersionText(result.Exists ? result.Version : KvVersion.None));
            },
        };
    }

    public static async Task<CommandResult> MultiSetAsync(CommandContext context, ParsedCommand command, CancellationToken ct)
    {
        var client = await context.ClientAsync(ct).ConfigureAwait(false);
        var pairs = command.Pairs!;
        var result = await client.MultiSetAsync(pairs.Select(p => new KeyValuePair<string, ReadOnlyMemory<byte>>(p.Key, p.Value)), ct).ConfigureAwait(false);
        return CommandResult.Ok("mset", json: j =>
        {
            j.WriteNumber("count", pairs.Count);
            j.WriteString("revision", VersionText(result.Revision));
        }, text: $"OK {result.Revision}");
    }

    /// <summary>MGET: the values in the keys' order on one line, each a word (<see cref="ValueFormatter.FormatToken(ReadOnlySpan{byte})"/>) or <c>(not found)</c>.</summary>
    public static async Task<CommandResult> MultiGetAsync(CommandContext context, ParsedCommand command, CancellationToken ct)
    {
        var client = await context.ClientAsync(ct).ConfigureAwait(false);
        var result = await client.MultiGetAsync(command.Keys!, ct).ConfigureAwait(false);
        string line = string.Join(' ', result.Entries.Select(e => e.Found ? ValueFormatter.FormatToken(e.Value.Span) : "(not found)"));
        return CommandResult.Ok("mget", json: j =>
        {
            j.WriteString("revision", VersionText(result.Revision));
            j.WriteStartArray("entries");
            foreach (var entry in result.Entries)
            {
                j.WriteStartObject();
                j.WriteString("key", entry.Key);
                j.WriteBoolean("found", entry.Found);
                if (entry.Found)
                {
                    ResultRenderer.WriteValue(j, entry.Value.Span);
                }
                j.WriteString("version", VersionText(entry.Version));
                j.WriteEndObject();
            }
            j.WriteEndArray();
        }, text: line);
    }

    /// <summary>TXN: <c>THEN &lt;revision&gt;</c> when every compare held, else <c>ELSE &lt;revision&gt;</c> (exit code 5).</summary>
    public static async Task<CommandResult> TxnAsync(CommandContext context, ParsedCommand command, CancellationToken ct)
    {
        var client = await context.ClientAsync(ct).ConfigureAwait(false);
        var result = await client.TxnAsync(command.Txn!.ToTxn(), ct).ConfigureAwait(false);
        string branch = result.Succeeded ? "then" : "else";
        return new CommandResult
        {
            Command = "txn",
            Kind = result.Succeeded ? ResultKind.Ok : ResultKind.Conflict,
            TextLines = [$"{branch.ToUpperInvariant()} {result.Revision}"],
            JsonFields = j =>
            {
                j.WriteString("branch", branch);
                j.WriteString("revision", VersionText(result.Revision));
            },
        };
    }

    /// <summary>
    /// LIST: one line per key (<c>key</c>, or <c>key value</c> with --values, each a word), then
    /// <c>(more=&lt;cursor&gt;)</c> when --limit stopped before the last key; <c>(none)</c> when
    /// nothing matched. Batch mode prints the same words on one line, separated by single blanks.
    /// </summary>
    public static async Task<CommandResult> ListAsync(CommandContext context, ParsedCommand command, CancellationToken ct)
    {
        var client = await context.ClientAsync(ct).ConfigureAwait(false);
        bool keysOnly = !command.WithValues;
        var entries = new List<KvEntry>();
        var cursor = command.Cursor;
        KvVersion revision;
        // Without --limit every page, all at the first page's revision; with it, one page.
        while (true)
        {
            int pageSize = command.Limit is int limit ? limit : 1000;
            var page = await client.ScanPageAsync(command.Key, cursor, pageSize, keysOnly, ct).ConfigureAwait(false);
            entries.AddRange(page.Entries);
            revision = page.Revision;
            cursor = page.Next;
            if (cursor is null || command.Limit is not null)
            {
                break;
            }
        }
        var lines = entries.Select(e => command.WithValues ? $"{ValueFormatter.FormatToken(e.Key)} {ValueFormatter.FormatToken(e.Value.Span)}" : ValueFormatter.FormatToken(e.Key)).ToList();
        if (cursor is not null)
        {
            lines.Add($"(more={cursor})");
        }
        if (lines.Count == 0)
        {
            lines.Add("(none)");
        }
        var next = cursor;
        return new CommandResult
        {
            Command = "list",
            Kind = ResultKind.Ok,
            TextLines = lines,
            BatchLine = string.Join(' ', lines),
            JsonFields = j =>
            {
                j.WriteString("prefix", command.Key);
                j.WriteString("revision", VersionText(revision));
                j.WriteStartArray("entries");
                foreach (var entry in entries)
                {
                    j.WriteStartObject();
                    j.WriteString("key", entry.Key);
                    if (!keysOnly)
                    {
                        ResultRenderer.WriteValue(j, entry.Value.Span);
                    }
                    j.WriteString("version", VersionText(entry.Version));
                    j.WriteEndObject();
                }
                j.WriteEndArray();
                if (next is null)
                {
                    j.WriteNull("next");
                }
                else
                {
                    j.WriteString("next", next.ToString());
                }
            },
        };
    }
}
