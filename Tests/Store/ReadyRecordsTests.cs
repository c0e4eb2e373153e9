using KvReplica.Clock;
using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;
using KvReplica.Store.Persistence;
using NUnit.Framework;

namespace KvReplica.Tests.Store;

[TestFixture]
[Category("Unit")]
public sealed class ReadyRecordsTests
{
    [Test]
    public void A_round_is_logged_rebase_then_held_writes_then_promise_then_view_then_marker()
    {
        // The order recovery relies on: the rebase forgets what was logged before it, and a
        // view's trims apply to the writes logged before it.
        var ready = new Ready
        {
            Rebase = new HeldRebase { Origins = [1, 2], HeldThrough = [3, 4] },
            Joined = new ViewJoin { Number = 2, Origins = [1, 2], HeldThrough = [3, 4] },
            InstalledView = new ViewInstall { Number = 2, Members = [1, 2] },
            LastDelivered = new Stamp(5, 1),
        };
        ready.NewlyHeld.Add(new WriteCommand(new Stamp(5, 1), Operation.Put, "a", [1], 1, 1, 1));
        ready.NewlyHeld.Add(new WriteCommand(new Stamp(6, 2), Operation.Delete, "b", null, 2, 1, 1));

        var records = ReadyRecords.ToLogEntries(ready);

        Assert.That(records.Select(Kind), Is.EqualTo(new[] { "rebase", "held 5.1", "held 6.2", "join 2", "view 2", "delivered 5.1" }));
    }

    [Test]
    public void An_empty_round_logs_nothing()
    {
        Assert.That(ReadyRecords.ToLogEntries(new Ready()), Is.Empty);
    }

    private static string Kind(LogEntry e) =>
        e.Rebase is not null ? "rebase"
        : e.Held is { } held ? $"held {held.Stamp}"
        : e.Join is { } join ? $"join {join.Number}"
        : e.View is { } view ? $"view {view.Number}"
        : $"delivered {e.LastDelivered}";
}
