using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace KvReplica.Client.Cli.Bench;

/// <summary>Parameters of <c>client &lt;config&gt; bench</c>; <see cref="CommandLine"/> declares the flags, their defaults and ranges.</summary>
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
    /// Parses bench's own arguments alone (<c>--connections 4 --fill ...</c>), as
    /// <see cref="CommandLine"/> does inside the client's command line. Returns null and a
    /// one-line <paramref name="error"/> on bad input.
    /// </summary>
    public static BenchOptions? Parse(IReadOnlyList<string> args, out string? error)
    {
        var options = new CommandLine();
        var command = new Command("bench");
        options.AddTo(command);
        var result = command.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
        error = result.Errors.Count > 0 ? "bench: " + result.Errors[0].Message : null;
        return error is null ? options.Read(result) : null;
    }

    /// <summary>The bench's options for System.CommandLine, each with its default and range in its help line.</summary>
    internal sealed class CommandLine
    {
        private static readonly BenchOptions Defaults = new();

        public Option<int> Connections { get; } = Whole("--connections", "concurrent connections, each with one request in flight", Defaults.Connections, 1, 10_000);
        public Option<double> Duration { get; } = Number("--duration", "seconds measured, after the warm-up", Defaults.Duration.TotalSeconds, 0.1, 86_400);
        public Option<double> WriteRatio { get; } = Number("--write-ratio", "fraction of operations that are PUTs (the rest are GETs)", Defaults.WriteRatio, 0, 1);
        public Option<int> ValueSize { get; } = Whole("--value-size", "bytes per PUT value (at most the cluster's maxValueBytes)", Defaults.ValueSize, 0, 64 << 20);
        public Option<int> Keys { get; } = Whole("--keys", "keys drawn from: bench-0 to bench-(K-1)", Defaults.Keys, 1, 1_000_000_000);
        public Option<double> Warmup { get; } = Number("--warmup", "seconds run first and left out of the figures", Defaults.Warmup.TotalSeconds, 0, 3_600);
        public Option<bool> Fill { get; } = new("--fill")
        {
            Description = "keys in order (bench-0, bench-1, ... wrapping at --keys) instead of at random, to load a store [default: off]",
        };

        public void AddTo(Command command)
        {
            foreach (Option option in (Option[])[Connections, Duration, WriteRatio, ValueSize, Keys, Warmup, Fill])
            {
                command.Options.Add(option);
            }
        }

        public BenchOptions Read(ParseResult result) => new()
        {
            Connections = result.GetValue(Connections),
            Duration = TimeSpan.FromSeconds(result.GetValue(Duration)),
            WriteRatio = result.GetValue(WriteRatio),
            ValueSize = result.GetValue(ValueSize),
            Keys = result.GetValue(Keys),
            Warmup = TimeSpan.FromSeconds(result.GetValue(Warmup)),
            Fill = result.GetValue(Fill),
        };

        private static Option<int> Whole(string name, string description, int defaultValue, int min, int max) => new(name)
        {
            Description = string.Create(CultureInfo.InvariantCulture, $"{description}; a whole number in {min}..{max}"),
            HelpName = "n",
            DefaultValueFactory = _ => defaultValue,
            CustomParser = argument => Parse(argument, name, min, max, whole: true) is { } n ? (int)n : 0,
        };

        private static Option<double> Number(string name, string description, double defaultValue, double min, double max) => new(name)
        {
            Description = string.Create(CultureInfo.InvariantCulture, $"{description}; {min}..{max}, fractions allowed"),
            HelpName = "x",
            DefaultValueFactory = _ => defaultValue,
            CustomParser = argument => Parse(argument, name, min, max, whole: false) ?? 0,
        };

        private static double? Parse(ArgumentResult argument, string name, double min, double max, bool whole)
        {
            string text = argument.Tokens.Count == 1 ? argument.Tokens[0].Value : "";
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && value >= min && value <= max && (!whole || value == Math.Floor(value)))
            {
                return value;
            }
            argument.AddError(string.Create(CultureInfo.InvariantCulture, $"{name}: '{text}' is not {(whole ? "a whole number" : "a number")} in {min}..{max}"));
            return null;
        }
    }
}
