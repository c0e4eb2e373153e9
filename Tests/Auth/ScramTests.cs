using KvReplica.Protocol.Auth;
using NUnit.Framework;

namespace KvReplica.Tests.Auth;

/// <summary>SCRAM-SHA-256 against the test vector of RFC 7677 §3, and the ways a proof must fail.</summary>
[TestFixture]
[Category("Unit")]
public sealed class ScramTests
{
    private const string ClientNonce = "rOprNGfwEbeRWgbNEkqO";
    private const string ServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    private const string CombinedNonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    private const string ClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    private const string ServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    private static ScramCredential PencilCredential() =>
        Scram.CreateCredential("pencil", Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);

    [Test]
    public void The_client_side_reproduces_the_rfc_7677_exchange()
    {
        string first = Scram.ClientFirst("user", ClientNonce);
        Assert.That(first, Is.EqualTo("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
        Assert.That(Scram.TryClientFinal("pencil", first[3..], ClientNonce, ServerFirst, out string final, out byte[] signature, out string? error), Is.True, error);
        Assert.That(final, Is.EqualTo(ClientFinal));
        Assert.That(Scram.VerifyServerFinal(ServerFinal, signature), Is.True);
    }

    [Test]
    public void The_server_side_accepts_the_rfc_7677_proof_and_answers_its_signature()
    {
        Assert.That(Scram.TryParseClientFirst("n,,n=user,r=rOprNGfwEbeRWgbNEkqO", out string user, out string nonce, out string bare, out _), Is.True);
        Assert.That((user, nonce), Is.EqualTo(("user", ClientNonce)));
        Assert.That(Scram.VerifyClientFinal(PencilCredential(), bare, ServerFirst, CombinedNonce, ClientFinal, out string serverFinal), Is.True);
        Assert.That(serverFinal, Is.EqualTo(ServerFinal));
    }

    [Test]
    public void A_wrong_password_a_changed_nonce_or_a_changed_proof_is_refused()
    {
        const string bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        Assert.That(Scram.TryClientFinal("pencil!", bare, ClientNonce, ServerFirst, out string wrongPassword, out _, out _), Is.True);
        Assert.Multiple(() =>
        {
            Assert.That(Scram.VerifyClientFinal(PencilCredential(), bare, ServerFirst, CombinedNonce, wrongPassword, out _), Is.False, "wrong password");
            Assert.That(Scram.VerifyClientFinal(PencilCredential(), bare, ServerFirst, CombinedNonce + "x", ClientFinal, out _), Is.False, "another session's nonce");
            Assert.That(Scram.VerifyClientFinal(PencilCredential(), bare, ServerFirst, CombinedNonce, ClientFinal.Replace("p=dH", "p=dI"), out _), Is.False, "tampered proof");
            Assert.That(Scram.VerifyServerFinal("v=" + Convert.ToBase64String(new byte[32]), new byte[32].Select(_ => (byte)1).ToArray()), Is.False, "forged server signature");
            Assert.That(Scram.TryClientFinal("pencil", bare, ClientNonce, ServerFirst.Replace("r=rOpr", "r=xOpr"), out _, out _, out _), Is.False, "a challenge that does not extend our nonce");
            Assert.That(Scram.TryClientFinal("pencil", bare, ClientNonce, ServerFirst.Replace("i=4096", "i=99999999"), out _, out _, out _), Is.False, "an iteration count meant to stall the client");
        });
    }

    [Test]
    public void A_credential_survives_its_text_form_and_malformed_text_is_refused()
    {
        var credential = PencilCredential();
        var parsed = ScramCredential.Parse(credential.ToString(), out string? error);
        Assert.That(parsed, Is.Not.Null, error);
        Assert.That(parsed!.StoredKey, Is.EqualTo(credential.StoredKey));
        Assert.That(parsed.ServerKey, Is.EqualTo(credential.ServerKey));
        Assert.That((parsed.Iterations, parsed.Salt), Is.EqualTo((credential.Iterations, credential.Salt)));
        Assert.Multiple(() =>
        {
            Assert.That(ScramCredential.Parse("pencil", out _), Is.Null);
            Assert.That(ScramCredential.Parse("SCRAM-SHA-256$10:c2FsdA==$AAAA:AAAA", out _), Is.Null, "too few iterations");
            Assert.That(ScramCredential.Parse("SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA", out _), Is.Null, "keys not 32 bytes");
        });
    }
}
