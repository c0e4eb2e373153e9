using System.Security.Cryptography;
using System.Text;
using KvReplica.Node.Transport;
using KvReplica.Protocol.Auth;
using KvReplica.Protocol.Wire;
using KvReplica.Transport;

namespace KvReplica.Node.Security;

/// <summary>
/// The replica's half of SCRAM-SHA-256 on a client or backup connection, run after HelloAccepted
/// and before anything else is read (docs/protocol.md, "Authentication"). Nothing the connection
/// sends reaches the core until this returns a user.
/// </summary>
/// <remarks>
/// An unknown user gets a challenge that looks like a real one and the exchange fails only at
/// the proof, so the answer does not tell who has an account. Its salt is derived from
/// <paramref name="unknownUserSecret"/> (<see cref="NodeSecurity.UnknownUserSecret"/>, the same on
/// every replica and across restarts), so it is as stable as a real user's salt.
/// </remarks>
internal sealed class ClientAuthenticator(Func<string, CancellationToken, Task<ScramCredential?>> findCredential, byte[] unknownUserSecret)
{
    /// <summary>The outcome: the authenticated user, or why not (for the log; the client hears only "authentication failed").</summary>
    public readonly record struct Result(string? User, string? Failure);

    /// <summary>
    /// Runs the exchange within <paramref name="ct"/>. A ClientRequest sent instead of AuthStart
    /// is answered with <see cref="ErrorCode.AuthenticationRequired"/>; any failure ends with an
    /// <see cref="AuthOutcome"/> that says only "authentication failed". The caller closes the
    /// connection when <see cref="Result.User"/> is null.
    /// </summary>
    public async Task<Result> AuthenticateAsync(FramedConnection connection, CancellationToken ct)
    {
        var first = await connection.ReadOneAsync(ct).ConfigureAwait(false);
        switch (first)
        {
            case null:
                return new Result(null, "closed before authenticating");
            case ClientRequest request:
                await connection.SendAsync(new ClientReply
                {
                    RequestId = request.RequestId,
                    Status = ReplyStatus.Error,
                    Error = ErrorCode.AuthenticationRequired,
                    ErrorMessage = "authentication required",
                }, ct).ConfigureAwait(false);
                return new Result(null, "sent a request before authenticating");
            case not AuthStart:
                return await FailAsync(connection, $"sent {first.GetType().Name} instead of AuthStart", ct).ConfigureAwait(false);
        }
        var start = (AuthStart)first;
        if (start.Mechanism != Scram.Mechanism)
        {
            return await FailAsync(connection, $"asked for mechanism '{start.Mechanism}'", ct).ConfigureAwait(false);
        }
        if (!Scram.TryParseClientFirst(start.Payload, out string user, out string clientNonce, out string clientFirstBare, out string? error))
        {
            return await FailAsync(connection, error!, ct).ConfigureAwait(false);
        }
        var credential = AccessKeys.CheckName(user, "user") is null ? await findCredential(user, ct).ConfigureAwait(false) : null;
        var challengeCredential = credential ?? StandIn(user);
        string combinedNonce = clientNonce + Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
        string serverFirst = Scram.ServerFirst(combinedNonce, challengeCredential.Salt, challengeCredential.Iterations);
        await connection.SendAsync(new AuthChallenge { Payload = serverFirst }, ct).ConfigureAwait(false);
        if (await connection.ReadOneAsync(ct).ConfigureAwait(false) is not AuthProof proof)
        {
            return await FailAsync(connection, "did not answer the challenge with AuthProof", ct).ConfigureAwait(false);
        }
        if (!Scram.VerifyClientFinal(challengeCredential, clientFirstBare, serverFirst, combinedNonce, proof.Payload, out string serverFinal) || credential is null)
        {
            return await FailAsync(connection, credential is null ? $"unknown user '{Printable(user)}'" : $"wrong password for user '{user}'", ct).ConfigureAwait(false);
        }
        await connection.SendAsync(new AuthOutcome { Ok = true, Payload = serverFinal }, ct).ConfigureAwait(false);
        return new Result(user, null);
    }

    private static async Task<Result> FailAsync(FramedConnection connection, string why, CancellationToken ct)
    {
        await connection.SendAsync(new AuthOutcome { Ok = false, Error = "authentication failed" }, ct).ConfigureAwait(false);
        return new Result(null, why);
    }

    // A verifier no password matches (its keys are random), with a salt that stays the same for
    // the same unknown name.
    private ScramCredential StandIn(string user)
    {
        byte[] salt = HMACSHA256.HashData(unknownUserSecret, Encoding.UTF8.GetBytes(user))[..16];
        return new ScramCredential(salt, Scram.DefaultIterations, RandomNumberGenerator.GetBytes(32), RandomNumberGenerator.GetBytes(32));
    }

    private static string Printable(string text) => text.Length > 64 || text.Any(char.IsControl) ? "(unprintable)" : text;
}
