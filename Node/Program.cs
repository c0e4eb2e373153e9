using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using KvReplica.Node;
using KvReplica.Transport;
using KvReplica.Node.Security;
using KvReplica.Node.Storage;
using KvReplica.Protocol.Config;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

// SIGTERM and SIGINT stop the replica with exit code 0 at any moment after this line: while a
// host runs (it stops it, as its console lifetime does too), while it starts (start-up is
// cancelled), and between the two hosts of a fresh start, when no host is listening for them.
using var stopRequested = new CancellationTokenSource();
void RequestStop(PosixSignalContext signal)
{
    signal.Cancel = true;
    stopRequested.Cancel();
}
using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, RequestStop);
using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, RequestStop);

const string Usage = "usage: node <id> <config> [--data-dir <dir>] [--restore <backup-file>] [--insecure] [--verbose]\n       node --version\n       node certs <config> [--admin-password-file <file>]   (makes the cluster's CA, replica certificates and bootstrap admin)";

if (args is ["--version"])
{
    // The version of this build (Directory.Build.props) and of the wire protocol it speaks: a
    // client and a replica interoperate when the protocol numbers are equal.
    string version = typeof(ExitCodes).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
    Console.WriteLine($"node {version.Split('+')[0]} (protocol {KvReplica.Protocol.Wire.ProtocolVersion.Current})");
    return ExitCodes.Stopped;
}

if (args.Length > 0 && args[0] == "certs")
{
    return CertificateCommand.Run(args[1..], Console.Out, Console.Error);
}

var positional = new List<string>();
bool verbose = false;
bool insecure = false;
string? dataDirOverride = null;
string? restoreFrom = null;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--help" or "-h":
            Console.WriteLine(Usage);
            return ExitCodes.Stopped;
        case "--verbose":
            verbose = true;
            break;
        case "--insecure":
            insecure = true;
            break;
        case "--data-dir":
            if (i + 1 >= args.Length || string.IsNullOrWhiteSpace(args[i + 1]))
            {
                return Fail($"--data-dir needs a directory; {Usage}", ExitCodes.Usage);
            }
            dataDirOverride = Path.GetFullPath(args[++i]);
            break;
        case "--restore":
            if (i + 1 >= args.Length || string.IsNullOrWhiteSpace(args[i + 1]))
            {
                return Fail($"--restore needs a backup file; {Usage}", ExitCodes.Usage);
            }
            restoreFrom = Path.GetFullPath(args[++i]);
            break;
        case var flag when flag.StartsWith("--", StringComparison.Ordinal):
            return Fail($"unknown option '{flag}'; {Usage}", ExitCodes.Usage);
        default:
            positional.Add(args[i]);
            break;
    }
}
if (positional.Count != 2)
{
    return Fail(Usage, ExitCodes.Usage);
}
if (!int.TryParse(positional[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int replicaId))
{
    return Fail($"replica id '{positional[0]}' is not a number; {Usage}", ExitCodes.Usage);
}

ClusterConfig config;
try
{
    config = ClusterConfigFile.Load(positional[1]);
}
catch (ConfigException e)
{
    return Fail(e.Message, ExitCodes.Usage);
}
if (config.Find(replicaId) is null)
{
    return Fail($"replica id {replicaId} is not in {positional[1]} (replicas: {string.Join(", ", config.Replicas.Select(r => r.Id))})", ExitCodes.Usage);
}

// Secure by default: without tls only loopback addresses may listen, unless the operator says
// --insecure in so many words.
var self = config.Find(replicaId)!;
if (config.Tls is null && !insecure && !IsLoopback(self.Host))
{
    return Fail($"replica {replicaId} listens on {self.Host}, which is not a loopback address, and {positional[1]} has no tls: add tls (README, \"Security\"; `node certs {positional[1]}` makes the certificates) or pass --insecure", ExitCodes.Usage);
}
NodeSecurity security;
try
{
    security = NodeSecurity.Load(config, replicaId);
}
catch (ConfigException e)
{
    return Fail(e.Message, ExitCodes.Usage);
}

if (restoreFrom is not null)
{
    // Seed the data directory and stop: the operator starts the replica as usual afterwards.
    try
    {
        Console.WriteLine($"node: {BackupRestore.Seed(restoreFrom, dataDirOverride ?? config.DataDirectoryOf(replicaId), config.EngineMaxBytes)}");
        return ExitCodes.Stopped;
    }
    catch (NodeStartupException e)
    {
        return Fail(e.Message, e.ExitCode);
    }
    catch (IOException e) when (DiskFull.IsCause(e))
    {
        return Fail($"disk full: {e.Message}; free space and run --restore again", ExitCodes.DiskFull);
    }
    catch (IOException e)
    {
        return Fail($"restore failed: {e.Message}", ExitCodes.StartupRefused);
    }
}

// One run of the replica per pass; a replica that fell too far behind to rejoin from the
// members' recent writes starts again here with a new incarnation, and its start-up catches up
// from a member's snapshot (docs/design.md §9).
while (!stopRequested.IsCancellationRequested)
{
    var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
    builder.Logging.ClearProviders();
    builder.Logging.AddSimpleConsole(o =>
    {
        o.SingleLine = true;
        o.TimestampFormat = "HH:mm:ss.fff ";
        o.ColorBehavior = LoggerColorBehavior.Disabled;
    });
    builder.Logging.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Information);
    // The host's own lifecycle chatter and its copy of startup failures add nothing to our one line.
    builder.Logging.AddFilter("Microsoft", LogLevel.None);
    builder.Services.AddSingleton(config);
    builder.Services.AddSingleton(security);
    builder.Services.AddSingleton(new NodeIdentity(replicaId, RandomNumberGenerator.GetInt32(1, int.MaxValue) * 4_294_967_296L + RandomNumberGenerator.GetInt32(0, int.MaxValue), verbose, dataDirOverride));
    builder.Services.AddSingleton<ReplicaService>();
    builder.Services.AddHostedService(sp => sp.GetRequiredService<ReplicaService>());
    builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(5));

    using var host = builder.Build();
    // Resolved before the run: RunAsync disposes the host, and its services with it.
    var replica = host.Services.GetRequiredService<ReplicaService>();
    try
    {
        await host.RunAsync(stopRequested.Token);
    }
    catch (NodeStartupException e)
    {
        return Fail(e.Message, e.ExitCode);
    }
    catch (OperationCanceledException) when (stopRequested.IsCancellationRequested)
    {
        // SIGTERM or Ctrl+C while it was still recovering or catching up: an ordinary stop.
        return ExitCodes.Stopped;
    }
    catch (Exception e) when (DiskFull.IsCause(e))
    {
        return Fail($"disk full: {e.GetBaseException().Message}; free space there and start the replica again: it rejoins by itself", ExitCodes.DiskFull);
    }
    catch (Exception e)
    {
        // A bug, or an I/O failure other than a full disk, while starting or stopping. The whole
        // exception goes to the log (stdout) for whoever debugs it; stderr gets the one line.
        Console.Out.WriteLine($"node: internal failure: {e}");
        return Fail($"internal failure: {e.GetType().Name}: {e.Message}", ExitCodes.InternalFailure);
    }
    if (replica.Failure is { } failure)
    {
        return Fail(failure.Reason, failure.ExitCode);
    }
    if (!replica.StartAfreshRequested)
    {
        return ExitCodes.Stopped;
    }
}
return ExitCodes.Stopped;

static bool IsLoopback(string host) =>
    host == "localhost" || (System.Net.IPAddress.TryParse(host, out var address) && System.Net.IPAddress.IsLoopback(address));

static int Fail(string message, int exitCode)
{
    Console.Error.WriteLine($"node: {message}");
    return exitCode;
}
