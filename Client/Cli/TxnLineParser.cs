using KvReplica.Protocol.Wire;

namespace KvReplica.Client.Cli;

/// <summary>One compare of a TXN line: the key, the kind, and the version or value it compares with.</summary>
internal sealed record TxnLineCompare(TxnCompareKind Kind, string Key, KvVersion Version = default, byte[]? Value = null);

/// <summary>One operation of a TXN line: PUT with its value, or DELETE (<see cref="Value"/> null).</summary>
internal sealed record TxnLineOp(string Key, byte[]? Value)
{
    public bool IsDelete => Value is null;
}

/// <summary>A parsed TXN line: if every compare holds, <see cref="Then"/>, otherwise <see cref="Else"/>.</summary>
internal sealed record TxnPlan(IReadOnlyList<TxnLineCompare> Compares, IReadOnlyList<TxnLineOp> Then, IReadOnlyList<TxnLineOp> Else)
{
    /// <summary>The transaction to send.</summary>
    public KvTxn ToTxn()
    {
        var txn = new KvTxn();
        foreach (var c in Compares)
        {
            txn.Compare(c.Key, c.Kind, c.Version, c.Value);
        }
        foreach (var op in Then)
        {
            _ = op.IsDelete ? txn.ThenDelete(op.Key) : txn.ThenPut(op.Key, op.Value);
        }
        foreach (var op in Else)
        {
            _ = op.IsDelete ? txn.ElseDelete(op.Key) : txn.ElsePut(op.Key, op.Value);
        }
        return txn;
    }
}

/// <summary>
/// The grammar of a TXN line, after the word TXN. Keywords are bare words in any case; a key or a
/// value is one word or one quoted string (so a key may spell a keyword: <c>EXISTS then</c> is the
/// key <c>then</c>, and a value with blanks is quoted). Pure.
/// </summary>
/// <remarks>
/// <code>
/// txn     := [IF compare (AND compare)*] THEN ops [ELSE ops]
/// compare := EXISTS key | ABSENT key
///          | VERSION key (= | !=) version     version: time@replica as printed, or 0 for none
///          | VALUE key (= | !=) value
/// ops     := op (; op)*
/// op      := PUT key value | DELETE key       (DEL for DELETE)
/// </code>
/// <para><c>VERSION k = 0</c> holds when k is absent, <c>!= 0</c> when it is present; <c>VALUE k != v</c>
/// holds when k is absent or has another value. <c>=</c>, <c>!=</c> and <c>AND</c> are words of
/// their own (blanks around them); <c>;</c> need not be.</para>
/// </remarks>
internal static class TxnLineParser
{
    public const string Grammar = "TXN [IF <cmp> [AND <cmp>]...] THEN <op> [; <op>]... [ELSE <op> [; <op>]...]";

    /// <summary>Parses the words after TXN; null and one error line that says what was expected where.</summary>
    public static TxnPlan? Parse(IReadOnlyList<ArgToken> tokens, out string? error)
    {
        var reader = new Reader(tokens);
        var compares = new List<TxnLineCompare>();
        var then = new List<TxnLineOp>();
        var otherwise = new List<TxnLineOp>();
        error = null;
        if (reader.AtEnd)
        {
            error = "TXN needs THEN and at least one operation";
            return null;
        }
        if (reader.Peek.Is("IF"))
        {
            reader.Next();
            do
            {
                if (!TryCompare(ref reader, out var compare, out error))
                {
                    return null;
                }
                compares.Add(compare!);
            }
            while (reader.TryKeyword("AND"));
            if (!reader.TryKeyword("THEN"))
            {
                error = reader.Expected("AND or THEN after the compare");
                return null;
            }
        }
        else if (!reader.TryKeyword("THEN"))
        {
            error = reader.Expected("IF or THEN");
            return null;
        }
        if (!TryOps(ref reader, "THEN", then, out error))
        {
            return null;
        }
        if (reader.TryKeyword("ELSE") && !TryOps(ref reader, "ELSE", otherwise, out error))
        {
            return null;
        }
        if (!reader.AtEnd)
        {
            error = reader.Expected(otherwise.Count > 0 ? "; or the end of the line after the ELSE operation" : "; ELSE or the end of the line after the operation");
            return null;
        }
        return new TxnPlan(compares, then, otherwise);
    }

    private static bool TryCompare(ref Reader reader, out TxnLineCompare? compare, out string? error)
    {
        compare = null;
        string? kind = reader.AtEnd ? null : new[] { "EXISTS", "ABSENT", "VERSION", "VALUE" }.FirstOrDefault(reader.Peek.Is);
        if (kind is null)
        {
            error = reader.Expected("a compare: EXISTS <key>, ABSENT <key>, VERSION <key> = <version>, or VALUE <key> = <value> (or !=)");
            return false;
        }
        reader.Next();
        if (!TryKey(ref reader, kind, out string key, out error))
        {
            return false;
        }
        if (kind is "EXISTS" or "ABSENT")
        {
            compare = new TxnLineCompare(kind == "EXISTS" ? TxnCompareKind.Exists : TxnCompareKind.Absent, key);
            return true;
        }
        bool equals;
        if (reader.TryKeyword("="))
        {
            equals = true;
        }
        else if (reader.TryKeyword("!="))
        {
            equals = false;
        }
        else
        {
            error = reader.Expected($"= or != after {kind} {ValueFormatter.FormatToken(System.Text.Encoding.UTF8.GetBytes(key))} (with blanks around it)");
            return false;
        }
        if (reader.AtEnd)
        {
            error = reader.Expected(kind == "VERSION" ? $"a version after {kind} {key} {(equals ? "=" : "!=")} (time@replica, or 0 for none)" : $"a value after VALUE {key} {(equals ? "=" : "!=")}");
            return false;
        }
        var operand = reader.Next();
        if (kind == "VERSION")
        {
            if (operand.Quoted || !CommandLineParser.TryVersion(operand.Text, $"VERSION {key}", out var version, out error))
            {
                error = $"expected a version after VERSION {key} {(equals ? "=" : "!=")} (time@replica as printed, e.g. 12@2, or 0 for none), got {operand.Shown}";
                return false;
            }
            compare = new TxnLineCompare(equals ? TxnCompareKind.VersionEquals : TxnCompareKind.VersionNotEquals, key, version);
        }
        else
        {
            compare = new TxnLineCompare(equals ? TxnCompareKind.ValueEquals : TxnCompareKind.ValueNotEquals, key, Value: operand.Bytes);
        }
        error = null;
        return true;
    }

    private static bool TryOps(ref Reader reader, string branch, List<TxnLineOp> ops, out string? error)
    {
        do
        {
            bool put = !reader.AtEnd && reader.Peek.Is("PUT");
            if (!put && (reader.AtEnd || !(reader.Peek.Is("DELETE") || reader.Peek.Is("DEL"))))
            {
                error = reader.Expected($"PUT <key> <value> or DELETE <key> after {(ops.Count == 0 ? branch : ";")}");
                return false;
            }
            string word = put ? "PUT" : "DELETE";
            reader.Next();
            if (!TryKey(ref reader, word, out string key, out error))
            {
                return false;
            }
            if (!put)
            {
                ops.Add(new TxnLineOp(key, null));
                continue;
            }
            if (reader.AtEnd || reader.Peek.Is(";"))
            {
                error = reader.Expected($"a value after PUT {key} (one word, or a quoted string; \"\" is the empty value)");
                return false;
            }
            ops.Add(new TxnLineOp(key, reader.Next().Bytes));
        }
        while (reader.TryKeyword(";"));
        error = null;
        return true;
    }

    private static bool TryKey(ref Reader reader, string after, out string key, out string? error)
    {
        key = "";
        if (reader.AtEnd || reader.Peek.Is(";"))
        {
            error = reader.Expected($"a key after {after}");
            return false;
        }
        return CommandLineParser.TryKey(reader.Next(), out key, out error);
    }

    private struct Reader(IReadOnlyList<ArgToken> tokens)
    {
        private int _next;

        public readonly bool AtEnd => _next == tokens.Count;

        public readonly ArgToken Peek => tokens[_next];

        public ArgToken Next() => tokens[_next++];

        public bool TryKeyword(string keyword)
        {
            if (AtEnd || !Peek.Is(keyword))
            {
                return false;
            }
            _next++;
            return true;
        }

        /// <summary>"expected X, got Y" or "expected X at the end of the line".</summary>
        public readonly string Expected(string what) =>
            AtEnd ? $"expected {what}, but the line ended" : $"expected {what}, got {Peek.Shown}";
    }
}
