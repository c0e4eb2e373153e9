using System.Text;

namespace KvReplica.Client.Cli.LineEditing;

/// <summary>
/// Where the prompt's <see cref="History"/> lives between sessions: one UTF-8 text file, one
/// entry a line, oldest first, readable and writable by its owner only (mode 0600 when created:
/// keys and values can be private too).
/// </summary>
/// <remarks>
/// A failure to read or write it never stops the prompt: the first one is reported once through
/// the warning callback, and the file is left alone for the rest of the session (the history
/// still works in memory). Two clients at once both append to it; when one cuts the file back
/// (<see cref="Rewrite"/>), lines the other appended since it loaded may be lost.
/// </remarks>
internal sealed class HistoryFile(string path, Action<string> warn)
{
    /// <summary>The file's name in the user's home directory.</summary>
    public const string FileName = ".kvreplica_history";

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);
    private bool _failed;

    public string Path { get; } = path;

    /// <summary><c>~/.kvreplica_history</c>, or null when there is no home directory.</summary>
    public static string? DefaultPath()
    {
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        return string.IsNullOrEmpty(home) ? null : System.IO.Path.Combine(home, FileName);
    }

    /// <summary>The file's lines, oldest first; none when it does not exist yet or cannot be read.</summary>
    public IReadOnlyList<string> Load()
    {
        try
        {
            return File.Exists(Path) ? File.ReadAllLines(Path, Utf8) : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Fail("read", e);
            return [];
        }
    }

    /// <summary>Appends one entry (a line without a line break).</summary>
    public void Append(string line) => Write(line + "\n", FileMode.Append);

    /// <summary>Replaces the file's content with <paramref name="entries"/>, through a temporary file and a rename.</summary>
    public void Rewrite(IReadOnlyList<string> entries)
    {
        if (_failed)
        {
            return;
        }
        string temporary = Path + ".tmp";
        try
        {
            using (var stream = new FileStream(temporary, Options(FileMode.Create)))
            using (var writer = new StreamWriter(stream, Utf8))
            {
                foreach (string entry in entries)
                {
                    writer.Write(entry);
                    writer.Write('\n');
                }
            }
            File.Move(temporary, Path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Fail("write", e);
        }
    }

    private void Write(string text, FileMode mode)
    {
        if (_failed)
        {
            return;
        }
        try
        {
            using var stream = new FileStream(Path, Options(mode));
            stream.Write(Utf8.GetBytes(text));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Fail("write", e);
        }
    }

    private static FileStreamOptions Options(FileMode mode)
    {
        var options = new FileStreamOptions { Mode = mode, Access = FileAccess.Write, Share = FileShare.ReadWrite };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        return options;
    }

    private void Fail(string verb, Exception e)
    {
        if (!_failed)
        {
            _failed = true;
            warn($"history: cannot {verb} {Path}: {e.Message}; the history of this session is not saved");
        }
    }
}
