using System.Globalization;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KvReplica.Protocol.Config;

namespace KvReplica.Transport;

/// <summary>
/// The TLS material of one process (the cluster CA, and a replica's own certificate and key) and
/// the rules every connection is checked by: a certificate counts only if it chains to the
/// cluster CA, and a replica's certificate names its id in its subject (<c>CN=replica-&lt;id&gt;</c>).
/// Clients carry no certificate; they prove who they are with SCRAM once TLS is up.
/// </summary>
/// <remarks>
/// Host names are not checked: what a replica proves is that it holds the key of the cluster
/// CA's certificate for the replica id the dialler wanted, which is stronger than a name match
/// and needs no DNS. A certificate from any other CA, or for another id, fails the handshake.
/// </remarks>
public sealed class TransportSecurity : IDisposable
{
    private const string ReplicaNamePrefix = "replica-";
    private const SslProtocols Protocols = SslProtocols.Tls12 | SslProtocols.Tls13;

    // AES-128-GCM first: frames are small, so per-record cost dominates, and the 128-bit key is
    // the cheaper of the two with the same AEAD construction. Null where the platform cannot
    // set a policy (it then uses the system's order).
    private static readonly CipherSuitesPolicy? Ciphers = OperatingSystem.IsLinux()
        ? new CipherSuitesPolicy(
        [
            TlsCipherSuite.TLS_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ])
        : null;

    private readonly X509Certificate2 _ca;
    private readonly X509Certificate2? _own;
    private readonly SslStreamCertificateContext? _ownContext;

    private TransportSecurity(X509Certificate2 ca, X509Certificate2? own)
    {
        _ca = ca;
        _own = own;
        _ownContext = own is null ? null : SslStreamCertificateContext.Create(own, additionalCertificates: null, offline: true);
    }

    /// <summary>
    /// Loads the CA, and with <paramref name="replicaId"/> that replica's certificate and key; null
    /// when cluster.json has no <c>tls</c>. Throws <see cref="ConfigException"/> with one line naming the
    /// file when one is missing or unusable.
    /// </summary>
    public static TransportSecurity? Load(ClusterConfig config, int? replicaId)
    {
        if (config.Tls is not { } tls)
        {
            return null;
        }
        var ca = LoadFile("tls.ca", tls.Ca, () => X509Certificate2.CreateFromPem(File.ReadAllText(tls.Ca)));
        X509Certificate2? own = null;
        if (replicaId is int id)
        {
            string cert = tls.CertOf(id), key = tls.KeyOf(id);
            own = LoadFile("tls.cert/tls.key", cert, () => X509Certificate2.CreateFromPemFile(cert, key));
            if (ReplicaIdOf(own) != id)
            {
                throw new ConfigException($"tls.cert: {cert} is for '{own.GetNameInfo(X509NameType.SimpleName, false)}', not {ReplicaNamePrefix}{id}");
            }
            if (!ChainsTo(own, ca))
            {
                throw new ConfigException($"tls.cert: {cert} is not signed by the cluster CA in {tls.Ca}");
            }
        }
        return new TransportSecurity(ca, own);
    }

    private static X509Certificate2 LoadFile(string setting, string path, Func<X509Certificate2> load)
    {
        try
        {
            return load();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            string why = e is FileNotFoundException or DirectoryNotFoundException ? "not found (`node certs <config>` makes a cluster's certificates)" : e.Message;
            throw new ConfigException($"{setting}: {path}: {why}");
        }
    }

    /// <summary>The replica id a certificate names (<c>CN=replica-&lt;id&gt;</c>), or null for any other subject.</summary>
    public static int? ReplicaIdOf(X509Certificate2 certificate)
    {
        string name = certificate.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        return name.StartsWith(ReplicaNamePrefix, StringComparison.Ordinal)
            && int.TryParse(name.AsSpan(ReplicaNamePrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int id) && id > 0
            ? id : null;
    }

    /// <summary>The subject name the certificate of replica <paramref name="id"/> carries.</summary>
    public static string ReplicaSubject(int id) => $"CN={ReplicaNamePrefix}{id.ToString(CultureInfo.InvariantCulture)}";

    private static bool ChainsTo(X509Certificate2 certificate, X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate) && chain.ChainElements[^1].Certificate.RawDataMemory.Span.SequenceEqual(ca.RawDataMemory.Span);
    }

    /// <summary>
    /// TLS as the dialling side, to replica <paramref name="expectedReplicaId"/>: the replica must
    /// present that id's certificate; a replica process also presents its own. Throws
    /// <see cref="AuthenticationException"/> when either side's certificate is refused.
    /// </summary>
    public async Task<SslStream> AuthenticateAsClientAsync(Stream inner, string host, int expectedReplicaId, CancellationToken ct)
    {
        var ssl = new SslStream(inner, leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = host,
                EnabledSslProtocols = Protocols,
                CipherSuitesPolicy = Ciphers,
                ClientCertificateContext = _ownContext,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                    certificate is X509Certificate2 presented && ChainsTo(presented, _ca) && ReplicaIdOf(presented) == expectedReplicaId,
            }, ct).ConfigureAwait(false);
            return ssl;
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// TLS as the listening replica. A certificate from the other side is asked for but not
    /// required (clients have none); one that is presented must chain to the cluster CA. Returns
    /// the replica id it names, or null when there was none. Throws <see cref="AuthenticationException"/>
    /// or <see cref="IOException"/> when the handshake fails.
    /// </summary>
    public async Task<(SslStream Stream, int? PeerReplicaId)> AuthenticateAsServerAsync(Stream inner, CancellationToken ct)
    {
        var ssl = new SslStream(inner, leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificateContext = _ownContext ?? throw new InvalidOperationException("a listening replica needs its own certificate"),
                EnabledSslProtocols = Protocols,
                CipherSuitesPolicy = Ciphers,
                ClientCertificateRequired = true,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                    certificate is null || (certificate is X509Certificate2 presented && ChainsTo(presented, _ca)),
            }, ct).ConfigureAwait(false);
            int? peer = ssl.RemoteCertificate is X509Certificate2 remote ? ReplicaIdOf(remote) : null;
            return (ssl, peer);
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public void Dispose()
    {
        _ca.Dispose();
        _own?.Dispose();
    }
}
