using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KvReplica.Transport;
using KvReplica.Protocol.Auth;
using KvReplica.Protocol.Config;

namespace KvReplica.Node.Security;

/// <summary>
/// <c>node certs &lt;config&gt; [--admin-password-file FILE]</c>: makes what cluster.json's <c>tls</c> and
/// <c>auth</c> name and what is missing: a cluster CA, each replica's certificate and key
/// (<c>CN=replica-&lt;id&gt;</c>, its host as subject alternative name, for server and client use)
/// signed by it, and the bootstrap administrator's SCRAM verifier. Existing files are kept, so
/// running it again after adding a replica makes only the new replica's files.
/// </summary>
internal static class CertificateCommand
{
    private static readonly TimeSpan CaLifetime = TimeSpan.FromDays(3650);
    private static readonly TimeSpan ReplicaLifetime = TimeSpan.FromDays(1095);
    private const string BootstrapUser = "admin";
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        string? configPath = null, passwordFile = null;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--admin-password-file" && i + 1 < args.Length)
            {
                passwordFile = args[++i];
            }
            else if (configPath is null && !args[i].StartsWith("--", StringComparison.Ordinal))
            {
                configPath = args[i];
            }
            else
            {
                stderr.WriteLine($"node: certs: unexpected argument '{args[i]}'; usage: node certs <config> [--admin-password-file <file>]");
                return 2;
            }
        }
        if (configPath is null)
        {
            stderr.WriteLine("node: certs: usage: node certs <config> [--admin-password-file <file>]");
            return 2;
        }
        try
        {
            var config = ClusterConfigFile.Load(configPath);
            if (config.Tls is not { } tls)
            {
                throw new ConfigException($"{configPath} has no tls settings: add \"tls\": {{ \"ca\": ..., \"cert\": ..., \"key\": ... }} first (README, \"Security\")");
            }
            foreach (string line in Make(config, tls, passwordFile))
            {
                stdout.WriteLine($"node: certs: {line}");
            }
            return 0;
        }
        catch (Exception e) when (e is ConfigException or IOException or UnauthorizedAccessException or CryptographicException)
        {
            stderr.WriteLine($"node: certs: {e.Message}");
            return e is ConfigException ? 2 : 1;
        }
    }

    private static IEnumerable<string> Make(ClusterConfig config, TlsSettings tls, string? passwordFile)
    {
        var lines = new List<string>();
        string caKeyPath = Path.ChangeExtension(tls.Ca, ".key");
        var now = DateTimeOffset.UtcNow;
        bool anyMissing = config.Replicas.Any(r => !File.Exists(tls.CertOf(r.Id)) || !File.Exists(tls.KeyOf(r.Id)));
        X509Certificate2? ca = null;
        try
        {
            if (File.Exists(tls.Ca))
            {
                lines.Add($"kept the CA {tls.Ca}");
                if (anyMissing)
                {
                    if (!File.Exists(caKeyPath))
                    {
                        throw new ConfigException($"{tls.Ca} exists but its key {caKeyPath} does not: replica certificates cannot be signed without it");
                    }
                    ca = X509Certificate2.CreateFromPemFile(tls.Ca, caKeyPath);
                }
            }
            else
            {
                using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                var request = new CertificateRequest("CN=KvReplica cluster CA", caKey, HashAlgorithmName.SHA256);
                request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
                request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
                request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
                ca = request.CreateSelfSigned(now.AddMinutes(-5), now.Add(CaLifetime));
                Write(tls.Ca, ca.ExportCertificatePem(), secret: false);
                Write(caKeyPath, caKey.ExportPkcs8PrivateKeyPem(), secret: true);
                lines.Add($"made the CA {tls.Ca} (its key {caKeyPath} signs replica certificates: keep it off the replicas' machines)");
            }
            foreach (var replica in config.Replicas)
            {
                string cert = tls.CertOf(replica.Id), key = tls.KeyOf(replica.Id);
                if (File.Exists(cert) && File.Exists(key))
                {
                    lines.Add($"kept replica {replica.Id}'s certificate {cert}");
                    continue;
                }
                using var replicaKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                var request = new CertificateRequest(TransportSecurity.ReplicaSubject(replica.Id), replicaKey, HashAlgorithmName.SHA256);
                request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
                request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
                request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
                var names = new SubjectAlternativeNameBuilder();
                if (IPAddress.TryParse(replica.Host, out var ip))
                {
                    names.AddIpAddress(ip);
                }
                else
                {
                    names.AddDnsName(replica.Host);
                }
                request.CertificateExtensions.Add(names.Build());
                var serial = RandomNumberGenerator.GetBytes(16);
                serial[0] &= 0x7F;
                using var signed = request.Create(ca!, now.AddMinutes(-5), Min(now.Add(ReplicaLifetime), ca!.NotAfter), serial);
                Write(cert, signed.ExportCertificatePem(), secret: false);
                Write(key, replicaKey.ExportPkcs8PrivateKeyPem(), secret: true);
                lines.Add($"made replica {replica.Id}'s certificate {cert} and key {key} (valid until {Min(now.Add(ReplicaLifetime), ca.NotAfter):yyyy-MM-dd})");
            }
        }
        finally
        {
            ca?.Dispose();
        }
        if (config.BootstrapAdminFile is { } bootstrap)
        {
            if (File.Exists(bootstrap))
            {
                lines.Add($"kept the bootstrap admin {bootstrap}");
            }
            else
            {
                string password;
                if (passwordFile is not null)
                {
                    password = File.ReadAllText(passwordFile).TrimEnd('\r', '\n');
                    lines.Add($"made the bootstrap admin '{BootstrapUser}' {bootstrap} with the password in {passwordFile}");
                }
                else
                {
                    password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)).Replace('+', '-').Replace('/', '_');
                    string generated = Path.Combine(Path.GetDirectoryName(bootstrap)!, "admin.password");
                    Write(generated, password + "\n", secret: true);
                    lines.Add($"made the bootstrap admin '{BootstrapUser}' {bootstrap}; its password is in {generated}");
                }
                if (password.Length < 8)
                {
                    throw new ConfigException("the admin password must have at least 8 characters");
                }
                var credential = Scram.CreateCredential(password, RandomNumberGenerator.GetBytes(16));
                Write(bootstrap, $"{BootstrapUser}:{credential}\n", secret: true);
            }
        }
        return lines;
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private static void Write(string path, string text, bool secret)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (secret && !OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnly;
        }
        using var writer = new StreamWriter(path, System.Text.Encoding.ASCII, options);
        writer.Write(text);
    }
}
