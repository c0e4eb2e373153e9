using System.Buffers;
using System.Globalization;
using System.Text;

namespace KvReplica.Client.Cli;

/// <summary>
/// Prints values so that every result stays on one line and can be pasted back as input. Pure.
/// </summary>
/// <remarks>
/// A value is printed as it is when it is non-empty valid UTF-8, contains no control characters
/// (C0, DEL, C1, U+2028, U+2029), does not begin with <c>"</c>, does not begin or end with a blank,
/// and cannot be mistaken for a status line (<c>OK</c>, <c>(not found)</c>, <c>ERROR…</c>).
/// Otherwise it is printed as a double-quoted string with the escapes <see cref="CommandLineParser"/>
/// reads: <c>\n \r \t \\ \" \0</c>, <c>\xNN</c> for other ASCII control bytes and for bytes that are
/// not part of valid UTF-8, and <c>\u{HEX}</c> for non-ASCII control and line-separator characters.
/// </remarks>
internal static class ValueFormatter
{
    /// <summary>The value as one line of output (no line terminator).</summary>
    public static string Format(ReadOnlySpan<byte> value) => NeedsQuoting(value) ? Quote(value) : Encoding.UTF8.GetString(value);

    /// <summary>True when <see cref="Format"/> would quote <paramref name="value"/>.</summary>
    public static bool NeedsQuoting(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty || value[0] == (byte)'"' || IsBlank(value[0]) || IsBlank(value[^1]))
        {
            return true;
        }
        if (value.SequenceEqual("OK"u8) || value.SequenceEqual("(not found)"u8) || value.StartsWith("ERROR"u8))
        {
            return true;
        }
        var rest = value;
        while (!rest.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(rest, out Rune rune, out int used) != OperationStatus.Done || IsUnprintable(rune))
            {
                return true;
            }
            rest = rest[used..];
        }
        return false;
    }

    /// <summary>The value as a double-quoted string, escaped so that it parses back to the same bytes.</summary>
    public static string Quote(ReadOnlySpan<byte> value)
    {
        var text = new StringBuilder(value.Length + 2);
        text.Append('"');
        while (!value.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(value, out Rune rune, out int used) != OperationStatus.Done)
            {
                // Not valid UTF-8 here: spell out this one byte and resynchronise on the next.
                text.Append("\\x").Append(value[0].ToString("x2", CultureInfo.InvariantCulture));
                value = value[1..];
                continue;
            }
            switch (rune.Value)
            {
                case '\n': text.Append("\\n"); break;
                case '\r': text.Append("\\r"); break;
                case '\t': text.Append("\\t"); break;
                case '\\': text.Append("\\\\"); break;
                case '"': text.Append("\\\""); break;
                case 0: text.Append("\\0"); break;
                case < 0x20 or 0x7f:
                    text.Append("\\x").Append(rune.Value.ToString("x2", CultureInfo.InvariantCulture));
                    break;
                default:
                    if (IsUnprintable(rune))
                    {
                        text.Append("\\u{").Append(rune.Value.ToString("x", CultureInfo.InvariantCulture)).Append('}');
                    }
                    else
                    {
                        text.Append(rune.ToString());
                    }
                    break;
            }
            value = value[used..];
        }
        return text.Append('"').ToString();
    }

    private static bool IsBlank(byte b) => b is (byte)' ' or (byte)'\t';

    private static bool IsUnprintable(Rune rune) => Rune.IsControl(rune) || rune.Value is 0x2028 or 0x2029;
}
