using RaftLedger.Common;

namespace RaftLedger.Ledger.CrossShard;

/// <summary>What a message between shard leaders asks or answers.</summary>
public enum CrossShardMessageKind : byte
{
    /// <summary>Home → participant: prepare these legs.</summary>
    Prepare = 1,

    /// <summary>Participant → home: prepared (or refused), with a report per leg.</summary>
    Prepared = 2,

    /// <summary>Home → participant: commit or abort your legs.</summary>
    Finish = 3,

    /// <summary>Participant → home: my legs are finished (or were never there).</summary>
    Finished = 4,

    /// <summary>Participant → home: my legs are prepared too long, what was decided?</summary>
    Query = 5,

    /// <summary>Home → participant: the answer to a query.</summary>
    Decision = 6,

    /// <summary>A post/void's id home → its pending transfer's home: coordinate this post/void (one leg: the event as sent).</summary>
    Delegate = 7,

    /// <summary>Pending transfer's home → the post/void's id home: its answer (status and timestamp, or a failure to retry).</summary>
    Delegated = 8,

    /// <summary>Several messages of the kinds above for one shard, sent together (<see cref="CrossShardBundle"/>).</summary>
    Bundle = 9,

    /// <summary>Home → participant: the accounts a balancing transaction clamps on, as this shard's leader checks them now (no Raft write).</summary>
    Snapshot = 10,

    /// <summary>Participant → home: the accounts asked for (found or not), with the reservations of prepared legs.</summary>
    Snapshotted = 11,

    /// <summary>
    /// Chain coordinator → a pending transfer's home (another shard): the pending transfers the chain posts or voids, as
    /// that shard's leader holds them now (no Raft write; their fields never change, their status is re-checked and held
    /// by the chain's status leg at Prepare). Not answered while a transaction there holds one of them.
    /// </summary>
    PendingLookup = 12,

    /// <summary>Pending transfer's home → chain coordinator: each pending transfer asked for (found or not, its status).</summary>
    PendingFound = 13,

    /// <summary>
    /// Participant → home: your Finish is proposed here, ahead in this shard's log of anything this leader proposes later
    /// (sent only by a leader that holds the legs prepared). The client may be answered once every participant holding
    /// legs sent this or <see cref="Finished"/>; the record is retired only after Finished.
    /// </summary>
    FinishTaken = 14,

    /// <summary>
    /// Home → participant, sent as the home proposes its Decide: fence the accounts (and ids) of this transaction's legs
    /// until your Finish is proposed, so that whatever starts after the client's answer is ordered after that Finish.
    /// Answered with <see cref="Fenced"/> only by a leader that holds the legs prepared.
    /// </summary>
    Fence = 15,

    /// <summary>
    /// Participant → home: the legs' accounts are fenced here (or the Finish was proposed). With the Decide applied the
    /// client may be answered without waiting for this participant's <see cref="FinishTaken"/>.
    /// </summary>
    Fenced = 16,
}

/// <summary>One account of a <see cref="CrossShardMessageKind.Snapshotted"/> answer (Account is default when not found).</summary>
public readonly record struct AccountSnapshot(UInt128 Id, bool Found, Account Account);

/// <summary>One pending transfer of a <see cref="CrossShardMessageKind.PendingFound"/> answer (Status and Transfer are default when not found).</summary>
public readonly record struct ForeignPending(UInt128 Id, bool Found, PendingStatus Status, Transfer Transfer);

/// <summary>How a delegated post/void ended, in a <see cref="CrossShardMessageKind.Delegated"/> message.</summary>
public enum DelegatedOutcome : byte
{
    /// <summary>Answered with a status (and the timestamp when created).</summary>
    Answered = 0,

    /// <summary>Nothing was created: retry (503).</summary>
    Retry = 1,

    /// <summary>It may have been created: retry with the same id (504).</summary>
    Unknown = 2,
}

/// <summary>
/// A message between two shards' drivers. Byte form (little-endian): u8 version (1), u8 kind, u16 home
/// shard, u16 sender shard, u128 transaction id, then by kind: Prepare u16 leg count and legs; Prepared
/// u8 prepared, u16 report count, per report u16 event index and two sides (u8 outcome, u32 ledger);
/// Finish and Decision u8 <see cref="CrossShardDecision"/>; Finished, FinishTaken, Query, Fence and Fenced nothing; Delegate as Prepare (one
/// leg: the post/void as sent), then u16 send number; Delegated u8 <see cref="DelegatedOutcome"/>, u32 status, u64 timestamp, u16 sends
/// received, u16 latest send received; Snapshot
/// u16 count and u128 account ids; Snapshotted u16 count, per account u128 id, u8 found, and when found the
/// 128-byte account; PendingLookup as Snapshot (pending transfer ids); PendingFound u16 count, per pending transfer u128
/// id, u8 found, and when found u8 <see cref="PendingStatus"/> and the 128-byte transfer.
/// At most <see cref="CrossShardLimits.MessageBytesMax"/> bytes.
/// </summary>
public sealed record CrossShardMessage(CrossShardMessageKind Kind, int Home, int From, UInt128 TransactionId)
{
    public const byte Version = 1;

    public Leg[] Legs { get; init; } = [];

    public bool Prepared { get; init; }

    public LegReport[] Reports { get; init; } = [];

    public CrossShardDecision Decision { get; init; }

    public DelegatedOutcome Outcome { get; init; }

    public CreateTransferResult Status { get; init; }

    public ulong Timestamp { get; init; }

    /// <summary>Delegate: which send of the delegation this is (1 = the first); Delegated: how many of those sends the answering leader received.</summary>
    public int Sends { get; init; }

    /// <summary>Delegated: the highest send number the answering leader received.</summary>
    public int LatestSend { get; init; }

    /// <summary>Snapshot: the account ids asked for.</summary>
    public UInt128[] AccountIds { get; init; } = [];

    /// <summary>Snapshotted: the accounts asked for.</summary>
    public AccountSnapshot[] Accounts { get; init; } = [];

    /// <summary>PendingFound: the pending transfers asked for.</summary>
    public ForeignPending[] Pendings { get; init; } = [];

    /// <summary>Pending transfers one PendingLookup asks for at most: one per event of a transaction.</summary>
    public const int PendingLookupMax = CrossShardLimits.TransactionEventsMax;

    /// <summary>Accounts one snapshot asks for at most: each event of a transaction has two.</summary>
    public const int SnapshotAccountsMax = 2 * CrossShardLimits.TransactionEventsMax;

    public byte[] Encode()
    {
        var writer = new ByteWriter(64 + (Legs.Length * CrossShardCommand.LegBytes) + (Reports.Length * 12) + (AccountIds.Length * 16) +
            (Accounts.Length * (17 + LedgerLimits.RecordSizeBytes)) + (Pendings.Length * (18 + LedgerLimits.RecordSizeBytes)));
        writer.U8(Version);
        writer.U8((byte)Kind);
        writer.U16(Home);
        writer.U16(From);
        writer.U128(TransactionId);
        switch (Kind)
        {
            case CrossShardMessageKind.Prepare or CrossShardMessageKind.Delegate:
                writer.U16(Legs.Length);
                foreach (var leg in Legs)
                {
                    writer.Leg(leg);
                }

                if (Kind == CrossShardMessageKind.Delegate)
                {
                    writer.U16(Sends);
                }

                break;
            case CrossShardMessageKind.Prepared:
                writer.U8(Prepared ? (byte)1 : (byte)0);
                writer.U16(Reports.Length);
                foreach (var report in Reports)
                {
                    writer.U16(report.EventIndex);
                    CrossShardCommand.WriteSide(writer, report.Debit);
                    CrossShardCommand.WriteSide(writer, report.Credit);
                }

                break;
            case CrossShardMessageKind.Finish or CrossShardMessageKind.Decision:
                writer.U8((byte)Decision);
                break;
            case CrossShardMessageKind.Delegated:
                writer.U8((byte)Outcome);
                writer.U32((uint)Status);
                writer.U64(Timestamp);
                writer.U16(Sends);
                writer.U16(LatestSend);
                break;
            case CrossShardMessageKind.Snapshot or CrossShardMessageKind.PendingLookup:
                Invariant.Check(AccountIds.Length <= (Kind == CrossShardMessageKind.Snapshot ? SnapshotAccountsMax : PendingLookupMax));
                writer.U16(AccountIds.Length);
                foreach (var id in AccountIds)
                {
                    writer.U128(id);
                }

                break;
            case CrossShardMessageKind.Snapshotted:
                Invariant.Check(Accounts.Length <= SnapshotAccountsMax);
                writer.U16(Accounts.Length);
                foreach (var account in Accounts)
                {
                    writer.U128(account.Id);
                    writer.U8(account.Found ? (byte)1 : (byte)0);
                    if (account.Found)
                    {
                        writer.Account(account.Account);
                    }
                }

                break;
            case CrossShardMessageKind.PendingFound:
                Invariant.Check(Pendings.Length <= PendingLookupMax);
                writer.U16(Pendings.Length);
                foreach (var pending in Pendings)
                {
                    writer.U128(pending.Id);
                    writer.U8(pending.Found ? (byte)1 : (byte)0);
                    if (pending.Found)
                    {
                        writer.U8((byte)pending.Status);
                        writer.Transfer(pending.Transfer);
                    }
                }

                break;
            default:
                break;
        }

        var bytes = writer.ToArray();
        Invariant.Check(bytes.Length <= CrossShardLimits.MessageBytesMax, "a message fits its bound");
        return bytes;
    }

    /// <summary>Decodes a message; false (never an exception) for bytes that are not a well-formed message.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> bytes, out CrossShardMessage message)
    {
        message = null!;
        if (bytes.Length > CrossShardLimits.MessageBytesMax)
        {
            return false;
        }

        try
        {
            message = Decode(bytes);
            return true;
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }

    private static CrossShardMessage Decode(ReadOnlySpan<byte> bytes)
    {
        var reader = new ByteReader(bytes);
        var version = reader.U8();
        var kind = (CrossShardMessageKind)reader.U8();
        if (version != Version || kind is < CrossShardMessageKind.Prepare or > CrossShardMessageKind.Fenced or CrossShardMessageKind.Bundle)
        {
            throw new InvalidDataException("not a cross-shard message of this version");
        }

        var message = new CrossShardMessage(kind, reader.U16(), reader.U16(), reader.U128());
        switch (kind)
        {
            case CrossShardMessageKind.Prepare or CrossShardMessageKind.Delegate:
                var legs = new Leg[reader.Count(CrossShardLimits.TransactionEventsMax)];
                for (var i = 0; i < legs.Length; i++)
                {
                    legs[i] = reader.Leg();
                }

                message = message with { Legs = legs, Sends = kind == CrossShardMessageKind.Delegate ? reader.U16() : 0 };
                break;
            case CrossShardMessageKind.Prepared:
                var prepared = reader.U8() != 0;
                var reports = new LegReport[reader.Count(CrossShardLimits.TransactionEventsMax)];
                for (var i = 0; i < reports.Length; i++)
                {
                    reports[i] = new LegReport(reader.U16(), CrossShardCommand.ReadSide(ref reader, "message"), CrossShardCommand.ReadSide(ref reader, "message"));
                }

                message = message with { Prepared = prepared, Reports = reports };
                break;
            case CrossShardMessageKind.Finish or CrossShardMessageKind.Decision:
                message = message with { Decision = (CrossShardDecision)reader.U8() };
                break;
            case CrossShardMessageKind.Delegated:
                var outcome = (DelegatedOutcome)reader.U8();
                if (outcome > DelegatedOutcome.Unknown)
                {
                    throw new InvalidDataException("unknown delegated outcome");
                }

                message = message with { Outcome = outcome, Status = (CreateTransferResult)reader.U32(), Timestamp = reader.U64(), Sends = reader.U16(), LatestSend = reader.U16() };
                break;
            case CrossShardMessageKind.Snapshot or CrossShardMessageKind.PendingLookup:
                var ids = new UInt128[reader.Count(kind == CrossShardMessageKind.Snapshot ? SnapshotAccountsMax : PendingLookupMax)];
                for (var i = 0; i < ids.Length; i++)
                {
                    ids[i] = reader.U128();
                }

                message = message with { AccountIds = ids };
                break;
            case CrossShardMessageKind.Snapshotted:
                var accounts = new AccountSnapshot[reader.Count(SnapshotAccountsMax)];
                for (var i = 0; i < accounts.Length; i++)
                {
                    var id = reader.U128();
                    var found = reader.U8() != 0;
                    accounts[i] = new AccountSnapshot(id, found, found ? reader.Account() : default);
                }

                message = message with { Accounts = accounts };
                break;
            case CrossShardMessageKind.PendingFound:
                var pendings = new ForeignPending[reader.Count(PendingLookupMax)];
                for (var i = 0; i < pendings.Length; i++)
                {
                    var id = reader.U128();
                    var found = reader.U8() != 0;
                    var status = found ? (PendingStatus)reader.U8() : PendingStatus.None;
                    if (status > PendingStatus.Expired)
                    {
                        throw new InvalidDataException("unknown pending status");
                    }

                    pendings[i] = new ForeignPending(id, found, status, found ? reader.Transfer() : default);
                }

                message = message with { Pendings = pendings };
                break;
            default:
                break;
        }

        reader.End();
        return message;
    }
}

/// <summary>
/// Several encoded messages from one shard's leader to another shard's leader, sent as one (a driver sends one
/// bundle per destination per round instead of one message per transaction, so the host and transport handle
/// each shard pair's traffic once per round). Byte form (little-endian): u8 version (1), u8 kind
/// (<see cref="CrossShardMessageKind.Bundle"/>), u16 count (at least 2), then per message u32 length and the
/// message's bytes. At most <see cref="CrossShardLimits.MessageBytesMax"/> bytes, like any message; a message too
/// large to share a bundle goes alone. Readers of version 1 without bundles drop it as unknown, and the protocol's
/// retries resend its messages, so a mixed-version cluster is slower, never wrong.
/// </summary>
public static class CrossShardBundle
{
    /// <summary>Version, kind and count.</summary>
    public const int HeaderBytes = 4;

    /// <summary>The length before each message.</summary>
    public const int ItemHeaderBytes = 4;

    /// <summary>True when <paramref name="bytes"/> claim to be a bundle (then <see cref="TrySplit"/> reads them).</summary>
    public static bool IsBundle(ReadOnlySpan<byte> bytes) =>
        bytes.Length >= 2 && bytes[0] == CrossShardMessage.Version && bytes[1] == (byte)CrossShardMessageKind.Bundle;

    /// <summary>How many of <paramref name="messages"/>, from <paramref name="start"/> on, fit in one bundle (at least 1: a message always fits alone, unbundled).</summary>
    public static int CountFitting(List<byte[]> messages, int start)
    {
        Invariant.Check(start < messages.Count);
        var bytes = HeaderBytes;
        var count = 0;
        while (start + count < messages.Count && count < ushort.MaxValue &&
               bytes + ItemHeaderBytes + messages[start + count].Length <= CrossShardLimits.MessageBytesMax)
        {
            bytes += ItemHeaderBytes + messages[start + count].Length;
            count++;
        }

        return Math.Max(count, 1);
    }

    /// <summary>Encodes <paramref name="count"/> (≥ 2) messages from <paramref name="start"/> on; they must fit (<see cref="CountFitting"/>).</summary>
    public static byte[] Encode(List<byte[]> messages, int start, int count)
    {
        Invariant.Check(count >= 2 && start + count <= messages.Count);
        var bytes = HeaderBytes;
        for (var i = start; i < start + count; i++)
        {
            bytes += ItemHeaderBytes + messages[i].Length;
        }

        Invariant.Check(bytes <= CrossShardLimits.MessageBytesMax, "a bundle fits the message bound");
        var bundle = new byte[bytes];
        bundle[0] = CrossShardMessage.Version;
        bundle[1] = (byte)CrossShardMessageKind.Bundle;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(bundle.AsSpan(2), (ushort)count);
        var position = HeaderBytes;
        for (var i = start; i < start + count; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(bundle.AsSpan(position), (uint)messages[i].Length);
            messages[i].CopyTo(bundle.AsSpan(position + ItemHeaderBytes));
            position += ItemHeaderBytes + messages[i].Length;
        }

        Invariant.Check(position == bytes);
        return bundle;
    }

    /// <summary>The ranges of the messages a bundle holds; false (never an exception) when it is not a well-formed bundle.</summary>
    public static bool TrySplit(ReadOnlySpan<byte> bytes, List<Range> messages)
    {
        messages.Clear();
        if (!IsBundle(bytes) || bytes.Length < HeaderBytes || bytes.Length > CrossShardLimits.MessageBytesMax)
        {
            return false;
        }

        var count = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(bytes[2..]);
        var position = HeaderBytes;
        for (var i = 0; i < count; i++)
        {
            if (bytes.Length - position < ItemHeaderBytes)
            {
                return false;
            }

            var length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(bytes[position..]);
            position += ItemHeaderBytes;
            if (length > (uint)(bytes.Length - position))
            {
                return false;
            }

            messages.Add(new Range(position, position + (int)length));
            position += (int)length;
        }

        return count >= 2 && position == bytes.Length;
    }
}
