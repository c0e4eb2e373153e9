namespace KvReplica.Client.Cli;

/// <summary>The text HELP and --help print.</summary>
internal static class HelpText
{
    public const string Usage = "usage: client <cluster.json> [--replica <id>] [--local] [--timeout <ms>] [--user <name> --password-file <file>] [get <key> | put <key> <value...> | delete <key> | user ... | role ... | status | backup <file> | bench [options]]";

    public const string Commands = """
        Commands (command words are case-insensitive):
          PUT <key> <value>   store a value; prints OK
          GET <key>           prints the value, or (not found)
          DELETE <key>        (also DEL) prints OK if the key existed, else (not found)
          USER ADD <name> <password> [role...]   admin: create or replace a user
          USER DELETE <name>                     admin: delete a user
          ROLE ADD <name> <grant>...             admin: create or replace a role; a grant is
                              read:PREFIX, readwrite:PREFIX (PREFIX empty or * = every key) or admin
          ROLE DELETE <name>                     admin: delete a role (the role admin is built in)
          HELP                this text
          EXIT                (also QUIT, or end of input) leave
        Failures print: ERROR <reason>

        Keys and values:
          A key is one word, or a double-quoted string (so it may contain blanks).
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

    public const string Modes = """
        Modes:
          client <config>                       interactive prompt (kv> ) when stdin is a terminal;
                                                otherwise batch: one command per input line, one
                                                result line per command, in order; blank lines and
                                                lines starting with # are skipped
          client <config> get|put|delete ...    one command; exit 0 = OK or value, 1 = (not found),
                                                2 = usage or config error, 3 = ERROR
          client <config> bench [--connections N] [--duration S] [--write-ratio R]
                                [--value-size B] [--keys K] [--warmup S] [--fill]
          client <config> status                each replica's view, members, suspected peers,
                                                delivered position, pending writes and lag
          client <config> backup <file>         a snapshot of the cluster's state (as of one point
                                                in the write order) into <file>; restore it with
                                                node <id> <config> --restore <file>
                                                closed-loop load test; report on stdout
        Options (before the command):
          --user <name>           authenticate as this user (or KVREPLICA_USER) when the cluster has tls
          --password-file <file>  the user's password, first line (or KVREPLICA_PASSWORD)
          --replica <id>    try this replica first (then the others by id)
          --local           GET answers from the contacted replica alone (ReadMode.Local)
          --timeout <ms>    per-request deadline (default: clientRequestTimeoutMs of cluster.json)
        """;

    public static string Full => $"{Usage}\n\n{Commands}\n{Modes}";
}
