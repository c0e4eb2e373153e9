using System.Buffers;
using System.Globalization;
using System.Text;

namespace KvReplica.Client.Cli;

/// <summary>
/// Prints values so that every result stays on one line and can be pasted back as input. Pure.
/// </summary>
/// <remarks>
/// <para>A value is printed as it is when it is non-empty valid UTF-8, contains no unprintable
/// character (C0, DEL, C1, U+2028, U+2029, or a bidi control: U+061C, U+200E, U+200F,
/// U+202A–U+202E, U+2066–U+2069, which would reorder what the terminal shows), does not begin
/// with <c>"</c>, does not begin or end with a blank or an invisible character, and cannot be
/// mistaken for a status line (<c>OK</c>, <c>(not found)</c>, <c>ERROR…</c>).</para>
/// <para>Otherwise it is printed as a double-quoted string with the escapes
/// <see cref="CommandLineParser"/> reads: <c>\n \r \t \\ \" \0</c>, <c>\xNN</c> for other ASCII
/// control bytes and for bytes that are not part of valid UTF-8, and <c>\u{HEX}</c> for the other
/// unprintable characters and for every invisible character in the runs of blanks and invisible
/// characters at either end of the value. Invisible means a Unicode White_Space character other
/// than the space (NBSP, U+3000, the U+2000 spaces...), a format character (category Cf: the BOM,
/// zero-width spaces and joiners, the soft hyphen, bidi marks) or a Hangul filler. Inside the
/// value they are printed as they are (a no-break space between words, a joiner in an emoji):
/// only at the edges would they make the value look other than it is.</para>
/// </remarks>
internal static class ValueFormatter
{
    /// <summary>The value as one line of output (no line terminator).</summary>
    public static string Format(ReadOnlySpan<byte> value) => NeedsQuoting(value) ? Quote(value) : Encoding.UTF8.GetString(value);

    /// <summary>
    /// The value (or key) as one word of a result that holds several (MGET, LIST, WATCH): as
    /// <see cref="Format"/> prints it, but quoted also when it contains a blank or starts with
    /// <c>(</c> or <c>|</c>. So the words of such a line are separated by single blanks, and a
    /// word that starts with <c>(</c> is always a marker such as <c>(not found)</c>, never data.
    /// </summary>
    public static string FormatToken(ReadOnlySpan<byte> value) =>
        NeedsQuoting(value) || value.IndexOfAny((byte)' ', (byte)'\t') >= 0 || value[0] is (byte)'(' or (byte)'|'
            ? Quote(value)
            : Encoding.UTF8.GetString(value);

    /// <summary>A key as one word of a result: <see cref="FormatToken(ReadOnlySpan{byte})"/> of its UTF-8.</summary>
    public static string FormatToken(string key) => FormatToken(Encoding.UTF8.GetBytes(key));

    /// <summary>True when <see cref="Format"/> would quote <paramref name="value"/>.</summary>
    public static bool NeedsQuoting(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty || value[0] == (byte)'"' || IsBlank(value[0]) || IsBlank(value[^1]))
        {
            return true;
        }
        if (EdgeRune(value, first: true) is { } head && IsInvisible(head)
            || EdgeRune(value, first: false) is { } tail && IsInvisible(tail))
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
        var (leadingEdge, trailingEdge) = EdgeRuns(value);
        var text = new StringBuilder(value.Length + 2);
        text.Append('"');
        int offset = 0;
        while (offset < value.Length)
        {
            var rest = value[offset..];
            if (Rune.DecodeFromUtf8(rest, out Rune rune, out int used) != OperationStatus.Done)
            {
                // Not valid UTF-8 here: spell out this one byte and resynchronise on the next.
                text.Append("\\x").Append(rest[0].ToString("x2", CultureInfo.InvariantCulture));
                offset++;
                continue;
            }
            bool atEdge = offset < leadingEdge || offset >= trailingEdge;
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
                    if (IsUnprintable(rune) || (atEdge && IsInvisible(rune)))
                    {
                        AppendCodePoint(text, rune.Value);
                    }
                    else
                    {
                        text.Append(rune.ToString());
                    }
                    break;
            }
            offset += used;
        }
        return text.Append('"').ToString();
    }

    /// <summary>
    /// <paramref name="text"/> with every unprintable character (see the remarks) replaced by its
    /// escape, and everything else, backslashes included, as it is. For text that echoes what a
    /// user or a replica sent (error reasons), so that no control or escape sequence reaches the
    /// terminal; not reversible, unlike <see cref="Quote"/>. An unpaired surrogate is escaped too.
    /// </summary>
    public static string EscapeUnprintable(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        StringBuilder? escaped = null;
        int copiedUpTo = 0;
        for (int i = 0; i < text.Length;)
        {
            int used;
            int codePoint;
            if (Rune.DecodeFromUtf16(text.AsSpan(i), out Rune rune, out used) == OperationStatus.Done)
            {
                if (!IsUnprintable(rune))
                {
                    i += used;
                    continue;
                }
                codePoint = rune.Value;
            }
            else
            {
                used = 1;
                codePoint = text[i];
            }
            escaped ??= new StringBuilder(text.Length + 8);
            escaped.Append(text, copiedUpTo, i - copiedUpTo);
            switch (codePoint)
            {
                case '\n': escaped.Append("\\n"); break;
                case '\r': escaped.Append("\\r"); break;
                case '\t': escaped.Append("\\t"); break;
                case 0: escaped.Append("\\0"); break;
                case < 0x20 or 0x7f: escaped.Append("\\x").Append(codePoint.ToString("x2", CultureInfo.InvariantCulture)); break;
                default: AppendCodePoint(escaped, codePoint); break;
            }
            i += used;
            copiedUpTo = i;
        }
        return escaped is null ? text : escaped.Append(text, copiedUpTo, text.Length - copiedUpTo).ToString();
    }

    /// <summary>
    /// True for characters that draw nothing visible on their own at the edge of a value: Unicode
    /// White_Space other than the space (which the quotes make visible), format characters
    /// (category Cf) and the Hangul fillers. Used by the prompt's editor too.
    /// </summary>
    public static bool IsInvisible(Rune rune) =>
        rune.Value != ' ' && Rune.IsWhiteSpace(rune)
        || Rune.GetUnicodeCategory(rune) == UnicodeCategory.Format
        || rune.Value is 0x115F or 0x1160 or 0x3164 or 0xFFA0;

    /// <summary>
    /// True for characters that are never printed as they are: C0 and C1 controls, DEL, the line and
    /// paragraph separators, and the bidi controls that reorder the text around them.
    /// </summary>
    public static bool IsUnprintable(Rune rune) =>
        Rune.IsControl(rune)
        || rune.Value is 0x2028 or 0x2029 or 0x061C or 0x200E or 0x200F or (>= 0x202A and <= 0x202E) or (>= 0x2066 and <= 0x2069);

    private static void AppendCodePoint(StringBuilder text, int codePoint) =>
        text.Append("\\u{").Append(codePoint.ToString("x", CultureInfo.InvariantCulture)).Append('}');

    // The first or last character of the value, or null when that end is not valid UTF-8.
    private static Rune? EdgeRune(ReadOnlySpan<byte> value, bool first)
    {
        var status = first ? Rune.DecodeFromUtf8(value, out Rune rune, out _) : Rune.DecodeLastFromUtf8(value, out rune, out _);
        return status == OperationStatus.Done ? rune : null;
    }

    // The byte offsets where the leading run of blanks and invisible characters ends and where
    // the trailing run starts (value.Length when there is none).
    private static (int LeadingEnd, int TrailingStart) EdgeRuns(ReadOnlySpan<byte> value)
    {
        int leadingEnd = 0;
        while (leadingEnd < value.Length
            && Rune.DecodeFromUtf8(value[leadingEnd..], out Rune rune, out int used) == OperationStatus.Done
            && (rune.Value is ' ' or '\t' || IsInvisible(rune)))
        {
            leadingEnd += used;
        }
        int trailingStart = value.Length;
        while (trailingStart > leadingEnd
            && Rune.DecodeLastFromUtf8(value[..trailingStart], out Rune rune, out int used) == OperationStatus.Done
            && (rune.Value is ' ' or '\t' || IsInvisible(rune)))
        {
            trailingStart -= used;
        }
        return (leadingEnd, trailingStart);
    }

    private static bool IsBlank(byte b) => b is (byte)' ' or (byte)'\t';
}
