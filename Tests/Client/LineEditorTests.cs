using KvReplica.Client.Cli;
using KvReplica.Client.Cli.LineEditing;
using NUnit.Framework;

namespace KvReplica.Tests.Client;

/// <summary>Keys as a terminal reports them, for driving the editor without one.</summary>
internal static class Keys
{
    public static readonly ConsoleKeyInfo Left = Special(ConsoleKey.LeftArrow);
    public static readonly ConsoleKeyInfo Right = Special(ConsoleKey.RightArrow);
    public static readonly ConsoleKeyInfo CtrlLeft = Special(ConsoleKey.LeftArrow, control: true);
    public static readonly ConsoleKeyInfo CtrlRight = Special(ConsoleKey.RightArrow, control: true);
    public static readonly ConsoleKeyInfo Home = Special(ConsoleKey.Home);
    public static readonly ConsoleKeyInfo End = Special(ConsoleKey.End);
    public static readonly ConsoleKeyInfo Up = Special(ConsoleKey.UpArrow);
    public static readonly ConsoleKeyInfo Down = Special(ConsoleKey.DownArrow);
    public static readonly ConsoleKeyInfo Delete = Special(ConsoleKey.Delete);
    public static readonly ConsoleKeyInfo Backspace = new('\u007f', ConsoleKey.Backspace, false, false, false);
    public static readonly ConsoleKeyInfo Enter = new('\r', ConsoleKey.Enter, false, false, false);
    public static readonly ConsoleKeyInfo Tab = new('\t', ConsoleKey.Tab, false, false, false);
    public static readonly ConsoleKeyInfo Escape = new('\u001b', ConsoleKey.Escape, false, false, false);

    /// <summary>Ctrl+letter, reported with the Control modifier and its control character.</summary>
    public static ConsoleKeyInfo Ctrl(char letter) =>
        new((char)(char.ToUpperInvariant(letter) - 'A' + 1), ConsoleKey.A + (char.ToUpperInvariant(letter) - 'A'), false, false, true);

    /// <summary>A control character with no key or modifier, as some terminals report it.</summary>
    public static ConsoleKeyInfo Raw(char c) => new(c, 0, false, false, false);

    public static ConsoleKeyInfo Alt(char letter) =>
        new(letter, ConsoleKey.A + (char.ToUpperInvariant(letter) - 'A'), false, true, false);

    public static IEnumerable<ConsoleKeyInfo> Text(string text) => text.Select(c => new ConsoleKeyInfo(c,
        char.IsAsciiLetter(c) ? ConsoleKey.A + (char.ToUpperInvariant(c) - 'A') : c == ' ' ? ConsoleKey.Spacebar : 0,
        char.IsAsciiLetterUpper(c), false, false));

    private static ConsoleKeyInfo Special(ConsoleKey key, bool control = false) => new('\0', key, false, false, control);
}

[TestFixture]
[Category("Unit")]
[Category("ClientUnit")]
public sealed class LineEditorTests
{
    private static LineEditor NewEditor(params string[] history)
    {
        var kept = new History(capacity: 100);
        foreach (string line in history)
        {
            kept.Add(line);
        }
        var editor = new LineEditor(kept, CommandLineParser.WordsAfter);
        editor.Begin();
        return editor;
    }

    // Feeds the keys; each argument is a string (typed) or a ConsoleKeyInfo. Returns the last outcome.
    private static EditOutcome Feed(LineEditor editor, params object[] keys)
    {
        var outcome = EditOutcome.Redraw;
        foreach (object key in keys)
        {
            foreach (var k in key is string text ? Keys.Text(text) : [(ConsoleKeyInfo)key])
            {
                outcome = editor.Apply(k);
            }
        }
        return outcome;
    }

    // The line with a | at the cursor.
    private static string Shown(LineEditor editor) => editor.Text.Insert(editor.Cursor, "|");

    [Test]
    public void Typing_inserts_at_the_cursor_which_the_arrows_home_and_end_move()
    {
        var editor = NewEditor();

        Feed(editor, "UT k helo", Keys.Home, "P", Keys.End, Keys.Left, "l", Keys.Right, Keys.Right);

        Assert.That(Shown(editor), Is.EqualTo("PUT k hello|"));
        Feed(editor, Keys.Ctrl('a'));
        Assert.That(Shown(editor), Is.EqualTo("|PUT k hello"));
        Feed(editor, Keys.Ctrl('f'), Keys.Ctrl('f'), Keys.Ctrl('b'));
        Assert.That(Shown(editor), Is.EqualTo("P|UT k hello"));
        Feed(editor, Keys.Ctrl('e'));
        Assert.That(Shown(editor), Is.EqualTo("PUT k hello|"));
    }

    [Test]
    public void Kill_keys_remove_to_the_end_to_the_start_and_the_word_before()
    {
        var editor = NewEditor();

        Feed(editor, "PUT key one two", Keys.Ctrl('w'));
        Assert.That(Shown(editor), Is.EqualTo("PUT key one |"));
        Feed(editor, Keys.Ctrl('w'), Keys.Ctrl('w'));
        Assert.That(Shown(editor), Is.EqualTo("PUT |"));
        Feed(editor, "k v", Keys.Left, Keys.Left, Keys.Ctrl('k'));
        Assert.That(Shown(editor), Is.EqualTo("PUT k|"));
        Feed(editor, Keys.Left, Keys.Ctrl('u'));
        Assert.That(Shown(editor), Is.EqualTo("|k"));
        Feed(editor, Keys.Delete);
        Assert.That(Shown(editor), Is.EqualTo("|"));
        Feed(editor, "ab", Keys.Backspace);
        Assert.That(Shown(editor), Is.EqualTo("a|"));
    }

    [Test]
    public void Word_moves_skip_blanks_then_a_word()
    {
        var editor = NewEditor();

        Feed(editor, "GET  some-key", Keys.CtrlLeft);
        Assert.That(Shown(editor), Is.EqualTo("GET  |some-key"));
        Feed(editor, Keys.Alt('b'));
        Assert.That(Shown(editor), Is.EqualTo("|GET  some-key"));
        Feed(editor, Keys.CtrlRight);
        Assert.That(Shown(editor), Is.EqualTo("GET|  some-key"));
        Feed(editor, Keys.Alt('f'));
        Assert.That(Shown(editor), Is.EqualTo("GET  some-key|"));
    }

    [Test]
    public void A_surrogate_pair_or_an_accented_letter_is_one_character_for_the_cursor()
    {
        var editor = NewEditor();

        Feed(editor, "a\U0001F600e\u0301b", Keys.Left, Keys.Left);
        Assert.That(Shown(editor), Is.EqualTo("a\U0001F600|e\u0301b"));
        Feed(editor, Keys.Backspace);
        Assert.That(Shown(editor), Is.EqualTo("a|e\u0301b"));
        Feed(editor, Keys.Delete);
        Assert.That(Shown(editor), Is.EqualTo("a|b"));
    }

    [Test]
    public void Control_characters_never_enter_the_line()
    {
        var editor = NewEditor();

        // The case: PUT c, then a control key, then a v. Unbound control keys, raw control
        // characters, escape sequences and bidi controls are all dropped.
        Feed(editor, "PUT c", Keys.Ctrl('g'), Keys.Ctrl('v'), Keys.Raw('\u001c'), Keys.Raw('\u001b'), Keys.Escape,
            Keys.Raw('\u007f'), Keys.Raw('\u0085'), Keys.Raw('\u202e'), Keys.Raw('\u2028'), Keys.Raw('\0'), Keys.Alt('x'), "a v");

        Assert.That(editor.Text, Is.EqualTo("PUT ca v"));
        Assert.That(editor.Text.Any(char.IsControl), Is.False);
    }

    [Test]
    public void Enter_submits_and_keeps_the_line_in_the_history()
    {
        var editor = NewEditor();

        Assert.That(Feed(editor, "GET a", Keys.Enter), Is.EqualTo(EditOutcome.Submit));
        Assert.That(editor.History.Entries, Is.Empty, "the driver accepts the line once it moved to a new row");
        Assert.That(editor.Accept(), Is.EqualTo("GET a"));
        Assert.That(editor.History.Entries, Is.EqualTo(new[] { "GET a" }));
    }

    [Test]
    public void Ctrl_c_drops_the_line_and_ctrl_d_leaves_only_on_an_empty_line()
    {
        var editor = NewEditor();

        Assert.That(Feed(editor, "PUT k v", Keys.Ctrl('c')), Is.EqualTo(EditOutcome.Cancel));
        Assert.That(Shown(editor), Is.EqualTo("|"));
        Assert.That(Feed(editor, "ab", Keys.Home, Keys.Ctrl('d')), Is.EqualTo(EditOutcome.Redraw));
        Assert.That(Shown(editor), Is.EqualTo("|b"));
        Assert.That(Feed(editor, Keys.Ctrl('d'), Keys.Ctrl('d')), Is.EqualTo(EditOutcome.EndOfInput));
        Assert.That(editor.History.Entries, Is.Empty);
    }

    [Test]
    public void Up_and_down_walk_the_history_and_come_back_to_the_line_being_typed()
    {
        var editor = NewEditor("PUT a 1", "GET a", "DELETE a");

        Feed(editor, "GET b", Keys.Up);
        Assert.That(Shown(editor), Is.EqualTo("DELETE a|"));
        Feed(editor, Keys.Up, Keys.Up, Keys.Up);
        Assert.That(Shown(editor), Is.EqualTo("PUT a 1|"), "the oldest entry stops the walk");
        Feed(editor, Keys.Down, Keys.Ctrl('n'));
        Assert.That(Shown(editor), Is.EqualTo("DELETE a|"));
        Feed(editor, Keys.Down);
        Assert.That(Shown(editor), Is.EqualTo("GET b|"));
        Feed(editor, Keys.Down, Keys.Ctrl('p'));
        Assert.That(Shown(editor), Is.EqualTo("DELETE a|"));
    }

    [Test]
    public void Ctrl_r_finds_older_matches_and_enter_runs_the_match()
    {
        var editor = NewEditor("PUT a 1", "GET a", "PUT b 2", "GET b");

        Feed(editor, Keys.Ctrl('r'), "pu");
        Assert.That(editor.Searching, Is.True);
        Assert.That(editor.Prompt("kv> "), Is.EqualTo("(reverse-i-search)'pu': "));
        Assert.That(Shown(editor), Is.EqualTo("|PUT b 2"));
        Feed(editor, Keys.Ctrl('r'));
        Assert.That(Shown(editor), Is.EqualTo("|PUT a 1"));
        Feed(editor, Keys.Ctrl('r'));
        Assert.That(Shown(editor), Is.EqualTo("|PUT a 1"), "no older match: the last one stays");
        Feed(editor, "x");
        Assert.That(editor.Prompt("kv> "), Is.EqualTo("(failing reverse-i-search)'pux': "));
        Feed(editor, Keys.Backspace);
        Assert.That(Shown(editor), Is.EqualTo("|PUT b 2"), "a shorter query searches again from the newest");

        Assert.That(Feed(editor, Keys.Enter), Is.EqualTo(EditOutcome.Submit));
        Assert.That(editor.Text, Is.EqualTo("PUT b 2"));
        Assert.That(editor.Prompt("kv> "), Is.EqualTo("kv> "));
    }

    [Test]
    public void An_editing_key_takes_the_match_into_the_line_and_escape_restores_the_line()
    {
        var editor = NewEditor("PUT a 1", "GET a");

        Feed(editor, "DEL", Keys.Ctrl('r'), "a 1", Keys.End, " more");
        Assert.That(editor.Searching, Is.False);
        Assert.That(Shown(editor), Is.EqualTo("PUT a 1 more|"));

        editor.Begin();
        Feed(editor, "DEL", Keys.Left, Keys.Ctrl('r'), "get", Keys.Escape);
        Assert.That(editor.Searching, Is.False);
        Assert.That(Shown(editor), Is.EqualTo("DE|L"));

    }

    [Test]
    public void After_a_search_up_and_down_go_on_from_the_match()
    {
        var editor = NewEditor("GET z", "PUT a 1", "GET a");

        Feed(editor, "draft", Keys.Ctrl('r'), "put", Keys.Up);
        Assert.That(Shown(editor), Is.EqualTo("GET z|"));
        Feed(editor, Keys.Down, Keys.Down);
        Assert.That(Shown(editor), Is.EqualTo("GET a|"));
        Feed(editor, Keys.Down);
        Assert.That(Shown(editor), Is.EqualTo("draft|"));
    }

    [Test]
    public void Tab_completes_command_words_in_the_case_typed()
    {
        var editor = NewEditor();

        Feed(editor, "ge", Keys.Tab);
        Assert.That(Shown(editor), Is.EqualTo("get |"));
        editor.Begin();
        // PUT is also the start of PUTNX and PUT-IF-ABSENT: Tab extends to it, without the blank.
        Feed(editor, "Pu", Keys.Tab, " k v");
        Assert.That(Shown(editor), Is.EqualTo("PUT k v|"));
        editor.Begin();
        Feed(editor, "USER A", Keys.Tab);
        Assert.That(Shown(editor), Is.EqualTo("USER ADD |"), "USER and ROLE complete their verb");
        editor.Begin();
        Feed(editor, "role d", Keys.Tab);
        Assert.That(Shown(editor), Is.EqualTo("role del|"));
        editor.Begin();
        Feed(editor, "GET ke", Keys.Tab);
        Assert.That(Shown(editor), Is.EqualTo("GET ke|"), "keys are not completed");
    }

    [Test]
    public void Tab_extends_to_the_common_prefix_and_a_second_tab_lists_the_choices()
    {
        var editor = NewEditor();

        Assert.That(Feed(editor, "DE", Keys.Tab), Is.EqualTo(EditOutcome.Redraw));
        Assert.That(Shown(editor), Is.EqualTo("DEL|"));
        Assert.That(Feed(editor, Keys.Tab), Is.EqualTo(EditOutcome.ShowCandidates));
        Assert.That(editor.Candidates, Is.EqualTo(new[] { "DELETE", "DEL" }));
        Assert.That(Shown(editor), Is.EqualTo("DEL|"));

        editor.Begin();
        Assert.That(Feed(editor, "x", Keys.Tab, Keys.Backspace, Keys.Tab), Is.EqualTo(EditOutcome.Redraw),
            "a Tab after another key only completes");
    }

    [Test]
    public void Tab_offers_every_command_word_the_parser_knows()
    {
        // The completer reads the parser's own table: every word it offers parses, and every
        // word of the table is offered on an empty line.
        var editor = NewEditor();
        Feed(editor, Keys.Tab);
        Assert.That(Feed(editor, Keys.Tab), Is.EqualTo(EditOutcome.ShowCandidates));

        Assert.That(editor.Candidates, Is.EqualTo(CommandLineParser.CommandWords));
        Assert.That(editor.Candidates, Is.SupersetOf(new[] { "PUT", "GET", "DELETE", "USER", "ROLE", "HELP", "EXIT" }));
        foreach (string word in CommandLineParser.CommandWords)
        {
            Assert.That(CommandLineParser.ParseLine(word + " k v").Error ?? "", Does.Not.StartWith("unknown command"), word);
        }
    }
}

[TestFixture]
[Category("Unit")]
[Category("ClientUnit")]
public sealed class HistoryTests
{
    private string _directory = "";

    [SetUp]
    public void CreateDirectory() => _directory = Directory.CreateTempSubdirectory("kvclient-history-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, recursive: true);

    [TestCase("USER ADD web s3cret app-writer")]
    [TestCase("user add web s3cret")]
    [TestCase("User   Add web")]
    [TestCase(" GET secret-key")]
    [TestCase("")]
    [TestCase("   ")]
    [TestCase("PUT k \u001b[31m")]
    [TestCase("PUT k \u202e")]
    public void Lines_with_a_password_a_leading_blank_or_an_unprintable_character_are_not_kept(string line)
    {
        var history = new History();

        Assert.That(history.Add(line), Is.False);
        Assert.That(history.Entries, Is.Empty);
    }

    [Test]
    public void A_line_with_an_unpaired_surrogate_is_not_kept()
    {
        Assert.That(History.IsKept("PUT k " + '\ud800'), Is.False);
        Assert.That(History.IsKept("PUT k \ud83d\ude00"), Is.True);
    }

    [Test]
    public void Other_lines_are_kept_once_in_a_row_and_the_oldest_go_beyond_the_capacity()
    {
        var history = new History(capacity: 3);

        foreach (string line in new[] { "GET a", "GET a", "USER DELETE web", "PUT k caf\u00e9 \U0001F600", "GET b", "GET a" })
        {
            history.Add(line);
        }

        Assert.That(history.Entries, Is.EqualTo(new[] { "PUT k caf\u00e9 \U0001F600", "GET b", "GET a" }));
        Assert.That(history.FindBackward("get", 3), Is.EqualTo(2));
        Assert.That(history.FindBackward("get", 2), Is.EqualTo(1));
        Assert.That(history.FindBackward("CAF", 3), Is.EqualTo(0));
        Assert.That(history.FindBackward("zzz", 3), Is.EqualTo(-1));
    }

    [Test]
    public void The_file_keeps_the_history_across_sessions_owner_only_and_never_a_password()
    {
        string path = Path.Combine(_directory, HistoryFile.FileName);
        var warnings = new List<string>();
        var first = new History(10, new HistoryFile(path, warnings.Add));
        first.Add("PUT a 1");
        first.Add("USER ADD web hunter2 app");
        first.Add("GET a");

        var second = new History(10, new HistoryFile(path, warnings.Add));

        Assert.That(second.Entries, Is.EqualTo(new[] { "PUT a 1", "GET a" }));
        Assert.That(File.ReadAllText(path), Is.EqualTo("PUT a 1\nGET a\n"));
        Assert.That(File.ReadAllText(path), Does.Not.Contain("hunter2"));
        if (!OperatingSystem.IsWindows())
        {
            Assert.That(File.GetUnixFileMode(path), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        }
        Assert.That(warnings, Is.Empty);
    }

    [Test]
    public void The_file_stays_bounded_and_lines_edited_into_it_by_hand_are_filtered()
    {
        string path = Path.Combine(_directory, HistoryFile.FileName);
        File.WriteAllText(path, "GET ok\nPUT k \u001b]0;pwned\u0007\nUSER ADD x pw\n");
        var history = new History(5, new HistoryFile(path, _ => { }));
        Assert.That(history.Entries, Is.EqualTo(new[] { "GET ok" }));

        for (int i = 0; i < 40; i++)
        {
            history.Add($"GET k{i}");
        }

        Assert.That(File.ReadAllLines(path).Length, Is.LessThanOrEqualTo(10));
        Assert.That(new History(5, new HistoryFile(path, _ => { })).Entries, Is.EqualTo(Enumerable.Range(35, 5).Select(i => $"GET k{i}")));
    }

    [Test]
    public void An_unwritable_file_is_reported_once_and_the_history_goes_on_in_memory()
    {
        string path = Path.Combine(_directory, "missing-directory", HistoryFile.FileName);
        var warnings = new List<string>();
        var history = new History(10, new HistoryFile(path, warnings.Add));

        history.Add("GET a");
        history.Add("GET b");

        Assert.That(history.Entries, Is.EqualTo(new[] { "GET a", "GET b" }));
        Assert.That(warnings, Has.Count.EqualTo(1));
        Assert.That(warnings[0], Does.StartWith("history: cannot write ").And.Contain(path));
    }
}

[TestFixture]
[Category("Unit")]
[Category("ClientUnit")]
public sealed class TerminalLineReaderTests
{
    private sealed class FakeTerminal(IEnumerable<ConsoleKeyInfo> keys, int columns) : ITerminal
    {
        private readonly Queue<ConsoleKeyInfo> _keys = new(keys);

        public int Columns => columns;

        public TextWriter Output { get; } = new StringWriter();

        public ConsoleKeyInfo ReadKey() => _keys.Count > 0 ? _keys.Dequeue() : throw new EndOfStreamException();

        public IDisposable CatchControlC()
        {
            return new StringWriter();
        }
    }

    private static (string? Line, string Written) Read(int columns, params object[] keys)
    {
        var terminal = new FakeTerminal(keys.SelectMany(k => k is string text ? Keys.Text(text) : [(ConsoleKeyInfo)k]), columns);
        var reader = new TerminalLineReader(terminal, new LineEditor(new History(), CommandLineParser.WordsAfter));
        string? line = reader.ReadLine("kv> ");
        return (line, terminal.Output.ToString()!);
    }

    [Test]
    public void Each_key_redraws_the_line_with_vt100_sequences_only()
    {
        var (line, written) = Read(80, "GT", Keys.Left, "E", Keys.Enter);

        Assert.That(line, Is.EqualTo("GET"));
        // After the Left and the E: prompt, line, erase to end of row, cursor to column 6.
        Assert.That(written, Does.Contain("\rkv> GET\u001b[K\r\u001b[6C"));
        Assert.That(written, Does.EndWith("\rkv> GET\u001b[K\r\u001b[7C\n"));
        Assert.That(written.Replace("\u001b[K", "").Replace("\u001b[6C", "").Replace("\u001b[7C", "").Replace("\u001b[5C", "").Replace("\u001b[4C", ""),
            Does.Not.Contain("\u001b"), "no other escape sequence");
    }

    [Test]
    public void Control_keys_are_not_echoed()
    {
        var (line, written) = Read(80, "PUT c", Keys.Ctrl('v'), Keys.Raw('\u0007'), "a v", Keys.Enter);

        Assert.That(line, Is.EqualTo("PUT ca v"));
        Assert.That(written.Where(c => char.IsControl(c) && c is not ('\r' or '\n' or '\u001b')), Is.Empty);
    }

    [Test]
    public void A_long_line_scrolls_sideways_to_keep_the_cursor_in_view()
    {
        var (_, written) = Read(20, "PUT key 0123456789abcdef", Keys.Home, Keys.Enter);

        var frames = written.Split('\r', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(frames, Does.Contain("kv> 23456789abcdef\u001b[K"), "cursor at the end: the end is shown");
        Assert.That(frames, Does.Contain("kv> PUT key 0123456\u001b[K"), "after Home the start is shown, cut to 15 columns");
        Assert.That(frames.Where(f => f.StartsWith("kv> ", StringComparison.Ordinal)).Max(f => f.Replace("\u001b[K", "").Length), Is.LessThanOrEqualTo(19));
    }

    [Test]
    public void Ctrl_c_marks_the_dropped_line_and_prompts_again_and_ctrl_d_returns_null()
    {
        var (line, written) = Read(80, "PUT k v", Keys.Ctrl('c'), Keys.Ctrl('d'));

        Assert.That(line, Is.Null);
        Assert.That(written, Does.Contain("kv> PUT k v\u001b[K\r\u001b[11C^C\n\rkv> \u001b[K\r\u001b[4C"));
        Assert.That(written, Does.EndWith("\n"));
    }

    [Test]
    public void A_second_tab_lists_the_choices_on_their_own_row()
    {
        var (_, written) = Read(80, "DE", Keys.Tab, Keys.Tab, Keys.Enter);

        Assert.That(written, Does.Contain("\nDELETE  DEL\n\rkv> DEL\u001b[K"));
    }
}

[TestFixture]
[Category("Unit")]
[Category("ClientUnit")]
public sealed class LineViewTests
{
    [TestCase("abc", 1, 10, "abc", 5)]
    [TestCase("0123456789", 10, 10, "6789", 8)]
    [TestCase("0123456789", 0, 10, "01234", 4)]
    [TestCase("\u4e2d\u6587x", 2, 20, "\u4e2d\u6587x", 8)]
    [TestCase("e\u0301e\u0301", 4, 20, "e\u0301e\u0301", 6)]
    public void Fits_the_line_and_places_the_cursor(string text, int cursor, int columns, string visible, int cursorColumn)
    {
        Assert.That(LineView.Fit(text, cursor, promptColumns: 4, columns), Is.EqualTo((visible, cursorColumn)));
    }
}
