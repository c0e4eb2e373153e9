using System.Globalization;
using System.Text;

namespace KvReplica.Client.Cli;

/// <summary>One parsed line of the client language.</summary>
public abstract record Command
{
    public sealed record Put(string Key, byte[] Value) : Command;
    public sealed record Get(string Key) : Command;
    public sealed record Delete(string Key) : Command;
    public sealed record Help : Command;
    public sealed record Exit : Command;
    /// <summary>A blank line or a # comment: no result line.</summary>
    public sealed record Nothing : Command;
}

/// <summary>A line that is not a command; the message is what the user sees after ERROR.</summary>
public sealed class CommandSyntaxException(string message) : Exception(message);

/// <summary>
/// The client language: <c>PUT key value</c>, <c>GET key</c>, <c>DELETE key</c> (or DEL),
/// <c>HELP</c>, <c>EXIT</c>/<c>QUIT</c>; command words in any case. A key is a bare word or a
/// quoted string. A value is the rest of the line as typed, or one quoted string. Quoted strings
/// take the escapes <c>\n \r \t \\ \" \0 \xNN \u{HEX}</c>, so any bytes can be written on one line.
/// </summary>
public static class CommandLine
{
    public static Command Parse(string line)
    {
        string trimmed = line.TrimEnd('\r', '\n').TrimStart();
        if (trimmed.Length == 0 || trimmed.StartsWith('#'))
        {
            return new Command.Nothing();
        }
        int space = IndexOfWhiteSpace(trimmed, 0);
        string word = space < 0 ? trimmed : trimmed[..space];
        string rest = space < 0 ? "" : trimmed[(space + 1)..];
        switch (word.ToUpperInvariant())
        {
            case "PUT":
            {
                var (key, afterKey) = ReadKey(rest, "PUT");
                if (afterKey.Length == 0)
                {
                    throw new CommandSyntaxException("PUT needs a value: PUT key value");
                }
                return new Command.Put(key, ReadValue(afterKey));
            }
            case "GET":
                return new Command.Get(ReadOnlyKey(rest, "GET"));
            case "DELETE":
            case "DEL":
                return new Command.Delete(ReadOnlyKey(rest, "DELETE"));
            case "HELP":
            case "?":
                return new Command.Help();
            case "EXIT":
            case "QUIT":
                return new Command.Exit();
            default:
                throw new CommandSyntaxException($"unknown command '{word}'; try HELP");
        }
    }

    private static string ReadOnlyKey(string rest, string command)
    {
        var (key, after) = ReadKey(rest, command);
        if (after.Trim().Length > 0)
        {
            throw new CommandSyntaxException($"{command} takes one key; quote a key that contains spaces");
        }
        return key;
    }

    // Returns the key and the text after the single separator that follows it.
    private static (string Key, string After) ReadKey(string rest, string command)
    {
        rest = rest.TrimStart();
        if (rest.Length == 0)
        {
            throw new CommandSyntaxException($"{command} needs a key");
        }
        if (rest[0] == '"')
        {
            var (bytes, end) = ReadQuoted(rest, 0);
            string key;
            try
            {
                key = new UTF8Encoding(false, true).GetString(bytes);
            }
            catch (DecoderFallbackException)
            {
                throw new CommandSyntaxException("a key must be valid UTF-8 text");
            }
            if (end < rest.Length && !char.IsWhiteSpace(rest[end]))
            {
                throw new CommandSyntaxException("expected a space after the quoted key");
            }
            return (key, end < rest.Length ? rest[(end + 1)..] : "");
        }
        int space = IndexOfWhiteSpace(rest, 0);
        return space < 0 ? (rest, "") : (rest[..space], rest[(space + 1)..]);
    }

    private static byte[] ReadValue(string text)
    {
        if (text.StartsWith('"'))
        {
            var (bytes, end) = ReadQuoted(text, 0);
            if (text[end..].Trim().Length > 0)
            {
                throw new CommandSyntaxException("unexpected text after the quoted value");
            }
            return bytes;
        }
        return Encoding.UTF8.GetBytes(text);
    }

    /// <summary>Reads a quoted string starting at <paramref name="start"/>; returns its bytes and the index after the closing quote.</summary>
    public static (byte[] Bytes, int End) ReadQuoted(string text, int start)
    {
        var bytes = new List<byte>();
        Span<byte> utf8 = stackalloc byte[4];
        int i = start + 1;
        while (i < text.Length)
        {
            char c = text[i];
            if (c == '"')
            {
                return (bytes.ToArray(), i + 1);
            }
            if (c != '\\')
            {
                int width = char.IsHighSurrogate(c) && i + 1 < text.Length ? 2 : 1;
                int n = Encoding.UTF8.GetBytes(text.AsSpan(i, width), utf8);
                bytes.AddRange(utf8[..n].ToArray());
                i += width;
                continue;
            }
            if (i + 1 >= text.Length)
            {
                break;
            }
            char e = text[i + 1];
            i += 2;
            switch (e)
            {
                case 'n': bytes.Add((byte)'\n'); break;
                case 'r': bytes.Add((byte)'\r'); break;
                case 't': bytes.Add((byte)'\t'); break;
                case '0': bytes.Add(0); break;
                case '\\': bytes.Add((byte)'\\'); break;
                case '"': bytes.Add((byte)'"'); break;
                case 'x':
                    if (i + 2 > text.Length || !byte.TryParse(text.AsSpan(i, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte b))
                    {
                        throw new CommandSyntaxException("\\x needs two hex digits, as in \\x7f");
                    }
                    bytes.Add(b);
                    i += 2;
                    break;
                case 'u':
                    int close = text.IndexOf('}', i);
                    if (i >= text.Length || text[i] != '{' || close < 0
                        || !int.TryParse(text.AsSpan(i + 1, close - i - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int cp)
                        || cp > 0x10FFFF || cp is >= 0xD800 and <= 0xDFFF)
                    {
                        throw new CommandSyntaxException("\\u needs a code point in braces, as in \\u{1F40E}");
                    }
                    bytes.AddRange(Encoding.UTF8.GetBytes(char.ConvertFromUtf32(cp)));
                    i = close + 1;
                    break;
                default:
                    throw new CommandSyntaxException($"unknown escape \\{e}");
            }
        }
        throw new CommandSyntaxException("missing closing quote");
    }

    private static int IndexOfWhiteSpace(string text, int from)
    {
        for (int i = from; i < text.Length; i++)
        {
            if (char.IsWhiteSpace(text[i]))
            {
                return i;
            }
        }
        return -1;
    }
}

/// <summary>
/// Prints a value on one line. Plain printable UTF-8 text is printed as it is; anything else
/// (control characters, invalid UTF-8, a leading quote) is printed quoted with the escapes
/// <see cref="CommandLine"/> reads, so every result stays one line and can be pasted back.
/// </summary>
public static class ValueFormatter
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    public static string Format(byte[] value)
    {
        string? text = null;
        try
        {
            text = StrictUtf8.GetString(value);
        }
        catch (DecoderFallbackException)
        {
        }
        if (text is not null && !text.StartsWith('"') && !text.Any(char.IsControl) && text.Length > 0)
        {
            return text;
        }
        return Quote(value);
    }

    public static string Quote(byte[] value)
    {
        var sb = new StringBuilder("\"");
        int i = 0;
        while (i < value.Length)
        {
            byte b = value[i];
            switch (b)
            {
                case (byte)'\n': sb.Append("\\n"); i++; continue;
                case (byte)'\r': sb.Append("\\r"); i++; continue;
                case (byte)'\t': sb.Append("\\t"); i++; continue;
                case 0: sb.Append("\\0"); i++; continue;
                case (byte)'\\': sb.Append("\\\\"); i++; continue;
                case (byte)'"': sb.Append("\\\""); i++; continue;
            }
            if (b < 0x80)
            {
                if (b < 0x20 || b == 0x7F)
                {
                    sb.Append(CultureInfo.InvariantCulture, $"\\x{b:x2}");
                }
                else
                {
                    sb.Append((char)b);
                }
                i++;
                continue;
            }
            // A whole, valid, printable multi-byte character is kept as text; any other byte is \xNN.
            int length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
            string? ch = null;
            if (length > 1 && i + length <= value.Length)
            {
                try
                {
                    ch = StrictUtf8.GetString(value, i, length);
                }
                catch (DecoderFallbackException)
                {
                }
            }
            if (ch is not null && !ch.Any(char.IsControl))
            {
                sb.Append(ch);
                i += length;
            }
            else
            {
                sb.Append(CultureInfo.InvariantCulture, $"\\x{b:x2}");
                i++;
            }
        }
        return sb.Append('"').ToString();
    }
}
