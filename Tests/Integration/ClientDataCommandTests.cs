using System.Diagnostics;
using System.Text;
using System.Text.Json;
using NUnit.Framework;

namespace KvReplica.Tests.Integration;

/// <summary>
/// The data commands beyond PUT, GET and DELETE (GET --version, UPDATE, CAS, PUTNX, EXISTS, MSET,
/// MGET, TXN, LIST, WATCH) through the real <c>client</c> program against a real cluster, in the
/// prompt (<c>--interactive</c>), batch, one-shot and <c>--json</c>.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class ClientDataCommandTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private const string Version = "[1-9][0-9]*@[123]";
    private LocalCluster _cluster = null!;
    private string[] _admin = [];

    [OneTimeSetUp]
    public async Task StartSecureCluster()
    {
        _cluster = await LocalCluster.StartAsync(count: 3, secure: true);
        _admin = ["--user", "admin", "--password-file", TestSecurity.PasswordFile(_cluster.ConfigPath)];
    }

    [OneTimeTearDown]
    public async Task StopCluster() => await _cluster.DisposeAsync();

    private Task<ClientProcess.Result> RunAsync(IEnumerable<string> lines, params string[] args) =>
        ClientProcess.RunAsync(_cluster.ConfigPath, lines, Deadline, [.. _admin, .. args]);

    private async Task<string> PutAsync(string key, string value)
    {
        var put = await RunAsync([], "--json", "put", key, value);
        Assert.That(put.ExitCode, Is.EqualTo(0), put.Stderr);
        return JsonDocument.Parse(put.Lines.Single()).RootElement.GetProperty("version").GetString()!;
    }

    [Test]
    public async Task Batch_mode_gives_one_line_per_new_command_with_versions_and_conflicts()
    {
        var result = await RunAsync(
        [
            "PUT b/k hello world",
            "GET b/k --version",
            "UPDATE b/k \"  new  \"",
            "UPDATE b/none v",
            "GET b/k",
            "PUTNX b/k other",
            "PUTNX b/n first value",
            "EXISTS b/n",
            "EXISTS b/none",
            "CAS b/none 0 made",
            "CAS b/none 0 again",
            "CAS b/x 5@1 v",
            "MSET b/m1 one b/m2 \"two words\" b/m3 \"(not found)\"",
            "MGET b/m1 b/gone b/m2 b/m3",
            "TXN IF EXISTS b/m1 AND VALUE b/m2 = \"two words\" THEN PUT b/t then-ran; DELETE b/m1 ELSE PUT b/t else-ran",
            "GET b/t",
            "TXN IF EXISTS b/m1 THEN PUT b/t then-ran ELSE PUT b/t else-ran",
            "GET b/t",
            "DELETE b/m1",
            "LIST b/m",
            "LIST b/ --limit 2 --values",
            "LIST b/zzz",
        ]);

        string[] expected =
        [
            "^OK$",
            $"^hello world \\(version {Version}\\)$",
            "^OK$",
            @"^\(not found\)$",
            "^\"  new  \"$",
            $"^CONFLICT {Version}$",
            $"^OK {Version}$",
            $"^1 {Version}$",
            "^0$",
            $"^OK {Version}$",
            $"^CONFLICT {Version}$",
            @"^CONFLICT \(absent\)$",
            $"^OK {Version}$",
            "^one \\(not found\\) \"two words\" \"\\(not found\\)\"$",
            $"^THEN {Version}$",
            "^then-ran$",
            $"^ELSE {Version}$",
            "^else-ran$",
            @"^\(not found\)$",
            "^b/m2 b/m3$",
            $"^b/k \"  new  \" b/m2 \"two words\" \\(more={Version}/[A-Za-z0-9_-]+\\)$",
            @"^\(none\)$",
        ];
        Assert.That(result.Lines, Has.Count.EqualTo(expected.Length), string.Join("\n", result.Lines) + result.Stderr);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.That(result.Lines[i], Does.Match(expected[i]), $"line {i + 1}");
        }
        // PUTNX of a present key answers with that key's current version: the one GET --version printed after UPDATE.
        Assert.That(result.Lines[5]["CONFLICT ".Length..], Is.Not.EqualTo(result.Lines[1].Split("(version ")[1].TrimEnd(')')), "UPDATE gave the key a new version");
        // CAS of a key that exists reports its current version, which the first CAS just made.
        Assert.That(result.Lines[10]["CONFLICT ".Length..], Is.EqualTo(result.Lines[9]["OK ".Length..]));
        Assert.That(result.ExitCode, Is.EqualTo(0), "conflicts and (not found) are not errors in batch mode");
    }

    [Test]
    public async Task One_shot_exit_codes_and_json_of_the_new_commands()
    {
        string version = await PutAsync("o/k", "v1");

        var getVersion = await RunAsync([], "get", "o/k", "--version");
        var casConflict = await RunAsync([], "cas", "o/k", "1@1", "v2");
        var casJson = await RunAsync([], "--json", "cas", "o/k", version, "v2");
        var casStale = await RunAsync([], "--json", "cas", "o/k", version, "v3");
        var putnx = await RunAsync([], "put-if-absent", "o/k", "v");
        var exists = await RunAsync([], "--json", "exists", "o/k");
        var absent = await RunAsync([], "--json", "exists", "o/none");
        var update = await RunAsync([], "update", "o/none", "v");
        var mset = await RunAsync([], "--json", "mset", "o/a", "1", "o/b", "\"\\xff\"");
        var mget = await RunAsync([], "--json", "mget", "o/a", "o/b", "o/none");
        var txnThen = await RunAsync([], "txn", "if", "exists", "o/a", "then", "put", "o/t", "two words;", "delete", "o/a");
        var txnElse = await RunAsync([], "--json", "txn", "IF", "EXISTS", "o/a", "THEN", "DELETE", "o/t", "ELSE", "PUT", "o/t", "else");
        var txnBad = await RunAsync([], "txn", "if", "exists", "o/a", "put", "o/t", "x");
        var after = await RunAsync([], "mget", "o/t", "o/a");

        Assert.That(getVersion.Lines.Single(), Is.EqualTo($"v1 (version {version})"));
        Assert.That(getVersion.ExitCode, Is.EqualTo(0));
        Assert.That(casConflict.Lines.Single(), Is.EqualTo($"CONFLICT {version}"), "a failed CAS names the key's current version");
        Assert.That(casConflict.ExitCode, Is.EqualTo(5));
        var written = JsonDocument.Parse(casJson.Lines.Single()).RootElement;
        Assert.That((written.GetProperty("command").GetString(), written.GetProperty("status").GetString()), Is.EqualTo(("cas", "ok")));
        string newVersion = written.GetProperty("version").GetString()!;
        Assert.That(newVersion, Does.Match($"^{Version}$").And.Not.EqualTo(version));
        Assert.That(casJson.ExitCode, Is.EqualTo(0));
        var stale = JsonDocument.Parse(casStale.Lines.Single()).RootElement;
        Assert.That((stale.GetProperty("status").GetString(), stale.GetProperty("version").GetString()), Is.EqualTo(("conflict", newVersion)));
        Assert.That(casStale.ExitCode, Is.EqualTo(5));
        Assert.That((putnx.Lines.Single(), putnx.ExitCode), Is.EqualTo(($"CONFLICT {newVersion}", 5)));
        Assert.That(exists.Lines.Single(), Is.EqualTo($"{{\"command\":\"exists\",\"key\":\"o/k\",\"status\":\"ok\",\"exists\":true,\"version\":\"{newVersion}\"}}"));
        Assert.That(absent.Lines.Single(), Is.EqualTo("{\"command\":\"exists\",\"key\":\"o/none\",\"status\":\"not_found\",\"exists\":false,\"version\":\"0\"}"));
        Assert.That((exists.ExitCode, absent.ExitCode), Is.EqualTo((0, 1)));
        Assert.That((update.Lines.Single(), update.ExitCode), Is.EqualTo(("(not found)", 1)));

        var set = JsonDocument.Parse(mset.Lines.Single()).RootElement;
        Assert.That((set.GetProperty("status").GetString(), set.GetProperty("count").GetInt32()), Is.EqualTo(("ok", 2)));
        string revision = set.GetProperty("revision").GetString()!;
        var got = JsonDocument.Parse(mget.Lines.Single()).RootElement;
        var entries = got.GetProperty("entries").EnumerateArray().ToList();
        Assert.That(entries.Select(e => (e.GetProperty("key").GetString(), e.GetProperty("found").GetBoolean())), Is.EqualTo(new[] { ("o/a", true), ("o/b", true), ("o/none", false) }));
        Assert.That(entries[0].GetProperty("value").GetString(), Is.EqualTo("1"));
        Assert.That(entries[1].GetProperty("valueBase64").GetString(), Is.EqualTo(Convert.ToBase64String([0xff])));
        Assert.That(entries[2].TryGetProperty("value", out _) || entries[2].TryGetProperty("valueBase64", out _), Is.False);
        Assert.That((entries[0].GetProperty("version").GetString(), entries[1].GetProperty("version").GetString(), entries[2].GetProperty("version").GetString()),
            Is.EqualTo((revision, revision, "0")), "MSET gives every key the same version; an absent key has none");
        Assert.That(got.GetProperty("revision").GetString(), Does.Match($"^{Version}$"));

        Assert.That(txnThen.ExitCode, Is.EqualTo(0));
        Assert.That(txnThen.Lines.Single(), Does.Match($"^THEN {Version}$"));
        var txn = JsonDocument.Parse(txnElse.Lines.Single()).RootElement;
        Assert.That((txn.GetProperty("status").GetString(), txn.GetProperty("branch").GetString()), Is.EqualTo(("conflict", "else")));
        Assert.That(txnElse.ExitCode, Is.EqualTo(5));
        Assert.That(txnBad.ExitCode, Is.EqualTo(2));
        Assert.That(txnBad.Stderr.Split('\n')[0], Is.EqualTo("client: expected AND or THEN after the compare, got put; usage: client <cluster.json> txn " + KvReplica.Client.Cli.TxnLineParser.Grammar[4..]));
        Assert.That(after.Lines.Single(), Is.EqualTo("else (not found)"), "THEN put o/t and deleted o/a; ELSE put o/t again");
    }

    [Test]
    public async Task List_pages_with_limit_and_cursor_cover_every_key_once_in_every_mode()
    {
        string[] keys = [.. Enumerable.Range(0, 7).Select(i => $"l/{i:00}")];
        var fill = await RunAsync(["MSET " + string.Join(' ', keys.Select(k => $"{k} v{k[2..]}"))]);
        Assert.That(fill.Lines.Single(), Does.StartWith("OK "));

        // One-shot: pages of 3, following the cursor each page prints.
        var seen = new List<string>();
        string[] cursorArgs = [];
        int pages = 0;
        while (true)
        {
            var page = await RunAsync([], ["list", "l/", "--limit", "3", .. cursorArgs]);
            Assert.That(page.ExitCode, Is.EqualTo(0), page.Stderr);
            pages++;
            Assert.That(pages, Is.LessThanOrEqualTo(3), "7 keys in pages of 3 take 3 pages: " + string.Join("\n", page.Lines));
            var more = page.Lines[^1].StartsWith("(more=", StringComparison.Ordinal) ? page.Lines[^1]["(more=".Length..^1] : null;
            seen.AddRange(more is null ? page.Lines : page.Lines.Take(page.Lines.Count - 1));
            if (more is null)
            {
                break;
            }
            Assert.That(page.Lines, Has.Count.EqualTo(4), "3 keys and the cursor");
            cursorArgs = ["--cursor", more];
        }
        Assert.That(seen, Is.EqualTo(keys));
        Assert.That(pages, Is.EqualTo(3));

        // Batch: one line per LIST; the cursor carries on at the same revision even after a write.
        var first = await RunAsync(["LIST l/ --limit 4"]);
        string cursor = first.Lines.Single().Split(' ')[^1]["(more=".Length..^1];
        var rest = await RunAsync(["PUT l/05 changed", "PUT l/99 new", $"LIST l/ --values --cursor {cursor}", "LIST l/ --cursor nonsense"]);
        Assert.That(first.Lines.Single(), Does.Match($"^l/00 l/01 l/02 l/03 \\(more={Version}/[A-Za-z0-9_-]+\\)$"));
        Assert.That(rest.Lines[2], Is.EqualTo("l/04 v04 l/05 v05 l/06 v06"), "the later pages read the first page's revision");
        Assert.That(rest.Lines[3], Does.StartWith("ERROR --cursor: 'nonsense' is not a cursor"));

        // Without --limit, every key (all pages), one per line at the prompt; JSON gives the page's next cursor.
        var prompt = await RunAsync(["LIST l/", "EXIT"], "--interactive");
        var json = await RunAsync([], "--json", "scan", "l/", "--limit", "2");
        var answers = string.Join("\n", prompt.Lines).Split("kv> ")[1..].Select(a => a.TrimEnd('\n').Split('\n')).ToList();
        Assert.That(answers[0], Is.EqualTo(new[] { "l/00", "l/01", "l/02", "l/03", "l/04", "l/05", "l/06", "l/99" }));
        var list = JsonDocument.Parse(json.Lines.Single()).RootElement;
        Assert.That(list.GetProperty("entries").EnumerateArray().Select(e => e.GetProperty("key").GetString()), Is.EqualTo(new[] { "l/00", "l/01" }));
        Assert.That(list.GetProperty("entries")[0].TryGetProperty("value", out _), Is.False, "keys only without --values");
        Assert.That(list.GetProperty("next").GetString(), Does.Match($"^{Version}/"));
        Assert.That(list.GetProperty("prefix").GetString(), Is.EqualTo("l/"));
    }

    [Test]
    public async Task Watch_with_count_prints_the_changes_another_client_makes()
    {
        string start = await PutAsync("w/start", "0");

        // --after the write above, so no change can slip past before the watch is set up.
        var oneShot = RunAsync([], "watch", "w/", "--after", start, "--count", "3");
        var json = RunAsync([], "--json", "watch", "w/", "--after", start, "--count", "3");
        var batch = RunAsync([$"WATCH w/ --after {start} --count 3", "GET w/a"]);
        var prompt = RunAsync([$"WATCH w/ --after {start} --count 2", "GET w/start", "EXIT"], "--interactive");
        var writer = await RunAsync(["PUT w/a 1", "PUT x/ignored 1", "PUT w/b \"two words\"", "DELETE w/a"]);
        Assert.That(writer.ExitCode, Is.EqualTo(0), string.Join("\n", writer.Lines));

        var events = (await oneShot).Lines;
        Assert.That(events, Has.Count.EqualTo(3), string.Join("\n", events));
        Assert.That(events[0], Does.Match($"^PUT w/a 1 {Version}$"));
        Assert.That(events[1], Does.Match($"^PUT w/b \"two words\" {Version}$"));
        Assert.That(events[2], Does.Match($"^DELETE w/a {Version}$"));
        var objects = (await json).Lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.That(objects.Select(o => (o.GetProperty("command").GetString(), o.GetProperty("event").GetString(), o.GetProperty("key").GetString())),
            Is.EqualTo(new[] { ("watch", "put", "w/a"), ("watch", "put", "w/b"), ("watch", "delete", "w/a") }));
        Assert.That(objects[1].GetProperty("value").GetString(), Is.EqualTo("two words"));
        Assert.That(objects.Select(o => o.GetProperty("revision").GetString()), Is.EqualTo(events.Select(e => e.Split(' ')[^1])), "the same revisions in both forms");
        var batchLines = (await batch).Lines;
        Assert.That(batchLines, Is.EqualTo(new[] { string.Join(" | ", events), "(not found)" }), "batch: the 3 events on one line, then the next command");
        var promptOutput = string.Join("\n", (await prompt).Lines);
        var answers = promptOutput.Split("kv> ")[1..].Select(a => a.TrimEnd('\n').Split('\n')).ToList();
        Assert.That(answers[0], Is.EqualTo(events.Take(2)), promptOutput);
        Assert.That(answers[1], Is.EqualTo(new[] { "0" }), "the prompt comes back after --count events");
    }

    [Test]
    public async Task Watch_in_batch_without_count_is_refused_and_one_shot_ends_with_exit_0_on_a_signal()
    {
        var batch = await RunAsync(["WATCH w2/", "PING"]);
        Assert.That(batch.Lines[0], Does.StartWith("ERROR WATCH in batch mode needs --count N"));
        Assert.That(batch.Lines[1], Does.StartWith("PONG"), "the batch goes on");

        foreach (string signal in new[] { "INT", "TERM" })
        {
            var start = new ProcessStartInfo(BuiltExecutables.Client, [_cluster.ConfigPath, .. _admin, "watch", "w2/"])
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                StandardOutputEncoding = Encoding.UTF8,
            };
            using var watcher = Process.Start(start)!;
            var firstLine = watcher.StandardOutput.ReadLineAsync();
            // The watch starts from now: write until a change shows up, within the deadline.
            var clock = Stopwatch.StartNew();
            int n = 0;
            while (!firstLine.IsCompleted)
            {
                Assert.That(clock.Elapsed, Is.LessThan(Deadline), "the watch never printed a change");
                await RunAsync([], "put", "w2/k", $"{signal}{n++}");
                await Task.WhenAny(firstLine, Task.Delay(200));
            }
            Assert.That(await firstLine, Does.Match($"^PUT w2/k {signal}[0-9]+ {Version}$"));

            using var kill = Process.Start("kill", ["-s", signal, watcher.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
            await kill.WaitForExitAsync();
            using var timeout = new CancellationTokenSource(Deadline);
            await watcher.WaitForExitAsync(timeout.Token);
            Assert.That(watcher.ExitCode, Is.EqualTo(0), $"SIG{signal} ends the watch normally: {await watcher.StandardError.ReadToEndAsync()}");
        }
    }

    [Test]
    public async Task Malformed_lines_give_one_error_line_each_in_every_mode()
    {
        string[] lines =
        [
            "TXN IF EXISTS a",
            "TXN IF VERSION a = x THEN DELETE a",
            "TXN THEN PUT a 1 ELSE",
            "MSET a",
            "CAS a 3 v",
        ];
        var batch = await RunAsync(lines);
        var json = await RunAsync(lines, "--json");
        var prompt = await RunAsync([.. lines, "EXIT"], "--interactive");

        Assert.That(batch.Lines, Has.Count.EqualTo(lines.Length), string.Join("\n", batch.Lines));
        Assert.That(batch.Lines[0], Is.EqualTo($"ERROR expected AND or THEN after the compare, but the line ended; usage: {KvReplica.Client.Cli.TxnLineParser.Grammar}"));
        Assert.That(batch.Lines[1], Does.StartWith("ERROR expected a version after VERSION a = (time@replica as printed, e.g. 12@2, or 0 for none), got x; usage: "));
        Assert.That(batch.Lines[2], Does.StartWith("ERROR expected PUT <key> <value> or DELETE <key> after ELSE, but the line ended; usage: "));
        Assert.That(batch.Lines[3], Does.StartWith("ERROR MSET takes <key> <value> pairs"));
        Assert.That(batch.Lines[4], Does.StartWith("ERROR CAS's expected version: '3' is not a version"));
        Assert.That(batch.ExitCode, Is.EqualTo(3));
        Assert.That(json.Lines.Select(l => JsonDocument.Parse(l).RootElement).Select(o => (o.GetProperty("command").GetString(), o.GetProperty("status").GetString())),
            Is.EqualTo(new[] { ("txn", "error"), ("txn", "error"), ("txn", "error"), ("mset", "error"), ("cas", "error") }));
        var answers = string.Join("\n", prompt.Lines).Split("kv> ")[1..].Select(a => a.TrimEnd('\n').Split('\n')).ToList();
        Assert.That(answers.Take(lines.Length).Select(a => a.Single()), Is.EqualTo(batch.Lines), "the prompt prints the same one line per error");
    }
}
