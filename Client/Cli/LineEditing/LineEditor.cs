using System.Text;

namespace KvReplica.Client.Cli.LineEditing;

/// <summary>What a key did to the line, for the terminal driver.</summary>
internal enum EditOutcome
{
    /// <summary>The line, the cursor or the search may have changed: redraw.</summary>
    Redraw,

    /// <summary>Enter: <see cref="LineEditor.Text"/> is the line to run; <see cref="LineEditor.Accept"/> takes it.</summary>
    Submit,

    /// <summary>Ctrl+C: the line was dropped; start a new one.</summary>
    Cancel,

    /// <summary>Ctrl+D on an empty line: the user leaves.</summary>
    EndOfInput,

    /// <summary>A second Tab with several completions: show <see cref="LineEditor.Candidates"/>, then redraw.</summary>
    ShowCandidates,
}

/// <summary>
/// The prompt's line editor as a state machine: it takes one key at a time and keeps the line, the
/// cursor, the place in the history and the state of a history search. No terminal: the driver
/// (<see cref="TerminalLineReader"/>) reads keys and draws <see cref="Prompt"/>, <see cref="Text"/>
/// and <see cref="Cursor"/>.
/// </summary>
/// <remarks>
/// <para>Keys (emacs-style, as in bash): Left/Right or Ctrl+B/F move one character,
/// Ctrl+Left/Right or Alt+B/F one word; Home/End or Ctrl+A/E to the start or end; Backspace and
/// Delete remove a character; Ctrl+K removes to the end, Ctrl+U to the start, Ctrl+W the word
/// before the cursor; Up/Down or Ctrl+P/N walk the history (the line being typed is kept and comes
/// back below the newest entry); Ctrl+R searches the history backwards for the text typed next
/// (Ctrl+R again: an older match; Enter runs the match; Esc or Ctrl+G goes back to the line as it
/// was; any other editing key takes the match into the line and acts on it); Tab completes the
/// command word (and the ADD or DELETE after USER or ROLE), a second Tab lists the choices;
/// Ctrl+C drops the line; Ctrl+D leaves on an empty line and deletes the character under the
/// cursor otherwise; Enter runs the line.</para>
/// <para>No control character ever enters the line: a control key that is not bound above is
/// ignored, and so is any character <see cref="ValueFormatter.IsUnprintable"/> refuses (bidi
/// controls, line separators). Such characters can still be written as escapes in a quoted key
/// or value.</para>
/// </remarks>
internal sealed class LineEditor(History history, Func<IReadOnlyList<string>, IReadOnlyList<string>> wordsAfter)
{
    private readonly LineBuffer _line = new();
    private int _historyIndex;
    private string _draft = "";
    private char _pendingHighSurrogate;
    private bool _lastWasTab;

    // Reverse search: the query (null when not searching), the history entry it matched (or the
    // end of the history, before any match) and the line to restore on Esc.
    private StringBuilder? _query;
    private int _searchIndex;
    private bool _searchFailed;
    private string _lineBeforeSearch = "";
    private int _cursorBeforeSearch;

    public string Text => _line.Text;

    public int Cursor => _line.Cursor;

    /// <summary>True while a Ctrl+R search is under way.</summary>
    public bool Searching => _query is not null;

    /// <summary>The completions a second Tab found (after <see cref="EditOutcome.ShowCandidates"/>).</summary>
    public IReadOnlyList<string> Candidates { get; private set; } = [];

    public History History { get; } = history;

    /// <summary>What to show before the line: <paramref name="normal"/>, or the search's own prompt while searching.</summary>
    public string Prompt(string normal) => _query is null
        ? normal
        : $"({(_searchFailed ? "failing " : "")}reverse-i-search)'{_query}': ";

    /// <summary>Starts a new, empty line at the bottom of the history.</summary>
    public void Begin()
    {
        _line.Set("");
        _historyIndex = History.Entries.Count;
        _draft = "";
        _pendingHighSurrogate = '\0';
        _lastWasTab = false;
        _query = null;
        _searchFailed = false;
        Candidates = [];
    }

    /// <summary>Applies one key; see the remarks for what each does.</summary>
    public EditOutcome Apply(ConsoleKeyInfo key)
    {
        bool tab = key.Key == ConsoleKey.Tab || key.KeyChar == '\t';
        try
        {
            return _query is null ? Edit(key) : Search(key);
        }
        finally
        {
            _lastWasTab = tab;
        }
    }

    private EditOutcome Edit(ConsoleKeyInfo key)
    {
        bool control = (key.Modifiers & ConsoleModifiers.Control) != 0;
        bool alt = (key.Modifiers & ConsoleModifiers.Alt) != 0;
        switch (key.Key)
        {
            case ConsoleKey.Enter:
                return EditOutcome.Submit;
            case ConsoleKey.LeftArrow:
                _ = control || alt ? _line.MoveWordLeft() : _line.MoveLeft();
                return EditOutcome.Redraw;
            case ConsoleKey.RightArrow:
                _ = control || alt ? _line.MoveWordRight() : _line.MoveRight();
                return EditOutcome.Redraw;
            case ConsoleKey.Home:
                _line.MoveHome();
                return EditOutcome.Redraw;
            case ConsoleKey.End:
                _line.MoveEnd();
                return EditOutcome.Redraw;
            case ConsoleKey.UpArrow:
                return Older();
            case ConsoleKey.DownArrow:
                return Newer();
            case ConsoleKey.Backspace when control || alt:
                _line.KillWordBackward();
                return EditOutcome.Redraw;
            case ConsoleKey.Backspace:
                _line.DeleteBackward();
                return EditOutcome.Redraw;
            case ConsoleKey.Delete:
                _line.DeleteForward();
                return EditOutcome.Redraw;
            case ConsoleKey.Tab:
                return Complete();
        }
        if (alt && key.Key == ConsoleKey.B)
        {
            _line.MoveWordLeft();
            return EditOutcome.Redraw;
        }
        if (alt && key.Key == ConsoleKey.F)
        {
            _line.MoveWordRight();
            return EditOutcome.Redraw;
        }
        if (ControlLetter(key) is { } letter)
        {
            return Control(letter);
        }
        if (alt)
        {
            // Alt with anything else is an unbound escape sequence: its character is not text.
            return EditOutcome.Redraw;
        }
        return Type(key.KeyChar);
    }

    private EditOutcome Control(char letter)
    {
        switch (letter)
        {
            case 'A': _line.MoveHome(); break;
            case 'E': _line.MoveEnd(); break;
            case 'B': _line.MoveLeft(); break;
            case 'F': _line.MoveRight(); break;
            case 'K': _line.KillToEnd(); break;
            case 'U': _line.KillToStart(); break;
            case 'W': _line.KillWordBackward(); break;
            case 'H': _line.DeleteBackward(); break;
            case 'P': return Older();
            case 'N': return Newer();
            case 'R': return StartSearch();
            case 'C':
                Begin();
                return EditOutcome.Cancel;
            case 'D':
                if (_line.Length == 0)
                {
                    return EditOutcome.EndOfInput;
                }
                _line.DeleteForward();
                break;
            case 'J' or 'M':
                return EditOutcome.Submit;
            case 'I':
                return Complete();
            default:
                // Every other control key is ignored: it must not reach the line (a key named
                // c^Aa would be stored with a raw U+0001 in it).
                break;
        }
        return EditOutcome.Redraw;
    }

    // A printable character typed or pasted. Surrogate pairs arrive as two keys.
    private EditOutcome Type(char c)
    {
        if (char.IsHighSurrogate(c))
        {
            _pendingHighSurrogate = c;
            return EditOutcome.Redraw;
        }
        string text;
        if (char.IsLowSurrogate(c))
        {
            if (_pendingHighSurrogate == '\0')
            {
                return EditOutcome.Redraw;
            }
            text = new string([_pendingHighSurrogate, c]);
        }
        else
        {
            text = c.ToString();
        }
        _pendingHighSurrogate = '\0';
        if (c == '\0' || ValueFormatter.IsUnprintable(Rune.GetRuneAt(text, 0)))
        {
            return EditOutcome.Redraw;
        }
        _line.Insert(text);
        return EditOutcome.Redraw;
    }

    /// <summary>
    /// After <see cref="EditOutcome.Submit"/>: adds the line to the history (and so to its file)
    /// and returns it. Separate from the Enter key so that the driver can first move the terminal
    /// to a new row, where a warning about the history file may then be printed.
    /// </summary>
    public string Accept()
    {
        string line = _line.Text;
        History.Add(line);
        return line;
    }

    private EditOutcome Older()
    {
        if (_historyIndex == 0)
        {
            return EditOutcome.Redraw;
        }
        if (_historyIndex == History.Entries.Count)
        {
            _draft = _line.Text;
        }
        _historyIndex--;
        _line.Set(History.Entries[_historyIndex]);
        return EditOutcome.Redraw;
    }

    private EditOutcome Newer()
    {
        if (_historyIndex >= History.Entries.Count)
        {
            return EditOutcome.Redraw;
        }
        _historyIndex++;
        _line.Set(_historyIndex == History.Entries.Count ? _draft : History.Entries[_historyIndex]);
        return EditOutcome.Redraw;
    }

    private EditOutcome Complete()
    {
        var (before, wordStart) = _line.WordAtCursor();
        string typed = _line.Text[wordStart.._line.Cursor];
        var matches = wordsAfter(before).Where(w => w.StartsWith(typed, StringComparison.OrdinalIgnoreCase)).ToList();
        if (matches.Count == 0)
        {
            return EditOutcome.Redraw;
        }
        if (matches.Count == 1)
        {
            bool blankFollows = _line.Cursor < _line.Length && _line.Text[_line.Cursor] == ' ';
            _line.ReplaceBeforeCursor(wordStart, InCaseOf(typed, matches[0]) + (blankFollows ? "" : " "));
            return EditOutcome.Redraw;
        }
        string common = matches.Aggregate((a, b) => a[..CommonPrefixLength(a, b)]);
        if (common.Length > typed.Length)
        {
            _line.ReplaceBeforeCursor(wordStart, InCaseOf(typed, common));
            return EditOutcome.Redraw;
        }
        if (_lastWasTab)
        {
            Candidates = matches;
            return EditOutcome.ShowCandidates;
        }
        return EditOutcome.Redraw;
    }

    // Completes in the case the user started in: "ge" becomes "get", "Ge" or "GE" becomes "GET".
    private static string InCaseOf(string typed, string word) =>
        typed.Any(char.IsLetter) && typed.Where(char.IsLetter).All(char.IsLower) ? word.ToLowerInvariant() : word;

    private static int CommonPrefixLength(string a, string b)
    {
        int n = 0;
        while (n < a.Length && n < b.Length && char.ToUpperInvariant(a[n]) == char.ToUpperInvariant(b[n]))
        {
            n++;
        }
        return n;
    }

    private EditOutcome StartSearch()
    {
        _query = new StringBuilder();
        _searchIndex = History.Entries.Count;
        _searchFailed = false;
        _lineBeforeSearch = _line.Text;
        _cursorBeforeSearch = _line.Cursor;
        return EditOutcome.Redraw;
    }

    private EditOutcome Search(ConsoleKeyInfo key)
    {
        var letter = ControlLetter(key);
        if (key.Key == ConsoleKey.Enter || letter is 'J' or 'M')
        {
            EndSearch();
            return EditOutcome.Submit;
        }
        if (key.Key == ConsoleKey.Escape || letter == 'G')
        {
            EndSearch();
            _line.Set(_lineBeforeSearch, _cursorBeforeSearch);
            return EditOutcome.Redraw;
        }
        if (letter == 'C')
        {
            Begin();
            return EditOutcome.Cancel;
        }
        if (letter == 'R')
        {
            // An older match of the same query; stay on this one if there is none.
            FindFrom(_searchIndex);
            return EditOutcome.Redraw;
        }
        if (key.Key == ConsoleKey.Backspace || letter == 'H')
        {
            if (_query!.Length > 0)
            {
                _query.Length--;
                _searchIndex = History.Entries.Count;
                FindFrom(_searchIndex);
            }
            return EditOutcome.Redraw;
        }
        bool editingKey = key.Key is ConsoleKey.Tab or ConsoleKey.LeftArrow or ConsoleKey.RightArrow or ConsoleKey.UpArrow
                or ConsoleKey.DownArrow or ConsoleKey.Home or ConsoleKey.End or ConsoleKey.Delete
            || letter is 'A' or 'E' or 'B' or 'F' or 'K' or 'U' or 'W' or 'P' or 'N' or 'D' or 'I';
        if (editingKey)
        {
            // The key takes the match into the line, and the history walk goes on from the
            // matched entry; then the key does what it does there.
            if (_searchIndex < History.Entries.Count)
            {
                if (_historyIndex == History.Entries.Count)
                {
                    _draft = _lineBeforeSearch;
                }
                _historyIndex = _searchIndex;
            }
            EndSearch();
            return Edit(key);
        }
        char c = key.KeyChar;
        if (letter is not null || (key.Modifiers & ConsoleModifiers.Alt) != 0 || c == '\0' || char.IsSurrogate(c)
            || ValueFormatter.IsUnprintable(new Rune(c)))
        {
            // Unbound control keys and escape sequences are ignored here too, and the query takes
            // characters of the Basic Multilingual Plane only.
            return EditOutcome.Redraw;
        }
        _query!.Append(c);
        // The newest match of the longer query, starting with the entry shown now.
        FindFrom(Math.Min(_searchIndex + 1, History.Entries.Count));
        return EditOutcome.Redraw;
    }

    // Shows the newest entry before `before` that holds the query; keeps the current one if none.
    private void FindFrom(int before)
    {
        string query = _query!.ToString();
        int found = History.FindBackward(query, before);
        _searchFailed = found < 0;
        if (found < 0)
        {
            return;
        }
        _searchIndex = found;
        string entry = History.Entries[found];
        _line.Set(entry, entry.IndexOf(query, StringComparison.OrdinalIgnoreCase));
    }

    private void EndSearch()
    {
        _query = null;
        _searchFailed = false;
    }

    // The letter of a Ctrl+letter key, whether the terminal reported it as the letter with the
    // Control modifier or only as its control character (U+0001 for Ctrl+A...).
    private static char? ControlLetter(ConsoleKeyInfo key)
    {
        if ((key.Modifiers & ConsoleModifiers.Control) != 0 && key.Key is >= ConsoleKey.A and <= ConsoleKey.Z)
        {
            return (char)('A' + (key.Key - ConsoleKey.A));
        }
        if (key.KeyChar is >= '\u0001' and <= '\u001a')
        {
            return (char)('A' + key.KeyChar - 1);
        }
        if (char.IsControl(key.KeyChar) && key.KeyChar != '\0')
        {
            return '?';
        }
        return null;
    }
}
