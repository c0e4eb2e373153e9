using KvReplica.Protocol.Auth;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using MessagePack;

namespace KvReplica.Node.Security;

/// <summary>
/// Who may do what: users and roles read from the replicated store (reserved keys, see
/// <see cref="AccessKeys"/>), plus the bootstrap administrator from cluster.json's
/// <c>auth.bootstrapAdmin</c> file. Every client request passes <see cref="Admit"/> on the core
/// loop before it reaches the core, so a refused request never enters the total order.
/// </summary>
/// <remarks>
/// Used on the core loop only (the store is not thread-safe). A replica applies a change to users
/// or roles when it delivers it, so right after such a change replicas may briefly disagree on a
/// request; the change is in force at each replica from the point of the order where it stands
/// (docs/design.md, "Threat model").
/// </remarks>
internal sealed class AccessControl(bool authenticationOn, string? bootstrapUser, ScramCredential? bootstrapCredential)
{
    private static readonly MessagePackSerializerOptions Untrusted =
        MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData);

    private KvStore? _store;
    // Resolved rights per user; emptied whenever a user or role is written.
    private readonly Dictionary<string, Rights?> _rights = new(StringComparer.Ordinal);

    /// <summary>Whether clients must authenticate (cluster.json has <c>tls</c>).</summary>
    public bool AuthenticationOn => authenticationOn;

    /// <summary>The store users and roles are read from, once recovery has produced it.</summary>
    public void Attach(KvStore store)
    {
        _store = store;
        _rights.Clear();
    }

    /// <summary>A delivered write to <paramref name="key"/>: forget resolved rights if it changed a user or role.</summary>
    public void OnDelivered(string key)
    {
        if (AccessKeys.IsReserved(key))
        {
            _rights.Clear();
        }
    }

    /// <summary>The SCRAM verifier of <paramref name="user"/>, or null for an unknown user.</summary>
    public ScramCredential? FindCredential(string user)
    {
        if (ReadUser(user) is { } record)
        {
            return ScramCredential.Parse(record.Credential, out _);
        }
        return user == bootstrapUser ? bootstrapCredential : null;
    }

    /// <summary>Whether <paramref name="user"/> holds an administrator role (STATUS, backup, users and roles).</summary>
    public bool IsAdmin(string? user) => !authenticationOn || (user is not null && Resolve(user) is { Admin: true });

    /// <summary>
    /// Null when <paramref name="user"/> (null when authentication is off) may run
    /// <paramref name="request"/>; otherwise the error to answer with. User and role operations are
    /// rewritten into the ordinary write of their reserved key, which is what the core orders.
    /// </summary>
    public (ErrorCode Code, string Message)? Admit(string? user, ref ClientRequest request)
    {
        switch (request.Operation)
        {
            case Operation.Get or Operation.Exists or Operation.Put or Operation.Delete or Operation.Update or Operation.CompareAndSet:
                return Check(user, request.Key, write: request.Operation is not (Operation.Get or Operation.Exists));
            case Operation.MultiGet:
                foreach (string key in request.Keys ?? [])
                {
                    if (Check(user, key, write: false) is { } refused)
                    {
                        return refused;
                    }
                }
                return null;
            case Operation.Txn when request.Txn is { } txn:
                // Reading what a compare tests is a read; every key either branch writes is a write.
                foreach (var compare in txn.Compares)
                {
                    if (Check(user, compare.Key, write: false) is { } refused)
                    {
                        return refused;
                    }
                }
                foreach (var op in txn.Then.Concat(txn.Else))
                {
                    if (Check(user, op.Key, write: true) is { } refused)
                    {
                        return refused;
                    }
                }
                return null;
            case Operation.Scan or Operation.Watch:
                // A prefix is readable when one grant covers every key that can have it.
                string prefix = request.Scan?.Prefix ?? request.Watch?.Prefix ?? "";
                if (AccessKeys.IsReserved(prefix))
                {
                    return (ErrorCode.InvalidRequest, "keys starting with a NUL character are reserved");
                }
                if (!authenticationOn || Resolve(user!) is { } reader && reader.AllowsPrefix(prefix))
                {
                    return null;
                }
                return (ErrorCode.PermissionDenied, $"permission denied: user {user} may not read every key with prefix '{prefix}'");
            case Operation.Status:
                return IsAdmin(user) ? null : (ErrorCode.PermissionDenied, $"permission denied: user {user} may not ask for STATUS (admin only)");
            case Operation.UserPut or Operation.UserDelete or Operation.RolePut or Operation.RoleDelete:
                if (!authenticationOn)
                {
                    return (ErrorCode.InvalidRequest, "users and roles need TLS and authentication on (cluster.json tls)");
                }
                if (!IsAdmin(user))
                {
                    return (ErrorCode.PermissionDenied, $"permission denied: user {user} may not manage users and roles (admin only)");
                }
                return RewriteAccessChange(ref request);
            default:
                return null; // The core answers unknown operations itself.
        }
    }

    private (ErrorCode Code, string Message)? Check(string? user, string key, bool write)
    {
        if (AccessKeys.IsReserved(key))
        {
            return (ErrorCode.InvalidRequest, "keys starting with a NUL character are reserved");
        }
        if (!authenticationOn || Resolve(user!) is { } rights && rights.Allows(key, write))
        {
            return null;
        }
        return (ErrorCode.PermissionDenied, $"permission denied: user {user} may not {(write ? "write" : "read")} {key}");
    }

    private (ErrorCode, string)? RewriteAccessChange(ref ClientRequest request)
    {
        bool isUser = request.Operation is Operation.UserPut or Operation.UserDelete;
        bool isPut = request.Operation is Operation.UserPut or Operation.RolePut;
        if (AccessKeys.CheckName(request.Key, isUser ? "user" : "role") is { } badName)
        {
            return (ErrorCode.InvalidRequest, badName);
        }
        if (!isUser && request.Key == AccessKeys.AdminRole)
        {
            return (ErrorCode.InvalidRequest, $"the '{AccessKeys.AdminRole}' role is built in and cannot be changed");
        }
        if (isPut && CheckRecord(isUser, request.Value) is { } badRecord)
        {
            return (ErrorCode.InvalidRequest, badRecord);
        }
        request = new ClientRequest
        {
            RequestId = request.RequestId,
            Operation = isPut ? Operation.Put : Operation.Delete,
            Key = isUser ? AccessKeys.User(request.Key) : AccessKeys.Role(request.Key),
            Value = isPut ? request.Value : null,
            ClientId = request.ClientId,
            Sequence = request.Sequence,
            AckedBelow = request.AckedBelow,
        };
        return null;
    }

    private static string? CheckRecord(bool isUser, byte[]? value)
    {
        try
        {
            if (isUser)
            {
                var user = MessagePackSerializer.Deserialize<UserRecord>(value, Untrusted);
                if (ScramCredential.Parse(user.Credential, out string? error) is null)
                {
                    return $"the user's credential is not a SCRAM-SHA-256 verifier: {error}";
                }
                return user.Roles.Select(r => AccessKeys.CheckName(r, "role")).FirstOrDefault(e => e is not null);
            }
            var role = MessagePackSerializer.Deserialize<RoleRecord>(value, Untrusted);
            return role.Grants.Any(g => g is null || g.Prefix is null || AccessKeys.IsReserved(g.Prefix)) ? "a grant's prefix may not be missing or start with NUL" : null;
        }
        catch (MessagePackSerializationException e)
        {
            return $"the value is not a MessagePack {(isUser ? "UserRecord" : "RoleRecord")}: {e.Message}";
        }
    }

    private UserRecord? ReadUser(string user) => Read<UserRecord>(AccessKeys.User(user));

    private T? Read<T>(string key) where T : class
    {
        if (_store?.Read(key) is not { Found: true } stored)
        {
            return null;
        }
        try
        {
            return MessagePackSerializer.Deserialize<T>(stored.Value, Untrusted);
        }
        catch (MessagePackSerializationException)
        {
            return null; // Checked before it was ordered; unreadable only if written by a newer format.
        }
    }

    // Null when the user does not exist (any more).
    private Rights? Resolve(string user)
    {
        if (_rights.TryGetValue(user, out var cached))
        {
            return cached;
        }
        string[]? roles = ReadUser(user)?.Roles ?? (user == bootstrapUser ? [AccessKeys.AdminRole] : null);
        Rights? rights = null;
        if (roles is not null)
        {
            bool admin = false;
            var grants = new List<RoleGrant>();
            foreach (string role in roles)
            {
                if (role == AccessKeys.AdminRole)
                {
                    admin = true;
                    grants.Add(new RoleGrant { Prefix = "", Write = true });
                }
                else if (Read<RoleRecord>(AccessKeys.Role(role)) is { } record)
                {
                    admin |= record.Admin;
                    grants.AddRange(record.Grants);
                }
            }
            rights = new Rights(admin, [.. grants]);
        }
        _rights[user] = rights;
        return rights;
    }

    private sealed record Rights(bool Admin, RoleGrant[] Grants)
    {
        // On every request: a plain loop, no allocation.
        public bool Allows(string key, bool write)
        {
            foreach (var grant in Grants)
            {
                if ((grant.Write || !write) && key.StartsWith(grant.Prefix, StringComparison.Ordinal))
                {
                    return true;
                }
            }
            return false;
        }

        // Whether one grant allows reading every key that begins with `prefix`.
        public bool AllowsPrefix(string prefix)
        {
            foreach (var grant in Grants)
            {
                if (prefix.StartsWith(grant.Prefix, StringComparison.Ordinal))
                {
                    return true;
                }
            }
            return false;
        }
    }
}
