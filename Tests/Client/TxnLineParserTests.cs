using System.Text;
using KvReplica.Client;
using KvReplica.Client.Cli;
using KvReplica.Protocol.Wire;
using NUnit.Framework;

namespace KvReplica.Tests.Client;

/// <summary>The TXN line grammar (<see cref="TxnLineParser"/>) and the argument words of the other new commands.</summary>
[TestFixture]
[Category("Unit")]
[Category("ClientUnit")]
public sealed class TxnLineParserTests
{
    private static TxnPlan Plan(string line)
    {
        var result = CommandLineParser.ParseLine(line);
        Assert.That(result.Error, Is.Null, $"'{line}' should parse");
        Assert.That(result.Command!.Kind, Is.EqualTo(CommandKind.Txn));
        return result.Command.Txn!;
    }

    private static string ErrorOf(string line)
    {
        var result = CommandLineParser.ParseLine(line);
        Assert.That(result.Error, Is.Not.Null, $"'{line}' should not parse");
        Assert.That(result.Error, Does.Not.Contain("\n"));
        return result.Error!;
    }

    private static string Show(TxnLineOp op) => op.IsDelete ? $"DELETE {op.Key}" : $"PUT {op.Key} {Encoding.UTF8.GetString(op.Value!)}";

    [Test]
    public void Every_compare_kind_and_both_branches_parse_in_order()
    {
        var plan = Plan("txn if EXISTS a and absent b AND VERSION c = 12@2 AND version d != 0 AND VALUE e = \"x y\" AND value f != z THEN put a 1; DEL b ;PUT c \"two words\" else DELETE a");

        Assert.That(plan.Compares.Select(c => (c.Kind, c.Key)), Is.EqualTo(new[]
        {
            (TxnCompareKind.Exists, "a"), (TxnCompareKind.Absent, "b"), (TxnCompareKind.VersionEquals, "c"),
            (TxnCompareKind.VersionNotEquals, "d"), (TxnCompareKind.ValueEquals, "e"), (TxnCompareKind.ValueNotEquals, "f"),
        }));
        Assert.That(plan.Compares[2].Version, Is.EqualTo(new KvVersion(12, 2)));
        Assert.That(plan.Compares[3].Version, Is.EqualTo(KvVersion.None));
        Assert.That(plan.Compares[4].Value, Is.EqualTo("x y"u8.ToArray()));
        Assert.That(plan.Compares[5].Value, Is.EqualTo("z"u8.ToArray()));
        Assert.That(plan.Then.Select(Show), Is.EqualTo(new[] { "PUT a 1", "DELETE b", "PUT c two words" }));
        Assert.That(plan.Else.Select(Show), Is.EqualTo(new[] { "DELETE a" }));
    }

    [Test]
    public void Without_IF_it_is_unconditional_and_semicolons_may_touch_words_and_quotes()
    {
        var plan = Plan("TXN THEN PUT a \"\";PUT b v;DELETE c");

        Assert.That(plan.Compares, Is.Empty);
        Assert.That(plan.Then.Select(Show), Is.EqualTo(new[] { "PUT a ", "PUT b v", "DELETE c" }));
        Assert.That(plan.Else, Is.Empty);
    }

    [Test]
    public void Keywords_are_only_keywords_where_the_grammar_expects_one_and_quoted_words_never_are()
    {
        var plan = Plan("TXN IF EXISTS then THEN PUT else \"ELSE\" ELSE PUT \";\" and");

        Assert.That(plan.Compares.Single().Key, Is.EqualTo("then"));
        Assert.That(plan.Then.Select(Show), Is.EqualTo(new[] { "PUT else ELSE" }));
        Assert.That(plan.Else.Select(Show), Is.EqualTo(new[] { "PUT ; and" }));
    }

    [Test]
    public void The_plan_becomes_the_transaction_it_describes()
    {
        var plan = Plan("TXN IF VERSION k = 3@1 THEN PUT k v ELSE DELETE k");

        // ToTxn is what the runner sends; a plan with the wrong branch would swap THEN and ELSE.
        var body = plan.ToTxn().ToBody();
        Assert.That(body.Compares.Single().Kind, Is.EqualTo(TxnCompareKind.VersionEquals));
        Assert.That((body.Compares[0].VersionTime, body.Compares[0].VersionReplica), Is.EqualTo((3L, 1)));
        Assert.That(body.Then.Single().Operation, Is.EqualTo(Operation.Put));
        Assert.That(body.Else.Single().Operation, Is.EqualTo(Operation.Delete));
    }

    [TestCase("TXN", "TXN needs THEN and at least one operation")]
    [TestCase("TXN PUT a 1", "expected IF or THEN, got PUT")]
    [TestCase("TXN IF", "expected a compare: EXISTS <key>, ABSENT <key>, VERSION <key> = <version>, or VALUE <key> = <value> (or !=), but the line ended")]
    [TestCase("TXN IF MAYBE a THEN DELETE a", "expected a compare: EXISTS <key>, ABSENT <key>, VERSION <key> = <version>, or VALUE <key> = <value> (or !=), got MAYBE")]
    [TestCase("TXN IF EXISTS", "expected a key after EXISTS, but the line ended")]
    [TestCase("TXN IF EXISTS a PUT a 1", "expected AND or THEN after the compare, got PUT")]
    [TestCase("TXN IF EXISTS a THEN", "expected PUT <key> <value> or DELETE <key> after THEN, but the line ended")]
    [TestCase("TXN IF VERSION a == 1@1 THEN DELETE a", "expected = or != after VERSION a (with blanks around it), got ==")]
    [TestCase("TXN IF VERSION a = 12 THEN DELETE a", "expected a version after VERSION a = (time@replica as printed, e.g. 12@2, or 0 for none), got 12")]
    [TestCase("TXN IF VALUE a = THEN DELETE a", "expected AND or THEN after the compare, got DELETE")]
    [TestCase("TXN IF VALUE a !=", "expected a value after VALUE a !=, but the line ended")]
    [TestCase("TXN THEN PUT a", "expected a value after PUT a (one word, or a quoted string; \"\" is the empty value), but the line ended")]
    [TestCase("TXN THEN PUT a ; DELETE b", "expected a value after PUT a (one word, or a quoted string; \"\" is the empty value), got ;")]
    [TestCase("TXN THEN PUT a 1;", "expected PUT <key> <value> or DELETE <key> after ;, but the line ended")]
    [TestCase("TXN THEN PUT a 1 PUT b 2", "expected ; ELSE or the end of the line after the operation, got PUT")]
    [TestCase("TXN THEN DELETE a ELSE", "expected PUT <key> <value> or DELETE <key> after ELSE, but the line ended")]
    [TestCase("TXN THEN DELETE a ELSE DELETE b c", "expected ; or the end of the line after the ELSE operation, got c")]
    [TestCase("TXN THEN PUT a \"open", "unterminated quoted string (missing closing \")")]
    [TestCase("TXN THEN PUT a \"x\"y", "unexpected text after a closing quote (put a blank between words)")]
    public void A_malformed_line_gives_one_error_that_says_what_was_expected_and_the_usage(string line, string error)
    {
        Assert.That(ErrorOf(line), Is.EqualTo($"{error}; usage: {TxnLineParser.Grammar}"));
    }

    [Test]
    public void One_shot_arguments_are_words_as_the_shell_passed_them_and_split_at_semicolons()
    {
        var command = CliApplication.ParseOneShot("txn", ["if", "value", "k", "=", "two words", "then", "put", "k", "v;", "put", "j", "\"x\\ty\"", ";", "delete", "m"], out string? error);

        Assert.That(error, Is.Null);
        var plan = command!.Txn!;
        Assert.That(plan.Compares.Single().Value, Is.EqualTo("two words"u8.ToArray()));
        Assert.That(plan.Then.Select(Show), Is.EqualTo(new[] { "PUT k v", "PUT j x\ty", "DELETE m" }));
    }

    [TestCase("MSET a 1 b \"two words\"", 2)]
    [TestCase("MSET \"a b\" \"\"", 1)]
    public void Mset_takes_pairs_of_words(string line, int pairs)
    {
        var result = CommandLineParser.ParseLine(line);
        Assert.That(result.Error, Is.Null);
        Assert.That(result.Command!.Pairs, Has.Count.EqualTo(pairs));
    }

    [TestCase("MSET a 1 b", "MSET takes <key> <value> pairs, but got an odd number of words (3); quote a value that contains blanks")]
    [TestCase("MGET", "MGET needs at least one key")]
    [TestCase("LIST a b", "LIST takes at most one prefix; quote a prefix that contains blanks")]
    [TestCase("LIST a --limit 0", "--limit: '0' is not a whole number in 1..10000")]
    [TestCase("LIST a --limit", "--limit needs a value: --limit N")]
    [TestCase("LIST a --cursor nonsense", "--cursor: 'nonsense' is not a cursor; give the text between (more= and ) that LIST printed")]
    [TestCase("LIST --valeus", "LIST has no option --valeus (its options: --limit N, --values, --cursor C; quote a word that starts with --)")]
    [TestCase("WATCH p --after 12", "--after: '12' is not a version (time@replica as printed, e.g. 12@2, or 0 for none)")]
    [TestCase("WATCH p --count 1 --count 2", "--count is given twice")]
    [TestCase("GET a b", "GET takes one key; quote a key that contains blanks")]
    [TestCase("CAS k 5 v", "CAS's expected version: '5' is not a version (time@replica as printed, e.g. 12@2, or 0 for none)")]
    [TestCase("CAS k 5@1", "CAS needs a value after the version (\"\" is the empty value)")]
    [TestCase("UPDATE k", "UPDATE needs a value after the key (\"\" is the empty value)")]
    public void Bad_arguments_of_the_new_commands_say_what_is_wrong(string line, string error)
    {
        Assert.That(ErrorOf(line), Does.StartWith(error + "; usage: "));
    }

    [Test]
    public void List_and_watch_options_and_a_quoted_prefix_that_looks_like_one()
    {
        var list = CommandLineParser.ParseLine("SCAN \"--values\" --values --limit 5 --cursor 7@2/YQ").Command!;
        var watch = CommandLineParser.ParseLine("WATCH --count 3 --after 9@1").Command!;
        var get = CommandLineParser.ParseLine("GET --version \"--version\"").Command!;

        Assert.That((list.Kind, list.Key, list.WithValues, list.Limit), Is.EqualTo((CommandKind.List, "--values", true, (int?)5)));
        Assert.That(list.Cursor, Is.EqualTo(new KvScanCursor("--values", new KvVersion(7, 2), "a")));
        Assert.That((watch.Key, watch.Count, watch.Version), Is.EqualTo(("", (int?)3, new KvVersion(9, 1))));
        Assert.That((get.Key, get.WithVersion), Is.EqualTo(("--version", true)));
    }

    [Test]
    public void Cas_and_putnx_take_the_rest_of_the_line_as_the_value_like_put()
    {
        var cas = CommandLineParser.ParseLine("CAS k 12@3  hello  world ").Command!;
        var absent = CommandLineParser.ParseLine("cas k 0 \" x \"").Command!;
        var putnx = CommandLineParser.ParseLine("PUT-IF-ABSENT k a b").Command!;

        Assert.That((cas.Kind, cas.Key, cas.Version, Encoding.UTF8.GetString(cas.Value!)), Is.EqualTo((CommandKind.CompareAndSet, "k", new KvVersion(12, 3), "hello  world")));
        Assert.That((absent.Version, Encoding.UTF8.GetString(absent.Value!)), Is.EqualTo((KvVersion.None, " x ")));
        Assert.That((putnx.Kind, Encoding.UTF8.GetString(putnx.Value!)), Is.EqualTo((CommandKind.PutIfAbsent, "a b")));
    }

    [TestCase("plain", "plain")]
    [TestCase("two words", "\"two words\"")]
    [TestCase("(not found)", "\"(not found)\"")]
    [TestCase("(x", "\"(x\"")]
    [TestCase("|", "\"|\"")]
    [TestCase("", "\"\"")]
    [TestCase("a|b", "a|b")]
    public void A_word_of_a_multi_word_result_is_quoted_when_it_could_be_read_otherwise(string value, string printed)
    {
        Assert.That(ValueFormatter.FormatToken(Encoding.UTF8.GetBytes(value)), Is.EqualTo(printed));
    }
}
