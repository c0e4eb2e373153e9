using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using KvReplica.Client;
using KvReplica.Protocol.Config;
using KvReplica.Protocol.Wire;
using NUnit.Framework;

namespace KvReplica.Tests.Client;

[TestFixture]
[Category("Unit")]
[Category("ClientUnit")]
[CancelAfter(30_000)]
public sealed class KvClientTests
{
    private static ClusterConfig Cluster(params ReplicaAddress[] replicas) => new()
    {
        ClusterName = "test-cluster",
        Replicas = replicas,
        ClientRequestTimeout = TimeSpan.FromSeconds(5),
    };

    private static ClusterConfig Cluster(params FakeReplica[] replicas) => Cluster([.. replicas.Select(r => r.Address)]);

    [Test]
    public async Task Put_get_delete_round_trip_against_a_replica()
    {
        await using var replica = FakeReplica.WithStore(1);
        await using var client = await KvClient.ConnectAsync(Cluster(replica));

        await client.PutAsync("colour", "blue");
        var found = await client.GetAsync("colour");
        var missing = await client.GetAsync("shape");
        bool existed = await client.DeleteAsync("colour");
        bool existedAgain = await client.DeleteAsync("colour");

        Assert.That(found.Found, Is.True);
        Assert.That(found.ValueAsString, Is.EqualTo("blue"));
        Assert.That(found.Version.ReplicaId, Is.EqualTo(1));
        Assert.That(missing.Found, Is.False);
        Assert.That(existed, Is.True);
        Assert.That(existedAgain, Is.False);
        var hello = replica.Hellos.Single();
        Assert.That(hello.ClusterName, Is.EqualTo("test-cluster"));
        Assert.That(hello.Kind, Is.EqualTo(PeerKind.Client));
        Assert.That(hello.ProtocolVersion, Is.EqualTo(ProtocolVersion.Current));
    }

    [Test]
    public async Task A_value_given_as_part_of_an_array_is_sent_as_exactly_that_part()
    {
        await using var replica = FakeReplica.WithStore(1);
        await using var client = await KvClient.ConnectAsync(Cluster(replica));
        byte[] buffer = [9, 1, 2, 3, 9];
        byte[] whole = [4, 5, 6];

        await client.PutAsync("slice", buffer.AsMemory(1, 3));
        await client.PutAsync("whole", whole);

        var values = replica.Received.Where(r => r.Operation == Operation.Put).Select(r => (r.Key, r.Value)).ToList();
        Assert.That(values, Is.EqualTo(new[] { ("slice", (byte[]?)[1, 2, 3]), ("whole", (byte[]?)[4, 5, 6]) }));
        Assert.That((await client.GetAsync("slice")).Value.ToArray(), Is.EqualTo(new byte[] { 1, 2, 3 }));
    }

    [Test]
    public async Task Writes_carry_client_id_increasing_sequences_and_acked_below()
    {
        await using var replica = FakeReplica.WithStore(1);
        await using var client = await KvClient.ConnectAsync(Cluster(replica));

        await client.PutAsync("a", "1");
        await client.DeleteAsync("a");
        await client.GetAsync("a");
        await client.PutAsync("b", "2");

        var requests = replica.Received.ToArray();
        Assert.That(requests.Select(r => r.Sequence), Is.EqualTo(new long[] { 1, 2, 0, 3 }));
        // Sequential writes: every earlier write is finished, so AckedBelow is the write's own number.
        Assert.That(requests.Where(r => r.Sequence > 0).Select(r => r.AckedBelow), Is.EqualTo(new long[] { 1, 2, 3 }));
        Assert.That(requests.Where(r => r.Sequence > 0).Select(r => r.ClientId), Is.All.EqualTo(client.ClientId));
        Assert.That(requests.Select(r => r.RequestId).Distinct().Count(), Is.EqualTo(4));
    }

    [Test]
    public async Task Acked_below_stays_at_the_oldest_write_without_a_final_reply()
    {
        // The replica never answers sequence 1 and answers everything else at once.
        await using var replica = FakeReplica.Start(1, (request, connection) =>
        {
            if (request.Sequence != 1)
            {
                connection.Reply(new ClientReply { RequestId = request.RequestId, Status = ReplyStatus.Ok });
            }
        });
        await using var client = await KvClient.ConnectAsync(Cluster(replica), new KvClientOptions { RequestTimeout = TimeSpan.FromMilliseconds(500) });

        var first = client.PutAsync("a", "1");
        await Eventually.HoldsAsync(() => !replica.Received.IsEmpty, TimeSpan.FromSeconds(5), "the first PUT reaches the replica");
        await client.PutAsync("b", "2");
        Assert.ThrowsAsync<KvTimeoutException>(() => first);
        // Sequence 1 was sent but its outcome is unknown, so it still holds AckedBelow down.
        await client.PutAsync("c", "3");

        var requests = replica.Received.ToArray();
        Assert.That(requests.Select(r => (r.Sequence, r.AckedBelow)), Is.EqualTo(new[] { (1L, 1L), (2L, 1L), (3L, 1L) }));
    }

    [Test]
    public async Task Pipelined_requests_are_matched_by_id_when_replies_come_back_in_reverse_order()
    {
        const int InFlight = 50;
        var held = new ConcurrentQueue<(ClientRequest Request, FakeConnection Connection)>();
        await using var replica = FakeReplica.Start(1, (request, connection) =>
        {
            held.Enqueue((request, connection));
            // Answer nothing until every request is in flight, then answer newest first.
            if (held.Count == InFlight)
            {
                foreach (var (r, c) in held.Reverse())
                {
                    c.Reply(new ClientReply { RequestId = r.RequestId, Status = ReplyStatus.Ok, Value = Encoding.UTF8.GetBytes("value of " + r.Key) });
                }
            }
        });
        await using var client = await KvClient.ConnectAsync(Cluster(replica));

        var gets = Enumerable.Range(0, InFlight).Select(i => client.GetAsync($"key-{i}")).ToArray();
        var results = await Task.WhenAll(gets);

        for (int i = 0; i < InFlight; i++)
        {
            Assert.That(results[i].ValueAsString, Is.EqualTo($"value of key-{i}"));
        }
        Assert.That(replica.ConnectionsAccepted, Is.EqualTo(1), "all requests share one connection");
    }

    [Test]
    public async Task Hello_rejected_reason_is_surfaced_verbatim()
    {
        const string Reason = "cluster name 'test-cluster' does not match 'production'";
        await using var replica = FakeReplica.Rejecting(1, Reason);

        var error = Assert.ThrowsAsync<KvUnavailableException>(() => KvClient.ConnectAsync(Cluster(replica)));

        Assert.That(error!.Message, Does.Contain(Reason));
        Assert.That(error.Message, Does.Contain("replica 1 at 127.0.0.1:"));
        Assert.That(error.EveryReplicaRejected, Is.True);
    }

    [Test]
    public async Task Request_times_out_within_its_deadline_when_the_replica_never_answers()
    {
        await using var replica = FakeReplica.Start(1, (_, _) => { });
        var timeout = TimeSpan.FromMilliseconds(300);
        await using var client = await KvClient.ConnectAsync(Cluster(replica), new KvClientOptions { RequestTimeout = timeout });

        var clock = Stopwatch.StartNew();
        var error = Assert.ThrowsAsync<KvTimeoutException>(() => client.GetAsync("silence"));
        clock.Stop();

        Assert.That(clock.Elapsed, Is.GreaterThanOrEqualTo(timeout - TimeSpan.FromMilliseconds(20)));
        Assert.That(clock.Elapsed, Is.LessThan(timeout + TimeSpan.FromSeconds(2)));
        Assert.That(error!.Message, Does.Contain("no reply from replica 1"));
    }

    [Test]
    public async Task Cancellation_ends_a_request_before_its_deadline()
    {
        await using var replica = FakeReplica.Start(1, (_, _) => { });
        await using var client = await KvClient.ConnectAsync(Cluster(replica), new KvClientOptions { RequestTimeout = TimeSpan.FromSeconds(30) });
        using var cancel = new CancellationTokenSource();

        var put = client.PutAsync("k", "v", cancel.Token);
        await Eventually.HoldsAsync(() => !replica.Received.IsEmpty, TimeSpan.FromSeconds(5), "the PUT reaches the replica");
        cancel.Cancel();

        Assert.That(async () => await put.WaitAsync(TimeSpan.FromSeconds(5)), Throws.InstanceOf<OperationCanceledException>());
    }

    [Test]
    public async Task Connects_to_the_next_replica_when_the_first_is_down()
    {
        await using var second = FakeReplica.WithStore(2);
        var config = Cluster(new ReplicaAddress(1, "127.0.0.1", FakeReplica.UnusedPort()), second.Address);
        await using var client = await KvClient.ConnectAsync(config);

        await client.PutAsync("k", "v");

        Assert.That(client.ConnectedReplica?.Id, Is.EqualTo(2));
        Assert.That(second.Received.Single().Sequence, Is.EqualTo(1));
    }

    [Test]
    public async Task A_write_in_flight_is_resent_to_the_next_replica_with_the_same_ids_when_the_first_crashes()
    {
        FakeReplica? first = null;
        first = FakeReplica.Start(1, (_, _) => first!.Crash());
        await using var crashed = first;
        await using var second = FakeReplica.WithStore(2);
        await using var client = await KvClient.ConnectAsync(Cluster(first, second));
        Assert.That(client.ConnectedReplica?.Id, Is.EqualTo(1));

        await client.PutAsync("k", "v");

        var lost = first.Received.Single();
        var resent = second.Received.Single();
        Assert.That(resent.ClientId, Is.EqualTo(lost.ClientId).And.EqualTo(client.ClientId));
        Assert.That(resent.Sequence, Is.EqualTo(lost.Sequence).And.EqualTo(1));
        Assert.That(resent.RequestId, Is.EqualTo(lost.RequestId));
        Assert.That(resent.Value, Is.EqualTo(lost.Value));
        Assert.That(client.ConnectedReplica?.Id, Is.EqualTo(2));
    }

    [Test]
    public async Task Shutting_down_reply_moves_the_request_to_the_next_replica()
    {
        await using var first = FakeReplica.Start(1, (request, connection) => connection.Reply(new ClientReply
        {
            RequestId = request.RequestId,
            Status = ReplyStatus.Error,
            Error = ErrorCode.ShuttingDown,
            ErrorMessage = "replica 1 is stopping",
        }));
        await using var second = FakeReplica.WithStore(2);
        await using var client = await KvClient.ConnectAsync(Cluster(first, second));

        await client.PutAsync("k", "v");

        Assert.That(second.Received.Single().Sequence, Is.EqualTo(first.Received.Single().Sequence));
        Assert.That(client.ConnectedReplica?.Id, Is.EqualTo(2));
    }

    [Test]
    public async Task Preferred_replica_is_tried_first()
    {
        await using var first = FakeReplica.WithStore(1);
        await using var second = FakeReplica.WithStore(2);
        await using var client = await KvClient.ConnectAsync(Cluster(first, second), new KvClientOptions { PreferredReplicaId = 2 });

        Assert.That(client.ConnectedReplica?.Id, Is.EqualTo(2));
        Assert.That(first.ConnectionsAccepted, Is.Zero);
    }

    [Test]
    public void No_replica_reachable_lists_every_replica_and_why()
    {
        var config = Cluster(new ReplicaAddress(1, "127.0.0.1", FakeReplica.UnusedPort()), new ReplicaAddress(2, "127.0.0.1", FakeReplica.UnusedPort()));

        var clock = Stopwatch.StartNew();
        var error = Assert.ThrowsAsync<KvUnavailableException>(() =>
            KvClient.ConnectAsync(config, new KvClientOptions { RequestTimeout = TimeSpan.FromMilliseconds(500) }));

        Assert.That(error!.Message, Does.StartWith("no replica reachable: replica 1 at 127.0.0.1:"));
        Assert.That(error.Message, Does.Contain("connection refused; replica 2 at 127.0.0.1:"));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(3)));
    }

    [Test]
    public void Connecting_fails_at_once_when_every_replica_refuses_the_connection()
    {
        // Nothing listens on either port: retrying until the 30 s deadline cannot help.
        var config = Cluster(new ReplicaAddress(1, "127.0.0.1", FakeReplica.UnusedPort()), new ReplicaAddress(2, "127.0.0.1", FakeReplica.UnusedPort()));

        var clock = Stopwatch.StartNew();
        var error = Assert.ThrowsAsync<KvUnavailableException>(() =>
            KvClient.ConnectAsync(config, new KvClientOptions { RequestTimeout = TimeSpan.FromSeconds(30) }));

        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)), "failed at once, not at the deadline");
        Assert.That(error!.Message, Does.StartWith("no replica reachable: ").And.Contain("connection refused; replica 2 at"));
        Assert.That(error.EveryReplicaRejected, Is.False);
    }

    [Test]
    public async Task A_read_fails_at_once_when_every_replica_refuses_the_connection()
    {
        var replica = FakeReplica.WithStore(1);
        await using var client = await KvClient.ConnectAsync(Cluster(replica), new KvClientOptions { RequestTimeout = TimeSpan.FromSeconds(30) });
        replica.Crash();

        var clock = Stopwatch.StartNew();
        var error = Assert.ThrowsAsync<KvUnavailableException>(() => client.GetAsync("k"));

        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)), "failed at once, not at the deadline");
        Assert.That(error!.Message, Does.Contain("connection refused"));
    }

    [Test]
    public async Task Ping_times_a_get_of_a_reserved_key_at_the_connected_replica()
    {
        await using var replica = FakeReplica.Start(1, (request, connection) => connection.Reply(new ClientReply
        {
            RequestId = request.RequestId,
            Status = ReplyStatus.Error,
            Error = ErrorCode.InvalidRequest,
            ErrorMessage = "keys starting with a NUL character are reserved",
        }));
        await using var client = await KvClient.ConnectAsync(Cluster(replica));

        var pong = await client.PingAsync();

        Assert.That(pong.Replica?.Id, Is.EqualTo(1));
        Assert.That(pong.RoundTrip, Is.GreaterThan(TimeSpan.Zero).And.LessThan(TimeSpan.FromSeconds(5)));
        Assert.That(replica.Received.Single().Operation, Is.EqualTo(Operation.Get));
        Assert.That(replica.Received.Single().Key, Does.StartWith("\0"), "a reserved key: no store lookup, no permission check");
    }

    [Test]
    public async Task Request_gives_up_at_its_deadline_when_every_replica_is_gone()
    {
        var replica = FakeReplica.WithStore(1);
        var timeout = TimeSpan.FromMilliseconds(400);
        await using var client = await KvClient.ConnectAsync(Cluster(replica), new KvClientOptions { RequestTimeout = timeout });
        replica.Crash();

        var clock = Stopwatch.StartNew();
        var error = Assert.ThrowsAsync<KvUnavailableException>(() => client.PutAsync("k", "v"));

        Assert.That(error!.Message, Does.StartWith("no replica reachable: replica 1 at 127.0.0.1:").And.Contain("connection refused"));
        Assert.That(clock.Elapsed, Is.LessThan(timeout + TimeSpan.FromSeconds(2)));
    }

    [Test]
    public async Task Replica_error_surfaces_as_kv_exception_with_its_code()
    {
        await using var replica = FakeReplica.Start(1, (request, connection) => connection.Reply(new ClientReply
        {
            RequestId = request.RequestId,
            Status = ReplyStatus.Error,
            Error = ErrorCode.InvalidRequest,
            ErrorMessage = "key is reserved",
        }));
        await using var client = await KvClient.ConnectAsync(Cluster(replica));

        var error = Assert.ThrowsAsync<KvException>(() => client.PutAsync("k", "v"));

        Assert.That(error!.Error, Is.EqualTo(ErrorCode.InvalidRequest));
        Assert.That(error.Message, Does.Contain("key is reserved"));
        Assert.That(replica.Received, Has.Count.EqualTo(1), "InvalidRequest is not retried");
    }

    [Test]
    public async Task Busy_is_retried_with_the_same_sequence_until_it_succeeds()
    {
        int answered = 0;
        await using var replica = FakeReplica.Start(1, (request, connection) => connection.Reply(Interlocked.Increment(ref answered) < 3
            ? new ClientReply { RequestId = request.RequestId, Status = ReplyStatus.Error, Error = ErrorCode.Busy, ErrorMessage = "too many pending writes" }
            : new ClientReply { RequestId = request.RequestId, Status = ReplyStatus.Ok }));
        await using var client = await KvClient.ConnectAsync(Cluster(replica));

        await client.PutAsync("k", "v");

        Assert.That(replica.Received.Select(r => r.Sequence), Is.EqualTo(new long[] { 1, 1, 1 }));
    }

    [Test]
    public async Task Invalid_requests_are_refused_locally_without_sending()
    {
        await using var replica = FakeReplica.WithStore(1);
        var config = Cluster(replica) with { MaxValueBytes = 10 };
        await using var client = await KvClient.ConnectAsync(config);

        Assert.ThrowsAsync<KvInvalidRequestException>(() => client.GetAsync(""));
        Assert.ThrowsAsync<KvInvalidRequestException>(() => client.GetAsync(new string('k', Limits.MaxKeyBytes + 1)));
        var tooBig = Assert.ThrowsAsync<KvInvalidRequestException>(() => client.PutAsync("k", new byte[11]));
        await client.PutAsync("k", new byte[10]);

        Assert.That(tooBig!.ParamName, Is.EqualTo("value"));
        Assert.That(replica.Received.Single().Sequence, Is.EqualTo(1), "refused requests use up no sequence number");
    }

    [Test]
    public async Task Disposing_fails_requests_in_flight()
    {
        await using var replica = FakeReplica.Start(1, (_, _) => { });
        var client = await KvClient.ConnectAsync(Cluster(replica));
        var get = client.GetAsync("k");
        await Eventually.HoldsAsync(() => !replica.Received.IsEmpty, TimeSpan.FromSeconds(5), "the GET reaches the replica");

        await client.DisposeAsync();

        Assert.That(async () => await get.WaitAsync(TimeSpan.FromSeconds(5)), Throws.InstanceOf<ObjectDisposedException>());
        Assert.ThrowsAsync<ObjectDisposedException>(() => client.GetAsync("k"));
    }
}
