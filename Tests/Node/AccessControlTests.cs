using KvReplica.Clock;
using KvReplica.Node.Security;
using KvReplica.Protocol.Auth;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store;
using MessagePack;
using NUnit.Framework;

namespace KvReplica.Tests.Node;

/// <summary>
/// The rules every client request passes before the core: users and roles read from the store
/// (as the total order delivered them), the bootstrap admin, reserved keys, and what changes
/// when a user or role is written.
/// </summary>
[TestFixture]
[Category("Unit")]
public sealed class AccessControlTests
{
    private static readonly ScramCredential Credential = Scram.CreateCredential("password-1", [1, 2, 3, 4], 4096);
    private KvStore _store = null!;
    private AccessControl _access = null!;
    private long _time;

    [SetUp]
    public void SetUp()
    {
        _store = new KvStore();
        _access = new AccessControl(authenticationOn: true, "root", Credential);
        _access.Attach(_store);
        Deliver(AccessKeys.Role("reader"), new RoleRecord { Grants = [new RoleGrant { Prefix = "app/", Write = false }] });
        Deliver(AccessKeys.Role("writer"), new RoleRecord { Grants = [new RoleGrant { Prefix = "app/", Write = true }] });
        Deliver(AccessKeys.User("ro"), new UserRecord { Credential = Credential.ToString(), Roles = ["reader"] });
        Deliver(AccessKeys.User("rw"), new UserRecord { Credential = Credential.ToString(), Roles = ["writer", "no-such-role"] });
    }

    private void Deliver(string key, object? record)
    {
        byte[]? value = record switch
        {
            RoleRecord role => MessagePackSerializer.Serialize(role),
            UserRecord user => MessagePackSerializer.Serialize(user),
            _ => null,
        };
        _store.Apply(new WriteCommand(new Stamp(++_time, 1), value is null ? Operation.Delete : Operation.Put, key, value, 1, _time, _time), out _);
        _access.OnDelivered(key);
    }

    private (ErrorCode Code, string Message)? Admit(string? user, Operation operation, string key, byte[]? value = null)
    {
        var request = new ClientRequest { RequestId = 1, Operation = operation, Key = key, Value = value, ClientId = 1, Sequence = 1, AckedBelow = 1 };
        return _access.Admit(user, ref request);
    }

    [Test]
    public void A_user_reads_and_writes_only_under_its_roles_prefixes()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Admit("ro", Operation.Get, "app/x"), Is.Null);
            Assert.That(Admit("ro", Operation.Put, "app/x", [1]), Is.EqualTo((ErrorCode.PermissionDenied, "permission denied: user ro may not write app/x")));
            Assert.That(Admit("ro", Operation.Delete, "app/x"), Is.EqualTo((ErrorCode.PermissionDenied, "permission denied: user ro may not write app/x")));
            Assert.That(Admit("ro", Operation.Get, "other"), Is.EqualTo((ErrorCode.PermissionDenied, "permission denied: user ro may not read other")));
            Assert.That(Admit("rw", Operation.Put, "app/x", [1]), Is.Null, "a missing role is ignored, the others still count");
            Assert.That(Admit("rw", Operation.Put, "ap", [1])?.Code, Is.EqualTo(ErrorCode.PermissionDenied), "a prefix of the prefix is not under it");
            Assert.That(Admit("ro", Operation.Status, ""), Is.Not.Null, "STATUS is for admins");
            Assert.That(Admit("root", Operation.Status, ""), Is.Null, "the bootstrap admin has the admin role");
            Assert.That(Admit("root", Operation.Put, "anything", [1]), Is.Null);
        });
    }

    [Test]
    public void A_revoked_grant_or_deleted_user_loses_its_rights_once_delivered()
    {
        Assert.That(Admit("rw", Operation.Put, "app/x", [1]), Is.Null);
        Deliver(AccessKeys.Role("writer"), new RoleRecord { Grants = [new RoleGrant { Prefix = "app/", Write = false }] });
        Assert.That(Admit("rw", Operation.Put, "app/x", [1])?.Code, Is.EqualTo(ErrorCode.PermissionDenied));
        Assert.That(Admit("rw", Operation.Get, "app/x"), Is.Null);
        Deliver(AccessKeys.User("rw"), null);
        Assert.That(Admit("rw", Operation.Get, "app/x")?.Code, Is.EqualTo(ErrorCode.PermissionDenied));
        Assert.That(_access.FindCredential("rw"), Is.Null);
    }

    [Test]
    public void Reserved_keys_are_refused_to_everyone_and_user_changes_are_rewritten_for_admins_only()
    {
        Assert.That(Admit("root", Operation.Get, AccessKeys.User("ro"))?.Code, Is.EqualTo(ErrorCode.InvalidRequest));
        var user = MessagePackSerializer.Serialize(new UserRecord { Credential = Credential.ToString(), Roles = ["reader"] });
        Assert.That(Admit("rw", Operation.UserPut, "new", user)?.Code, Is.EqualTo(ErrorCode.PermissionDenied));
        var request = new ClientRequest { RequestId = 7, Operation = Operation.UserPut, Key = "new", Value = user, ClientId = 3, Sequence = 9, AckedBelow = 4 };
        Assert.That(_access.Admit("root", ref request), Is.Null);
        Assert.That((request.Operation, request.Key, request.Sequence, request.ClientId, request.RequestId), Is.EqualTo((Operation.Put, AccessKeys.User("new"), 9L, 3UL, 7L)));
        Assert.Multiple(() =>
        {
            Assert.That(Admit("root", Operation.RolePut, AccessKeys.AdminRole, MessagePackSerializer.Serialize(new RoleRecord()))?.Code, Is.EqualTo(ErrorCode.InvalidRequest), "admin is built in");
            Assert.That(Admit("root", Operation.UserPut, "bad name", user)?.Code, Is.EqualTo(ErrorCode.InvalidRequest));
            Assert.That(Admit("root", Operation.UserPut, "x", [0xc1])?.Code, Is.EqualTo(ErrorCode.InvalidRequest), "not a UserRecord");
            Assert.That(Admit("root", Operation.UserPut, "x", MessagePackSerializer.Serialize(new UserRecord { Credential = "plain-password" }))?.Code, Is.EqualTo(ErrorCode.InvalidRequest), "a password, not a verifier");
        });
    }

    [Test]
    public void Without_authentication_everything_is_allowed_but_reserved_keys_and_user_changes()
    {
        var open = new AccessControl(authenticationOn: false, null, null);
        open.Attach(_store);
        var put = new ClientRequest { Operation = Operation.Put, Key = "k", Value = [1], Sequence = 1 };
        var reserved = new ClientRequest { Operation = Operation.Get, Key = AccessKeys.User("ro") };
        var userPut = new ClientRequest { Operation = Operation.UserPut, Key = "u", Value = [1], Sequence = 1 };
        var status = new ClientRequest { Operation = Operation.Status };
        Assert.Multiple(() =>
        {
            Assert.That(open.Admit(null, ref put), Is.Null);
            Assert.That(open.Admit(null, ref status), Is.Null);
            Assert.That(open.Admit(null, ref reserved)?.Code, Is.EqualTo(ErrorCode.InvalidRequest));
            Assert.That(open.Admit(null, ref userPut)?.Code, Is.EqualTo(ErrorCode.InvalidRequest));
        });
    }
}
