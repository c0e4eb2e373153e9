using System.Globalization;
using System.Text;
using System.Text.Json;

namespace KvReplica.Protocol.Config;

/// <summary>
/// Walks a parsed cluster.json against <see cref="SettingTable{T}"/>s and builds every message
/// a bad file gets, so they all have one shape: one line, starting with the file name, naming the
/// setting by its path (<c>replicas[0].port</c>) and saying what is wrong with it.
/// </summary>
internal sealed class SettingReader(string sourceName)
{
    // Longer than this, a quoted value in a message is cut: the message must stay one readable line.
    private const int MaxShownValueChars = 40;

    public ConfigException Error(string path, string problem, string separator = " ") =>
        new($"{sourceName}: {path}{separator}{problem}");

    public ConfigException TypeError(JsonElement value, string path, string expected) =>
        Error(path, $"must be {expected}, not {Describe(value)}");

    /// <summary>
    /// Reads a JSON object onto <paramref name="empty"/> through <paramref name="table"/>: every key
    /// must be known and given once, every required key present.
    /// </summary>
    public T Object<T>(JsonElement element, string path, SettingTable<T> table, T empty)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw path.Length == 0
                ? new ConfigException($"{sourceName} must hold a JSON object ({{ ... }}), not {Describe(element)}")
                : TypeError(element, path, "an object");
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        T result = empty;
        foreach (var property in element.EnumerateObject())
        {
            string at = path.Length == 0 ? property.Name : $"{path}.{property.Name}";
            var setting = table.Find(property.Name) ?? throw UnknownSetting(property.Name, path, table);
            // JSON allows a repeated key and readers differ on which one wins; refuse to guess.
            if (!seen.Add(property.Name))
            {
                throw Error(Printable(at), "is given twice");
            }
            result = setting.Bind(result, property.Value, this, at);
        }
        foreach (var setting in table.Settings)
        {
            if (setting.Required && !seen.Contains(setting.Name))
            {
                throw Error(path.Length == 0 ? setting.Name : $"{path}.{setting.Name}", setting.MissingMessage);
            }
        }
        return result;
    }

    public int WholeNumber(JsonElement value, string path, string expected, int min, int max)
    {
        if (value.ValueKind != JsonValueKind.Number)
        {
            throw TypeError(value, path, expected);
        }
        if (!value.TryGetInt64(out long number))
        {
            throw Error(path, $"{Shown(value.GetRawText())} is not a whole number", separator: ": ");
        }
        if (number < min || number > max)
        {
            throw Error(path, $"{number} is outside {min}..{max}", separator: ": ");
        }
        return (int)number;
    }

    public string Text(JsonElement value, string path, string expected)
    {
        if (value.ValueKind != JsonValueKind.String)
        {
            throw TypeError(value, path, expected);
        }
        try
        {
            return value.GetString()!;
        }
        catch (InvalidOperationException)
        {
            // The parser checks strings only when they are decoded: invalid UTF-8 bytes or a lone surrogate escape land here.
            throw Error(path, "is not valid Unicode text (invalid UTF-8, or an escaped lone surrogate)");
        }
    }

    private ConfigException UnknownSetting<T>(string name, string path, SettingTable<T> table)
    {
        string where = path.Length == 0 ? "" : $" in {path}";
        string? nearest = Nearest(name, table.Settings.Select(s => s.Name));
        string suggestion = nearest is null ? "" : $" (did you mean '{nearest}'?)";
        return new ConfigException($"{sourceName}: unknown setting '{Printable(name)}'{where}{suggestion}");
    }

    /// <summary>
    /// The known name closest to <paramref name="unknown"/> by edit distance (case ignored, a swap of
    /// two neighbouring letters counting as one edit), or null when none is close enough to be the
    /// likely intent: at most one edit for names up to 5 letters, up to three for long ones.
    /// </summary>
    internal static string? Nearest(string unknown, IEnumerable<string> known)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (string candidate in known)
        {
            int distance = EditDistance(unknown.ToLowerInvariant(), candidate.ToLowerInvariant());
            int allowed = Math.Clamp(candidate.Length / 3, 1, 3);
            if (distance <= allowed && distance < bestDistance)
            {
                best = candidate;
                bestDistance = distance;
            }
        }
        return best;
    }

    // Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
    internal static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }
        for (int j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }
        return d[a.Length, b.Length];
    }

    private static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        // The raw text keeps the file's own quotes and escapes, so it is one line and shows exactly what was written.
        JsonValueKind.String => $"the string {Shown(value.GetRawText())}",
        JsonValueKind.Number => $"the number {Shown(value.GetRawText())}",
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => "null",
    };

    private static string Shown(string text) => text.Length <= MaxShownValueChars ? text : text[..MaxShownValueChars] + "...";

    /// <summary><paramref name="text"/> with control characters escaped, so a message that quotes it stays one line.</summary>
    internal static string Printable(string text)
    {
        if (!text.Any(char.IsControl))
        {
            return text;
        }
        var printable = new StringBuilder(text.Length + 8);
        foreach (char c in text)
        {
            printable.Append(char.IsControl(c) ? string.Create(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}") : c);
        }
        return printable.ToString();
    }
}
