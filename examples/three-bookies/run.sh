#!/bin/sh
# run.sh: dlog as separate processes on one machine: one etcd member,
# three bookies and two proxies, each its own process with its own
# directory and ports. It starts them in that order, waits until each
# serves, prints how to reach them, and then waits; Ctrl-C (or SIGTERM)
# stops them all (proxies first, etcd last). Starting it again on the same
# DIR brings every log back.
#
# Settings (environment):
#   DLOG              the dlog binary (default: dlog on PATH)
#   DIR               data and logs (default: $TMPDIR/dlog-three-bookies)
#   HOST              address to listen on (default 127.0.0.1)
#   METADATA          an external etcd (http://h1:2379,...); empty: start
#                     one with `dlog etcd` on ETCD_CLIENT_PORT/ETCD_PEER_PORT
#   ETCD_CLIENT_PORT  default 2379
#   ETCD_PEER_PORT    default 2380
#   BOOKIE_PORTS      default "3181 3182 3183" (one bookie per port)
#   PROXY_PORTS       default "7000 7001" (one proxy per port)
#   PROXY_HTTP_PORTS  default "7080 7081" (their /metrics, /healthz, /readyz)
set -eu

DLOG=${DLOG:-dlog}
DIR=${DIR:-${TMPDIR:-/tmp}/dlog-three-bookies}
HOST=${HOST:-127.0.0.1}
METADATA=${METADATA:-}
ETCD_CLIENT_PORT=${ETCD_CLIENT_PORT:-2379}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-2380}
BOOKIE_PORTS=${BOOKIE_PORTS:-"3181 3182 3183"}
PROXY_PORTS=${PROXY_PORTS:-"7000 7001"}
PROXY_HTTP_PORTS=${PROXY_HTTP_PORTS:-"7080 7081"}

mkdir -p "$DIR/logs"
PIDS="$DIR/pids"
: > "$PIDS"

# stop_all: SIGTERM to every component, newest first, and wait for each.
stop_all() {
	trap - INT TERM EXIT
	for pid in $(awk '{ p[NR] = $1 } END { for (i = NR; i > 0; i--) print p[i] }' "$PIDS"); do
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	: > "$PIDS"
	echo "three-bookies: stopped (data kept in $DIR)"
}
trap 'stop_all; exit 0' INT TERM
trap 'stop_all' EXIT

# start NAME COMMAND...: run a component in the background; its output
# goes to $DIR/logs/NAME.log, its pid to $DIR/pids ("pid name").
start() {
	name=$1
	shift
	"$@" >"$DIR/logs/$name.log" 2>&1 &
	echo "$! $name" >>"$PIDS"
}

# wait_ready NAME PATTERN: every component prints one line once it serves.
wait_ready() {
	name=$1 pattern=$2 tries=0
	pid=$(awk -v n="$name" '$2 == n { print $1 }' "$PIDS")
	until grep -q "$pattern" "$DIR/logs/$name.log" 2>/dev/null; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "three-bookies: $name exited; its log ($DIR/logs/$name.log):" >&2
			cat "$DIR/logs/$name.log" >&2
			exit 1
		fi
		tries=$((tries + 1))
		if [ "$tries" -gt 1200 ]; then
			echo "three-bookies: $name not ready after 2 minutes; see $DIR/logs/$name.log" >&2
			exit 1
		fi
		sleep 0.1
	done
}

if [ -z "$METADATA" ]; then
	start etcd "$DLOG" etcd --name m0 --dir "$DIR/etcd" \
		--listen-client "http://$HOST:$ETCD_CLIENT_PORT" --listen-peer "http://$HOST:$ETCD_PEER_PORT"
	wait_ready etcd "serving clients"
	METADATA="http://$HOST:$ETCD_CLIENT_PORT"
fi

i=0
for port in $BOOKIE_PORTS; do
	i=$((i + 1))
	start "bookie-$i" "$DLOG" bookie --id "bookie-$i" --dir "$DIR/bookie-$i" \
		--listen "$HOST:$port" --metadata "$METADATA"
	wait_ready "bookie-$i" "listening on"
done

servers=""
i=0
set -- $PROXY_HTTP_PORTS
for port in $PROXY_PORTS; do
	i=$((i + 1))
	http=${1:-}
	[ $# -gt 0 ] && shift
	start "proxy-$i" "$DLOG" proxy --id "proxy-$i" --listen "$HOST:$port" ${http:+--http "$HOST:$http"} \
		--metadata "$METADATA"
	wait_ready "proxy-$i" "listening on"
	servers="${servers:+$servers,}$HOST:$port"
done

cat <<MSG
three-bookies: dlog is running: etcd, $(echo $BOOKIE_PORTS | wc -w | tr -d ' ') bookies, $(echo $PROXY_PORTS | wc -w | tr -d ' ') proxies
  pids in $PIDS, logs in $DIR/logs
  clients:     export DLOG_SERVER=$servers
  admin tools: export DLOG_METADATA=$METADATA
Ctrl-C stops everything.
MSG

# Wait for Ctrl-C. A component that dies does not stop the others (kill
# one bookie to watch writes carry on without it).
wait || true
echo "three-bookies: every component has exited" >&2
exit 1
