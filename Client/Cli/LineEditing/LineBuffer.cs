using System.Globalization;
using System.Text;

namespace KvReplica.Client.Cli.LineEditing;

/// <summary>
/// The text of the line being edited and the cursor in it. Pure: no terminal, no history.
/// </summary>
/// <remarks>
/// <see cref="Cursor"/> is a UTF-16 index that always sits on a text-element (grapheme cluster)
/// boundary, so one Left, Right, Backspace or Delete moves over or removes a whole character as
/// the terminal shows it: a surrogate pair, or a letter with its combining accents. Words, for
/// Ctrl+W and the word moves, are runs of non-blanks (blanks are spaces), as in bash's
/// unix-word-rubout. What may be inserted is the caller's concern (<see cref="LineEditor"/> never
/// inserts a control character).
/// </remarks>
internal sealed class LineBuffer
{
    private readonly StringBuilder _text = new();

    public string Text => _text.ToString();

    public int Length => _text.Length;

    /// <summary>Where the next character goes: 0 is before the first character, <see cref="Length"/> after the last.</summary>
    public int Cursor { get; private set; }

    /// <summary>Replaces the whole line and puts the cursor at its end.</summary>
    public void Set(string text)
    {
        _text.Clear().Append(text);
        Cursor = _text.Length;
    }

    /// <summary>Replaces the whole line and puts the cursor at <paramref name="cursor"/> (clamped to the line).</summary>
    public void Set(string text, int cursor)
    {
        Set(text);
        Cursor = Math.Clamp(cursor, 0, _text.Length);
    }

    public void Insert(string text)
    {
        _text.Insert(Cursor, text);
        Cursor += text.Length;
    }

    public bool MoveLeft() => MoveTo(PreviousBoundary(Cursor));

    public bool MoveRight() => MoveTo(NextBoundary(Cursor));

    public bool MoveHome() => MoveTo(0);

    public bool MoveEnd() => MoveTo(_text.Length);

    /// <summary>To the start of the word before the cursor (skipping the blanks just before it).</summary>
    public bool MoveWordLeft() => MoveTo(WordStartBefore(Cursor));

    /// <summary>To the end of the word after the cursor (skipping the blanks just after it).</summary>
    public bool MoveWordRight()
    {
        int pos = Cursor;
        while (pos < _text.Length && _text[pos] == ' ')
        {
            pos++;
        }
        while (pos < _text.Length && _text[pos] != ' ')
        {
            pos++;
        }
        return MoveTo(pos);
    }

    /// <summary>Backspace: removes the character before the cursor.</summary>
    public bool DeleteBackward() => Remove(PreviousBoundary(Cursor), Cursor).Length > 0;

    /// <summary>Delete: removes the character under the cursor.</summary>
    public bool DeleteForward() => Remove(Cursor, NextBoundary(Cursor)).Length > 0;

    /// <summary>Ctrl+K: removes everything from the cursor to the end; returns what it removed.</summary>
    public string KillToEnd() => Remove(Cursor, _text.Length);

    /// <summary>Ctrl+U: removes everything before the cursor; returns what it removed.</summary>
    public string KillToStart() => Remove(0, Cursor);

    /// <summary>Ctrl+W: removes the blanks just before the cursor and the word before them.</summary>
    public string KillWordBackward() => Remove(WordStartBefore(Cursor), Cursor);

    /// <summary>
    /// The start of the blank-separated word that ends at the cursor ("" when the cursor follows a
    /// blank or starts the line), and the words before it. For Tab completion.
    /// </summary>
    public (IReadOnlyList<string> Before, int WordStart) WordAtCursor()
    {
        int start = Cursor;
        while (start > 0 && _text[start - 1] != ' ')
        {
            start--;
        }
        var before = _text.ToString(0, start).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return (before, start);
    }

    /// <summary>Replaces the text between <paramref name="start"/> and the cursor with <paramref name="text"/>.</summary>
    public void ReplaceBeforeCursor(int start, string text)
    {
        Remove(start, Cursor);
        Insert(text);
    }

    private bool MoveTo(int position)
    {
        bool moved = position != Cursor;
        Cursor = position;
        return moved;
    }

    private string Remove(int start, int end)
    {
        if (end <= start)
        {
            return "";
        }
        string removed = _text.ToString(start, end - start);
        _text.Remove(start, end - start);
        if (Cursor >= end)
        {
            Cursor -= end - start;
        }
        else if (Cursor > start)
        {
            Cursor = start;
        }
        return removed;
    }

    private int NextBoundary(int position)
    {
        if (position >= _text.Length)
        {
            return _text.Length;
        }
        return position + StringInfo.GetNextTextElementLength(_text.ToString(), position);
    }

    private int PreviousBoundary(int position)
    {
        string text = _text.ToString();
        int boundary = 0;
        while (boundary < position)
        {
            int next = boundary + StringInfo.GetNextTextElementLength(text, boundary);
            if (next >= position)
            {
                break;
            }
            boundary = next;
        }
        return boundary;
    }

    private int WordStartBefore(int position)
    {
        int pos = position;
        while (pos > 0 && _text[pos - 1] == ' ')
        {
            pos--;
        }
        while (pos > 0 && _text[pos - 1] != ' ')
        {
            pos--;
        }
        return pos;
    }
}
