#!/usr/bin/env bash
# Starts every replica listed in a cluster file on this machine and opens the interactive
# client. Leaving the client (EXIT, QUIT or Ctrl+D) stops those replicas.
#   ./cluster.sh                 uses ./cluster.json
#   ./cluster.sh other.json      uses another cluster file (its hosts must be this machine)
# It refuses to start while another process holds one of the replicas' data directories, and
# says which. Each run logs to its own .cluster/logs/<start time>-<pid>/; .cluster/logs/latest
# points at the newest.
set -euo pipefail

# Replica ids, ports and data directories straight from the cluster file (resolved as the replica
# resolves them), so the script never disagrees with it. Only what the script needs is read here;
# the replicas check everything else strictly and refuse a bad file with one line, shown below.
read_replicas() {
  python3 - "$config" <<'PY'
import json, os, re, sys
path = sys.argv[1]
text = open(path, encoding="utf-8-sig").read()
# cluster.json may hold comments and trailing commas (the replicas accept them): drop both
# outside strings so the json module reads the rest. Offsets are kept, so positions stay true.
def blank(m): return re.sub(r"[^\n]", " ", m.group(0))
text = re.sub(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/', lambda m: m.group(0) if m.group(0).startswith('"') else blank(m), text, flags=re.S)
text = re.sub(r'"(?:\\.|[^"\\])*"|,(?=\s*[}\]])', lambda m: m.group(0) if m.group(0).startswith('"') else " ", text)
try:
    doc = json.loads(text)
except json.JSONDecodeError as e:
    sys.exit(f"cluster.sh: {path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}")
replicas = doc.get("replicas") if isinstance(doc, dict) else None
if not isinstance(replicas, list) or not replicas or not all(isinstance(r, dict) and {"id", "host", "port"} <= r.keys() for r in replicas):
    sys.exit(f"cluster.sh: {path}: replicas must list every replica with id, host and port")
data_dir = doc.get("dataDir", "data/replica-{id}")
base = os.path.dirname(os.path.abspath(path))
for r in replicas:
    directory = os.path.normpath(os.path.join(base, str(data_dir).replace("{id}", str(r["id"]))))
    print(r["id"], r["host"], r["port"], directory, sep="\t")
# Last line: "tls" and the bootstrap admin's password file (made by `node certs` beside the
# verifier) when the file turns security on, else "plain".
admin = (doc.get("auth") or {}).get("bootstrapAdmin") if isinstance(doc.get("auth"), dict) else None
if isinstance(doc.get("tls"), dict):
    print("tls", os.path.join(os.path.dirname(os.path.join(base, admin)), "admin.password") if admin else "", sep="\t")
else:
    print("plain")
PY
}

# For each data directory a live process holds (the replica's exclusive flock on <dir>/LOCK),
# one line naming that process, the cluster.sh that started it and where it logs.
describe_holders() {
  python3 - "$@" <<'PY'
import fcntl, os, sys

def read(path, default=""):
    try:
        with open(path, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return default

def holders_of(lock):
    """Pids holding a flock on lock, from /proc/locks; None where that cannot be known."""
    st = os.stat(lock)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    locks = read("/proc/locks", None)
    if locks is None:
        return None
    return [int(f[4]) for f in (line.split() for line in locks.splitlines()) if len(f) > 5 and f[1] == "FLOCK" and f[5] == device]

def probe(lock):
    """True when someone holds lock: only where /proc/locks is missing, as it takes the lock for an instant."""
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)

def ppid_of(pid):
    stat = read(f"/proc/{pid}/stat")
    return int(stat.rsplit(")", 1)[1].split()[1]) if ")" in stat else 0

busy = 0
for directory in sys.argv[1:]:
    lock = os.path.join(directory, "LOCK")
    if not os.path.exists(lock):
        continue
    pids = holders_of(lock)
    shown = directory if os.path.relpath(directory).startswith("..") else os.path.relpath(directory)
    if pids is None:
        if probe(lock):
            busy += 1
            print(f"cluster.sh: {shown} is in use by another process")
        continue
    for pid in pids:
        busy += 1
        what = f"process {pid} ({read(f'/proc/{pid}/cmdline', '?')})"
        log = os.readlink(f"/proc/{pid}/fd/1") if os.path.islink(f"/proc/{pid}/fd/1") else None
        parent = ppid_of(pid)
        started = read(f"/proc/{parent}/cmdline") if parent else ""
        by = f", started by cluster.sh (pid {parent})" if "cluster.sh" in started else ""
        where = f", logging to {os.path.dirname(log)}/" if log and log.startswith("/") and os.path.exists(log) else ""
        print(f"cluster.sh: {shown} is in use by {what}{by}{where}")
sys.exit(1 if busy else 0)
PY
}

# Everything runs from one function, read whole before it starts: bash reads a script as it
# runs it, and an edit to this file (a git pull) while a cluster runs would otherwise change what
# the rest of this run does.
main() {
  cd "$(dirname "$0")"
  config="${1:-cluster.json}"
  [ -f "$config" ] || { echo "cluster.sh: config file '$config' not found" >&2; exit 2; }

  replicas_text=$(read_replicas) || exit 2
  mapfile -t replicas <<<"$replicas_text"
  security="${replicas[-1]}"
  unset 'replicas[-1]'
  data_dirs=()
  for line in "${replicas[@]}"; do
    IFS=$'\t' read -r id host port dir <<<"$line"
    data_dirs+=("$dir")
  done

  # Before building: a build may replace the binaries a running cluster is executing.
  if ! describe_holders "${data_dirs[@]}" >&2; then
    echo "cluster.sh: another cluster holds these data directories; stop it first (EXIT in its client), or give this one another dataDir" >&2
    exit 1
  fi

  ./build.sh

  # Secure by default, as a deployment runs: the first run makes the cluster's CA, each
  # replica's certificate and an admin with a random password (kept beside its verifier);
  # later runs keep them. The client logs in as that admin.
  client_login=()
  if [[ "$security" == tls* ]]; then
    certs_made=$(bin/node certs "$config") || exit 1
    grep -v ': kept ' <<<"$certs_made" >&2 || true
    password_file="${security#tls$'\t'}"
    if [ -n "$password_file" ]; then
      client_login=(--user admin --password-file "$password_file")
    fi
  fi

  # A directory of its own per run: no run ever truncates or interleaves with another's logs.
  logs=".cluster/logs/$(date +%Y%m%d-%H%M%S)-$$"
  mkdir -p "$logs"
  ln -sfn "$(basename "$logs")" .cluster/logs/latest
  pids=()
  stop_replicas() {
    # SIGTERM, not SIGINT: a script's background jobs start with SIGINT ignored (POSIX), so
    # SIGINT would never reach them. The replica handles SIGTERM as a clean stop.
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  }
  trap stop_replicas EXIT
  trap 'exit 130' INT TERM

  for line in "${replicas[@]}"; do
    IFS=$'\t' read -r id host port dir <<<"$line"
    bin/node "$id" "$config" >"$logs/node-$id.log" 2>&1 &
    pids+=("$!")
  done

  # Wait, with a deadline, until every replica we started says it is listening. Its own log line,
  # not a connection to the port: another program on that port would answer for a replica that
  # has already exited (port in use, data directory taken, bad cluster file).
  deadline=$((SECONDS + 30))
  for i in "${!replicas[@]}"; do
    IFS=$'\t' read -r id host port dir <<<"${replicas[$i]}"
    until grep -q " listening on " "$logs/node-$id.log"; do
      if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        echo "cluster.sh: replica $id exited at start (log: $logs/node-$id.log):" >&2
        tail -n 5 "$logs/node-$id.log" >&2
        exit 1
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "cluster.sh: replica $id did not listen on $host:$port within 30 s (log: $logs/node-$id.log)" >&2
        exit 1
      fi
      sleep 0.1
    done
  done
  echo "cluster.sh: ${#replicas[@]} replicas running (logs in $logs/); type HELP for commands, EXIT to stop" >&2
  bin/client "$config" "${client_login[@]}"
}

main "$@"
exit
