using KvReplica.Protocol.Core;
using KvReplica.Protocol.Wire;

namespace KvReplica.Protocol.Link;

/// <summary>
/// One replica pair's link state, both directions, across any number of TCP connections: the
/// envelopes this replica sent that the peer has not confirmed, and the next sequence number it
/// expects from the peer. It makes the link exactly-once and FIFO across reconnects, which the
/// ordering proof relies on: on reconnect the peer says where to resume and everything from
/// there is sent again; anything received twice is dropped; a gap is a protocol violation.
/// </summary>
/// <remarks>
/// Sans-I/O and not thread-safe: the Node guards each instance with a lock. Lives as long as the
/// process; a restarted peer has a new incarnation and so needs a new link (see docs/design.md).
/// </remarks>
public sealed class ReliableLink
{
    // Unconfirmed envelopes in sequence order: _unconfirmed[_head + i] has sequence _firstUnconfirmed + i.
    private readonly List<ReplicaEnvelope> _unconfirmed = [];
    private int _head;
    private long _firstUnconfirmed = 1;
    private long _nextSequence = 1;

    /// <summary>The next sequence number expected from the peer; everything below has been received.</summary>
    public long NextExpected { get; private set; } = 1;

    /// <summary>Envelopes sent (or queued) that the peer has not confirmed.</summary>
    public int UnconfirmedCount => _unconfirmed.Count - _head;

    /// <summary>Wraps <paramref name="body"/> in the next envelope and keeps it until the peer confirms it.</summary>
    public ReplicaEnvelope Wrap(PeerMessage body)
    {
        var envelope = new ReplicaEnvelope { Sequence = _nextSequence++, AckedBelow = NextExpected, Body = body };
        _unconfirmed.Add(envelope);
        return envelope;
    }

    /// <summary>
    /// Takes an envelope received from the peer. Returns its body if it is the next in sequence,
    /// null if it is a duplicate of one already received. Throws
    /// <see cref="ProtocolViolationException"/> on a gap, which TCP plus resend can never produce.
    /// </summary>
    public PeerMessage? Accept(ReplicaEnvelope envelope)
    {
        if (envelope.Body is null)
        {
            throw new ProtocolViolationException($"envelope {envelope.Sequence} has no body");
        }
        Confirm(envelope.AckedBelow);
        if (envelope.Sequence < NextExpected)
        {
            return null;
        }
        if (envelope.Sequence > NextExpected)
        {
            throw new ProtocolViolationException($"link gap: expected envelope {NextExpected}, got {envelope.Sequence}");
        }
        NextExpected++;
        return envelope.Body;
    }

    /// <summary>The peer has received every envelope below <paramref name="ackedBelow"/>; forget them.</summary>
    public void Confirm(long ackedBelow)
    {
        if (ackedBelow > _nextSequence)
        {
            throw new ProtocolViolationException($"peer confirmed envelopes up to {ackedBelow - 1}, but only {_nextSequence - 1} were sent");
        }
        while (_firstUnconfirmed < ackedBelow && _head < _unconfirmed.Count)
        {
            _unconfirmed[_head++] = null!;
            _firstUnconfirmed++;
        }
        // Compact occasionally so the list does not grow without bound.
        if (_head > 1024 && _head * 2 > _unconfirmed.Count)
        {
            _unconfirmed.RemoveRange(0, _head);
            _head = 0;
        }
    }

    /// <summary>
    /// Appends to <paramref name="into"/> every unconfirmed envelope with sequence at least
    /// <paramref name="from"/>, in order; returns the sequence after the last one appended.
    /// Each carries the current <see cref="NextExpected"/> as its confirmation, so an envelope
    /// sent again after a reconnect confirms what has arrived since it was made.
    /// </summary>
    public long CopyPendingFrom(long from, List<ReplicaEnvelope> into)
    {
        long start = Math.Max(from, _firstUnconfirmed);
        for (long seq = start; seq < _nextSequence; seq++)
        {
            var envelope = _unconfirmed[_head + (int)(seq - _firstUnconfirmed)];
            envelope.AckedBelow = NextExpected;
            into.Add(envelope);
        }
        return _nextSequence;
    }
}
