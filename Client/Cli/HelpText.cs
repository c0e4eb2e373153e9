using System.Text;

namespace KvReplica.Client.Cli;

/// <summary>The text <c>client --help</c>, <c>client &lt;config&gt; help</c> and HELP at the prompt print; the commands come from <see cref="CommandTable"/>.</summary>
internal static class HelpText
{
    /// <summary>Every mode, one line each; printed after a usage error too.</summary>
    public const string Usage = """
        usage: client <cluster.json> [options]                   prompt (stdin a terminal, or --interactive) or batch (stdin a file or pipe)
               client <cluster.json> [options] <command> [args]  one-shot: one command, e.g. get <key>
               client <cluster.json> [options] bench [bench options]   load test (client bench --help)
               client --help | --version
        """;

    public const string Modes = """
        Modes:
          prompt    a `kv>` prompt before each command, results as they come; on a terminal, or with --interactive
          batch     stdin a file or pipe: no prompt, exactly one result line per command, in input order;
                    blank lines and lines starting with # are skipped; a multi-line result (STATUS,
                    WATCH --count) is joined into one line with ` | `, LIST prints its words on one
                    line; WATCH needs --count; HELP prints one line; EXIT or end of input stops
          one-shot  the command and its arguments after <cluster.json>, as process arguments (command
                    words in lower or upper case; `--` before a key or value that starts with -)
        Exit codes: 0 OK or a value, 1 (not found) or EXISTS printed 0, 2 usage or config error,
          3 ERROR, 4 STATUS found the cluster not whole (a replica unreachable, removed, or in a
          minority), 5 a condition failed (CAS or PUTNX printed CONFLICT, TXN ran ELSE). Batch: 3 if
          any line printed ERROR, else 4 if a STATUS was not whole, else 0.
        """;

    public const string KeysAndValues = """
        Keys and values:
          A key is one word, or a double-quoted string (so it may contain blanks): 1 to 1024 bytes of UTF-8.
          A value is the rest of the line after the key, without the blanks at either
          end (inner blanks kept), or one double-quoted string, which keeps every blank:
          PUT k "  padded  ". Quoted strings understand these escapes:
            \n \r \t \\ \" \0   newline, carriage return, tab, backslash, quote, NUL byte
            \xNN                one raw byte, two hex digits (e.g. \xff)
            \u{HEX}             a Unicode character, stored as UTF-8 (e.g. \u{1F600})
          A value with a newline must be entered escaped. Values are printed as they are
          when they are printable UTF-8 text; otherwise (control characters, invalid
          UTF-8, a leading quote, leading or trailing blanks, empty, or text that looks
          like OK, (not found) or ERROR) they are printed quoted with the same escapes;
          invisible characters at either end (no-break space, BOM, zero-width and bidi
          marks) and bidi controls anywhere are printed as \u{HEX}.
        Results: OK, the value, (not found), or ERROR <reason>; <what to do next>; and:
          versions and revisions print as time@replica (12@2); 0 stands for none (CAS k 0 v).
          GET --version   <value> (version 12@2)
          CAS, PUTNX      OK <new version> | CONFLICT <current version> | CONFLICT (absent)
          EXISTS          1 <version> | 0
          MSET            OK <revision>
          TXN             THEN <revision> | ELSE <revision>
          MGET, LIST and WATCH print several values or keys as words: as GET prints a value, but
          quoted also when they contain a blank or start with ( or |, so a word starting with ( is
          a marker: (not found), (more=<cursor>), (none).
          MGET a b c      one line: the values in order, each a word or (not found)
          LIST            one key per line (key value with --values), then (more=C) if --limit
                          stopped early; continue with --cursor C; (none) if no key matches
          WATCH           PUT <key> <value> <revision> | DELETE <key> <revision>, one line per change

        Transactions:
          TXN [IF <cmp> [AND <cmp>]...] THEN <op> [; <op>]... [ELSE <op> [; <op>]...]
          cmp: EXISTS <key> | ABSENT <key> | VERSION <key> = <version> | VALUE <key> = <value>
               (!= instead of =: absent or different; VERSION k = 0: absent)
          op:  PUT <key> <value> | DELETE <key>       a key or value: one word or a quoted string
          e.g. TXN IF VERSION cfg = 12@2 AND ABSENT lock THEN PUT cfg "new value"; PUT lock me ELSE DELETE lock
          Keywords (any case) count only where expected; =, != and AND stand apart with blanks.

        Editing keys (at the interactive prompt):
          Left/Right, Ctrl+B/F      one character      Ctrl+Left/Right, Alt+B/F  one word
          Home/End, Ctrl+A/E        start/end of line  Backspace, Delete         one character
          Ctrl+K / Ctrl+U / Ctrl+W  delete to the end / to the start / the word before
          Up/Down, Ctrl+P/N         history            Ctrl+R  search the history (again: older)
          Tab                       complete a command word (twice: list the choices)
          Ctrl+C  drop the line     Ctrl+D  leave (on an empty line)
          The history is kept in ~/.kvreplica_history (the last 1000 lines); lines that
          start with a blank and USER ADD lines (they hold a password) are never kept.
          Control characters are not typed into the line: write them as escapes.
        """;

    public const string Options = """
        Options (before or after the command):
          --user <name>           authenticate as this user (or KVREPLICA_USER) when the cluster has tls
          --password-file <file>  the user's password, first line (or KVREPLICA_PASSWORD)
          --replica <id>          try this replica first (then the others by id)
          --local                 GET answers from the contacted replica alone (ReadMode.Local)
          --timeout <ms>          per-request deadline, 1..3600000 (default: clientRequestTimeoutMs of
                                  cluster.json; STATUS: 2000 per replica)
          --json                  one JSON object per result line (README, "JSON output")
          -i, --interactive       prompt mode even when stdin is not a terminal
          --version               client version and protocol version
          -h, --help              this text; `client bench --help` for the bench's options
        """;

    /// <summary>The commands, one line each, from the table.</summary>
    public static string Commands
    {
        get
        {
            var text = new StringBuilder("Commands (command words are case-insensitive):\n");
            foreach (var command in CommandTable.All)
            {
                text.Append("  ").Append(command.Synopsis.Length <= 26 ? command.Synopsis.PadRight(26) : command.Synopsis + "\n" + new string(' ', 28))
                    .Append(' ').Append(command.Help).Append(command.ModesNote).Append('\n');
            }
            return text.ToString();
        }
    }

    public static string Full => $"{Usage}\n\n{Commands}\n{KeysAndValues}\n{Modes}\n{Options}";
}
