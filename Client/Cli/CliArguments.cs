using KvReplica.Client.Cli.Bench;
using KvReplica.Protocol.Wire;

namespace KvReplica.Client.Cli;

/// <summary>
/// The parsed process arguments (<see cref="CliCommandLine"/>): <c>client [options] &lt;config&gt;
/// [command [args...]]</c>, the options anywhere.
/// </summary>
internal sealed record CliArguments
{
    public string? ConfigPath { get; init; }
    public int? PreferredReplicaId { get; init; }
    public ReadMode ReadMode { get; init; } = ReadMode.Majority;
    public TimeSpan? RequestTimeout { get; init; }
    /// <summary>--user: the user to authenticate as (else KVREPLICA_USER).</summary>
    public string? User { get; init; }
    /// <summary>--password-file: where the user's password is (else KVREPLICA_PASSWORD).</summary>
    public string? PasswordFile { get; init; }
    /// <summary>--json: one JSON object per result line.</summary>
    public bool Json { get; init; }
    /// <summary>--interactive: the prompt even when stdin is not a terminal.</summary>
    public bool Interactive { get; init; }
    /// <summary>The one-shot command, or null for the prompt or batch mode.</summary>
    public CommandSpec? Command { get; init; }
    /// <summary>The one-shot command's arguments, as given.</summary>
    public IReadOnlyList<string> CommandArguments { get; init; } = [];
    /// <summary>The bench's parameters when <see cref="Command"/> is BENCH.</summary>
    public BenchOptions? Bench { get; init; }
}
