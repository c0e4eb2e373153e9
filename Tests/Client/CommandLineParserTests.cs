using System.Text;
using KvReplica.Client.Cli;
using NUnit.Framework;

namespace KvReplica.Tests.Client;

[TestFixture]
[Category("Unit")]
[Category("ClientUnit")]
public sealed class CommandLineParserTests
{
    private static ParsedCommand Parsed(string line)
    {
        var result = CommandLineParser.ParseLine(line);
        Assert.That(result.Error, Is.Null, $"'{line}' should parse");
        return result.Command!;
    }

    private static string ErrorOf(string line)
    {
        var result = CommandLineParser.ParseLine(line);
        Assert.That(result.Error, Is.Not.Null, $"'{line}' should not parse");
        return result.Error!;
    }

    [TestCase("PUT k v")]
    [TestCase("put k v")]
    [TestCase("  Put\tk   v")]
    public void Command_words_are_case_insensitive_and_blanks_are_flexible(string line)
    {
        var command = Parsed(line);

        Assert.That(command.Kind, Is.EqualTo(CommandKind.Put));
        Assert.That(command.Key, Is.EqualTo("k"));
        Assert.That(command.Value, Is.EqualTo("v"u8.ToArray()));
    }

    [Test]
    public void Unquoted_value_is_the_rest_of_the_line_with_inner_blanks_kept_and_cr_stripped()
    {
        var command = Parsed("PUT greeting hello   big  world\r");

        Assert.That(command.Key, Is.EqualTo("greeting"));
        Assert.That(Encoding.UTF8.GetString(command.Value!), Is.EqualTo("hello   big  world"));
    }

    [TestCase("PUT k   v w", "v w")]
    [TestCase("PUT k v w  ", "v w")]
    [TestCase("PUT k \t v w \t", "v w")]
    [TestCase("PUT k  \" v w \"  ", " v w ")]
    [TestCase("PUT k \u00a0v\u00a0", "\u00a0v\u00a0")]
    public void Blanks_at_both_ends_of_an_unquoted_value_are_dropped_and_a_quoted_value_keeps_them(string line, string value)
    {
        // One rule for both ends (an edge blank cannot be seen on the line); only spaces and tabs
        // are blanks, so a no-break space is kept, and printed escaped (ValueFormatterTests).
        Assert.That(Encoding.UTF8.GetString(Parsed(line).Value!), Is.EqualTo(value));
    }

    [Test]
    public void Unknown_command_echoes_control_characters_escaped()
    {
        var result = CommandLineParser.ParseLine("c\u0001a\u001b[31m v");
        string line = ResultRenderer.Lines(CommandResult.Failed("c\u0001a", null, result.Error!), json: false, oneLine: true).Single();

        Assert.That(line, Is.EqualTo("ERROR unknown command 'c\\x01a\\x1b[31m'; type HELP for the list"));
    }

    [Test]
    public void Quoted_key_may_contain_blanks_and_escapes()
    {
        Assert.That(Parsed("GET \"my key\"").Key, Is.EqualTo("my key"));
        Assert.That(Parsed("DEL \"tab\\there\"").Key, Is.EqualTo("tab\there"));
        Assert.That(Parsed("put \"a b\" c d").Value, Is.EqualTo("c d"u8.ToArray()));
    }

    [Test]
    public void Quoted_value_understands_every_escape()
    {
        var command = Parsed(@"PUT k ""n\n r\r t\t b\\ q\"" z\0 x\xff\x41 u\u{e9}\u{1F600}""  ");

        byte[] expected =
        [
            .. "n\n r\r t\t b\\ q\" z"u8, 0, .. " x"u8, 0xff, 0x41, .. " u"u8, .. Encoding.UTF8.GetBytes("\u00e9\U0001F600"),
        ];
        Assert.That(command.Value, Is.EqualTo(expected));
    }

    [Test]
    public void Empty_quoted_value_is_an_empty_value()
    {
        Assert.That(Parsed("PUT k \"\"").Value, Is.Empty);
    }

    [TestCase("")]
    [TestCase("   \t ")]
    [TestCase("# a comment")]
    [TestCase("   # indented comment")]
    [TestCase("\r")]
    public void Blank_and_comment_lines_are_skipped(string line)
    {
        Assert.That(CommandLineParser.ParseLine(line).IsSkipped, Is.True);
    }

    [TestCase("help", nameof(CommandKind.Help))]
    [TestCase("?", nameof(CommandKind.Help))]
    [TestCase("Exit", nameof(CommandKind.Exit))]
    [TestCase("QUIT", nameof(CommandKind.Exit))]
    [TestCase("delete k", nameof(CommandKind.Delete))]
    [TestCase("DEL k", nameof(CommandKind.Delete))]
    [TestCase("get k", nameof(CommandKind.Get))]
    public void Command_words_map_to_kinds(string line, string kind)
    {
        // The kind by name: CommandKind is internal to the CLI, and a test method must be public.
        Assert.That(Parsed(line).Kind, Is.EqualTo(Enum.Parse<CommandKind>(kind)));
    }

    [TestCase("FROB k", "unknown command 'FROB'")]
    [TestCase("GET", "GET needs a key")]
    [TestCase("GET a b", "GET takes one key")]
    [TestCase("PUT k", "PUT needs a key and a value")]
    [TestCase("PUT k \"open", "unterminated quoted string")]
    [TestCase("PUT k \"a\\q\"", "unknown escape \\q")]
    [TestCase("PUT k \"\\x4\"", "\\x needs exactly two hex digits")]
    [TestCase("PUT k \"\\u{110000}\"", "not a Unicode scalar value")]
    [TestCase("PUT k \"\\u{d800}\"", "not a Unicode scalar value")]
    [TestCase("PUT k \"\\u41\"", "\\u needs 1 to 6 hex digits")]
    [TestCase("PUT k \"a\" trailing", "unexpected text after the closing quote of the value")]
    [TestCase("GET \"a\"b", "unexpected text after a closing quote (put a blank between words)")]
    [TestCase("GET \"\\xff\"", "key is not valid UTF-8")]
    [TestCase("PUT k \"ends with backslash\\", "unterminated escape")]
    public void Bad_lines_give_a_one_line_reason(string line, string reason)
    {
        string error = ErrorOf(line);
        Assert.That(error, Does.Contain(reason));
        Assert.That(error, Does.Not.Contain("\n"));
    }

    [Test]
    public void One_shot_arguments_join_the_value_and_read_quotes()
    {
        var put = CliApplication.ParseOneShot("put", ["k", "hello", "world"], out _);
        var quoted = CliApplication.ParseOneShot("put", ["\"my key\"", "\"a\\nb\""], out _);
        var missing = CliApplication.ParseOneShot("put", ["k"], out string? error);

        Assert.That(put!.Value, Is.EqualTo("hello world"u8.ToArray()));
        Assert.That(quoted!.Key, Is.EqualTo("my key"));
        Assert.That(quoted.Value, Is.EqualTo("a\nb"u8.ToArray()));
        Assert.That(missing, Is.Null);
        Assert.That(error, Does.Contain("put needs a key and a value"));
    }
}

[TestFixture]
[Category("Unit")]
[Category("ClientUnit")]
public sealed class ValueFormatterTests
{
    [TestCase("hello world")]
    [TestCase("héllo \u20ac \U0001F600")]
    [TestCase("a\"quote inside")]
    [TestCase("#not a comment")]
    public void Printable_text_is_printed_as_it_is(string text)
    {
        Assert.That(ValueFormatter.Format(Encoding.UTF8.GetBytes(text)), Is.EqualTo(text));
    }

    [TestCase(new byte[] { (byte)'a', (byte)'\n', (byte)'b' }, "\"a\\nb\"")]
    [TestCase(new byte[] { (byte)'"', (byte)'x' }, "\"\\\"x\"")]
    [TestCase(new byte[] { 0, 1, 0x7f, (byte)'\t', (byte)'\r', (byte)'\\' }, "\"\\0\\x01\\x7f\\t\\r\\\\\"")]
    [TestCase(new byte[] { 0xff, (byte)'A', 0xc3 }, "\"\\xffA\\xc3\"")]
    [TestCase(new byte[] { 0xc2, 0x85 }, "\"\\u{85}\"")]
    [TestCase(new byte[] { 0xe2, 0x80, 0xa8 }, "\"\\u{2028}\"")]
    [TestCase(new byte[] { (byte)' ', (byte)'x' }, "\" x\"")]
    [TestCase(new byte[] { (byte)'x', (byte)' ' }, "\"x \"")]
    [TestCase(new byte[0], "\"\"")]
    public void Unprintable_or_ambiguous_values_are_quoted_with_escapes(byte[] value, string expected)
    {
        Assert.That(ValueFormatter.Format(value), Is.EqualTo(expected));
    }

    [TestCase("\u00a0x", "\"\\u{a0}x\"")]
    [TestCase("x\u3000", "\"x\\u{3000}\"")]
    [TestCase("\ufeffx", "\"\\u{feff}x\"")]
    [TestCase("x\u200b", "\"x\\u{200b}\"")]
    [TestCase("\u200fx", "\"\\u{200f}x\"")]
    [TestCase(" \u2003x \u00a0", "\" \\u{2003}x \\u{a0}\"")]
    [TestCase("\u3164", "\"\\u{3164}\"")]
    [TestCase("a\u202eb", "\"a\\u{202e}b\"")]
    [TestCase("a\u2066b\u2069", "\"a\\u{2066}b\\u{2069}\"")]
    [TestCase("\u00a0a\u00a0b\u00a0", "\"\\u{a0}a\u00a0b\\u{a0}\"")]
    public void Invisible_characters_at_the_edges_and_bidi_controls_anywhere_are_printed_escaped(string text, string expected)
    {
        Assert.That(ValueFormatter.Format(Encoding.UTF8.GetBytes(text)), Is.EqualTo(expected));
    }

    [TestCase("10\u00a0\u20ac")]
    [TestCase("\U0001F468\u200D\U0001F469")]
    public void Invisible_characters_inside_a_value_are_printed_as_they_are(string text)
    {
        Assert.That(ValueFormatter.Format(Encoding.UTF8.GetBytes(text)), Is.EqualTo(text));
    }

    [Test]
    public void Escaping_for_echoes_escapes_only_unprintable_characters()
    {
        Assert.That(ValueFormatter.EscapeUnprintable("plain \\u{e9} text"), Is.EqualTo("plain \\u{e9} text"));
        Assert.That(ValueFormatter.EscapeUnprintable("a\u001b[2Jb\tc\u0000\u0085\u202e" + '\ud800'),
            Is.EqualTo("a\\x1b[2Jb\\tc\\0\\u{85}\\u{202e}\\u{d800}"));
    }

    [TestCase("OK")]
    [TestCase("(not found)")]
    [TestCase("ERROR something")]
    public void Values_that_look_like_status_lines_are_quoted(string text)
    {
        Assert.That(ValueFormatter.Format(Encoding.UTF8.GetBytes(text)), Is.EqualTo($"\"{text}\""));
    }

    [FsCheck.NUnit.Property(MaxTest = 1000)]
    public bool Formatting_then_parsing_a_put_line_gives_back_the_same_bytes(byte[] value)
    {
        value ??= [];
        string formatted = ValueFormatter.Format(value);
        var parsed = CommandLineParser.ParseLine("PUT k " + formatted);
        return !formatted.Contains('\n') && !formatted.Contains('\r')
            && parsed.Command is { Kind: CommandKind.Put } command && command.Value!.AsSpan().SequenceEqual(value);
    }

    [FsCheck.NUnit.Property(MaxTest = 1000)]
    public bool Formatting_then_parsing_text_gives_back_the_same_bytes(string text)
    {
        byte[] value = Encoding.UTF8.GetBytes(text ?? "");
        return CommandLineParser.TryParseValueText(ValueFormatter.Format(value), out byte[] parsed, out _)
            && parsed.AsSpan().SequenceEqual(value);
    }
}
