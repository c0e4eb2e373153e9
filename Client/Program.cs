using System.Globalization;
using KvReplica.Client;
using KvReplica.Client.Cli;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;

const string Usage = """
    usage: client <config> [--replica ID] [--local] [--timeout MS] [command]
      (no command)            interactive prompt on a terminal; batch mode when stdin is a file or pipe
      get KEY | put KEY VALUE | delete KEY
                              one command, one result line; exit 0 ok, 1 not found, 3 error
      bench [--connections N] [--duration S] [--warmup S] [--write-ratio R] [--value-size B] [--keys K] [--seed N]
                              closed-loop benchmark: ops/s and p50/p99/p999 latency
    """;

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

var rest = new List<string>(args);
if (rest.Count == 0 || rest[0] is "--help" or "-h")
{
    Console.Error.WriteLine(Usage);
    return rest.Count == 0 ? 2 : 0;
}

string configPath = rest[0];
rest.RemoveAt(0);
var clientOptions = new KvClientOptions();
var bench = new BenchOptions();
try
{
    // Options may stand before the command; bench options after "bench".
    for (int i = 0; i < rest.Count;)
    {
        string arg = rest[i];
        if (!arg.StartsWith("--", StringComparison.Ordinal))
        {
            i++;
            continue;
        }
        string? NextValue()
        {
            if (i + 1 >= rest.Count)
            {
                throw new UsageException($"{arg} needs a value");
            }
            string v = rest[i + 1];
            rest.RemoveRange(i, 2);
            return v;
        }
        switch (arg)
        {
            case "--replica": clientOptions = clientOptions with { PreferredReplica = Int(arg, NextValue()) }; break;
            case "--timeout": clientOptions = clientOptions with { RequestTimeout = TimeSpan.FromMilliseconds(Int(arg, NextValue())) }; break;
            case "--local": clientOptions = clientOptions with { ReadMode = ReadMode.Local }; rest.RemoveAt(i); break;
            case "--connections": bench = bench with { Connections = Int(arg, NextValue()) }; break;
            case "--duration": bench = bench with { Duration = TimeSpan.FromSeconds(Number(arg, NextValue())) }; break;
            case "--warmup": bench = bench with { Warmup = TimeSpan.FromSeconds(Number(arg, NextValue())) }; break;
            case "--write-ratio": bench = bench with { WriteRatio = Number(arg, NextValue()) }; break;
            case "--value-size": bench = bench with { ValueSize = Int(arg, NextValue()) }; break;
            case "--keys": bench = bench with { Keys = Int(arg, NextValue()) }; break;
            case "--seed": bench = bench with { Seed = Int(arg, NextValue()) }; break;
            default: throw new UsageException($"unknown option '{arg}'");
        }
    }
    if (bench.WriteRatio is < 0 or > 1)
    {
        throw new UsageException("--write-ratio must be between 0 and 1");
    }
    if (bench.Connections < 1 || bench.Keys < 1 || bench.ValueSize < 0)
    {
        throw new UsageException("--connections and --keys must be at least 1, --value-size at least 0");
    }
}
catch (UsageException e)
{
    return Fail(e.Message, 2);
}

ClusterConfig config;
try
{
    config = ClusterConfigFile.Load(configPath);
}
catch (ConfigException e)
{
    return Fail(e.Message, 2);
}
if (clientOptions.PreferredReplica is int preferred && config.Find(preferred) is null)
{
    return Fail($"replica {preferred} is not in {configPath} (replicas: {string.Join(", ", config.Replicas.Select(r => r.Id))})", 2);
}

try
{
    if (rest.Count > 0 && rest[0].Equals("bench", StringComparison.OrdinalIgnoreCase))
    {
        if (rest.Count > 1)
        {
            return Fail($"unexpected '{rest[1]}' after bench", 2);
        }
        return await Bench.RunAsync(config, bench, Console.Out, Console.Error, cancel.Token);
    }

    Command? oneShot = null;
    if (rest.Count > 0)
    {
        if (rest[0].StartsWith("--", StringComparison.Ordinal))
        {
            return Fail($"unknown option '{rest[0]}'", 2);
        }
        // The shell has already split and unquoted the words: the key is one argument, and a
        // PUT value is the remaining arguments joined by single spaces.
        string verb = rest[0].ToLowerInvariant();
        oneShot = (verb, rest.Count) switch
        {
            ("get", 2) => new Command.Get(rest[1]),
            ("delete" or "del", 2) => new Command.Delete(rest[1]),
            ("put", >= 3) => new Command.Put(rest[1], System.Text.Encoding.UTF8.GetBytes(string.Join(' ', rest.Skip(2)))),
            ("get" or "delete" or "del", _) => throw new UsageException($"{verb} takes one key"),
            ("put", _) => throw new UsageException("put takes a key and a value"),
            _ => null,
        };
        if (oneShot is not (Command.Get or Command.Put or Command.Delete))
        {
            return Fail($"'{rest[0]}' is not a one-shot command (get, put, delete, bench)", 2);
        }
    }

    await using var client = await KvClient.ConnectAsync(config, clientOptions, cancel.Token);
    var shell = new Shell(client);
    if (oneShot is not null)
    {
        var (line, isError) = await shell.ExecuteAsync(oneShot, cancel.Token);
        Console.WriteLine(line);
        return isError ? 3 : line == "(not found)" ? 1 : 0;
    }
    bool interactive = !Console.IsInputRedirected;
    if (interactive)
    {
        Console.WriteLine($"connected to {client.ConnectedReplica}; HELP for commands, EXIT to leave");
    }
    var stdin = new StreamReader(Console.OpenStandardInput(), new System.Text.UTF8Encoding(false));
    var stdout = new StreamWriter(Console.OpenStandardOutput(), new System.Text.UTF8Encoding(false)) { AutoFlush = false };
    return await shell.RunAsync(stdin, stdout, interactive, cancel.Token);
}
catch (KvTimeoutException e)
{
    return Fail(e.Message, 3);
}
catch (UsageException e)
{
    return Fail(e.Message, 2);
}
catch (OperationCanceledException)
{
    return 130;
}

static int Fail(string message, int exitCode)
{
    Console.Error.WriteLine($"client: {message}");
    return exitCode;
}

static int Int(string option, string? text) =>
    int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : throw new UsageException($"{option}: '{text}' is not a whole number");

static double Number(string option, string? text) =>
    double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : throw new UsageException($"{option}: '{text}' is not a number");

internal sealed class UsageException(string message) : Exception(message);
