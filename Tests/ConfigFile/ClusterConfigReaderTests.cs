using System.Text;
using System.Text.RegularExpressions;
using KvReplica.Protocol.Config;
using KvReplica.Tests.Integration;
using NUnit.Framework;

namespace KvReplica.Tests.ConfigFile;

/// <summary>
/// cluster.json is strict: unknown keys, wrong JSON types and syntax errors are refused with one
/// line saying what is wrong and where; everything the file may hold is bound where it belongs.
/// </summary>
[TestFixture]
[Category("Unit")]
public sealed partial class ClusterConfigReaderTests
{
    private const string Replicas = """[ { "id": 1, "host": "127.0.0.1", "port": 7101 }, { "id": 2, "host": "127.0.0.1", "port": 7102 } ]""";

    private static ClusterConfig Parse(string json) => ClusterConfigReader.Parse(Encoding.UTF8.GetBytes(json), "cluster.json");

    private static string Refusal(string json)
    {
        var refused = Assert.Throws<ConfigException>(() => Parse(json))!;
        Assert.That(refused.Message, Does.Not.Contain('\n').And.Not.Contain('\r'), "one line");
        return refused.Message;
    }

    [Test]
    public void An_unknown_top_level_key_is_refused_with_the_nearest_known_one()
    {
        string message = Refusal($$"""{ "clusterName": "c", "replicas": {{Replicas}}, "fsynk": "none" }""");

        Assert.That(message, Is.EqualTo("cluster.json: unknown setting 'fsynk' (did you mean 'fsync'?)"));
    }

    [Test]
    public void An_unknown_key_in_a_replica_entry_names_the_entry()
    {
        string message = Refusal("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": 1 }, { "id": 2, "hots": "h", "port": 2 } ] }""");

        Assert.That(message, Is.EqualTo("cluster.json: unknown setting 'hots' in replicas[1] (did you mean 'host'?)"));
    }

    [TestCase("colour", "cluster.json: unknown setting 'colour'")]
    [TestCase("FSYNC", "cluster.json: unknown setting 'FSYNC' (did you mean 'fsync'?)")]
    [TestCase("readTimeuotMs", "cluster.json: unknown setting 'readTimeuotMs' (did you mean 'readTimeoutMs'?)")]
    [TestCase("heartbeatInterval", "cluster.json: unknown setting 'heartbeatInterval' (did you mean 'heartbeatIntervalMs'?)")]
    public void A_suggestion_is_made_only_when_a_known_key_is_close(string key, string expected)
    {
        Assert.That(Refusal($$"""{ "clusterName": "c", "replicas": {{Replicas}}, "{{key}}": 1 }"""), Is.EqualTo(expected));
    }

    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": "7101" } ] }""",
        "cluster.json: replicas[0].port must be a whole number, not the string \"7101\"")]
    [TestCase("""{ "clusterName": 5, "replicas": [ { "id": 1, "host": "h", "port": 7101 } ] }""",
        "cluster.json: clusterName must be a string, not the number 5")]
    [TestCase("""{ "clusterName": "c", "replicas": { "id": 1, "host": "h", "port": 7101 } }""",
        "cluster.json: replicas must be an array of objects, not an object")]
    [TestCase("""{ "clusterName": "c", "replicas": [ [ 1, "h", 7101 ] ] }""",
        "cluster.json: replicas[0] must be an object, not an array")]
    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": 7101 } ], "fsync": false }""",
        "cluster.json: fsync must be a string, not false")]
    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": 7101 } ], "readTimeoutMs": null }""",
        "cluster.json: readTimeoutMs must be a whole number, not null")]
    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": 7101 } ], "walSegmentMiB": 1.5 }""",
        "cluster.json: walSegmentMiB: 1.5 is not a whole number")]
    [TestCase("""[ { "clusterName": "c" } ]""",
        "cluster.json must hold a JSON object ({ ... }), not an array")]
    public void A_value_of_the_wrong_type_names_the_field_and_the_type_it_must_be(string json, string expected)
    {
        Assert.That(Refusal(json), Is.EqualTo(expected));
    }

    [Test]
    public void A_syntax_error_gives_its_one_based_line_and_column()
    {
        // Line 3, column 19 counted in characters from 1: the two accented letters before the
        // stray ']' are four bytes, so a byte count (21) or a 0-based one (18) would show.
        string json = "{\n  \"clusterName\": \"c\",\n  \"dataDir\": \"éé\" ]\n}\n";

        Assert.That(Refusal(json), Is.EqualTo("cluster.json:3:19: invalid JSON: ']' is invalid without a matching open"));
    }

    [TestCase("", "cluster.json:1:1: invalid JSON: the file is empty")]
    [TestCase("{\n  \"clusterName\": \"c\",\n  \"replicas\": [\n", "cluster.json:4:1: invalid JSON: the file ends before the JSON is complete")]
    public void A_file_cut_short_says_so_with_its_position(string json, string expected)
    {
        Assert.That(Refusal(json), Is.EqualTo(expected));
    }

    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": 5 }, { "id": 1, "host": "h", "port": 6 } ] }""",
        "cluster.json: replicas[1].id: id 1 is used twice")]
    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": 5 }, { "id": 2, "host": "h", "port": 5 } ] }""",
        "cluster.json: replicas[1].port: h:5 is used twice")]
    [TestCase("""{ "clusterName": " ", "replicas": [ { "id": 1, "host": "h", "port": 5 } ] }""", "cluster.json: clusterName is empty")]
    [TestCase("""{ "replicas": [ { "id": 1, "host": "h", "port": 5 } ] }""", "cluster.json: clusterName is missing")]
    [TestCase("""{ "clusterName": "c", "replicas": [] }""", "cluster.json: replicas is missing or empty; list at least one replica with id, host and port")]
    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "port": 5 } ] }""", "cluster.json: replicas[0].host is missing")]
    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 0, "host": "h", "port": 5 } ] }""", "cluster.json: replicas[0].id: 0 is outside 1..1000000")]
    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": 5 } ], "fsync": "sometimes" }""", "cluster.json: fsync: 'sometimes' is not one of always, batch, none")]
    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": 5 } ], "maxFrameBytes": 1048576 }""",
        "cluster.json: maxFrameBytes (1048576) must exceed maxValueBytes (1048576) by at least 65536, or no maximum-size value fits in a frame")]
    [TestCase("""{ "clusterName": "c", "replicas": [ { "id": 1, "host": "h", "port": 5 } ], "fsync": "none", "fsync": "always" }""", "cluster.json: fsync is given twice")]
    public void Values_of_the_right_type_are_still_checked(string json, string expected)
    {
        Assert.That(Refusal(json), Is.EqualTo(expected));
    }

    [Test]
    public void Every_setting_lands_in_its_own_property()
    {
        // Every value differs from its default and from every other, so a setting bound to the wrong property shows.
        var config = Parse($$"""
            // Comments and trailing commas are accepted on purpose, as they always were.
            {
              "clusterName": "named",
              "replicas": [ { "id": 2, "host": "b", "port": 7102 }, { "id": 1, "host": "a", "port": 7101, }, ],
              "maxValueBytes": 1000,
              "maxFrameBytes": 70000,
              "heartbeatIntervalMs": 11,
              "suspicionTimeoutMs": 1200,
              "recentDeliveredWrites": 1300,
              "readTimeoutMs": 1400,
              "writeTimeoutMs": 1500,
              "clientRequestTimeoutMs": 1600,
              "maxPendingWrites": 1700,
              "dataDir": "elsewhere/{id}",
              "fsync": "batch",
              "fsyncBatchMs": 18,
              "engineCommitEveryWrites": 1900,
              "engineCommitIntervalMs": 20,
              "engineMaxGiB": 22,
              "snapshotEveryWrites": 1900,
              "snapshotEveryLogMiB": 20,
              "walSegmentMiB": 21,
            }
            """);

        Assert.Multiple(() =>
        {
            Assert.That(config.ClusterName, Is.EqualTo("named"));
            Assert.That(config.Replicas, Is.EqualTo(new[] { new ReplicaAddress(1, "a", 7101), new ReplicaAddress(2, "b", 7102) }), "ordered by id");
            Assert.That(config.MaxValueBytes, Is.EqualTo(1000));
            Assert.That(config.MaxFrameBytes, Is.EqualTo(70000));
            Assert.That(config.HeartbeatInterval, Is.EqualTo(TimeSpan.FromMilliseconds(11)));
            Assert.That(config.SuspicionTimeout, Is.EqualTo(TimeSpan.FromMilliseconds(1200)));
            Assert.That(config.RecentDeliveredWrites, Is.EqualTo(1300));
            Assert.That(config.ReadTimeout, Is.EqualTo(TimeSpan.FromMilliseconds(1400)));
            Assert.That(config.WriteTimeout, Is.EqualTo(TimeSpan.FromMilliseconds(1500)));
            Assert.That(config.ClientRequestTimeout, Is.EqualTo(TimeSpan.FromMilliseconds(1600)));
            Assert.That(config.MaxPendingWrites, Is.EqualTo(1700));
            Assert.That(config.DataDir, Is.EqualTo("elsewhere/{id}"));
            Assert.That(config.Fsync, Is.EqualTo(FsyncPolicy.Batch));
            Assert.That(config.FsyncBatchInterval, Is.EqualTo(TimeSpan.FromMilliseconds(18)));
            Assert.That(config.EngineCommitEveryWrites, Is.EqualTo(1900));
            Assert.That(config.EngineCommitInterval, Is.EqualTo(TimeSpan.FromMilliseconds(20)));
            Assert.That(config.EngineMaxBytes, Is.EqualTo(22L << 30));
            Assert.That(config.WalSegmentBytes, Is.EqualTo(21L << 20));
        });
    }

    [Test]
    public void Absent_settings_take_the_defaults_the_README_documents()
    {
        var config = Parse($$"""{ "clusterName": "c", "replicas": {{Replicas}} }""");

        Assert.Multiple(() =>
        {
            Assert.That(config.MaxValueBytes, Is.EqualTo(1048576));
            Assert.That(config.MaxFrameBytes, Is.EqualTo(16777216));
            Assert.That(config.HeartbeatInterval.TotalMilliseconds, Is.EqualTo(50));
            Assert.That(config.SuspicionTimeout.TotalMilliseconds, Is.EqualTo(1000));
            Assert.That(config.RecentDeliveredWrites, Is.EqualTo(50000));
            Assert.That(config.ReadTimeout.TotalMilliseconds, Is.EqualTo(2000));
            Assert.That(config.WriteTimeout.TotalMilliseconds, Is.EqualTo(5000));
            Assert.That(config.ClientRequestTimeout.TotalMilliseconds, Is.EqualTo(6000));
            Assert.That(config.MaxPendingWrites, Is.EqualTo(100000));
            Assert.That(config.DataDir, Is.EqualTo("data/replica-{id}"));
            Assert.That(config.Fsync, Is.EqualTo(FsyncPolicy.Always));
            Assert.That(config.FsyncBatchInterval.TotalMilliseconds, Is.EqualTo(10));
            Assert.That(config.EngineCommitEveryWrites, Is.EqualTo(10000));
            Assert.That(config.EngineCommitInterval.TotalMilliseconds, Is.EqualTo(1000));
            Assert.That(config.EngineMaxBytes, Is.EqualTo(256L << 30));
            Assert.That(config.WalSegmentBytes, Is.EqualTo(64L << 20));
        });
    }

    [Test]
    public void The_README_documents_exactly_the_settings_the_reader_knows()
    {
        string readme = File.ReadAllText(Path.Combine(BuiltExecutables.RepositoryRoot, "README.md"));
        string section = readme[readme.IndexOf("\n## cluster.json", StringComparison.Ordinal)..];
        section = section[..section.IndexOf("\n## ", 1, StringComparison.Ordinal)];
        var documented = ReadmeTableRow().Matches(section).Select(m => m.Groups[1].Value).ToList();

        Assert.That(documented, Is.EqualTo(ClusterSettings.Cluster.Settings.Select(s => s.Name)));
    }

    [GeneratedRegex(@"^\| `([A-Za-z]+)` \|", RegexOptions.Multiline)]
    private static partial Regex ReadmeTableRow();

    [Test]
    public void A_byte_order_mark_is_skipped()
    {
        byte[] json = [.. Encoding.UTF8.Preamble, .. Encoding.UTF8.GetBytes($$"""{ "clusterName": "c", "replicas": {{Replicas}} }""")];

        Assert.That(ClusterConfigReader.Parse(json, "cluster.json").ClusterName, Is.EqualTo("c"));
    }
}
