using System.Text.RegularExpressions;
using MessagePack;

namespace KvReplica.Protocol.Auth;

// Users and roles live in the replicated, ordered state as ordinary writes to reserved keys
// (a NUL first character, which no client key may have), so every replica agrees on them, and
// the log, snapshots, catch-up and backups carry them with no code of their own. Their values
// are these MessagePack records; the keys and tags are wire format, frozen like Messages.cs.

/// <summary>A user: its SCRAM verifier and the roles it holds.</summary>
[MessagePackObject]
public sealed class UserRecord
{
    /// <summary><see cref="ScramCredential"/> in its text form.</summary>
    [Key(0)] public string Credential { get; set; } = "";
    [Key(1)] public string[] Roles { get; set; } = [];
}

/// <summary>A role: what it may read and write, by key prefix, and whether it is an administrator.</summary>
[MessagePackObject]
public sealed class RoleRecord
{
    /// <summary>STATUS, backup, and user and role management.</summary>
    [Key(0)] public bool Admin { get; set; }
    [Key(1)] public RoleGrant[] Grants { get; set; } = [];
}

/// <summary>Read, or read and write, on every key that starts with <see cref="Prefix"/> ("" is every key).</summary>
[MessagePackObject]
public sealed class RoleGrant
{
    [Key(0)] public string Prefix { get; set; } = "";
    [Key(1)] public bool Write { get; set; }
}

/// <summary>The reserved keys users and roles are stored under, and the rules for their names.</summary>
public static partial class AccessKeys
{
    /// <summary>Every reserved key starts with this character; client keys may not.</summary>
    public const char ReservedFirstCharacter = '\0';

    /// <summary>The smallest key that is not reserved, in key order: where a scan of every key starts.</summary>
    public const string FirstUnreserved = "\u0001";

    /// <summary>The built-in role with admin rights and read-write on every key; it cannot be redefined.</summary>
    public const string AdminRole = "admin";

    public static string User(string name) => "\0auth/user/" + name;

    public static string Role(string name) => "\0auth/role/" + name;

    public static bool IsReserved(string key) => key.Length > 0 && key[0] == ReservedFirstCharacter;

    /// <summary>Null if <paramref name="name"/> is a valid user or role name, else a one-line reason.</summary>
    public static string? CheckName(string name, string what) =>
        NamePattern().IsMatch(name) ? null : $"{what} name '{name}' must be 1 to 64 of A-Z a-z 0-9 _ . -";

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,64}$")]
    private static partial Regex NamePattern();
}
