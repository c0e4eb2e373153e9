using System.Buffers;
using System.Text;

namespace KvReplica.Client.Cli;

/// <summary>What a command line asks for.</summary>
internal enum CommandKind
{
    Get,
    Put,
    Delete,
    Help,
    Exit,
    UserAdd,
    UserDelete,
    RoleAdd,
    RoleDelete,
    Status,
    Ping,
    Backup,
    Bench,
    Update,
    CompareAndSet,
    PutIfAbsent,
    Exists,
    MultiSet,
    MultiGet,
    Txn,
    List,
    Watch,
}

/// <summary>
/// One parsed command. <see cref="Key"/> is set for the commands of one key (and is the user or
/// role name for USER and ROLE, the file for BACKUP, the prefix for LIST and WATCH);
/// <see cref="Value"/> for PUT, UPDATE, CAS and PUTNX; <see cref="Words"/> holds USER ADD's
/// password and roles and ROLE ADD's grants. The properties hold the other commands' arguments.
/// </summary>
internal sealed record ParsedCommand(CommandKind Kind, string Key = "", byte[]? Value = null, IReadOnlyList<string>? Words = null)
{
    /// <summary>CAS: the version the key must have (<see cref="KvVersion.None"/>: absent). WATCH: <c>--after</c>.</summary>
    public KvVersion Version { get; init; }

    /// <summary>GET <c>--version</c>: print the value's version too.</summary>
    public bool WithVersion { get; init; }

    /// <summary>LIST <c>--values</c>: print each key's value too.</summary>
    public bool WithValues { get; init; }

    /// <summary>LIST <c>--limit</c>: one page of at most this many keys; null lists every key.</summary>
    public int? Limit { get; init; }

    /// <summary>LIST <c>--cursor</c>: where the page starts, as a previous page printed it.</summary>
    public KvScanCursor? Cursor { get; init; }

    /// <summary>WATCH <c>--count</c>: stop after this many events; null runs until interrupted.</summary>
    public int? Count { get; init; }

    /// <summary>MGET's keys, in order.</summary>
    public IReadOnlyList<string>? Keys { get; init; }

    /// <summary>MSET's pairs, in order.</summary>
    public IReadOnlyList<KeyValuePair<string, byte[]>>? Pairs { get; init; }

    /// <summary>TXN's compares and operations.</summary>
    public TxnPlan? Txn { get; init; }
}

/// <summary>
/// The outcome of parsing one input line: a command, a one-line error, or neither (a blank line
/// or a <c>#</c> comment, which produces no output at all).
/// </summary>
internal readonly record struct LineParseResult(ParsedCommand? Command, string? Error)
{
    public bool IsSkipped => Command is null && Error is null;

    public static LineParseResult Skip => default;

    public static LineParseResult Fail(string error) => new(null, error);

    public static LineParseResult Of(ParsedCommand command) => new(command, null);
}

/// <summary>
/// Parses the client's command lines. Pure: no I/O, no state.
/// </summary>
/// <remarks>
/// <para>Grammar: <c>COMMAND [key [value]]</c> with the case-insensitive command words of
/// <see cref="CommandTable"/> (PUT, GET, DELETE or DEL, STATUS, PING, BACKUP, USER, ROLE, HELP or ?,
/// EXIT or QUIT); each entry there parses what follows its word. Blank lines and lines whose first
/// non-blank character is <c>#</c> are skipped. A trailing carriage return is ignored.</para>
/// <para>A key is either a run of non-blank characters or a double-quoted string. A value is either
/// the rest of the line after the key with the blanks (spaces and tabs) at both of its ends
/// dropped and its inner blanks kept, or, when that rest starts with <c>"</c>, one double-quoted
/// string followed by nothing but blanks. One rule for both ends: a blank at either edge of an
/// unquoted value cannot be seen on the line, so only a quoted value keeps it (and
/// <see cref="ValueFormatter"/> prints such a value quoted).</para>
/// <para>Quoted strings take the escapes <c>\n \r \t \\ \" \0</c>, <c>\xNN</c> (one raw byte, two hex
/// digits) and <c>\u{HEX}</c> (a Unicode code point, 1 to 6 hex digits, stored as UTF-8); every other
/// character stands for its own UTF-8 encoding.</para>
/// </remarks>
internal static partial class CommandLineParser
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Parses one line of REPL or batch input.</summary>
    public static LineParseResult ParseLine(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        line = line.TrimEnd('\r', '\n');
        int pos = SkipBlanks(line, 0);
        if (pos == line.Length || line[pos] == '#')
        {
            return LineParseResult.Skip;
        }
        int wordStart = pos;
        while (pos < line.Length && !IsBlank(line[pos]))
        {
            pos++;
        }
        string word = line[wordStart..pos];
        // Each command's own grammar is declared with the command, in CommandTable.
        if (CommandTable.Find(word) is not { } command)
        {
            return LineParseResult.Fail($"unknown command '{word}'; type HELP for the list");
        }
        var parsed = command.ParseLine(line, pos);
        // A line that names a command but misspells its arguments gets that command's usage.
        return parsed.Error is { } error && !error.Contains("usage:", StringComparison.Ordinal) && (command.Modes & CommandModes.Lines) != 0
            ? LineParseResult.Fail($"{error}; usage: {command.Synopsis}")
            : parsed;
    }

    /// <summary>
    /// The words that may start a line, in the order HELP lists them; aliases follow the word they
    /// stand for. The completer offers exactly these, so a command added to the table completes.
    /// </summary>
    public static IReadOnlyList<string> CommandWords =>
        [.. CommandTable.All.Where(c => (c.Modes & CommandModes.Lines) != 0).SelectMany(c => c.Aliases.Prepend(c.Name)).Select(w => w.ToUpperInvariant()).Distinct()];

    /// <summary>The words USER and ROLE take next (ADD, DELETE and its alias DEL).</summary>
    public static IReadOnlyList<string> AccessVerbs { get; } = ["ADD", "DELETE", "DEL"];

    /// <summary>
    /// The words that may come next on a line after <paramref name="precedingWords"/> (the
    /// complete words before the one being typed): the command words at the start, the
    /// <see cref="AccessVerbs"/> after USER or ROLE, and nothing elsewhere (keys and values are
    /// free text). Used by Tab completion.
    /// </summary>
    public static IReadOnlyList<string> WordsAfter(IReadOnlyList<string> precedingWords) => precedingWords.Count switch
    {
        0 => CommandWords,
        1 when precedingWords[0].ToUpperInvariant() is "USER" or "ROLE" => AccessVerbs,
        _ => [],
    };

    /// <summary>
    /// <c>USER ADD name password [role...]</c>, <c>USER DELETE name</c>, <c>ROLE ADD name grant...</c>
    /// (a grant is <c>read:PREFIX</c>, <c>readwrite:PREFIX</c> or <c>admin</c>; an empty PREFIX or
    /// <c>*</c> is every key), <c>ROLE DELETE name</c>. <paramref name="noun"/> is USER or ROLE;
    /// <paramref name="words"/> follow it. Used by lines and by one-shot arguments alike.
    /// </summary>
    public static bool ParseAccessCommand(string noun, IReadOnlyList<string> words, out ParsedCommand? command, out string? error)
    {
        command = null;
        string verb = words.Count > 0 ? words[0].ToUpperInvariant() : "";
        bool user = noun == "USER";
        string usage = user
            ? "usage: USER ADD <name> <password> [role...] | USER DELETE <name>"
            : "usage: ROLE ADD <name> <read:PREFIX | readwrite:PREFIX | admin>... | ROLE DELETE <name>";
        if (verb is "DELETE" or "DEL" && words.Count == 2)
        {
            command = new ParsedCommand(user ? CommandKind.UserDelete : CommandKind.RoleDelete, words[1]);
        }
        else if (verb == "ADD" && words.Count >= 3)
        {
            if (!user && words.Skip(2).FirstOrDefault(g => !IsGrant(g)) is { } bad)
            {
                error = $"'{bad}' is not a grant; {usage}";
                return false;
            }
            command = new ParsedCommand(user ? CommandKind.UserAdd : CommandKind.RoleAdd, words[1], Words: [.. words.Skip(2)]);
        }
        error = command is null ? usage : null;
        return command is not null;
    }

    private static bool IsGrant(string grant) =>
        grant.Equals("admin", StringComparison.OrdinalIgnoreCase)
        || grant.StartsWith("read:", StringComparison.OrdinalIgnoreCase)
        || grant.StartsWith("readwrite:", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Interprets <paramref name="text"/> as a key: a double-quoted string if it starts with <c>"</c>
    /// (and must then be exactly one quoted string), else the text itself. Used for command-line arguments.
    /// </summary>
    public static bool TryParseKeyText(string text, out string key, out string? error)
    {
        key = "";
        if (!text.StartsWith('"'))
        {
            key = text;
            error = null;
            return true;
        }
        int pos = 0;
        if (!TryParseQuoted(text, ref pos, out byte[] bytes, out error))
        {
            return false;
        }
        if (pos != text.Length)
        {
            error = "unexpected text after the closing quote of the key";
            return false;
        }
        return TryDecodeKey(bytes, out key, out error);
    }

    /// <summary>
    /// Interprets <paramref name="text"/> as a value by the same rule as the rest of a PUT line:
    /// a quoted string if it starts with <c>"</c>, else the UTF-8 bytes of the text as given.
    /// </summary>
    public static bool TryParseValueText(string text, out byte[] value, out string? error)
    {
        value = [];
        if (!text.StartsWith('"'))
        {
            value = Encoding.UTF8.GetBytes(text);
            error = null;
            return true;
        }
        int pos = 0;
        if (!TryParseQuoted(text, ref pos, out value, out error))
        {
            return false;
        }
        if (SkipBlanks(text, pos) != text.Length)
        {
            error = "unexpected text after the closing quote of the value";
            return false;
        }
        return true;
    }

    /// <summary>
    /// Parses the double-quoted string that starts at <paramref name="pos"/> (which must be a <c>"</c>)
    /// into bytes, leaving <paramref name="pos"/> just after the closing quote.
    /// </summary>
    public static bool TryParseQuoted(string text, ref int pos, out byte[] bytes, out string? error)
    {
        bytes = [];
        if (pos >= text.Length || text[pos] != '"')
        {
            error = "expected a double quote";
            return false;
        }
        var output = new ArrayBufferWriter<byte>(Math.Max(16, text.Length - pos));
        int i = pos + 1;
        while (i < text.Length)
        {
            char c = text[i];
            if (c == '"')
            {
                bytes = output.WrittenSpan.ToArray();
                pos = i + 1;
                error = null;
                return true;
            }
            if (c == '\\')
            {
                if (!TryParseEscape(text, ref i, output, out error))
                {
                    return false;
                }
                continue;
            }
            if (Rune.DecodeFromUtf16(text.AsSpan(i), out Rune rune, out int used) != OperationStatus.Done)
            {
                error = $"invalid character at position {i + 1}";
                return false;
            }
            AppendRune(output, rune);
            i += used;
        }
        error = "unterminated quoted string (missing closing \")";
        return false;
    }

    internal static LineParseResult ParseKeyOnly(CommandKind kind, string name, string line, int pos)
    {
        if (!TryReadKey(line, ref pos, name, out string key, out string? error))
        {
            return LineParseResult.Fail(error!);
        }
        if (SkipBlanks(line, pos) != line.Length)
        {
            return LineParseResult.Fail($"{name} takes one key; quote a key that contains blanks");
        }
        return LineParseResult.Of(new ParsedCommand(kind, key));
    }

    internal static LineParseResult ParsePut(string line, int pos)
    {
        if (!TryReadKey(line, ref pos, "PUT", out string key, out string? error))
        {
            return LineParseResult.Fail(error!);
        }
        int valueStart = SkipBlanks(line, pos);
        if (valueStart == line.Length)
        {
            return LineParseResult.Fail("PUT needs a key and a value (\"\" is the empty value)");
        }
        // The blank rule of the remarks: an unquoted value loses the blanks at both ends.
        string valueText = line[valueStart] == '"' ? line[valueStart..] : line[valueStart..].TrimEnd(' ', '\t');
        if (!TryParseValueText(valueText, out byte[] value, out error))
        {
            return LineParseResult.Fail(error!);
        }
        return LineParseResult.Of(new ParsedCommand(CommandKind.Put, key, value));
    }

    internal static bool TryReadKey(string line, ref int pos, string command, out string key, out string? error)
    {
        key = "";
        pos = SkipBlanks(line, pos);
        if (pos == line.Length)
        {
            error = $"{command} needs a key";
            return false;
        }
        if (line[pos] != '"')
        {
            int start = pos;
            while (pos < line.Length && !IsBlank(line[pos]))
            {
                pos++;
            }
            key = line[start..pos];
            error = null;
            return true;
        }
        if (!TryParseQuoted(line, ref pos, out byte[] bytes, out error))
        {
            return false;
        }
        if (pos < line.Length && !IsBlank(line[pos]))
        {
            error = "unexpected text after the closing quote of the key";
            return false;
        }
        return TryDecodeKey(bytes, out key, out error);
    }

    internal static bool TryDecodeKey(byte[] bytes, out string key, out string? error)
    {
        try
        {
            key = StrictUtf8.GetString(bytes);
            error = null;
            return true;
        }
        catch (DecoderFallbackException)
        {
            key = "";
            error = "key is not valid UTF-8 text (keys are text; \\x escapes must form whole UTF-8 characters)";
            return false;
        }
    }

    // i points at the backslash; on success it points just past the escape.
    private static bool TryParseEscape(string text, ref int i, ArrayBufferWriter<byte> output, out string? error)
    {
        error = null;
        if (i + 1 >= text.Length)
        {
            error = "unterminated escape at the end of the line";
            return false;
        }
        char kind = text[i + 1];
        switch (kind)
        {
            case 'n': AppendByte(output, (byte)'\n'); i += 2; return true;
            case 'r': AppendByte(output, (byte)'\r'); i += 2; return true;
            case 't': AppendByte(output, (byte)'\t'); i += 2; return true;
            case '\\': AppendByte(output, (byte)'\\'); i += 2; return true;
            case '"': AppendByte(output, (byte)'"'); i += 2; return true;
            case '0': AppendByte(output, 0); i += 2; return true;
            case 'x':
                if (i + 3 < text.Length && IsHex(text[i + 2]) && IsHex(text[i + 3]))
                {
                    AppendByte(output, (byte)(HexValue(text[i + 2]) * 16 + HexValue(text[i + 3])));
                    i += 4;
                    return true;
                }
                error = "\\x needs exactly two hex digits, as in \\x7f";
                return false;
            case 'u':
                return TryParseUnicodeEscape(text, ref i, output, out error);
            default:
                error = $"unknown escape \\{kind}; known: \\n \\r \\t \\\\ \\\" \\0 \\xNN \\u{{HEX}}";
                return false;
        }
    }

    private static bool TryParseUnicodeEscape(string text, ref int i, ArrayBufferWriter<byte> output, out string? error)
    {
        const string Usage = "\\u needs 1 to 6 hex digits in braces, as in \\u{e9}";
        int open = i + 2;
        if (open >= text.Length || text[open] != '{')
        {
            error = Usage;
            return false;
        }
        int close = open + 1;
        int codePoint = 0;
        while (close < text.Length && IsHex(text[close]) && close - open <= 6)
        {
            codePoint = codePoint * 16 + HexValue(text[close]);
            close++;
        }
        int digits = close - open - 1;
        if (digits is < 1 or > 6 || close >= text.Length || text[close] != '}')
        {
            error = Usage;
            return false;
        }
        if (!Rune.IsValid(codePoint))
        {
            error = $"\\u{{{text[(open + 1)..close]}}} is not a Unicode scalar value (surrogates and values above 10FFFF are not allowed)";
            return false;
        }
        AppendRune(output, new Rune(codePoint));
        i = close + 1;
        error = null;
        return true;
    }

    private static void AppendByte(ArrayBufferWriter<byte> output, byte value)
    {
        output.GetSpan(1)[0] = value;
        output.Advance(1);
    }

    private static void AppendRune(ArrayBufferWriter<byte> output, Rune rune)
    {
        int written = rune.EncodeToUtf8(output.GetSpan(4));
        output.Advance(written);
    }

    internal static bool IsBlank(char c) => c is ' ' or '\t';

    internal static int SkipBlanks(string text, int pos)
    {
        while (pos < text.Length && IsBlank(text[pos]))
        {
            pos++;
        }
        return pos;
    }

    private static bool IsHex(char c) => char.IsAsciiHexDigit(c);

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}
