#!/usr/bin/env bash
# Starts every replica listed in a cluster file on this machine and opens the interactive
# client. Leaving the client (EXIT, QUIT or Ctrl+D) stops those replicas.
#   ./cluster.sh                 uses ./cluster.json
#   ./cluster.sh other.json      uses another cluster file (its hosts must be this machine)
set -euo pipefail
cd "$(dirname "$0")"
config="${1:-cluster.json}"
[ -f "$config" ] || { echo "cluster.sh: config file '$config' not found" >&2; exit 2; }

./build.sh

logs=".cluster/logs"
mkdir -p "$logs"
pids=()
stop_replicas() {
  # SIGTERM, not SIGINT: a script's background jobs start with SIGINT ignored (POSIX), so
  # SIGINT would never reach them. The replica handles SIGTERM as a clean stop.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_replicas EXIT
trap 'exit 130' INT TERM

# Replica ids and ports straight from the cluster file, so the script never disagrees with it.
mapfile -t replicas < <(python3 -c 'import json,sys; [print(r["id"], r["host"], r["port"]) for r in json.load(open(sys.argv[1]))["replicas"]]' "$config")
for line in "${replicas[@]}"; do
  read -r id host port <<<"$line"
  bin/node "$id" "$config" >"$logs/node-$id.log" 2>&1 &
  pids+=("$!")
done

# Wait, with a deadline, until every replica accepts connections (or one has exited).
deadline=$((SECONDS + 30))
for i in "${!replicas[@]}"; do
  read -r id host port <<<"${replicas[$i]}"
  until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "cluster.sh: replica $id exited at start:" >&2
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
bin/client "$config"
