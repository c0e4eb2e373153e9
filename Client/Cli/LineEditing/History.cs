namespace KvReplica.Client.Cli.LineEditing;

/// <summary>
/// The prompt's history: the lines entered, oldest first, at most <see cref="Capacity"/> of them,
/// optionally kept in a <see cref="HistoryFile"/> across sessions.
/// </summary>
/// <remarks>
/// <para>Not every line is kept (<see cref="IsKept"/>): a blank line; a line that starts with a
/// blank, so a user can keep any line out of the history (bash's ignorespace); a line holding a
/// password (<c>USER ADD name password ...</c>, whatever its case or validity), so that a password
/// is never written to the file nor shown again by Up; and a line with an unprintable character
/// (which the editor cannot produce, but a file edited by hand can hold). A line equal to the one
/// before it is kept once.</para>
/// </remarks>
internal sealed class History
{
    /// <summary>How many lines the prompt keeps by default, in memory and in the file.</summary>
    public const int DefaultCapacity = 1000;

    private readonly List<string> _entries = [];
    private readonly HistoryFile? _file;
    private int _linesInFile;

    /// <summary>An empty history of at most <paramref name="capacity"/> lines, backed by <paramref name="file"/> when given (its lines are loaded).</summary>
    public History(int capacity = DefaultCapacity, HistoryFile? file = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _file = file;
        if (file is not null)
        {
            var lines = file.Load();
            _linesInFile = lines.Count;
            foreach (string line in lines)
            {
                Remember(line);
            }
        }
    }

    public int Capacity { get; }

    /// <summary>The kept lines, oldest first.</summary>
    public IReadOnlyList<string> Entries => _entries;

    /// <summary>
    /// Keeps <paramref name="line"/> if <see cref="IsKept"/> allows it (and it differs from the
    /// newest entry), appending it to the file too. Returns whether it was kept.
    /// </summary>
    public bool Add(string line)
    {
        if (!Remember(line))
        {
            return false;
        }
        if (_file is not null)
        {
            // The file grows by appends and is cut back to the newest entries once it holds twice
            // as many lines as are kept, so it stays bounded without a rewrite per line.
            if (_linesInFile + 1 > 2 * Capacity)
            {
                _file.Rewrite(_entries);
                _linesInFile = _entries.Count;
            }
            else
            {
                _file.Append(line);
                _linesInFile++;
            }
        }
        return true;
    }

    /// <summary>
    /// The index of the newest entry before <paramref name="before"/> that contains
    /// <paramref name="query"/> (case-insensitively), or -1.
    /// </summary>
    public int FindBackward(string query, int before)
    {
        for (int i = Math.Min(before, _entries.Count) - 1; i >= 0; i--)
        {
            if (_entries[i].Contains(query, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>Whether a line may enter the history at all (see the remarks).</summary>
    public static bool IsKept(string line)
    {
        if (line.Length == 0 || line[0] is ' ' or '\t' || string.IsNullOrWhiteSpace(line))
        {
            return false;
        }
        if (HoldsPassword(line))
        {
            return false;
        }
        foreach (var rune in line.EnumerateRunes())
        {
            if (ValueFormatter.IsUnprintable(rune))
            {
                return false;
            }
        }
        return IsWellFormed(line);
    }

    // USER ADD name password [role...]: the second word decides, not whether the line parses,
    // so a mistyped password line is not kept either.
    private static bool HoldsPassword(string line)
    {
        var words = line.Split([' ', '\t'], 3, StringSplitOptions.RemoveEmptyEntries);
        return words.Length >= 2
            && words[0].Equals("USER", StringComparison.OrdinalIgnoreCase)
            && words[1].Equals("ADD", StringComparison.OrdinalIgnoreCase);
    }

    // False for a string with an unpaired surrogate (which would not survive the UTF-8 file).
    private static bool IsWellFormed(string line)
    {
        for (int i = 0; i < line.Length; i++)
        {
            if (char.IsHighSurrogate(line[i]) && i + 1 < line.Length && char.IsLowSurrogate(line[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(line[i]))
            {
                return false;
            }
        }
        return true;
    }

    private bool Remember(string line)
    {
        if (!IsKept(line) || _entries.Count > 0 && _entries[^1] == line)
        {
            return false;
        }
        if (_entries.Count == Capacity)
        {
            _entries.RemoveAt(0);
        }
        _entries.Add(line);
        return true;
    }
}
