using System.Text.Json;

namespace KvReplica.Protocol.Config;

/// <summary>
/// One known key of a JSON object in cluster.json: its name, the JSON type and range it accepts,
/// whether it is required, and how its value is bound onto <typeparamref name="T"/>, the record the
/// object becomes. A key that is absent leaves <typeparamref name="T"/> as it was, so a setting's
/// default is the record's own initial value, the same one code building the record directly gets.
/// </summary>
/// <remarks>
/// The kinds are a whole number in a range, a string (optionally one of a fixed set), a nested
/// object read by its own <see cref="SettingTable{T}"/>, and an array of such objects. Every type
/// and range check, unknown-key check and message lives in <see cref="SettingReader"/>; a setting
/// only says what it accepts.
/// </remarks>
public abstract class Setting<T>
{
    private protected Setting(string name, bool required)
    {
        Name = name;
        Required = required;
    }

    /// <summary>The JSON key, case-sensitive.</summary>
    public string Name { get; }

    /// <summary>An absent key is an error ("... is missing").</summary>
    public bool Required { get; }

    /// <summary>What a value must be, as a type error says it: "a whole number", "a string", ...</summary>
    public abstract string Expected { get; }

    /// <summary>What the absence of a required setting says after its path.</summary>
    internal virtual string MissingMessage => "is missing";

    /// <summary>Checks <paramref name="value"/> (found at <paramref name="path"/>) and returns <paramref name="target"/> with it bound.</summary>
    internal abstract T Bind(T target, JsonElement value, SettingReader reader, string path);

    /// <summary>A JSON integer in <paramref name="min"/>..<paramref name="max"/>.</summary>
    public static Setting<T> WholeNumber(string name, int min, int max, Func<T, int, T> bind, bool required = false) =>
        new WholeNumberSetting(name, min, max, bind, required);

    /// <summary>A JSON string; <paramref name="nonBlank"/> refuses an empty or all-blank one ("... is empty").</summary>
    public static Setting<T> Text(string name, Func<T, string, T> bind, bool required = false, bool nonBlank = false) =>
        new TextSetting(name, bind, required, nonBlank);

    /// <summary>A JSON string that must be one of <paramref name="choices"/>' names, bound as the matching value.</summary>
    public static Setting<T> Choice<TValue>(string name, IReadOnlyList<(string Name, TValue Value)> choices, Func<T, TValue, T> bind, bool required = false) =>
        new ChoiceSetting<TValue>(name, choices, bind, required);

    /// <summary>A nested JSON object whose keys are <paramref name="fields"/>, read onto <paramref name="empty"/>.</summary>
    public static Setting<T> Section<TChild>(string name, SettingTable<TChild> fields, TChild empty, Func<T, TChild, T> bind, bool required = false) =>
        new SectionSetting<TChild>(name, fields, empty, bind, required);

    /// <summary>
    /// A JSON array of objects whose keys are <paramref name="fields"/>, each read onto <paramref name="empty"/>,
    /// bound in file order. When <paramref name="required"/>, an absent or empty array is an error naming
    /// <paramref name="itemDescription"/> ("list at least one replica with id, host and port").
    /// </summary>
    public static Setting<T> ListOf<TItem>(string name, SettingTable<TItem> fields, TItem empty, Func<T, IReadOnlyList<TItem>, T> bind, string itemDescription, bool required = false) =>
        new ListSetting<TItem>(name, fields, empty, bind, itemDescription, required);

    private sealed class WholeNumberSetting(string name, int min, int max, Func<T, int, T> bind, bool required) : Setting<T>(name, required)
    {
        public override string Expected => "a whole number";

        internal override T Bind(T target, JsonElement value, SettingReader reader, string path) =>
            bind(target, reader.WholeNumber(value, path, Expected, min, max));
    }

    private sealed class TextSetting(string name, Func<T, string, T> bind, bool required, bool nonBlank) : Setting<T>(name, required)
    {
        public override string Expected => "a string";

        internal override T Bind(T target, JsonElement value, SettingReader reader, string path)
        {
            string text = reader.Text(value, path, Expected);
            return nonBlank && string.IsNullOrWhiteSpace(text) ? throw reader.Error(path, "is empty") : bind(target, text);
        }
    }

    private sealed class ChoiceSetting<TValue>(string name, IReadOnlyList<(string Name, TValue Value)> choices, Func<T, TValue, T> bind, bool required) : Setting<T>(name, required)
    {
        public override string Expected => "one of " + string.Join(", ", choices.Select(c => c.Name));

        internal override T Bind(T target, JsonElement value, SettingReader reader, string path)
        {
            string text = reader.Text(value, path, "a string");
            foreach (var choice in choices)
            {
                if (choice.Name == text)
                {
                    return bind(target, choice.Value);
                }
            }
            throw reader.Error(path, $"'{SettingReader.Printable(text)}' is not {Expected}", separator: ": ");
        }
    }

    private sealed class SectionSetting<TChild>(string name, SettingTable<TChild> fields, TChild empty, Func<T, TChild, T> bind, bool required) : Setting<T>(name, required)
    {
        public override string Expected => "an object";

        internal override T Bind(T target, JsonElement value, SettingReader reader, string path) =>
            bind(target, reader.Object(value, path, fields, empty));
    }

    private sealed class ListSetting<TItem>(string name, SettingTable<TItem> fields, TItem empty, Func<T, IReadOnlyList<TItem>, T> bind, string itemDescription, bool required) : Setting<T>(name, required)
    {
        public override string Expected => "an array of objects";

        internal override T Bind(T target, JsonElement value, SettingReader reader, string path)
        {
            if (value.ValueKind != JsonValueKind.Array)
            {
                throw reader.TypeError(value, path, Expected);
            }
            var items = new List<TItem>();
            int index = 0;
            foreach (var item in value.EnumerateArray())
            {
                items.Add(reader.Object(item, $"{path}[{index}]", fields, empty));
                index++;
            }
            if (items.Count == 0 && Required)
            {
                throw reader.Error(path, MissingMessage);
            }
            return bind(target, items);
        }

        internal override string MissingMessage => $"is missing or empty; list at least one {itemDescription}";
    }
}

/// <summary>The known keys of one JSON object in cluster.json, in the order the README lists them.</summary>
public sealed class SettingTable<T>
{
    private readonly Dictionary<string, Setting<T>> _byName;

    public SettingTable(IReadOnlyList<Setting<T>> settings)
    {
        Settings = settings;
        _byName = settings.ToDictionary(s => s.Name, StringComparer.Ordinal);
    }

    /// <summary>Every known key, in declaration order (the order suggestions are tried in, too).</summary>
    public IReadOnlyList<Setting<T>> Settings { get; }

    public Setting<T>? Find(string name) => _byName.GetValueOrDefault(name);
}
