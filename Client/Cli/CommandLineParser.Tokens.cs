using System.Globalization;
using System.Text;

namespace KvReplica.Client.Cli;

/// <summary>
/// One word of a command's arguments: a bare word as typed, or a double-quoted string decoded to
/// its bytes. Only a bare word can be a keyword or an option (<c>--limit</c>), so quoting a key
/// makes it a key whatever it spells.
/// </summary>
internal readonly record struct ArgToken(string Text, byte[] Bytes, bool Quoted)
{
    public static ArgToken Word(string text) => new(text, Encoding.UTF8.GetBytes(text), Quoted: false);

    /// <summary>True when this is the bare word <paramref name="keyword"/>, in any case.</summary>
    public bool Is(string keyword) => !Quoted && Text.Equals(keyword, StringComparison.OrdinalIgnoreCase);

    public bool IsOption => !Quoted && Text.Length > 2 && Text.StartsWith("--", StringComparison.Ordinal);

    /// <summary>How an error names this word: as typed, or quoted again.</summary>
    public string Shown => Quoted ? ValueFormatter.Quote(Bytes) : Text;
}

/// <summary>An option a command takes after its arguments: a flag (<see cref="ValueName"/> null) or one with a value.</summary>
internal sealed record CommandOption(string Name, string? ValueName, string Description);

// The argument grammar of the commands that take several words (MGET, MSET, TXN, LIST, WATCH,
// GET --version) and of those whose value is the rest of the line (UPDATE, CAS, PUTNX). A line and
// a one-shot command line become the same list of tokens, so each command is parsed once.
internal static partial class CommandLineParser
{
    /// <summary>
    /// Splits <paramref name="line"/> from <paramref name="pos"/> into words: runs of non-blanks,
    /// or double-quoted strings (which must end at a blank or the end of the line). With
    /// <paramref name="semicolons"/> (TXN) an unquoted <c>;</c> is a word of its own wherever it
    /// stands, also right after a closing quote.
    /// </summary>
    public static bool TryTokenize(string line, int pos, bool semicolons, out List<ArgToken> tokens, out string? error)
    {
        tokens = [];
        error = null;
        while (true)
        {
            pos = SkipBlanks(line, pos);
            if (pos == line.Length)
            {
                return true;
            }
            if (semicolons && line[pos] == ';')
            {
                tokens.Add(ArgToken.Word(";"));
                pos++;
                continue;
            }
            if (line[pos] == '"')
            {
                if (!TryParseQuoted(line, ref pos, out byte[] bytes, out error))
                {
                    return false;
                }
                if (pos < line.Length && !IsBlank(line[pos]) && !(semicolons && line[pos] == ';'))
                {
                    error = "unexpected text after a closing quote (put a blank between words)";
                    return false;
                }
                tokens.Add(new ArgToken(Encoding.UTF8.GetString(bytes), bytes, Quoted: true));
                continue;
            }
            int start = pos;
            while (pos < line.Length && !IsBlank(line[pos]) && !(semicolons && line[pos] == ';'))
            {
                pos++;
            }
            tokens.Add(ArgToken.Word(line[start..pos]));
        }
    }

    /// <summary>
    /// The tokens of one-shot process arguments: each argument is one word as the shell passed it
    /// (blanks and all), or a quoted string when it starts with <c>"</c>. With
    /// <paramref name="semicolons"/> an unquoted argument is split at each <c>;</c>.
    /// </summary>
    public static bool TryTokenize(IReadOnlyList<string> args, bool semicolons, out List<ArgToken> tokens, out string? error)
    {
        tokens = [];
        error = null;
        foreach (string arg in args)
        {
            if (arg.StartsWith('"'))
            {
                if (!TryTokenize(arg, 0, semicolons, out var quoted, out error))
                {
                    return false;
                }
                if (quoted.Count(t => !t.Is(";")) != 1)
                {
                    error = "unexpected text after a closing quote (one quoted string per argument)";
                    return false;
                }
                tokens.AddRange(quoted);
            }
            else if (semicolons && arg.Contains(';', StringComparison.Ordinal))
            {
                string[] pieces = arg.Split(';');
                for (int i = 0; i < pieces.Length; i++)
                {
                    if (i > 0)
                    {
                        tokens.Add(ArgToken.Word(";"));
                    }
                    if (pieces[i].Length > 0)
                    {
                        tokens.Add(ArgToken.Word(pieces[i]));
                    }
                }
            }
            else
            {
                tokens.Add(ArgToken.Word(arg));
            }
        }
        return true;
    }

    /// <summary>
    /// Separates the bare <c>--name [value]</c> options from the other words. Options may stand
    /// anywhere among the words; each at most once.
    /// </summary>
    public static bool TrySplitOptions(string command, IReadOnlyList<ArgToken> tokens, IReadOnlyList<CommandOption> known,
        out List<ArgToken> positional, out Dictionary<string, string?> options, out string? error)
    {
        positional = [];
        options = new Dictionary<string, string?>(StringComparer.Ordinal);
        error = null;
        for (int i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (!token.IsOption)
            {
                positional.Add(token);
                continue;
            }
            var option = known.FirstOrDefault(o => o.Name.Equals(token.Text, StringComparison.OrdinalIgnoreCase));
            if (option is null)
            {
                string list = known.Count == 0 ? "none" : string.Join(", ", known.Select(o => o.ValueName is null ? o.Name : $"{o.Name} {o.ValueName}"));
                error = $"{command} has no option {token.Text} (its options: {list}; quote a word that starts with --)";
                return false;
            }
            if (options.ContainsKey(option.Name))
            {
                error = $"{option.Name} is given twice";
                return false;
            }
            string? value = null;
            if (option.ValueName is not null)
            {
                if (i + 1 == tokens.Count)
                {
                    error = $"{option.Name} needs a value: {option.Name} {option.ValueName}";
                    return false;
                }
                value = tokens[++i].Text;
            }
            options[option.Name] = value;
        }
        return true;
    }

    /// <summary>A key from a token: any word, quoted or not, that is valid UTF-8.</summary>
    public static bool TryKey(ArgToken token, out string key, out string? error)
    {
        if (!token.Quoted)
        {
            key = token.Text;
            error = null;
            return true;
        }
        return TryDecodeKey(token.Bytes, out key, out error);
    }

    /// <summary>A version as the CLI prints it (<c>time@replica</c>), or <c>0</c> for none.</summary>
    public static bool TryVersion(string text, string what, out KvVersion version, out string? error)
    {
        error = KvVersion.TryParse(text, out version) ? null : $"{what}: '{text}' is not a version (time@replica as printed, e.g. 12@2, or 0 for none)";
        return error is null;
    }

    /// <summary>A whole number in <paramref name="min"/>..<paramref name="max"/>.</summary>
    public static bool TryWholeNumber(string option, string? text, int min, int max, out int value, out string? error)
    {
        bool ok = int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= max;
        error = ok ? null : $"{option}: '{text}' is not a whole number in {min}..{max}";
        return ok;
    }

    /// <summary>
    /// UPDATE, CAS and PUTNX on a line: the key, CAS's version, then the value by PUT's rule (the
    /// rest of the line without its edge blanks, or one quoted string).
    /// </summary>
    internal static LineParseResult ParseConditionalWrite(CommandKind kind, string name, bool withVersion, string line, int pos)
    {
        if (!TryReadKey(line, ref pos, name, out string key, out string? error))
        {
            return LineParseResult.Fail(error!);
        }
        var version = KvVersion.None;
        if (withVersion)
        {
            int start = SkipBlanks(line, pos);
            pos = start;
            while (pos < line.Length && !IsBlank(line[pos]))
            {
                pos++;
            }
            if (start == pos)
            {
                return LineParseResult.Fail($"{name} needs a key, the version it must have (0: absent) and a value");
            }
            if (!TryVersion(line[start..pos], $"{name}'s expected version", out version, out error))
            {
                return LineParseResult.Fail(error!);
            }
        }
        int valueStart = SkipBlanks(line, pos);
        if (valueStart == line.Length)
        {
            return LineParseResult.Fail($"{name} needs a value after the {(withVersion ? "version" : "key")} (\"\" is the empty value)");
        }
        string valueText = line[valueStart] == '"' ? line[valueStart..] : line[valueStart..].TrimEnd(' ', '\t');
        if (!TryParseValueText(valueText, out byte[] value, out error))
        {
            return LineParseResult.Fail(error!);
        }
        return LineParseResult.Of(new ParsedCommand(kind, key, value) { Version = version });
    }

    /// <summary>UPDATE, CAS and PUTNX as one-shot arguments: the value is the remaining arguments joined by one blank, as for <c>put</c>.</summary>
    internal static ParsedCommand? ParseConditionalWrite(CommandKind kind, string name, bool withVersion, IReadOnlyList<string> args, out string? error)
    {
        int fixedWords = withVersion ? 2 : 1;
        if (args.Count <= fixedWords)
        {
            error = withVersion ? $"{name} needs a key, the version it must have (0: absent) and a value" : $"{name} needs a key and a value";
            return null;
        }
        var version = KvVersion.None;
        if (!TryParseKeyText(args[0], out string key, out error)
            || (withVersion && !TryVersion(args[1], $"{name}'s expected version", out version, out error))
            || !TryParseValueText(string.Join(' ', args.Skip(fixedWords)), out byte[] value, out error))
        {
            return null;
        }
        return new ParsedCommand(kind, key, value) { Version = version };
    }
}
