using System.Numerics;

namespace KvReplica.Client.Cli.Bench;

/// <summary>
/// A fixed-size log-linear histogram of durations in nanoseconds: exact below 64 ns, then 32
/// buckets per power of two (at most about 3% relative error). Constant memory whatever the run
/// length; not thread-safe (one per worker, merged at the end).
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBuckets = 32;
    private const int LinearLimit = 2 * SubBuckets;
    // Covers values up to 2^62 ns, far beyond any request timeout.
    private readonly long[] _counts = new long[SubBuckets * 62 + SubBuckets];

    public long Count { get; private set; }

    public long MaxNanoseconds { get; private set; }

    /// <summary>Adds one duration; negative values count as 0.</summary>
    public void Record(long nanoseconds)
    {
        nanoseconds = Math.Max(0, nanoseconds);
        _counts[BucketOf(nanoseconds)]++;
        Count++;
        MaxNanoseconds = Math.Max(MaxNanoseconds, nanoseconds);
    }

    /// <summary>Adds every sample of <paramref name="other"/> to this histogram.</summary>
    public void Add(LatencyHistogram other)
    {
        for (int i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }
        Count += other.Count;
        MaxNanoseconds = Math.Max(MaxNanoseconds, other.MaxNanoseconds);
    }

    /// <summary>
    /// The duration below or at which a fraction <paramref name="quantile"/> (0..1) of samples fall,
    /// reported as the middle of its bucket; 0 when empty.
    /// </summary>
    public long ValueAtQuantile(double quantile)
    {
        if (Count == 0)
        {
            return 0;
        }
        long rank = Math.Clamp((long)Math.Ceiling(quantile * Count), 1, Count);
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                var (low, width) = BucketRange(i);
                return Math.Min(low + (width - 1) / 2, MaxNanoseconds);
            }
        }
        return MaxNanoseconds;
    }

    internal static int BucketOf(long value)
    {
        if (value < LinearLimit)
        {
            return (int)value;
        }
        int highestBit = 63 - BitOperations.LeadingZeroCount((ulong)value);
        int shift = highestBit - 5;
        return shift * SubBuckets + (int)(value >> shift);
    }

    internal static (long Low, long Width) BucketRange(int bucket)
    {
        if (bucket < LinearLimit)
        {
            return (bucket, 1);
        }
        int shift = bucket / SubBuckets - 1;
        long sub = bucket - shift * SubBuckets;
        return (sub << shift, 1L << shift);
    }
}
