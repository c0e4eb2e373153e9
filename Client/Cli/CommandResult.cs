using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;

namespace KvReplica.Client.Cli;

/// <summary>How a command turned out, which decides the exit code (<see cref="CommandResult.ExitCode"/>).</summary>
internal enum ResultKind
{
    Ok,
    Value,
    NotFound,
    Error,
    /// <summary>STATUS only: some replica is unreachable, removed from the view, or in a minority.</summary>
    Degraded,
    /// <summary>EXIT: the line modes stop; nothing is printed.</summary>
    Exit,
    /// <summary>CAS or PUTNX found another version, or TXN ran its ELSE branch: the condition did not hold.</summary>
    Conflict,
    /// <summary>WATCH printed its events as they came; nothing is left to print and the line modes go on.</summary>
    Streamed,
}

/// <summary>
/// What one command produced, in a form both renderings read: text (<see cref="TextLines"/>, or
/// <c>ERROR reason</c>) and one JSON object (<see cref="ResultRenderer.Json"/>). Made by the
/// command's entry in <see cref="CommandTable"/>, so each command decides its output in one place.
/// </summary>
internal sealed record CommandResult
{
    /// <summary>The command's name, lower case (<c>get</c>); for a line that did not parse, its first word, lower case.</summary>
    public required string Command { get; init; }

    public required ResultKind Kind { get; init; }

    /// <summary>The key for GET, PUT and DELETE (JSON <c>key</c>); null for other commands.</summary>
    public string? Key { get; init; }

    /// <summary>GET's value (JSON <c>value</c> or <c>valueBase64</c>).</summary>
    public byte[]? Value { get; init; }

    /// <summary>The text output, one or more lines (STATUS has one per replica); unused for an error.</summary>
    public IReadOnlyList<string> TextLines { get; init; } = [];

    /// <summary>The reason, with what to do next, when <see cref="Kind"/> is <see cref="ResultKind.Error"/>.</summary>
    public string? Error { get; init; }

    /// <summary>
    /// The one line batch mode prints instead of joining <see cref="TextLines"/> with <c> | </c>,
    /// for results whose lines are made of words (LIST); null to join.
    /// </summary>
    public string? BatchLine { get; init; }

    /// <summary>Fields of the command's own, written after the common ones in JSON.</summary>
    public Action<Utf8JsonWriter>? JsonFields { get; init; }

    public static CommandResult Ok(string command, string? key = null, Action<Utf8JsonWriter>? json = null, string text = "OK") =>
        new() { Command = command, Kind = ResultKind.Ok, Key = key, TextLines = [text], JsonFields = json };

    public static CommandResult Found(string command, string key, byte[] value) =>
        new() { Command = command, Kind = ResultKind.Value, Key = key, Value = value, TextLines = [ValueFormatter.Format(value)] };

    public static CommandResult NotFound(string command, string? key) =>
        new() { Command = command, Kind = ResultKind.NotFound, Key = key, TextLines = ["(not found)"] };

    public static CommandResult Failed(string command, string? key, string reason) =>
        new() { Command = command, Kind = ResultKind.Error, Key = key, Error = reason.ReplaceLineEndings(" ") };

    /// <summary>Exit code of a one-shot command (<see cref="ExitCodes"/>).</summary>
    public int ExitCode => Kind switch
    {
        ResultKind.Ok or ResultKind.Value or ResultKind.Exit or ResultKind.Streamed => ExitCodes.Ok,
        ResultKind.NotFound => ExitCodes.NotFound,
        ResultKind.Degraded => ExitCodes.Degraded,
        ResultKind.Conflict => ExitCodes.ConditionFailed,
        _ => ExitCodes.Error,
    };

    /// <summary>JSON <c>status</c>: ok, not_found, conflict (CAS, PUTNX, TXN), error, or degraded (STATUS only).</summary>
    public string Status => Kind switch
    {
        ResultKind.Ok or ResultKind.Value or ResultKind.Exit or ResultKind.Streamed => "ok",
        ResultKind.NotFound => "not_found",
        ResultKind.Degraded => "degraded",
        ResultKind.Conflict => "conflict",
        _ => "error",
    };
}

/// <summary>Turns a <see cref="CommandResult"/> into the lines a mode prints. Pure.</summary>
internal static class ResultRenderer
{
    // Readable non-ASCII text; control characters, quotes and backslashes are still escaped, so
    // a JSON line never spans two lines.
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// The text lines: <c>ERROR reason</c> for an error, else the result's lines. With
    /// <paramref name="oneLine"/> (batch mode) several lines are joined by <c> | </c>, so every
    /// command gives exactly one line; a result with a <see cref="CommandResult.BatchLine"/> gives that.
    /// </summary>
    public static IReadOnlyList<string> Text(CommandResult result, bool oneLine)
    {
        if (result.Kind == ResultKind.Error)
        {
            // The reason may echo what a user typed or a replica sent (a key, a command word):
            // control and escape characters in it are printed escaped, never passed to the terminal.
            return ["ERROR " + ValueFormatter.EscapeUnprintable(result.Error ?? "")];
        }
        if (oneLine && result.BatchLine is { } line)
        {
            return [line];
        }
        return oneLine && result.TextLines.Count > 1 ? [string.Join(" | ", result.TextLines)] : result.TextLines;
    }

    /// <summary>
    /// The result as one line of JSON: <c>command</c>, <c>key</c> (commands with a key),
    /// <c>status</c> (ok, not_found, conflict, error, degraded), <c>value</c> (a value that is valid UTF-8)
    /// or <c>valueBase64</c> (any other value), <c>error</c> (when status is error), then the
    /// command's own fields. README, "JSON output", is the schema.
    /// </summary>
    public static string Json(CommandResult result)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer, JsonOptions))
        {
            json.WriteStartObject();
            json.WriteString("command", result.Command);
            if (result.Key is not null)
            {
                json.WriteString("key", result.Key);
            }
            json.WriteString("status", result.Status);
            if (result.Value is { } value)
            {
                WriteValue(json, value);
            }
            if (result.Error is not null)
            {
                json.WriteString("error", result.Error);
            }
            result.JsonFields?.Invoke(json);
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary><c>value</c> when <paramref name="value"/> is valid UTF-8, else <c>valueBase64</c>.</summary>
    public static void WriteValue(Utf8JsonWriter json, ReadOnlySpan<byte> value)
    {
        if (Utf8.IsValid(value))
        {
            json.WriteString("value", value);
        }
        else
        {
            json.WriteBase64String("valueBase64", value);
        }
    }

        /// <summary>What a mode prints for <paramref name="result"/>: one JSON line, or the text lines.</summary>
    public static IReadOnlyList<string> Lines(CommandResult result, bool json, bool oneLine) =>
        result.Kind is ResultKind.Exit or ResultKind.Streamed ? [] : json ? [Json(result)] : Text(result, oneLine);
}
