using System.Diagnostics;
using System.Text;
using KvReplica.Protocol.Wire;
using KvReplica.Tests.Integration;
using NUnit.Framework;

namespace KvReplica.Tests.Client;

/// <summary>
/// The real <c>client</c> program on a real pseudo-terminal: tmux runs it in a detached session,
/// the test types into it with <c>send-keys</c> and reads what a person would see with
/// <c>capture-pane</c> (the screen as tmux's terminal emulator drew it) and the cursor position.
/// The client talks to an in-process <see cref="FakeReplica"/>, so no cluster is needed. Every
/// wait is for a condition on the screen, with a deadline; a missed one fails with the screen.
/// </summary>
[TestFixture]
[Category("Integration")]
[CancelAfter(120_000)]
public sealed class PromptTerminalTests
{
    private string _directory = "";
    private string _home = "";

    [SetUp]
    public void CreateDirectory()
    {
        _directory = Directory.CreateTempSubdirectory("kvclient-pty-").FullName;
        _home = Directory.CreateDirectory(Path.Combine(_directory, "home")).FullName;
    }

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_directory, recursive: true);

    private string HistoryPath => Path.Combine(_home, ".kvreplica_history");

    private string ConfigFor(FakeReplica replica)
    {
        string path = Path.Combine(_directory, "cluster.json");
        File.WriteAllText(path, $$"""
            { "clusterName": "pty-test", "replicas": [ { "id": 1, "host": "127.0.0.1", "port": {{replica.Port}} } ], "clientRequestTimeoutMs": 5000 }
            """);
        return path;
    }

    [Test]
    public async Task Editing_keys_move_the_cursor_and_edit_the_line_and_control_keys_never_reach_a_key()
    {
        await using var replica = FakeReplica.WithStore(1);
        using var terminal = Terminal.Start(_directory, _home, BuiltExecutables.Client, ConfigFor(replica));
        await terminal.WaitForPromptAsync("");

        // Arrows, Home and End move the cursor; typing inserts where it is.
        terminal.Type("UT k1 helo");
        terminal.Press("Home");
        terminal.Type("P");
        terminal.Press("End", "Left");
        terminal.Type("l");
        await terminal.WaitForPromptAsync("PUT k1 hello", cursorAfter: "PUT k1 hell");
        terminal.Press("C-a");
        await terminal.WaitForPromptAsync("PUT k1 hello", cursorAfter: "");
        terminal.Press("C-e", "Enter");
        await terminal.WaitForOutputAsync("OK");

        // Ctrl+W, Ctrl+K and Ctrl+U delete; Tab completes the command word in the case typed.
        terminal.Type("GET k1 junk");
        terminal.Press("C-w");
        await terminal.WaitForPromptAsync("GET k1", cursorAfter: "GET k1 ");
        terminal.Type("zzz");
        terminal.Press("BSpace", "Left", "Left", "C-k");
        await terminal.WaitForPromptAsync("GET k1", cursorAfter: "GET k1 ");
        terminal.Press("Enter");
        await terminal.WaitForOutputAsync("hello");
        terminal.Type("garbage");
        terminal.Press("C-u");
        terminal.Type("ge");
        terminal.Press("Tab");
        await terminal.WaitForPromptAsync("get", cursorAfter: "get ");
        terminal.Type("k1");
        terminal.Press("Enter");
        await terminal.WaitForOutputAsync("hello");

        // The issue's case: control keys between "c" and "a" leave nothing in the key or on the screen.
        terminal.Type("PUT c");
        terminal.Press("C-g", "C-v", "C-o", "C-x", "C-]", "C-\\");
        terminal.Type("a v");
        await terminal.WaitForPromptAsync("PUT ca v", cursorAfter: "PUT ca v");
        terminal.Press("Enter");
        await terminal.WaitForOutputAsync("OK");
        terminal.Type("GET ca");
        terminal.Press("Enter");
        await terminal.WaitForOutputAsync("v");

        // Ctrl+C drops the line (sending nothing) and prompts again; Ctrl+D on an empty line leaves.
        terminal.Type("PUT lost 1");
        terminal.Press("C-c");
        await terminal.WaitForPromptAsync("", previousLine: "kv> PUT lost 1^C");
        terminal.Press("C-d");
        Assert.That(await terminal.WaitForExitAsync(), Is.EqualTo(0));

        var keys = replica.Received.Where(r => r.Operation is Operation.Put or Operation.Get).Select(r => r.Key).ToList();
        Assert.That(keys, Is.EqualTo(new[] { "k1", "k1", "k1", "ca", "ca" }));
        Assert.That(replica.Received.Single(r => r.Key == "ca" && r.Operation == Operation.Put).Value, Is.EqualTo("v"u8.ToArray()));
        Assert.That(terminal.Screen().Any(line => line.Contains('^') && !line.EndsWith("^C", StringComparison.Ordinal)), Is.False,
            "no control key was echoed as ^X");
    }

    [Test]
    public async Task History_is_walked_searched_and_kept_in_the_home_directory_without_passwords()
    {
        await using var replica = FakeReplica.WithStore(1);
        string config = ConfigFor(replica);
        using (var terminal = Terminal.Start(_directory, _home, BuiltExecutables.Client, config))
        {
            await terminal.WaitForPromptAsync("");
            foreach (string line in new[] { "PUT a 1", "PUT b 2", "GET a" })
            {
                terminal.Type(line);
                terminal.Press("Enter");
                await terminal.WaitForOutputAsync(line.StartsWith("GET", StringComparison.Ordinal) ? "1" : "OK");
            }
            terminal.Type("USER ADD bob hunter2 reader");
            terminal.Press("Enter");
            await terminal.WaitForPromptAsync("", previousLinePrefix: "");

            // Up and Down walk the history, and the line being typed comes back at the bottom.
            terminal.Type("GET");
            terminal.Press("Up");
            await terminal.WaitForPromptAsync("GET a");
            terminal.Press("Up", "Up");
            await terminal.WaitForPromptAsync("PUT a 1");
            terminal.Press("Down");
            await terminal.WaitForPromptAsync("PUT b 2");
            terminal.Press("Down", "Down");
            await terminal.WaitForPromptAsync("GET", cursorAfter: "GET");

            // Ctrl+R finds the newest line holding the text, again for an older one; Enter runs it.
            terminal.Press("C-u", "C-r");
            terminal.Type("PUT");
            await terminal.WaitForLineAsync("(reverse-i-search)'PUT': PUT b 2");
            terminal.Press("C-r");
            await terminal.WaitForLineAsync("(reverse-i-search)'PUT': PUT a 1");
            terminal.Press("Enter");
            await terminal.WaitForPromptAsync("", previousLine: "OK");
            terminal.Press("C-d");
            Assert.That(await terminal.WaitForExitAsync(), Is.EqualTo(0));
        }

        Assert.That(File.ReadAllLines(HistoryPath), Is.EqualTo(new[] { "PUT a 1", "PUT b 2", "GET a", "PUT a 1" }),
            "the USER ADD line holds a password and is never kept");
        if (!OperatingSystem.IsWindows())
        {
            Assert.That(File.GetUnixFileMode(HistoryPath), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        }

        // A new session finds the history in the file.
        using (var terminal = Terminal.Start(_directory, _home, BuiltExecutables.Client, config))
        {
            await terminal.WaitForPromptAsync("");
            terminal.Press("Up", "Up");
            await terminal.WaitForPromptAsync("GET a");
            terminal.Press("Enter");
            await terminal.WaitForOutputAsync("1");
            terminal.Type("EXIT");
            terminal.Press("Enter");
            Assert.That(await terminal.WaitForExitAsync(), Is.EqualTo(0));
        }
        Assert.That(File.ReadAllLines(HistoryPath), Is.EqualTo(new[] { "PUT a 1", "PUT b 2", "GET a", "PUT a 1", "GET a", "EXIT" }));
    }

    /// <summary>One tmux server (its own socket) running the client in one detached session.</summary>
    private sealed class Terminal : IDisposable
    {
        private const string Session = "kv";
        private const string ExitMark = "[client exited with status ";
        private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(20);
        private readonly string _socket;

        private Terminal(string socket) => _socket = socket;

        public static Terminal Start(string directory, string home, string client, string config)
        {
            string socket = Path.Combine(directory, $"tmux-{Guid.NewGuid():N}"[..20]);
            var terminal = new Terminal(socket);
            // A private server with no user configuration, 100x30, HOME pointing at the test's
            // directory (where the history file goes). The shell around the client reaps it and
            // prints its exit status on the screen (tmux's own pane_dead_status proved unreliable:
            // sometimes it never reaped the client), then waits to be killed with the server.
            terminal.Tmux("-f", "/dev/null", "new-session", "-d", "-s", Session, "-x", "100", "-y", "30",
                "-e", $"HOME={home}", $"{Quote(client)} {Quote(config)}; echo \"{ExitMark}$?]\"; exec sleep 600");
            return terminal;
        }

        /// <summary>Types text literally (tmux send-keys -l).</summary>
        public void Type(string text) => Tmux("send-keys", "-t", Session, "-l", "--", text);

        /// <summary>Presses keys by tmux's names: Home, End, Left, Up, Enter, Tab, BSpace, C-a...</summary>
        public void Press(params string[] keys) => Tmux(["send-keys", "-t", Session, .. keys]);

        /// <summary>The visible screen, one string per row, trailing blanks trimmed.</summary>
        public IReadOnlyList<string> Screen() =>
            Tmux("capture-pane", "-p", "-t", Session).Split('\n').Select(l => l.TrimEnd()).ToList();

        private (int X, int Y) CursorPosition()
        {
            var parts = Tmux("display-message", "-p", "-t", Session, "#{cursor_x} #{cursor_y}").Trim().Split(' ');
            return (int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
        }

        /// <summary>
        /// Waits until the cursor's row is the prompt followed by <paramref name="line"/>, with the
        /// cursor just after <paramref name="cursorAfter"/> (the whole line when null) and, when
        /// given, the row above equal to <paramref name="previousLine"/> or starting with
        /// <paramref name="previousLinePrefix"/>.
        /// </summary>
        public Task WaitForPromptAsync(string line, string? cursorAfter = null, string? previousLine = null, string? previousLinePrefix = null) =>
            WaitAsync($"the prompt row to read 'kv> {line}' with the cursor after 'kv> {cursorAfter ?? line}'", () =>
            {
                var screen = Screen();
                var (x, y) = CursorPosition();
                return y < screen.Count
                    && screen[y] == ("kv> " + line).TrimEnd()
                    && x == ("kv> " + (cursorAfter ?? line)).Length
                    && (previousLine is null || y > 0 && screen[y - 1] == previousLine)
                    && (previousLinePrefix is null || y > 0 && screen[y - 1].StartsWith(previousLinePrefix, StringComparison.Ordinal));
            });

        /// <summary>Waits until the cursor's row reads <paramref name="line"/>.</summary>
        public Task WaitForLineAsync(string line) => WaitAsync($"the cursor's row to read '{line}'", () =>
        {
            var screen = Screen();
            var (_, y) = CursorPosition();
            return y < screen.Count && screen[y] == line;
        });

        /// <summary>
        /// Waits until the command just entered printed <paramref name="result"/> on the row after
        /// it and a new, empty prompt followed.
        /// </summary>
        public Task WaitForOutputAsync(string result) => WaitForPromptAsync("", previousLine: result);

        /// <summary>Waits for the client to exit; returns its exit status (128 + N for signal N).</summary>
        public async Task<int> WaitForExitAsync()
        {
            string? mark = null;
            await WaitAsync("the client to exit", () => (mark = Screen().FirstOrDefault(l => l.StartsWith(ExitMark, StringComparison.Ordinal))) is not null);
            return int.Parse(mark![ExitMark.Length..^1], System.Globalization.CultureInfo.InvariantCulture);
        }

        public void Dispose()
        {
            try
            {
                Tmux("kill-server");
            }
            catch (AssertionException)
            {
                // Already gone.
            }
        }

        private async Task WaitAsync(string what, Func<bool> condition)
        {
            var stopwatch = Stopwatch.StartNew();
            while (!condition())
            {
                if (stopwatch.Elapsed > Deadline)
                {
                    Assert.Fail($"waited {Deadline.TotalSeconds:0} s for {what}; the screen:\n{string.Join("\n", Screen())}\ncursor at {CursorPosition()}");
                }
                await Task.Delay(20);
            }
        }

        private static string Quote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

        private string Tmux(params string[] args)
        {
            var start = new ProcessStartInfo("tmux")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                StandardOutputEncoding = Encoding.UTF8,
            };
            start.ArgumentList.Add("-S");
            start.ArgumentList.Add(_socket);
            foreach (string arg in args)
            {
                start.ArgumentList.Add(arg);
            }
            Process process;
            try
            {
                process = Process.Start(start)!;
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                Assert.Fail($"tmux is needed for the terminal tests (.ci/run installs it): {e.Message}");
                throw;
            }
            using (process)
            {
                var stdout = process.StandardOutput.ReadToEndAsync();
                var stderr = process.StandardError.ReadToEndAsync();
                if (!process.WaitForExit(10_000))
                {
                    process.Kill();
                    Assert.Fail($"tmux {string.Join(' ', args)} did not finish within 10 s");
                }
                if (process.ExitCode != 0)
                {
                    Assert.Fail($"tmux {string.Join(' ', args)} failed ({process.ExitCode}): {stderr.Result.Trim()}");
                }
                return stdout.Result;
            }
        }
    }
}
