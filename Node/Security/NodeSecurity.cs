using KvReplica.Transport;
using KvReplica.Protocol.Auth;
using KvReplica.Protocol.Config;

namespace KvReplica.Node.Security;

/// <summary>
/// This replica's security, loaded once at start: its TLS material (null when cluster.json has no
/// <c>tls</c>) and the access rules clients are held to.
/// </summary>
internal sealed record NodeSecurity(TransportSecurity? Transport, AccessControl Access, byte[] UnknownUserSecret)
{
    /// <summary>
    /// Loads the TLS files and the bootstrap administrator. Throws <see cref="ConfigException"/>
    /// with one line naming the file and what is wrong.
    /// </summary>
    public static NodeSecurity Load(ClusterConfig config, int replicaId)
    {
        var transport = TransportSecurity.Load(config, replicaId);
        string? user = null;
        ScramCredential? credential = null;
        if (config.BootstrapAdminFile is { } file)
        {
            string text;
            try
            {
                text = File.ReadAllText(file).Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ConfigException($"auth.bootstrapAdmin: {file}: {(e is FileNotFoundException or DirectoryNotFoundException ? "not found (`node certs <config>` makes one)" : e.Message)}");
            }
            int colon = text.IndexOf(':', StringComparison.Ordinal);
            user = colon > 0 ? text[..colon] : "";
            credential = colon > 0 ? ScramCredential.Parse(text[(colon + 1)..], out string? error) : null;
            if (credential is null || AccessKeys.CheckName(user, "user") is not null)
            {
                throw new ConfigException($"auth.bootstrapAdmin: {file}: expected one line '<user>:{Scram.Mechanism}$<iterations>:<salt>$<StoredKey>:<ServerKey>'");
            }
        }
        // Derived from the bootstrap admin's ServerKey: secret, and the same on every replica, so
        // an unknown user's stand-in salt is the same wherever and whenever it is asked for.
        // Without a bootstrap admin there is nothing shared to derive it from: random per process.
        byte[] unknownUserSecret = credential is not null
            ? System.Security.Cryptography.HMACSHA256.HashData(credential.ServerKey, "kvreplica unknown-user salt"u8)
            : System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        return new NodeSecurity(transport, new AccessControl(transport is not null, user, credential), unknownUserSecret);
    }
}
