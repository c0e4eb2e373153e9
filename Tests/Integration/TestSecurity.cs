using KvReplica.Transport;
using KvReplica.Node.Security;
using NUnit.Framework;

namespace KvReplica.Tests.Integration;

/// <summary>
/// Turns security on for a test cluster the way an operator would: the <c>tls</c> and <c>auth</c>
/// settings in its cluster.json, then <c>node certs</c> (run in-process) for the CA, each
/// replica's certificate and the bootstrap admin, whose password the tests log in with.
/// </summary>
internal static class TestSecurity
{
    /// <summary>The cluster.json settings, to put inside its top-level object.</summary>
    public const string Settings = """
        "tls": { "ca": "tls/ca.crt", "cert": "tls/replica-{id}.crt", "key": "tls/replica-{id}.key" },
        "auth": { "bootstrapAdmin": "tls/admin.scram" },
        """;

    public const string AdminUser = "admin";

    /// <summary>Makes the certificates and the bootstrap admin for the cluster.json at <paramref name="configPath"/>; returns the admin's credentials.</summary>
    public static ClientCredentials Create(string configPath)
    {
        string directory = Path.GetDirectoryName(configPath)!;
        string passwordFile = PasswordFile(configPath);
        File.WriteAllText(passwordFile, "test-admin-" + Guid.NewGuid().ToString("N")[..12] + "\n");
        var output = new StringWriter();
        var errors = new StringWriter();
        int code = CertificateCommand.Run([configPath, "--admin-password-file", passwordFile], output, errors);
        Assert.That(code, Is.EqualTo(0), $"node certs failed: {errors}");
        return new ClientCredentials(AdminUser, File.ReadAllText(passwordFile).TrimEnd('\n'));
    }

    /// <summary>Where <see cref="Create"/> keeps the admin's password (for <c>client --password-file</c>).</summary>
    public static string PasswordFile(string configPath) => Path.Combine(Path.GetDirectoryName(configPath)!, "admin.password");
}
