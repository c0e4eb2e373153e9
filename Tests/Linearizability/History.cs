using System.Text.Json;
using System.Text.Json.Serialization;

namespace KvReplica.Tests.Linearizability;

/// <summary>The operations the checker knows.</summary>
public enum KvOperationKind
{
    Put,
    Get,
    Delete,
}

/// <summary>What an operation returned, as the client saw it.</summary>
public enum KvOutcomeKind
{
    /// <summary>PUT: OK. DELETE: the key existed. GET: returned <see cref="KvOperation.Output"/>.</summary>
    Ok,
    /// <summary>GET: no value. DELETE: the key was absent.</summary>
    NotFound,
    /// <summary>The client got no definite answer (timeout, error after sending): a write may or
    /// may not have taken effect, at any moment after its invocation. A GET with this outcome
    /// constrains nothing and is ignored.</summary>
    Unknown,
}

/// <summary>
/// One client operation of a recorded history. Times are in any one monotonic unit shared by
/// the whole history; an operation with an <see cref="KvOutcomeKind.Unknown"/> outcome is taken
/// to return at +infinity.
/// </summary>
public sealed record KvOperation(
    int Client,
    string Key,
    KvOperationKind Kind,
    byte[]? Input,
    KvOutcomeKind Outcome,
    byte[]? Output,
    long InvokedAt,
    long ReturnedAt)
{
    public override string ToString()
    {
        static string Show(byte[]? v) => v is null ? "-" : System.Text.Encoding.UTF8.GetString(v);
        string call = Kind switch
        {
            KvOperationKind.Put => $"put({Key}, {Show(Input)})",
            KvOperationKind.Get => $"get({Key})",
            _ => $"delete({Key})",
        };
        string result = Outcome switch
        {
            KvOutcomeKind.Unknown => "?",
            KvOutcomeKind.NotFound => "not found",
            _ => Kind == KvOperationKind.Get ? Show(Output) : "ok",
        };
        string end = Outcome == KvOutcomeKind.Unknown ? "inf" : ReturnedAt.ToString();
        return $"client {Client} [{InvokedAt}, {end}] {call} -> {result}";
    }
}

/// <summary>A history as JSON lines, one operation per line (values base64), kept as an artefact for replay.</summary>
public static class HistoryFile
{
    private static readonly JsonSerializerOptions Json = new()
    {
        Converters = { new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static void Write(string path, IEnumerable<KvOperation> history) =>
        File.WriteAllLines(path, history.Select(op => JsonSerializer.Serialize(op, Json)));

    public static List<KvOperation> Read(string path) =>
        [.. File.ReadLines(path).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize<KvOperation>(l, Json)!)];
}
