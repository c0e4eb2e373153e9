using System.Security.Cryptography;
using System.Text;

namespace KvReplica.Protocol.Auth;

/// <summary>
/// SCRAM-SHA-256 (RFC 5802 with the SHA-256 hash of RFC 7677), the password exchange clients use
/// to authenticate: the password never crosses the wire, and the replica keeps only a salted,
/// iterated verifier (<see cref="ScramCredential"/>) from which the password cannot be replayed.
/// Both halves live here as pure functions (nonces are passed in), so a third-party client can
/// be checked against the RFC's test vector and ours is tested the same way.
/// </summary>
/// <remarks>
/// Messages are the RFC's strings, without channel binding (gs2 header <c>n,,</c>): the TLS
/// connection underneath already authenticated the replica to the client. User names may not
/// contain ',' or '=' here (the RFC's escaping is not needed for our names, which are checked).
/// </remarks>
public static class Scram
{
    /// <summary>The mechanism name carried in <c>AuthStart.Mechanism</c>.</summary>
    public const string Mechanism = "SCRAM-SHA-256";

    /// <summary>PBKDF2 iterations for new credentials: the RFC 7677 minimum is 4096.</summary>
    public const int DefaultIterations = 10_000;

    /// <summary>The gs2 header our client-first-messages start with: no channel binding, no authzid.</summary>
    public const string Gs2Header = "n,,";

    /// <summary>The verifier a replica stores for a password: PBKDF2 salt and iterations, StoredKey, ServerKey.</summary>
    public static ScramCredential CreateCredential(string password, byte[] salt, int iterations = DefaultIterations) =>
        Derive(password, salt, iterations).Credential;

    private static (byte[] ClientKey, ScramCredential Credential) Derive(string password, byte[] salt, int iterations)
    {
        byte[] salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        byte[] clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        return (clientKey, new ScramCredential(salt, iterations, SHA256.HashData(clientKey), HMACSHA256.HashData(salted, "Server Key"u8)));
    }

    /// <summary>client-first-message: <c>n,,n=user,r=nonce</c>.</summary>
    public static string ClientFirst(string user, string clientNonce) => $"{Gs2Header}n={user},r={clientNonce}";

    /// <summary>
    /// Parses a client-first-message; returns false (with a reason) for anything else.
    /// <paramref name="bare"/> is the message without its gs2 header, which the proof covers.
    /// </summary>
    public static bool TryParseClientFirst(string message, out string user, out string clientNonce, out string bare, out string? error)
    {
        user = clientNonce = bare = "";
        if (!message.StartsWith(Gs2Header, StringComparison.Ordinal))
        {
            error = "SCRAM client-first-message must start with 'n,,' (no channel binding, no authzid)";
            return false;
        }
        bare = message[Gs2Header.Length..];
        var fields = Fields(bare);
        if (fields is null || !fields.TryGetValue('n', out string? n) || !fields.TryGetValue('r', out string? r) || n.Length == 0 || r.Length == 0)
        {
            error = "SCRAM client-first-message needs n=<user> and r=<nonce>";
            return false;
        }
        user = n;
        clientNonce = r;
        error = null;
        return true;
    }

    /// <summary>server-first-message: <c>r=clientNonce+serverNonce,s=salt,i=iterations</c>.</summary>
    public static string ServerFirst(string combinedNonce, byte[] salt, int iterations) =>
        $"r={combinedNonce},s={Convert.ToBase64String(salt)},i={iterations}";

    /// <summary>
    /// The client's answer to a server-first-message: client-final-message and the server
    /// signature the client must then see, or false with a reason when the server's message is
    /// malformed or does not extend the client's nonce (a replayed or forged challenge).
    /// </summary>
    public static bool TryClientFinal(string password, string clientFirstBare, string clientNonce, string serverFirst,
        out string clientFinal, out byte[] expectedServerSignature, out string? error)
    {
        clientFinal = "";
        expectedServerSignature = [];
        var fields = Fields(serverFirst);
        if (fields is null || !fields.TryGetValue('r', out string? nonce) || !fields.TryGetValue('s', out string? saltText) || !fields.TryGetValue('i', out string? iterText))
        {
            error = "malformed SCRAM server-first-message";
            return false;
        }
        if (!nonce.StartsWith(clientNonce, StringComparison.Ordinal) || nonce.Length == clientNonce.Length)
        {
            error = "the replica's SCRAM nonce does not extend ours";
            return false;
        }
        byte[] salt;
        try
        {
            salt = Convert.FromBase64String(saltText);
        }
        catch (FormatException)
        {
            error = "the replica's SCRAM salt is not base64";
            return false;
        }
        // Bounded, so a forged challenge cannot make the client spin for minutes.
        if (!int.TryParse(iterText, out int iterations) || iterations < 4096 || iterations > 1_000_000)
        {
            error = $"the replica's SCRAM iteration count '{iterText}' is outside 4096..1000000";
            return false;
        }
        var (clientKey, credential) = Derive(password, salt, iterations);
        string withoutProof = $"c=biws,r={nonce}";
        byte[] authMessage = Encoding.UTF8.GetBytes($"{clientFirstBare},{serverFirst},{withoutProof}");
        byte[] proof = Xor(clientKey, HMACSHA256.HashData(credential.StoredKey, authMessage));
        clientFinal = $"{withoutProof},p={Convert.ToBase64String(proof)}";
        expectedServerSignature = HMACSHA256.HashData(credential.ServerKey, authMessage);
        error = null;
        return true;
    }

    /// <summary>
    /// The replica's check of a client-final-message against the stored verifier. True with the
    /// server-final-message (<c>v=signature</c>) when the proof is right; false otherwise. The
    /// comparison takes the same time whatever bytes differ.
    /// </summary>
    public static bool VerifyClientFinal(ScramCredential credential, string clientFirstBare, string serverFirst, string combinedNonce,
        string clientFinal, out string serverFinal)
    {
        serverFinal = "";
        int proofAt = clientFinal.LastIndexOf(",p=", StringComparison.Ordinal);
        if (proofAt < 0)
        {
            return false;
        }
        string withoutProof = clientFinal[..proofAt];
        var fields = Fields(withoutProof);
        if (fields is null || !fields.TryGetValue('c', out string? binding) || binding != "biws"
            || !fields.TryGetValue('r', out string? nonce) || nonce != combinedNonce)
        {
            return false;
        }
        byte[] proof;
        try
        {
            proof = Convert.FromBase64String(clientFinal[(proofAt + 3)..]);
        }
        catch (FormatException)
        {
            return false;
        }
        if (proof.Length != 32)
        {
            return false;
        }
        byte[] authMessage = Encoding.UTF8.GetBytes($"{clientFirstBare},{serverFirst},{withoutProof}");
        byte[] clientKey = Xor(proof, HMACSHA256.HashData(credential.StoredKey, authMessage));
        if (!CryptographicOperations.FixedTimeEquals(SHA256.HashData(clientKey), credential.StoredKey))
        {
            return false;
        }
        serverFinal = "v=" + Convert.ToBase64String(HMACSHA256.HashData(credential.ServerKey, authMessage));
        return true;
    }

    /// <summary>The client's check of the server-final-message: proves the replica holds the verifier.</summary>
    public static bool VerifyServerFinal(string serverFinal, byte[] expectedServerSignature)
    {
        if (!serverFinal.StartsWith("v=", StringComparison.Ordinal))
        {
            return false;
        }
        try
        {
            return CryptographicOperations.FixedTimeEquals(Convert.FromBase64String(serverFinal[2..]), expectedServerSignature);
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static byte[] Xor(byte[] a, byte[] b)
    {
        var result = new byte[a.Length];
        for (int i = 0; i < a.Length; i++)
        {
            result[i] = (byte)(a[i] ^ b[i]);
        }
        return result;
    }

    // "a=x,b=y" into a map of single-letter attributes; null when malformed or repeated.
    private static Dictionary<char, string>? Fields(string message)
    {
        var fields = new Dictionary<char, string>();
        foreach (string part in message.Split(','))
        {
            if (part.Length < 2 || part[1] != '=' || !fields.TryAdd(part[0], part[2..]))
            {
                return null;
            }
        }
        return fields;
    }
}

/// <summary>A SCRAM-SHA-256 verifier: what a replica stores instead of a password.</summary>
public sealed record ScramCredential(byte[] Salt, int Iterations, byte[] StoredKey, byte[] ServerKey)
{
    /// <summary>
    /// The one-line text form, as PostgreSQL writes it: <c>SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey</c>
    /// (base64 parts). The bootstrap admin file holds <c>user:</c> followed by this.
    /// </summary>
    public override string ToString() =>
        $"{Scram.Mechanism}${Iterations}:{Convert.ToBase64String(Salt)}${Convert.ToBase64String(StoredKey)}:{Convert.ToBase64String(ServerKey)}";

    /// <summary>Parses <see cref="ToString"/>'s form; null with a reason when malformed.</summary>
    public static ScramCredential? Parse(string text, out string? error)
    {
        error = null;
        string[] parts = text.Trim().Split('$');
        if (parts.Length != 3 || parts[0] != Scram.Mechanism)
        {
            error = $"expected {Scram.Mechanism}$<iterations>:<salt>$<StoredKey>:<ServerKey>";
            return null;
        }
        string[] left = parts[1].Split(':'), right = parts[2].Split(':');
        if (left.Length != 2 || right.Length != 2 || !int.TryParse(left[0], out int iterations) || iterations < 4096)
        {
            error = "iterations must be a whole number of at least 4096, followed by ':' and the salt";
            return null;
        }
        try
        {
            var credential = new ScramCredential(Convert.FromBase64String(left[1]), iterations, Convert.FromBase64String(right[0]), Convert.FromBase64String(right[1]));
            if (credential.StoredKey.Length != 32 || credential.ServerKey.Length != 32 || credential.Salt.Length == 0)
            {
                error = "StoredKey and ServerKey must be 32 bytes and the salt not empty";
                return null;
            }
            return credential;
        }
        catch (FormatException)
        {
            error = "salt, StoredKey and ServerKey must be base64";
            return null;
        }
    }
}
