using System.Globalization;
using System.Text;

namespace KvReplica.Client.Cli.LineEditing;

/// <summary>
/// Which part of a line fits on one terminal row beside its prompt, and where the cursor goes.
/// Pure.
/// </summary>
/// <remarks>
/// The line never wraps: a line wider than the row scrolls sideways so that the cursor stays in
/// view (as linenoise does), which keeps redrawing to "return, prompt, visible part, clear to end
/// of row, move the cursor", with no need to know where earlier rows were. The last column is
/// left free: writing into it makes some terminals wrap early. Widths are terminal columns: 2 for
/// East Asian wide and fullwidth characters and most emoji, 0 for combining marks and format
/// characters, else 1.
/// </remarks>
internal static class LineView
{
    /// <summary>The slice of <paramref name="text"/> to show after a prompt <paramref name="promptColumns"/> wide on a row of <paramref name="columns"/>, and the cursor's column (0-based, counting the prompt).</summary>
    public static (string Visible, int CursorColumn) Fit(string text, int cursor, int promptColumns, int columns)
    {
        int room = Math.Max(1, columns - 1 - promptColumns);
        var elements = new List<(int Start, int Length, int Width)>();
        for (int i = 0; i < text.Length;)
        {
            int length = StringInfo.GetNextTextElementLength(text, i);
            elements.Add((i, length, Width(text.AsSpan(i, length))));
            i += length;
        }
        int cursorElement = elements.FindIndex(e => e.Start >= cursor);
        if (cursorElement < 0)
        {
            cursorElement = elements.Count;
        }
        // Scroll just far enough that everything before the cursor, and the cursor's own cell, fit.
        int first = 0;
        int beforeCursor = elements.Take(cursorElement).Sum(e => e.Width);
        int cursorCell = cursorElement < elements.Count ? Math.Max(1, elements[cursorElement].Width) : 1;
        while (first < cursorElement && beforeCursor + cursorCell > room)
        {
            beforeCursor -= elements[first].Width;
            first++;
        }
        var visible = new StringBuilder();
        int used = 0;
        for (int i = first; i < elements.Count && used + elements[i].Width <= room; i++)
        {
            visible.Append(text, elements[i].Start, elements[i].Length);
            used += elements[i].Width;
        }
        return (visible.ToString(), promptColumns + beforeCursor);
    }

    /// <summary>The columns a text element (or a string of them) takes on a terminal.</summary>
    public static int Width(ReadOnlySpan<char> text)
    {
        int width = 0;
        bool first = true;
        foreach (var rune in text.EnumerateRunes())
        {
            // Only an element's first character takes cells; what follows (accents, a variation
            // selector, a joiner and the emoji it joins) draws into them.
            int w = RuneWidth(rune);
            width += first ? w : 0;
            first = first && w == 0;
        }
        return width;
    }

    /// <summary>The columns of a string of several text elements.</summary>
    public static int WidthOfText(string text)
    {
        int width = 0;
        for (int i = 0; i < text.Length;)
        {
            int length = StringInfo.GetNextTextElementLength(text, i);
            width += Width(text.AsSpan(i, length));
            i += length;
        }
        return width;
    }

    private static int RuneWidth(Rune rune)
    {
        var category = Rune.GetUnicodeCategory(rune);
        if (category is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format)
        {
            return 0;
        }
        int c = rune.Value;
        bool wide = c is >= 0x1100 and <= 0x115F
            or >= 0x2E80 and <= 0x303E
            or >= 0x3041 and <= 0x33FF
            or >= 0x3400 and <= 0x4DBF
            or >= 0x4E00 and <= 0x9FFF
            or >= 0xA000 and <= 0xA4CF
            or >= 0xAC00 and <= 0xD7A3
            or >= 0xF900 and <= 0xFAFF
            or >= 0xFE30 and <= 0xFE4F
            or >= 0xFF00 and <= 0xFF60
            or >= 0xFFE0 and <= 0xFFE6
            or >= 0x1F300 and <= 0x1F64F
            or >= 0x1F900 and <= 0x1F9FF
            or >= 0x20000 and <= 0x3FFFD;
        return wide ? 2 : 1;
    }
}
