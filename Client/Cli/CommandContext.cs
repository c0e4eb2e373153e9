using KvReplica.Client.Cli.Bench;
using KvReplica.Protocol.Config;
using KvReplica.Transport;

namespace KvReplica.Client.Cli;

/// <summary>Where a command runs: as the only command of the process, or a line of batch input or of the prompt.</summary>
[Flags]
internal enum CommandModes
{
    Prompt = 1,
    Batch = 2,
    OneShot = 4,
    Lines = Prompt | Batch,
    All = Prompt | Batch | OneShot,
}

/// <summary>
/// What a command may use: the cluster's configuration, a client connected on first use (and
/// kept for the next command), and the dial settings for the commands that open connections of
/// their own (STATUS asks every replica; BACKUP streams from one).
/// </summary>
internal sealed class CommandContext(ClusterConfig config, string configPath, KvClientOptions options, DialSettings dial, CommandModes mode) : IAsyncDisposable
{
    private KvClient? _client;

    public ClusterConfig Config => config;

    /// <summary>The cluster.json path as the user gave it, for the next steps errors suggest.</summary>
    public string ConfigPath => configPath;

    public KvClientOptions Options => options;

    public DialSettings Dial => dial;

    public CommandModes Mode => mode;

    /// <summary>The bench parameters, when the process runs <c>bench</c>.</summary>
    public BenchOptions? Bench { get; init; }

    public TextWriter Stdout { get; init; } = TextWriter.Null;

    public TextWriter Stderr { get; init; } = TextWriter.Null;

    /// <summary>--json: a streaming command (WATCH) prints one JSON object per event.</summary>
    public bool Json { get; init; }

    /// <summary>How long STATUS waits for each replica: --timeout, else 2 s.</summary>
    public TimeSpan StatusTimeout => options.RequestTimeout ?? TimeSpan.FromSeconds(2);

    /// <summary>The client, connected on the first call; throws <see cref="KvException"/> as <see cref="KvClient.ConnectAsync"/> does.</summary>
    public async Task<KvClient> ClientAsync(CancellationToken ct) =>
        _client ??= await KvClient.ConnectAsync(config, options, ct).ConfigureAwait(false);

    /// <summary>The client if one is connected, else null.</summary>
    public KvClient? ConnectedClient => _client;

    public async ValueTask DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync().ConfigureAwait(false);
        }
    }
}
