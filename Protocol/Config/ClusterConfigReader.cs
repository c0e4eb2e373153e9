using System.Text;
using System.Text.Json;

namespace KvReplica.Protocol.Config;

/// <summary>
/// Turns the text of cluster.json into a validated <see cref="ClusterConfig"/>: strict JSON
/// (comments and trailing commas allowed), only the keys of <see cref="ClusterSettings"/>, each
/// of its declared type and range. Every failure is a <see cref="ConfigException"/> of one line
/// naming the file and the setting (or the line and column of a syntax error).
/// </summary>
public static class ClusterConfigReader
{
    // Comments and trailing commas are accepted, as they were when the file was read through
    // Microsoft.Extensions.Configuration: a commented-out replica is a normal thing to have.
    private static readonly JsonDocumentOptions Syntax = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>
    /// Parses <paramref name="utf8"/> (a leading byte-order mark is skipped). <paramref name="sourceName"/>
    /// starts every message, and its directory is where a relative <c>dataDir</c> starts.
    /// </summary>
    public static ClusterConfig Parse(ReadOnlyMemory<byte> utf8, string sourceName)
    {
        if (utf8.Span.StartsWith(Encoding.UTF8.Preamble))
        {
            utf8 = utf8[Encoding.UTF8.Preamble.Length..];
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8, Syntax);
        }
        catch (JsonException e)
        {
            throw SyntaxError(utf8.Span, e, sourceName);
        }
        using (document)
        {
            return Read(document.RootElement, sourceName);
        }
    }

    /// <summary>Reads a parsed cluster.json; see <see cref="Parse"/>.</summary>
    public static ClusterConfig Read(JsonElement root, string sourceName)
    {
        var reader = new SettingReader(sourceName);
        var empty = new ClusterConfig
        {
            ClusterName = "",
            Replicas = [],
            ConfigDirectory = Path.GetDirectoryName(Path.GetFullPath(sourceName)) ?? ".",
        };
        var config = reader.Object(root, "", ClusterSettings.Cluster, empty);

        for (int i = 0; i < config.Replicas.Count; i++)
        {
            var replica = config.Replicas[i];
            if (config.Replicas.Take(i).Any(r => r.Id == replica.Id))
            {
                throw reader.Error($"replicas[{i}].id", $"id {replica.Id} is used twice", separator: ": ");
            }
            if (config.Replicas.Take(i).Any(r => r.Host == replica.Host && r.Port == replica.Port))
            {
                throw reader.Error($"replicas[{i}].port", $"{replica.Host}:{replica.Port} is used twice", separator: ": ");
            }
        }
        if (config.MaxFrameBytes < config.MaxValueBytes + 64 * 1024)
        {
            throw reader.Error("maxFrameBytes", $"({config.MaxFrameBytes}) must exceed maxValueBytes ({config.MaxValueBytes}) by at least 65536, or no maximum-size value fits in a frame");
        }
        if (string.IsNullOrWhiteSpace(config.DataDir) || config.DataDir.IndexOfAny(Path.GetInvalidPathChars()) >= 0)
        {
            throw reader.Error("dataDir", $"'{SettingReader.Printable(config.DataDir)}' is not a usable directory path", separator: ": ");
        }
        if (config.BootstrapAdminFile is not null && config.Tls is null)
        {
            throw reader.Error("auth.bootstrapAdmin", "authentication needs tls (clients authenticate over TLS only)", separator: ": ");
        }
        string Resolve(string path) => Path.GetFullPath(Path.Combine(config.ConfigDirectory, path));
        return config with
        {
            Replicas = [.. config.Replicas.OrderBy(r => r.Id)],
            Tls = config.Tls is { } tls ? new TlsSettings(Resolve(tls.Ca), Resolve(tls.Cert), Resolve(tls.Key)) : null,
            BootstrapAdminFile = config.BootstrapAdminFile is { } file ? Resolve(file) : null,
        };
    }

    // "cluster.json:3:17: invalid JSON: ..." with a 1-based line and a 1-based column counted in
    // characters, not the parser's 0-based byte offsets.
    private static ConfigException SyntaxError(ReadOnlySpan<byte> utf8, JsonException e, string sourceName)
    {
        long line = e.LineNumber ?? 0;
        long byteInLine = e.BytePositionInLine ?? 0;
        int lineStart = 0;
        for (long l = 0; l < line; l++)
        {
            int next = utf8[lineStart..].IndexOf((byte)'\n');
            if (next < 0)
            {
                break;
            }
            lineStart += next + 1;
        }
        int byteOffset = (int)Math.Min(lineStart + byteInLine, utf8.Length);
        int column = Encoding.UTF8.GetCharCount(utf8[lineStart..byteOffset]) + 1;
        bool atEnd = utf8[byteOffset..].Trim(" \t\r\n"u8).IsEmpty;
        string reason = utf8.Trim(" \t\r\n"u8).IsEmpty ? "the file is empty"
            : atEnd ? "the file ends before the JSON is complete"
            : ParserReason(e.Message);
        return new ConfigException($"{sourceName}:{line + 1}:{column}: invalid JSON: {reason}");
    }

    // The parser's message without the position it appends (" LineNumber: 2 | BytePositionInLine: 16."),
    // which is given in the prefix instead, 1-based.
    private static string ParserReason(string message)
    {
        int position = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        string reason = (position < 0 ? message : message[..position]).Trim();
        return SettingReader.Printable(reason.TrimEnd('.'));
    }
}
