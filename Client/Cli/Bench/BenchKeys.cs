using System.Globalization;

namespace KvReplica.Client.Cli.Bench;

/// <summary>
/// The bench's key space: <c>bench-0</c> to <c>bench-(K-1)</c>, decimal without leading zeros, and
/// the prefixes the LIST workload scans. A prefix of d digits, <c>bench-p</c>, matches the keys
/// whose number starts with p: p itself, p0..p9, p00..p99, ... below K. So with K = 10,000 every
/// two-digit prefix (10..99) matches exactly 1 + 10 + 100 = 111 keys.
/// </summary>
internal static class BenchKeys
{
    public const string Prefix = "bench-";

    /// <summary>The key of index <paramref name="index"/>.</summary>
    public static string Name(long index) => Prefix + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>Decimal digits of <paramref name="n"/> (at least 1, for 0).</summary>
    public static int Digits(long n)
    {
        int digits = 1;
        while (n >= 10)
        {
            n /= 10;
            digits++;
        }
        return digits;
    }

    /// <summary>
    /// The numbers p a prefix of <paramref name="digits"/> digits is drawn from, uniformly: the
    /// d-digit numbers below <paramref name="keys"/> (0..9 for one digit). Empty when no key has
    /// that many digits. Digits 0 is the single empty prefix.
    /// </summary>
    public static (long Low, long HighExclusive) PrefixRange(int keys, int digits)
    {
        if (digits == 0)
        {
            return (0, 1);
        }
        long low = digits == 1 ? 0 : Pow10(digits - 1);
        return (low, Math.Max(low, Math.Min(Pow10(digits), keys)));
    }

    /// <summary>The keys a random prefix of <paramref name="digits"/> digits matches, on average.</summary>
    public static double AverageMatches(int keys, int digits)
    {
        if (digits == 0)
        {
            return keys;
        }
        var (low, high) = PrefixRange(keys, digits);
        // Every key with at least d digits has exactly one d-digit prefix, and that prefix is in the range.
        long keysWithEnoughDigits = digits == 1 ? keys : Math.Max(0, keys - Pow10(digits - 1));
        return high > low ? (double)keysWithEnoughDigits / (high - low) : 0;
    }

    /// <summary>
    /// The most digits whose prefixes match at least <paramref name="limit"/> keys on average, so
    /// that a LIST page is usually full and its prefix not much wider than the page; 0 (every key)
    /// when there are fewer keys than the limit.
    /// </summary>
    public static int AutoPrefixDigits(int keys, int limit)
    {
        int best = 0;
        for (int digits = 1; digits <= Digits(keys - 1); digits++)
        {
            if (AverageMatches(keys, digits) >= limit)
            {
                best = digits;
            }
        }
        return best;
    }

    /// <summary>A uniformly random prefix of <paramref name="digits"/> digits, e.g. <c>bench-12</c>; <c>bench-</c> for 0.</summary>
    public static string RandomPrefix(Random random, int keys, int digits)
    {
        if (digits == 0)
        {
            return Prefix;
        }
        var (low, high) = PrefixRange(keys, digits);
        return Name(random.NextInt64(low, high));
    }

    private static long Pow10(int exponent)
    {
        long value = 1;
        for (int i = 0; i < exponent; i++)
        {
            value *= 10;
        }
        return value;
    }
}
