using System.Text;

namespace KvReplica.Client.Cli.LineEditing;

/// <summary>The terminal as the line editor needs it: keys in, text out, a width.</summary>
internal interface ITerminal
{
    /// <summary>The next key, without echoing it. Throws <see cref="EndOfStreamException"/> when the terminal is gone.</summary>
    ConsoleKeyInfo ReadKey();

    /// <summary>The width of the terminal in columns, read anew for every redraw (it may be resized).</summary>
    int Columns { get; }

    TextWriter Output { get; }

    /// <summary>Makes Ctrl+C a key (instead of a signal that ends the process) until disposed.</summary>
    IDisposable CatchControlC();
}

/// <summary>
/// Reads one line at a time from a terminal through a <see cref="LineEditor"/>: reads keys, feeds
/// them to the editor and redraws the line after each.
/// </summary>
/// <remarks>
/// A redraw is one write: carriage return, the prompt, the part of the line that fits
/// (<see cref="LineView"/>), "erase to the end of the row" (<c>ESC [ K</c>), then a carriage
/// return and "cursor forward N" (<c>ESC [ N C</c>). These are the VT100 sequences every terminal
/// emulator in use understands; the editor never emits anything else, and the line never holds a
/// control character, so nothing else reaches the terminal from it.
/// </remarks>
internal sealed class TerminalLineReader(ITerminal terminal, LineEditor editor)
{
    private const string EraseToEndOfRow = "\u001b[K";

    /// <summary>
    /// Shows <paramref name="prompt"/> and returns the line the user entered (without a line
    /// break; an empty string for a line dropped with Ctrl+C is never returned: a new prompt is
    /// shown instead), or null for Ctrl+D on an empty line or a terminal that went away.
    /// </summary>
    public string? ReadLine(string prompt)
    {
        using var controlC = terminal.CatchControlC();
        editor.Begin();
        Redraw(prompt);
        while (true)
        {
            ConsoleKeyInfo key;
            try
            {
                key = terminal.ReadKey();
            }
            catch (EndOfStreamException)
            {
                terminal.Output.Write("\n");
                terminal.Output.Flush();
                return null;
            }
            switch (editor.Apply(key))
            {
                case EditOutcome.Submit:
                    // The line stays on the screen as entered, its end in view, and the output
                    // starts on the next row.
                    Redraw(prompt, showWholeEnd: true);
                    terminal.Output.Write("\n");
                    terminal.Output.Flush();
                    return editor.Accept();
                case EditOutcome.EndOfInput:
                    terminal.Output.Write("\n");
                    terminal.Output.Flush();
                    return null;
                case EditOutcome.Cancel:
                    // As bash does: the dropped line stays visible, marked, and a fresh prompt follows.
                    terminal.Output.Write("^C\n");
                    Redraw(prompt);
                    break;
                case EditOutcome.ShowCandidates:
                    terminal.Output.Write("\n" + string.Join("  ", editor.Candidates) + "\n");
                    Redraw(prompt);
                    break;
                default:
                    Redraw(prompt);
                    break;
            }
        }
    }

    private void Redraw(string prompt, bool showWholeEnd = false)
    {
        string shown = editor.Prompt(prompt);
        int promptColumns = LineView.WidthOfText(shown);
        int cursor = showWholeEnd ? editor.Text.Length : editor.Cursor;
        var (visible, column) = LineView.Fit(editor.Text, cursor, promptColumns, Math.Max(terminal.Columns, 8));
        var frame = new StringBuilder(shown.Length + visible.Length + 16);
        frame.Append('\r').Append(shown).Append(visible).Append(EraseToEndOfRow).Append('\r');
        if (column > 0)
        {
            frame.Append("\u001b[").Append(column).Append('C');
        }
        terminal.Output.Write(frame.ToString());
        terminal.Output.Flush();
    }
}

/// <summary>The process's own console as an <see cref="ITerminal"/>.</summary>
internal sealed class ConsoleTerminal : ITerminal
{
    public TextWriter Output => Console.Out;

    public int Columns
    {
        get
        {
            try
            {
                int width = Console.WindowWidth;
                return width > 0 ? width : 80;
            }
            catch (IOException)
            {
                return 80;
            }
        }
    }

    /// <summary>
    /// True when the prompt may edit lines: <paramref name="input"/> and <paramref name="output"/>
    /// are the process's console and both are a terminal. A reader or writer of any other kind
    /// (a test's, a pipe) gets the plain prompt, which reads whole lines.
    /// </summary>
    public static bool Serves(TextReader input, TextWriter output) =>
        ReferenceEquals(input, Console.In) && ReferenceEquals(output, Console.Out)
        && !Console.IsInputRedirected && !Console.IsOutputRedirected;

    public ConsoleKeyInfo ReadKey()
    {
        try
        {
            return Console.ReadKey(intercept: true);
        }
        catch (InvalidOperationException e)
        {
            throw new EndOfStreamException("the terminal is gone", e);
        }
    }

    public IDisposable CatchControlC()
    {
        bool before = Console.TreatControlCAsInput;
        Console.TreatControlCAsInput = true;
        return new Restore(() => Console.TreatControlCAsInput = before);
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }
}
