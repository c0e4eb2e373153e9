using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace KvReplica.Protocol.Config;

/// <summary>
/// Turns an <see cref="IConfiguration"/> built from cluster.json into a validated
/// <see cref="ClusterConfig"/>. Reading the file is the caller's business (Node and Client each
/// do it); this class only interprets and validates, so every message names the field at fault.
/// </summary>
public static class ClusterConfigReader
{
    public static ClusterConfig Read(IConfiguration json, string sourceName)
    {
        string Where(string field) => $"{sourceName}: {field}";

        string clusterName = json["clusterName"] ?? throw new ConfigException($"{Where("clusterName")} is missing");
        if (string.IsNullOrWhiteSpace(clusterName))
        {
            throw new ConfigException($"{Where("clusterName")} is empty");
        }

        var replicaSections = json.GetSection("replicas").GetChildren().OrderBy(s => int.TryParse(s.Key, out int i) ? i : int.MaxValue).ToList();
        if (replicaSections.Count == 0)
        {
            throw new ConfigException($"{Where("replicas")} is missing or empty; list at least one replica with id, host and port");
        }
        var replicas = new List<ReplicaAddress>();
        foreach (var section in replicaSections)
        {
            string at = $"replicas[{section.Key}]";
            int id = ReadInt(section, "id", Where(at + ".id"), required: true, min: 1, max: 1_000_000, fallback: 0);
            string host = section["host"] ?? throw new ConfigException($"{Where(at + ".host")} is missing");
            if (string.IsNullOrWhiteSpace(host))
            {
                throw new ConfigException($"{Where(at + ".host")} is empty");
            }
            int port = ReadInt(section, "port", Where(at + ".port"), required: true, min: 1, max: 65535, fallback: 0);
            if (replicas.Any(r => r.Id == id))
            {
                throw new ConfigException($"{Where(at + ".id")}: id {id} is used twice");
            }
            if (replicas.Any(r => r.Host == host && r.Port == port))
            {
                throw new ConfigException($"{Where(at + ".port")}: {host}:{port} is used twice");
            }
            replicas.Add(new ReplicaAddress(id, host, port));
        }

        var defaults = new ClusterConfig { ClusterName = clusterName, Replicas = [] };
        int maxValueBytes = ReadInt(json, "maxValueBytes", Where("maxValueBytes"), false, 1, 64 << 20, defaults.MaxValueBytes);
        int maxFrameBytes = ReadInt(json, "maxFrameBytes", Where("maxFrameBytes"), false, 1024, int.MaxValue, defaults.MaxFrameBytes);
        if (maxFrameBytes < maxValueBytes + 64 * 1024)
        {
            throw new ConfigException($"{Where("maxFrameBytes")} ({maxFrameBytes}) must exceed maxValueBytes ({maxValueBytes}) by at least 65536, or no maximum-size value fits in a frame");
        }
        string dataDir = json["dataDir"] ?? defaults.DataDir;
        if (string.IsNullOrWhiteSpace(dataDir) || dataDir.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
        {
            throw new ConfigException($"{Where("dataDir")}: '{dataDir}' is not a usable directory path");
        }
        string fsyncText = json["fsync"] ?? "always";
        FsyncPolicy fsync = fsyncText switch
        {
            "always" => FsyncPolicy.Always,
            "batch" => FsyncPolicy.Batch,
            "none" => FsyncPolicy.None,
            _ => throw new ConfigException($"{Where("fsync")}: '{fsyncText}' is not one of always, batch, none"),
        };
        string configDirectory = Path.GetDirectoryName(Path.GetFullPath(sourceName)) ?? ".";
        string Resolve(string path) => Path.GetFullPath(Path.Combine(configDirectory, path));
        TlsSettings? tls = null;
        var tlsSection = json.GetSection("tls");
        if (tlsSection.Exists())
        {
            string PathSetting(string key) => tlsSection[key] is { Length: > 0 } value
                ? Resolve(value)
                : throw new ConfigException($"{Where("tls." + key)} is missing: tls needs ca, cert and key (PEM files; {{id}} stands for the replica id)");
            tls = new TlsSettings(PathSetting("ca"), PathSetting("cert"), PathSetting("key"));
        }
        string? bootstrapAdmin = json.GetSection("auth")["bootstrapAdmin"];
        if (bootstrapAdmin is not null && tls is null)
        {
            throw new ConfigException($"{Where("auth.bootstrapAdmin")}: authentication needs tls (clients authenticate over TLS only)");
        }
        return new ClusterConfig
        {
            DataDir = dataDir,
            ConfigDirectory = configDirectory,
            Tls = tls,
            BootstrapAdminFile = bootstrapAdmin is null ? null : Resolve(bootstrapAdmin),
            Fsync = fsync,
            FsyncBatchInterval = ReadMs(json, "fsyncBatchMs", Where("fsyncBatchMs"), 1, 10_000, defaults.FsyncBatchInterval),
            SnapshotEveryWrites = ReadInt(json, "snapshotEveryWrites", Where("snapshotEveryWrites"), false, 1, int.MaxValue, defaults.SnapshotEveryWrites),
            SnapshotEveryLogBytes = ReadInt(json, "snapshotEveryLogMiB", Where("snapshotEveryLogMiB"), false, 1, 1 << 20, (int)(defaults.SnapshotEveryLogBytes >> 20)) * (1L << 20),
            WalSegmentBytes = ReadInt(json, "walSegmentMiB", Where("walSegmentMiB"), false, 1, 4096, (int)(defaults.WalSegmentBytes >> 20)) * (1L << 20),
            ClusterName = clusterName,
            Replicas = [.. replicas.OrderBy(r => r.Id)],
            MaxValueBytes = maxValueBytes,
            MaxFrameBytes = maxFrameBytes,
            HeartbeatInterval = ReadMs(json, "heartbeatIntervalMs", Where("heartbeatIntervalMs"), 1, 60_000, defaults.HeartbeatInterval),
            SuspicionTimeout = ReadMs(json, "suspicionTimeoutMs", Where("suspicionTimeoutMs"), 10, 600_000, defaults.SuspicionTimeout),
            ReadTimeout = ReadMs(json, "readTimeoutMs", Where("readTimeoutMs"), 10, 600_000, defaults.ReadTimeout),
            WriteTimeout = ReadMs(json, "writeTimeoutMs", Where("writeTimeoutMs"), 10, 600_000, defaults.WriteTimeout),
            ClientRequestTimeout = ReadMs(json, "clientRequestTimeoutMs", Where("clientRequestTimeoutMs"), 10, 600_000, defaults.ClientRequestTimeout),
            MaxPendingWrites = ReadInt(json, "maxPendingWrites", Where("maxPendingWrites"), false, 1, 10_000_000, defaults.MaxPendingWrites),
            RecentDeliveredWrites = ReadInt(json, "recentDeliveredWrites", Where("recentDeliveredWrites"), false, 1, 10_000_000, defaults.RecentDeliveredWrites),
        };
    }

    private static TimeSpan ReadMs(IConfiguration section, string key, string where, int min, int max, TimeSpan fallback) =>
        TimeSpan.FromMilliseconds(ReadInt(section, key, where, false, min, max, (int)fallback.TotalMilliseconds));

    private static int ReadInt(IConfiguration section, string key, string where, bool required, int min, int max, int fallback)
    {
        string? text = section[key];
        if (text is null)
        {
            return required ? throw new ConfigException($"{where} is missing") : fallback;
        }
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value))
        {
            throw new ConfigException($"{where}: '{text}' is not a whole number");
        }
        if (value < min || value > max)
        {
            throw new ConfigException($"{where}: {value} is outside {min}..{max}");
        }
        return value;
    }
}
