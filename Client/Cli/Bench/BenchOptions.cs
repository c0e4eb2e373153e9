using System.Globalization;

namespace KvReplica.Client.Cli.Bench;

/// <summary>Parameters of <c>client &lt;config&gt; bench</c>; see <see cref="Parse"/> for the flags and ranges.</summary>
internal sealed record BenchOptions
{
    /// <summary>Concurrent clients, one connection and one outstanding request each.</summary>
    public int Connections { get; init; } = 1;
    /// <summary>Measured time, after the warm-up.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Fraction of operations that are PUTs (the rest are GETs), 0..1.</summary>
    public double WriteRatio { get; init; } = 0.5;
    /// <summary>Bytes per PUT value.</summary>
    public int ValueSize { get; init; } = 100;
    /// <summary>Keys are drawn uniformly from this many (bench-0 … bench-(K-1)).</summary>
    public int Keys { get; init; } = 10_000;
    /// <summary>
    /// Keys in order (bench-0, bench-1, …, wrapping at K) shared by all connections instead of at
    /// random: with write ratio 1 and enough operations, every key gets written (loading a store).
    /// </summary>
    public bool Fill { get; init; }
    /// <summary>Time run before measuring; excluded from the statistics.</summary>
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Parses <c>--connections N --duration S --write-ratio R --value-size B --keys K --warmup S --fill</c>
    /// (seconds may be fractional). Returns null and a one-line <paramref name="error"/> on bad input.
    /// </summary>
    public static BenchOptions? Parse(IReadOnlyList<string> args, out string? error)
    {
        var options = new BenchOptions();
        error = null;
        for (int i = 0; i < args.Count; i++)
        {
            string flag = args[i];
            if (flag == "--fill")
            {
                options = options with { Fill = true };
                continue;
            }
            if (i + 1 >= args.Count)
            {
                error = flag.StartsWith("--", StringComparison.Ordinal) ? $"bench {flag} needs a value" : $"bench: unexpected argument '{flag}'";
                return null;
            }
            string text = args[++i];
            switch (flag)
            {
                case "--connections" when TryNumber(text, 1, 10_000, out double n) && n == Math.Floor(n):
                    options = options with { Connections = (int)n };
                    break;
                case "--duration" when TryNumber(text, 0.1, 86_400, out double s):
                    options = options with { Duration = TimeSpan.FromSeconds(s) };
                    break;
                case "--write-ratio" when TryNumber(text, 0, 1, out double r):
                    options = options with { WriteRatio = r };
                    break;
                case "--value-size" when TryNumber(text, 0, 64 << 20, out double b) && b == Math.Floor(b):
                    options = options with { ValueSize = (int)b };
                    break;
                case "--keys" when TryNumber(text, 1, 1_000_000_000, out double k) && k == Math.Floor(k):
                    options = options with { Keys = (int)k };
                    break;
                case "--warmup" when TryNumber(text, 0, 3_600, out double w):
                    options = options with { Warmup = TimeSpan.FromSeconds(w) };
                    break;
                case "--connections" or "--duration" or "--write-ratio" or "--value-size" or "--keys" or "--warmup":
                    error = $"bench {flag}: '{text}' is not allowed (see --help for the ranges)";
                    return null;
                default:
                    error = $"bench: unknown option '{flag}'";
                    return null;
            }
        }
        return options;
    }

    private static bool TryNumber(string text, double min, double max, out double value) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && value >= min && value <= max;
}
