using KvReplica.Node.Storage;
using KvReplica.Node.Transport;
using KvReplica.Transport;
using KvReplica.Protocol.Wire;

namespace KvReplica.Node;

// The two connection kinds that stream files: a backup (admin) and a peer catching up.
internal sealed partial class ReplicaService
{
    // A backup: everything delivered here so far, streamed from a view of the storage engine.
    private async Task ServeBackupAsync(FramedConnection connection, Action handshakeDone, CancellationToken stopping)
    {
        var (ok, user) = await AcceptClientAsync(connection, "backup", handshakeDone, stopping).ConfigureAwait(false);
        if (!ok)
        {
            return;
        }
        var allowed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _inputs.Writer.WriteAsync(new AdminCheckInput(user, allowed), stopping).ConfigureAwait(false);
        if (!await allowed.Task.ConfigureAwait(false))
        {
            await connection.SendAsync(new BackupChunk { Last = true, Error = $"permission denied: user {user} may not take a backup (admin only)" }, stopping).ConfigureAwait(false);
            return;
        }
        var asked = new TaskCompletionSource<BackupSource>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _inputs.Writer.WriteAsync(new BackupInput(asked), stopping).ConfigureAwait(false);
        BackupSource source;
        try
        {
            source = await asked.Task.ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await connection.SendAsync(new BackupChunk { Last = true, Error = e.Message }, stopping).ConfigureAwait(false);
            return;
        }
        using (source)
        {
            // Streamed from a read transaction of the engine: writes go on meanwhile.
            var template = new BackupChunk { ThroughTime = source.Through.Time, ThroughReplica = source.Through.ReplicaId };
            long sent = await SendPartAsync(connection, template, 0, [source.Snapshot], 0, stopping).ConfigureAwait(false);
            Log.BackupServed(_logger, "backup", connection.Remote, sent, source.Through.ToString());
        }
    }

    // A peer catching up: a view of this replica's engine and the log after it (opened on the core
    // loop at one moment), or the rest of such a transfer the peer was cut off from.
    private async Task ServeCatchUpAsync(FramedConnection connection, CancellationToken stopping)
    {
        await connection.SendAsync(AcceptedHello(forPeer: true), stopping).ConfigureAwait(false);
        CatchUpRequest request;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping))
        {
            timeout.CancelAfter(ConnectionLimits.HandshakeTimeout);
            if (await connection.ReadOneAsync(timeout.Token).ConfigureAwait(false) is not CatchUpRequest asked)
            {
                Log.BadInput(_logger, connection.Remote, "a catch-up connection must send a CatchUpRequest after the handshake");
                return;
            }
            request = asked;
        }
        var opened = new TaskCompletionSource<TransferFiles>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _inputs.Writer.WriteAsync(new TransferInput(request, opened), stopping).ConfigureAwait(false);
        TransferFiles files;
        try
        {
            files = await opened.Task.ConfigureAwait(false);
        }
        catch (IOException e)
        {
            await connection.SendAsync(new BackupChunk { Last = true, Error = e.Message }, stopping).ConfigureAwait(false);
            return;
        }
        await using (files.ConfigureAwait(false))
        {
            var template = new BackupChunk
            {
                ThroughTime = files.SnapshotThrough.Time,
                ThroughReplica = files.SnapshotThrough.ReplicaId,
                SuffixFrom = files.SuffixFrom,
                SuffixThrough = files.SuffixThrough,
            };
            bool resuming = request.ResumeThroughTime != 0 || request.ResumeSuffixThrough != 0;
            long sent = 0;
            if (!resuming || request.ResumePart == 0)
            {
                sent += await SendPartAsync(connection, template, 0, [files.Snapshot], resuming ? request.ResumeOffset : 0, stopping).ConfigureAwait(false);
            }
            sent += await SendPartAsync(connection, template, 1, files.Segments, resuming && request.ResumePart == 1 ? request.ResumeOffset : 0, stopping).ConfigureAwait(false);
            Log.BackupServed(_logger, resuming ? "rest of a catch-up" : "catch-up", connection.Remote, sent, $"engine through {files.SnapshotThrough} + log segments {files.SuffixFrom}..{files.SuffixThrough}");
        }
    }

    private Task<long> SendPartAsync(FramedConnection connection, BackupChunk template, int part, IReadOnlyList<Stream> sources, long skip, CancellationToken stopping) =>
        SnapshotStreamSender.SendPartAsync(connection.SendAsync, template, part, sources, skip, Math.Min(ConnectionLimits.StreamChunkBytes, _config.MaxFrameBytes - ConnectionLimits.StreamChunkFrameOverheadBytes), stopping);

}
