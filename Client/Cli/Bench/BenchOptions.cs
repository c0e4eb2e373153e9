using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using KvReplica.Protocol.Wire;

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
    /// <summary>What one operation is (<see cref="BenchWorkload"/>); <see cref="BenchWorkload.Rw"/> is the GET/PUT mix.</summary>
    public BenchWorkload Workload { get; init; } = BenchWorkload.Rw;
    /// <summary>TXN workload: what the transaction compares on its first key, the version or the value the GET read.</summary>
    public BenchTxnCompare TxnCompare { get; init; } = BenchTxnCompare.Version;
    /// <summary>LIST workload: the page size asked for, 1..<see cref="Limits.MaxScanLimit"/>.</summary>
    public int ListLimit { get; init; } = 100;
    /// <summary>
    /// LIST workload: decimal digits after <c>bench-</c> in a scanned prefix (0 scans <c>bench-</c>, every key);
    /// null picks <see cref="BenchKeys.AutoPrefixDigits"/>.
    /// </summary>
    public int? ListPrefixDigits { get; init; }
    /// <summary>LIST workload: scan keys and versions without the values.</summary>
    public bool ListKeysOnly { get; init; }
    /// <summary>MGET workload: distinct keys per MGET, 1..<see cref="Limits.MaxMultiKeys"/> and at most <see cref="Keys"/>.</summary>
    public int MgetKeys { get; init; } = 10;

    /// <summary>The prefix digits a LIST op uses: <see cref="ListPrefixDigits"/>, or the automatic choice.</summary>
    public int EffectiveListPrefixDigits => ListPrefixDigits ?? BenchKeys.AutoPrefixDigits(Keys, ListLimit);

    /// <summary>
    /// The checks that involve two options (a one-option range is checked by its parser); null when
    /// the combination is valid, else a line naming the options.
    /// </summary>
    public string? Validate()
    {
        var inv = CultureInfo.InvariantCulture;
        return Workload switch
        {
            BenchWorkload.Txn when Keys < 2 => "--workload txn writes two distinct keys: --keys must be at least 2",
            BenchWorkload.Mget when MgetKeys > Keys => string.Create(inv, $"--mget-keys {MgetKeys} asks for more distinct keys than --keys {Keys}"),
            BenchWorkload.List when ListPrefixDigits > BenchKeys.Digits(Keys - 1) => string.Create(inv,
                $"--list-prefix-digits {ListPrefixDigits}: the keys bench-0 to bench-{Keys - 1} have at most {BenchKeys.Digits(Keys - 1)} digits"),
            _ => null,
        };
    }

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
        // The command's validator (AddTo) reports combinations of options as parse errors too.
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
        public Option<BenchWorkload> Workload { get; } = OneOf("--workload",
            "what one operation is: rw = a GET or a PUT by --write-ratio; cas = a GET then a compare-and-set with the version read; "
            + "txn = a GET then a transaction over two keys (compare on the first, then put both, else put the second); "
            + "list = one scan page of --list-limit keys under a random prefix; mget = one MGET of --mget-keys keys",
            Defaults.Workload);
        public Option<BenchTxnCompare> TxnCompare { get; } = OneOf("--txn-compare",
            "txn: compare the first key's version (IfVersion) or its value (IfValue) with what the GET read; an absent key compares IfAbsent",
            Defaults.TxnCompare);
        public Option<int> ListLimit { get; } = Whole("--list-limit", "list: keys per scan page", Defaults.ListLimit, 1, Limits.MaxScanLimit);
        public Option<int?> ListPrefixDigits { get; } = new("--list-prefix-digits")
        {
            Description = "list: digits after bench- in the scanned prefix (bench-12 matches bench-12, bench-120..129, bench-1200..1299, ...; 0 scans every key); "
                + "a whole number in 0..9 [default: auto, the most digits whose prefixes match at least --list-limit keys on average, else 0]",
            HelpName = "n",
            CustomParser = argument => Parse(argument, "--list-prefix-digits", 0, 9, whole: true) is { } n ? (int)n : null,
        };
        public Option<bool> ListKeysOnly { get; } = new("--list-keys-only")
        {
            Description = "list: scan keys and versions without the values [default: off]",
        };
        public Option<int> MgetKeys { get; } = Whole("--mget-keys", "mget: distinct random keys per MGET (at most --keys)", Defaults.MgetKeys, 1, Limits.MaxMultiKeys);

        public void AddTo(Command command)
        {
            foreach (Option option in (Option[])[Connections, Duration, WriteRatio, ValueSize, Keys, Warmup, Fill, Workload, TxnCompare, ListLimit, ListPrefixDigits, ListKeysOnly, MgetKeys])
            {
                command.Options.Add(option);
            }
            // A combination of options (txn needs two keys, ...) is a parse error like a bad value,
            // so `client` exits 2 before connecting. Skipped when a value already failed: its own
            // error is the one to show, and the failed value would only add a misleading second one.
            command.Validators.Add(result =>
            {
                BenchOptions options;
                try
                {
                    options = Read(result);
                }
                catch (InvalidOperationException)
                {
                    // A value failed to parse: that option's own error is the one to show.
                    return;
                }
                if (options.Validate() is { } error)
                {
                    result.AddError(error);
                }
            });
        }

        public BenchOptions Read(ParseResult result) => Read(result.CommandResult);

        /// <summary>
        /// The options as parsed; an option absent from the command line reads as its default
        /// (here rather than through DefaultValueFactory alone, because a command's validator runs
        /// before System.CommandLine fills in the defaults). Throws InvalidOperationException when
        /// a value failed to parse.
        /// </summary>
        public BenchOptions Read(SymbolResult result) => new()
        {
            Connections = Get(result, Connections, Defaults.Connections),
            Duration = TimeSpan.FromSeconds(Get(result, Duration, Defaults.Duration.TotalSeconds)),
            WriteRatio = Get(result, WriteRatio, Defaults.WriteRatio),
            ValueSize = Get(result, ValueSize, Defaults.ValueSize),
            Keys = Get(result, Keys, Defaults.Keys),
            Warmup = TimeSpan.FromSeconds(Get(result, Warmup, Defaults.Warmup.TotalSeconds)),
            Fill = Get(result, Fill, Defaults.Fill),
            Workload = Get(result, Workload, Defaults.Workload),
            TxnCompare = Get(result, TxnCompare, Defaults.TxnCompare),
            ListLimit = Get(result, ListLimit, Defaults.ListLimit),
            ListPrefixDigits = Get(result, ListPrefixDigits, Defaults.ListPrefixDigits),
            ListKeysOnly = Get(result, ListKeysOnly, Defaults.ListKeysOnly),
            MgetKeys = Get(result, MgetKeys, Defaults.MgetKeys),
        };

        private static T Get<T>(SymbolResult result, Option<T> option, T defaultValue) =>
            result.GetResult(option) is { } given ? given.GetValueOrDefault<T>() : defaultValue;

        private static Option<T> OneOf<T>(string name, string description, T defaultValue) where T : struct, Enum => new(name)
        {
            Description = $"{description}; one of {string.Join(", ", Enum.GetValues<T>().Select(Name))} [default: {Name(defaultValue)}]",
            HelpName = string.Join("|", Enum.GetValues<T>().Select(Name)),
            // No DefaultValueFactory: help would print the default a second time, as C# spells it;
            // an absent option reads as default(T), which the enums make their default.
            CustomParser = argument =>
            {
                string text = argument.Tokens.Count == 1 ? argument.Tokens[0].Value : "";
                foreach (var value in Enum.GetValues<T>())
                {
                    if (string.Equals(text, Name(value), StringComparison.OrdinalIgnoreCase))
                    {
                        return value;
                    }
                }
                argument.AddError($"{name}: '{text}' is not one of {string.Join(", ", Enum.GetValues<T>().Select(Name))}");
                return defaultValue;
            },
        };

        /// <summary>An enum value as the command line spells it: lower case.</summary>
        internal static string Name<T>(T value) where T : struct, Enum => value.ToString().ToLowerInvariant();

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

/// <summary>What one bench operation is. The first member (0) is the default.</summary>
internal enum BenchWorkload
{
    /// <summary>A GET or a PUT of one random key, by the write ratio.</summary>
    Rw,
    /// <summary>A GET of one random key, then a compare-and-set with the version read.</summary>
    Cas,
    /// <summary>A GET of one random key, then a transaction comparing it and writing it and a second key.</summary>
    Txn,
    /// <summary>One scan page under a random prefix of the key space.</summary>
    List,
    /// <summary>One MGET of several distinct random keys.</summary>
    Mget,
}

/// <summary>What the TXN workload's transaction compares. The first member (0) is the default.</summary>
internal enum BenchTxnCompare
{
    /// <summary>IfVersion with the version the GET read.</summary>
    Version,
    /// <summary>IfValue with the value the GET read.</summary>
    Value,
}
