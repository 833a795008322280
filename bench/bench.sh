#!/usr/bin/env bash
# Side-by-side benchmark: imaged against a real Glance 25.1 (the peer under
# ../shared/peers/glance), same workload, same run, one markdown table.
#
# It builds imaged, starts a fresh imaged and a fresh Glance peer on ports of
# its own, creates the same images in both (bench/createload, one keep-alive
# connection), runs wrk on three read endpoints at each connection count
# (imaged and Glance alternate, so that a noisy neighbour hurts both alike),
# measures server CPU from /proc/PID/stat and peak RSS (VmHWM), stops both
# servers by pid and prints the table. Raw output: bench/results/<timestamp>/.
#
# Settings (environment):
#   BENCH_DURATION   seconds per wrk run (15)
#   BENCH_CONNS      connection counts for wrk ("2 16")
#   BENCH_THREADS    wrk threads (2)
#   BENCH_IMAGES     images to create in each server (1000)
#   BENCH_TARGETS    which servers: "imaged glance", "imaged" or "glance"
#   BENCH_ENDPOINTS  which wrk endpoints: any of "list show filter" ("" = none)
#   BENCH_DATA_MIB   size of the image-data benchmark: PUT and GET of this many MiB
#                    of random data through /v2/images/{id}/file (1024; 0 = skip)
#   BENCH_SINK_PORT  port of the loopback reference sink (9496)
#   BENCH_GET_TRIES  downloads per GET figure, the best counts (3)
#   BENCH_IMAGED_PORT (9495)  BENCH_GLANCE_PORT (9492)
#   BENCH_GLANCE_WORKERS  glance-api workers (1; the README of the peer explains why)
#   BENCH_IMAGED_ARGS     extra flags for `imaged serve` (e.g. "--log-level warn")
#   IMAGED_BIN       use this imaged binary instead of building one
#   BENCH_DATABASE   run imaged on PostgreSQL: the DSN of a server, e.g.
#                    postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable; each run
#                    creates a fresh database on it (imaged_bench_<time>_<pid>, via psql) and
#                    drops it at exit. Empty (the default): SQLite in the data dir.
#   BENCH_IMAGED_PROCS  imaged processes (1). Above 1 needs BENCH_DATABASE: the processes
#                    share the one database and one --store-dir, listen on
#                    BENCH_BACKEND_PORT, +1, ... and bench/lb (a round-robin proxy with
#                    keep-alive to the backends) listens on BENCH_IMAGED_PORT in front of them.
#   BENCH_LB         1 = put bench/lb in front even of a single process (to measure the proxy)
#   BENCH_BACKEND_PORT  first backend port behind the proxy (BENCH_IMAGED_PORT+100)
#   GLANCE_PEER_DIR  the peer's scripts (default: ../shared/peers/glance next to the repo)
# With the defaults a run takes about 6 minutes (3 endpoints x 2 conns x 15 s x 2 servers,
# plus about a minute for the data benchmark; Glance's PUT is the slow part).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUR=${BENCH_DURATION:-15}
CONNS=${BENCH_CONNS:-"2 16"}
THREADS=${BENCH_THREADS:-2}
NIMG=${BENCH_IMAGES:-1000}
TARGETS=${BENCH_TARGETS:-"imaged glance"}
ENDPOINTS=${BENCH_ENDPOINTS-"list show filter"}
DATA_MIB=${BENCH_DATA_MIB:-1024}
SINK_PORT=${BENCH_SINK_PORT:-9496}
IPORT=${BENCH_IMAGED_PORT:-9495}
GPORT=${BENCH_GLANCE_PORT:-9492}
PG_SERVER=${BENCH_DATABASE:-}
NPROCS=${BENCH_IMAGED_PROCS:-1}
USE_LB=${BENCH_LB:-0}
BPORT=${BENCH_BACKEND_PORT:-$((IPORT + 100))}
[ "$NPROCS" -gt 1 ] && USE_LB=1
if [ "$NPROCS" -gt 1 ] && [ -z "$PG_SERVER" ]; then
  echo "bench: BENCH_IMAGED_PROCS=$NPROCS needs BENCH_DATABASE=postgres://... (processes share one database)" >&2; exit 1
fi
PEER_DIR=${GLANCE_PEER_DIR:-$ROOT/../shared/peers/glance}
OUT=$ROOT/bench/results/$(date -u +%Y%m%d-%H%M%S)
TOKEN="bench:benchproj:admin" # the peer's fakeauth reads it as user:project:roles; imaged's tokens file maps it
AUTH_H="X-Auth-Token: $TOKEN"
TCK=$(getconf CLK_TCK)
mkdir -p "$OUT"

NEED="wrk curl jq go awk sha512sum"; [ -n "$PG_SERVER" ] && NEED="$NEED psql"
for t in $NEED; do command -v "$t" >/dev/null || { echo "bench: missing $t" >&2; exit 1; }; done

note() { echo "$*" | tee -a "$OUT/notes.txt" >&2; }

# --- which servers -----------------------------------------------------------
want() { [[ " $TARGETS " == *" $1 "* ]]; }
if want glance && [ ! -x "$PEER_DIR/start.sh" ]; then
  note "NOTE: no Glance peer at $PEER_DIR: benchmarking imaged alone."
  TARGETS=imaged
fi
if want glance && ! command -v glance-api >/dev/null && [ ! -x /usr/bin/glance-api ]; then
  note "NOTE: glance-api is not installed (see $PEER_DIR/install.sh): benchmarking imaged alone."
  TARGETS=imaged
fi

# --- build -------------------------------------------------------------------
CREATELOAD=$OUT/createload
(cd "$ROOT" && go build -o "$CREATELOAD" ./bench/createload)
if want imaged; then
  if [ -n "${IMAGED_BIN:-}" ]; then
    BIN=$IMAGED_BIN
  else
    BIN=$OUT/imaged
    (cd "$ROOT" && go build -o "$BIN" ./cmd/imaged)
  fi
  if [ "$USE_LB" = 1 ]; then (cd "$ROOT" && go build -o "$OUT/lb" ./bench/lb); fi
fi

# --- start and stop ----------------------------------------------------------
IMAGED_PIDS=() LB_PID="" PG_DB="" GLANCE_STARTED="" SAMPLER_PID="" SINK_PID="" DATA_TMP=""
GLANCE_ENV=(GLANCE_PEER_PORT="$GPORT" GLANCE_PEER_DATA="$OUT/glance-data" GLANCE_PEER_WORKERS="${BENCH_GLANCE_WORKERS:-1}"
            GLANCE_PEER_AUTH=fakeauth GLANCE_PEER_RBAC=legacy)
cleanup() {
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null || true
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null || true
  [ -n "$DATA_TMP" ] && rm -rf "$DATA_TMP"
  [ -n "$LB_PID" ] && kill -TERM "$LB_PID" 2>/dev/null || true
  local p
  for p in "${IMAGED_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${IMAGED_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  # The run's database goes once its imaged processes are gone.
  [ -n "$PG_DB" ] && psql "$PG_SERVER" -qAtc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
  # stop.sh kills only the pid in its pid file (and that session's workers).
  [ -n "$GLANCE_STARTED" ] && env "${GLANCE_ENV[@]}" "$PEER_DIR/stop.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT

wait_up() { # $1 url; waits up to 60 s for GET /versions
  for _ in $(seq 1 600); do curl -fsS -m 2 -o /dev/null "$1/versions" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

declare -A URL PIDS_OF
if want imaged; then
  cat > "$OUT/tokens.yaml" <<EOF
tokens:
  - {token: "$TOKEN", user_id: bench, project_id: benchproj, roles: [admin, member, reader]}
EOF
  DBARGS=()
  if [ -n "$PG_SERVER" ]; then
    # A fresh database on the given server for this run: same server, the
    # run's database name instead of the DSN's path.
    PG_DB=imaged_bench_$(date -u +%Y%m%d%H%M%S)_$$
    psql "$PG_SERVER" -qAtc "CREATE DATABASE $PG_DB" >/dev/null || { echo "bench: cannot create database $PG_DB on the BENCH_DATABASE server" >&2; PG_DB=""; exit 1; }
    q=""; [[ $PG_SERVER == *\?* ]] && q="?${PG_SERVER#*\?}"
    rest=${PG_SERVER%%\?*}; scheme=${rest%%://*}; rest=${rest#*://}
    PG_DSN="$scheme://${rest%%/*}/$PG_DB$q"
    DBARGS=(--database "$PG_DSN")
  fi
  mkdir -p "$OUT/imaged-store"
  start_imaged() { # $1 index $2 port
    mkdir -p "$OUT/imaged-data-$1"
    # shellcheck disable=SC2086
    "$BIN" serve --addr "127.0.0.1:$2" --data-dir "$OUT/imaged-data-$1" --store-dir "$OUT/imaged-store" \
      "${DBARGS[@]}" --auth tokens --tokens-file "$OUT/tokens.yaml" --policy legacy ${BENCH_IMAGED_ARGS:-} \
      >"$OUT/imaged-$1.log" 2>&1 &
    IMAGED_PIDS+=($!)
    wait_up "http://127.0.0.1:$2" || { echo "bench: imaged $1 did not start; see $OUT/imaged-$1.log" >&2; tail -5 "$OUT/imaged-$1.log" >&2; exit 1; }
  }
  if [ "$USE_LB" = 1 ]; then
    BACKENDS=""
    for i in $(seq 1 "$NPROCS"); do
      # One at a time: the first one migrates the fresh database.
      start_imaged "$i" $((BPORT + i - 1))
      BACKENDS="$BACKENDS${BACKENDS:+,}http://127.0.0.1:$((BPORT + i - 1))"
    done
    "$OUT/lb" -addr "127.0.0.1:$IPORT" -backends "$BACKENDS" >"$OUT/lb.log" 2>&1 &
    LB_PID=$!
  else
    start_imaged 1 "$IPORT"
  fi
  URL[imaged]=http://127.0.0.1:$IPORT
  wait_up "${URL[imaged]}" || { echo "bench: imaged (proxy) did not start; see $OUT/lb.log" >&2; exit 1; }
fi
if want glance; then
  if ! env "${GLANCE_ENV[@]}" GLANCE_PEER_FRESH=1 "$PEER_DIR/start.sh" >"$OUT/glance-start.log" 2>&1; then
    note "NOTE: the Glance peer did not start on port $GPORT ($(tail -1 "$OUT/glance-start.log")): benchmarking imaged alone."
    TARGETS=imaged
  else
    GLANCE_STARTED=1
    URL[glance]=http://127.0.0.1:$GPORT
  fi
fi
want imaged || want glance || { echo "bench: nothing to benchmark" >&2; exit 1; }
ORDER=(); for s in imaged glance; do want "$s" && ORDER+=("$s"); done

pids() { # $1 server -> its process ids (Glance: parent and workers of its session)
  case $1 in
    imaged) echo "${IMAGED_PIDS[@]}" ;;
    lb) echo "$LB_PID" ;;
    glance) pgrep -g "$(cat "$OUT/glance-data/glance-api.pid")" ;;
  esac
}
cputicks() { # $1 server -> user+system clock ticks used so far
  local p
  for p in $(pids "$1"); do
    # Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
    sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12+$13}'
  done | awk '{s+=$1} END{print s+0}'
}
# PostgreSQL backends of the run's database: "pid ticks" per backend. A
# backend that appears between two snapshots counts from zero; one that
# disappears is lost (imaged keeps its pool's connections open, so they last).
pgsnap() {
  local p
  [ -n "$PG_DB" ] || return 0
  for p in $(psql "$PG_SERVER" -qAtc "SELECT pid FROM pg_stat_activity WHERE datname = '$PG_DB' AND backend_type = 'client backend'"); do
    echo "$p $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12+$13}')"
  done
}
pgdelta() { # $1 $2 snapshots -> ticks used between them
  awk 'NR==FNR {a[$1]=$2; next} $2!="" {d+=$2-a[$1]} END{print d+0}' <(echo "$1") <(echo "$2")
}
hwm_kib() { # $1 server -> summed VmHWM of its processes, KiB
  local p
  for p in $(pids "$1"); do awk '/^VmHWM/{print $2}' "/proc/$p/status" 2>/dev/null; done | awk '{s+=$1} END{print s+0}'
}

# Load average every 5 s for the whole run (it includes this benchmark's own load).
(while :; do echo "$(date +%s) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 5; done) >"$OUT/loadavg.txt" &
SAMPLER_PID=$!

{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(free -m | awk '/Mem:/{print $2}') MiB RAM, kernel $(uname -r)"
  echo "go: $(go version | awk '{print $3}'); wrk: $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
  echo "imaged: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?') (+ working tree), $([ -n "$PG_DB" ] && echo "PostgreSQL $(psql "$PG_SERVER" -qAtc 'SHOW server_version' 2>/dev/null) (database $PG_DB)" || echo sqlite), $NPROCS process(es)$([ -n "$LB_PID" ] && echo " behind bench/lb"), --policy legacy, --auth tokens"
  want glance && echo "glance: $(dpkg-query -W -f='${Version}' python3-glance 2>/dev/null || echo '?'), glance-api workers=${BENCH_GLANCE_WORKERS:-1}, fakeauth, legacy policy, sqlite"
  echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg); busiest processes: $(ps -eo pcpu=,comm= --sort=-pcpu | head -4 | awk '{printf "%s %s%%; ", $2, $1}')"
} | tee "$OUT/env.txt" >&2

# CPU of imaged's helpers (PostgreSQL backends, the proxy), measured apart
# from imaged's own: extra_snap takes a snapshot, extra_cpu turns two into
# R[imaged,<key>,pgcpu] and R[imaged,<key>,lbcpu], ms per request.
extra_snap() { # $1 server
  [ "$1" = imaged ] || return 0
  pgsnap | sed 's/^/pg /'
  if [ -n "$LB_PID" ]; then echo "lb $(cputicks lb)"; fi
  return 0
}
extra_cpu() { # $1 server $2 key $3 $4 snapshots $5 requests $6 format
  [ "$1" = imaged ] || return 0
  local d
  if [ -n "$PG_DB" ]; then
    d=$(pgdelta "$(sed -n 's/^pg //p' <<<"$3")" "$(sed -n 's/^pg //p' <<<"$4")")
    R[imaged,$2,pgcpu]=$(awk -v d="$d" -v t="$TCK" -v n="$5" -v f="$6" 'BEGIN{printf f, (n>0 ? d*1000/t/n : 0)}')
  fi
  if [ -n "$LB_PID" ]; then
    d=$(( $(sed -n 's/^lb //p' <<<"$4") - $(sed -n 's/^lb //p' <<<"$3") ))
    R[imaged,$2,lbcpu]=$(awk -v d="$d" -v t="$TCK" -v n="$5" -v f="$6" 'BEGIN{printf f, (n>0 ? d*1000/t/n : 0)}')
  fi
  return 0
}

# --- 1. creates ---------------------------------------------------------------
declare -A R  # results: R[server,metric]
for s in "${ORDER[@]}"; do
  c0=$(cputicks "$s"); x0=$(extra_snap "$s")
  "$CREATELOAD" -url "${URL[$s]}" -token "$TOKEN" -count "$NIMG" -conns 1 -ids "$OUT/ids-$s.txt" >"$OUT/create-$s.json"
  c1=$(cputicks "$s"); x1=$(extra_snap "$s")
  R[$s,create]=$(jq -r .creates_per_s "$OUT/create-$s.json")
  R[$s,create_cpu]=$(awk -v d=$((c1-c0)) -v t="$TCK" -v n="$NIMG" 'BEGIN{printf "%.2f", d*1000/t/n}')
  extra_cpu "$s" create "$x0" "$x1" "$NIMG" "%.2f"
  R[$s,create_p99]=$(jq -r .p99_ms "$OUT/create-$s.json")
  errs=$(jq -r .errors "$OUT/create-$s.json"); conns=$(jq -r .connections "$OUT/create-$s.json")
  [ "$errs" = 0 ] || note "NOTE: $s: $errs create errors: $(jq -c .first_errors "$OUT/create-$s.json")"
  [ "$conns" = 1 ] || note "NOTE: $s: the create loop used $conns TCP connections (keep-alive lost)"
  echo "$s: ${R[$s,create]} creates/s, ${R[$s,create_cpu]} server CPU ms/create" >&2
done

# --- 2. reads with wrk ----------------------------------------------------------
# The created images have no data (neither server gets uploads here), so the
# filter asks for queued images: both answer it from the same 1000 rows.
path_of() { # $1 endpoint $2 server
  case $1 in
    list) echo "/v2/images?limit=20" ;;
    show) echo "/v2/images/$(head -1 "$OUT/ids-$2.txt")" ;;
    filter) echo "/v2/images?name=bench-07&status=queued&sort=name:asc" ;;
  esac
}
label_of() {
  case $1 in
    list) echo 'GET /v2/images?limit=20' ;;
    show) echo 'GET /v2/images/{id}' ;;
    filter) echo 'GET /v2/images?name=bench-07&status=queued&sort=name:asc' ;;
  esac
}
for e in $ENDPOINTS; do
  for s in "${ORDER[@]}"; do
    p=$(path_of "$e" "$s")
    read -r code n < <(curl -s -H "$AUTH_H" -o "$OUT/sample-$e-$s.json" -w '%{http_code} ' "${URL[$s]}$p"; jq -r '(.images // [.]) | length' "$OUT/sample-$e-$s.json" 2>/dev/null || echo '?')
    R[$s,$e,sample]="HTTP $code, $n image(s)"
    [ "$code" = 200 ] || note "NOTE: $s answers $p with HTTP $code"
  done
done
to_ms() { # wrk latency (123.45us, 1.23ms, 1.02s, 2.00m) -> ms
  awk -v v="$1" 'BEGIN{ u=v; sub(/^[0-9.]+/, "", u); x=v+0;
    if (u=="us") x/=1000; else if (u=="s") x*=1000; else if (u=="m") x*=60000; printf "%.2f", x }'
}
for e in $ENDPOINTS; do
  for c in $CONNS; do
    for s in "${ORDER[@]}"; do
      p=$(path_of "$e" "$s")
      raw=$OUT/wrk-$e-c$c-$s.txt
      c0=$(cputicks "$s"); x0=$(extra_snap "$s")
      wrk -t"$THREADS" -c"$c" -d"${DUR}s" --latency -H "$AUTH_H" "${URL[$s]}$p" >"$raw" 2>&1
      c1=$(cputicks "$s"); x1=$(extra_snap "$s")
      read -r rps p50 p99 n bad < <(awk '
        / requests in / {n=$1}
        /Requests\/sec/ {rps=$2}
        /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
        /Non-2xx/ {bad=$NF}
        END {print rps+0, p50, p99, n+0, bad+0}' "$raw")
      R[$s,$e,$c,rps]=$(printf '%.0f' "$rps")
      R[$s,$e,$c,p50]=$(to_ms "$p50")
      R[$s,$e,$c,p99]=$(to_ms "$p99")
      R[$s,$e,$c,cpu]=$(awk -v d=$((c1-c0)) -v t="$TCK" -v n="$n" 'BEGIN{printf "%.3f", (n>0 ? d*1000/t/n : 0)}')
      extra_cpu "$s" "$e,$c" "$x0" "$x1" "$n" "%.3f"
      [ "$bad" = 0 ] || note "NOTE: $s: $bad non-2xx answers in $(label_of "$e") at $c connections"
      echo "$s $(label_of "$e") c=$c: ${R[$s,$e,$c,rps]} req/s p50 ${R[$s,$e,$c,p50]} ms p99 ${R[$s,$e,$c,p99]} ms cpu ${R[$s,$e,$c,cpu]} ms/req" >&2
    done
  done
done
for s in "${ORDER[@]}"; do R[$s,rss]=$(awk -v k="$(hwm_kib "$s")" 'BEGIN{printf "%.1f", k/1024}'); done

# --- 3. image data: PUT and GET of DATA_MIB MiB ----------------------------------
# best_get URL [RATE...] -> the highest curl download rate (bytes/s) of
# GET_TRIES downloads of URL, counting the RATEs already measured.
GET_TRIES=${BENCH_GET_TRIES:-3}
best_get() {
  local url=$1 best=0 r i; shift
  for r in "$@"; do best=$(awk -v a="$best" -v b="$r" 'BEGIN{print (b>a)?b:a}'); done
  for ((i = $#; i < GET_TRIES; i++)); do
    r=$(curl -s -o /dev/null -H "$AUTH_H" -w '%{speed_download}' "$url")
    best=$(awk -v a="$best" -v b="$r" 'BEGIN{print (b>a)?b:a}')
  done
  echo "$best"
}

# One random file, uploaded with curl -T (Content-Length known, no Expect
# round trip) and downloaded to /dev/null; a second, untimed download goes
# through sha512sum and must match the file and the image's os_hash_value.
# Reference limits from the same run: openssl md5 and sha512 (an upload
# hashes both), and curl over loopback to a Go sink that does nothing.
if [ "$DATA_MIB" -gt 0 ]; then
  DATA_TMP=$(mktemp -d)
  SRC=$DATA_TMP/data.bin
  head -c $((DATA_MIB << 20)) /dev/urandom >"$SRC"
  SRC_SHA=$(sha512sum "$SRC" | awk '{print $1}')
  ossl() { # $1 digest -> MB/s over 16 KiB blocks
    command -v openssl >/dev/null || { echo "-"; return; }
    openssl speed -evp "$1" -seconds 2 -bytes 16384 2>/dev/null | awk -v d="$1" '$1==d {v=$NF; sub(/k$/,"",v); printf "%.0f", v*1000/1e6}'
  }
  R[ref,md5]=$(ossl md5); R[ref,sha512]=$(ossl sha512)
  (cd "$ROOT" && go build -o "$OUT/sink" ./bench/sink)
  "$OUT/sink" -addr "127.0.0.1:$SINK_PORT" -file "$SRC" >"$OUT/sink.log" 2>&1 & SINK_PID=$!
  for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$SINK_PORT/0" && break; sleep 0.1; done
  up=$(curl -s -o /dev/null -H 'Expect:' -T "$SRC" -w '%{speed_upload}' "http://127.0.0.1:$SINK_PORT/put")
  # Downloads are short (well under a second per GiB) and so noisy on a
  # shared machine: every GET figure, references and servers alike, is
  # the best of GET_TRIES.
  down=$(best_get "http://127.0.0.1:$SINK_PORT/$((DATA_MIB << 20))")
  downf=$(best_get "http://127.0.0.1:$SINK_PORT/file")
  R[ref,put]=$(awk -v b="$up" 'BEGIN{printf "%.0f", b/1e6}'); R[ref,get]=$(awk -v b="$down" 'BEGIN{printf "%.0f", b/1e6}')
  R[ref,getfile]=$(awk -v b="$downf" 'BEGIN{printf "%.0f", b/1e6}')
  kill "$SINK_PID" 2>/dev/null || true; SINK_PID=""
  echo "reference: openssl md5 ${R[ref,md5]} MB/s, sha512 ${R[ref,sha512]} MB/s; curl loopback sink PUT ${R[ref,put]} MB/s, GET from memory ${R[ref,get]} MB/s, GET of the file (net/http file server) ${R[ref,getfile]} MB/s" >&2
  for s in "${ORDER[@]}"; do
    id=$(curl -s -H "$AUTH_H" -H 'Content-Type: application/json' -X POST "${URL[$s]}/v2/images" \
      -d '{"name":"bench-data","disk_format":"raw","container_format":"bare"}' | jq -r .id)
    c0=$(cputicks "$s")
    read -r code up < <(curl -s -o "$OUT/put-$s.txt" -H "$AUTH_H" -H 'Expect:' -H 'Content-Type: application/octet-stream' \
      -T "$SRC" -w '%{http_code} %{speed_upload}\n' "${URL[$s]}/v2/images/$id/file")
    c1=$(cputicks "$s")
    meta=$(curl -s -H "$AUTH_H" "${URL[$s]}/v2/images/$id")
    read -r gcode down < <(curl -s -o /dev/null -H "$AUTH_H" -w '%{http_code} %{speed_download}\n' "${URL[$s]}/v2/images/$id/file")
    c2=$(cputicks "$s") # server CPU of one GET; the rate is the best of GET_TRIES
    down=$(best_get "${URL[$s]}/v2/images/$id/file" "$down")
    got=$(curl -s -H "$AUTH_H" "${URL[$s]}/v2/images/$id/file" | sha512sum | awk '{print $1}')
    R[$s,put]=$(awk -v b="$up" 'BEGIN{printf "%.0f", b/1e6}')
    R[$s,get]=$(awk -v b="$down" 'BEGIN{printf "%.0f", b/1e6}')
    R[$s,put_cpu]=$(awk -v d=$((c1-c0)) -v t="$TCK" 'BEGIN{printf "%.2f", d/t}')
    R[$s,get_cpu]=$(awk -v d=$((c2-c1)) -v t="$TCK" 'BEGIN{printf "%.2f", d/t}')
    R[$s,rss_data]=$(awk -v k="$(hwm_kib "$s")" 'BEGIN{printf "%.1f", k/1024}')
    [ "$code" = 204 ] || note "NOTE: $s: PUT of $DATA_MIB MiB answered HTTP $code: $(head -c 300 "$OUT/put-$s.txt")"
    [ "$gcode" = 200 ] || note "NOTE: $s: GET of the image data answered HTTP $gcode"
    [ "$(jq -r .os_hash_value <<<"$meta")" = "$SRC_SHA" ] || note "NOTE: $s: os_hash_value differs from the sha512 of the uploaded file"
    [ "$got" = "$SRC_SHA" ] || note "NOTE: $s: the downloaded bytes' sha512 differs from the uploaded file's"
    [ "$(jq -r .status <<<"$meta")" = active ] || note "NOTE: $s: image status after the upload: $(jq -r .status <<<"$meta")"
    R[$s,data_check]="HTTP $code/$gcode, $(jq -r .status <<<"$meta"), sha512 $([ "$got" = "$SRC_SHA" ] && [ "$(jq -r .os_hash_value <<<"$meta")" = "$SRC_SHA" ] && echo ok || echo MISMATCH)"
    echo "$s: PUT ${R[$s,put]} MB/s (${R[$s,put_cpu]} s CPU), GET ${R[$s,get]} MB/s (${R[$s,get_cpu]} s CPU), ${R[$s,data_check]}, peak RSS ${R[$s,rss_data]} MiB" >&2
    curl -s -o /dev/null -H "$AUTH_H" -X DELETE "${URL[$s]}/v2/images/$id" # frees the GiB on disk
  done
  rm -rf "$DATA_TMP"; DATA_TMP=""
fi
kill "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""
LOADS=$(awk '{print $2}' "$OUT/loadavg.txt" | sort -n | awk '{a[NR]=$1} END{ if (NR) printf "1-min load average during the run: min %s, median %s, max %s (%d samples; includes the benchmark itself)", a[1], a[int((NR+1)/2)], a[NR], NR}')

# --- 4. table -------------------------------------------------------------------
# Ratio is always imaged/Glance: above 1 is better for throughput, below 1 for
# latency, CPU and memory. The target column checks the goals of docs/benchmarks.md.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="" || b=="" || b+0==0) print "-"; else { r=a/b; printf (r>=10 ? "%.0fx" : (r>=0.1 ? "%.2fx" : "%.4fx")), r } }'; }
check() { # $1 kind $2 imaged value $3 glance value
  case $1 in
    tput) awk -v a="$2" -v b="$3" 'BEGIN{ if (b=="" || b+0==0) print ""; else print (a/b>=50 ? "≥ 50x: met" : "≥ 50x: MISSED") }' ;;
    p99) awk -v a="$2" 'BEGIN{ print (a+0<10 ? "< 10 ms: met" : "< 10 ms: MISSED") }' ;;
    rss) awk -v a="$2" 'BEGIN{ print (a+0<60 ? "< 60 MiB: met" : "< 60 MiB: MISSED") }' ;;
    *) echo "" ;;
  esac
}
row() { # $1 label $2 key $3 check-kind $4 unit
  local a="${R[imaged,$2]:-}" b="${R[glance,$2]:-}" t=""
  want imaged && t=$(check "$3" "$a" "$b")
  if want imaged && want glance; then
    printf '| %s | %s | %s | %s | %s |\n' "$1" "${a:--}" "${b:--}" "$(ratio "$a" "$b")" "$t"
  elif want imaged; then
    printf '| %s | %s | %s |\n' "$1" "${a:--}" "$t"
  else
    printf '| %s | %s |\n' "$1" "${b:--}"
  fi
}
CPU_NOTE=""; [ "$NPROCS" -gt 1 ] && CPU_NOTE=" (imaged: its $NPROCS processes)"
{
  if want imaged && want glance; then
    echo "| workload (${DUR} s wrk -t$THREADS runs; $NIMG images each) | imaged | Glance 25.1 | imaged/Glance | target |"
    echo "| --- | ---: | ---: | ---: | --- |"
  elif want imaged; then
    echo "| workload (imaged alone; ${DUR} s wrk -t$THREADS runs; $NIMG images) | imaged | target |"
    echo "| --- | ---: | --- |"
  else
    echo "| workload (Glance alone; ${DUR} s wrk -t$THREADS runs; $NIMG images) | Glance 25.1 |"
    echo "| --- | ---: |"
  fi
  row "POST /v2/images, 1 keep-alive connection: creates/s" create tput
  row "… server CPU ms per create$CPU_NOTE" create_cpu ""
  if [ -n "$PG_DB" ]; then row "… PostgreSQL backends CPU ms per create" create,pgcpu ""; fi
  if [ -n "$LB_PID" ]; then row "… bench/lb proxy CPU ms per create" create,lbcpu ""; fi
  row "… p99 ms per create" create_p99 ""
  for e in $ENDPOINTS; do
    for c in $CONNS; do
      L="$(label_of "$e"), $c conns"
      row "$L: req/s" "$e,$c,rps" tput
      row "… p50 ms" "$e,$c,p50" ""
      row "… p99 ms" "$e,$c,p99" "$([ "$c" -ge 16 ] && echo p99)"
      row "… server CPU ms per request$CPU_NOTE" "$e,$c,cpu" ""
      if [ -n "$PG_DB" ]; then row "… PostgreSQL backends CPU ms per request" "$e,$c,pgcpu" ""; fi
      if [ -n "$LB_PID" ]; then row "… bench/lb proxy CPU ms per request" "$e,$c,lbcpu" ""; fi
    done
  done
  row "peak RSS (VmHWM, MiB; Glance: all processes)" rss rss
  if [ "$DATA_MIB" -gt 0 ]; then
    row "PUT $DATA_MIB MiB /v2/images/{id}/file: MB/s" put ""
    row "… server CPU s" put_cpu ""
    row "GET $DATA_MIB MiB /v2/images/{id}/file: MB/s" get ""
    row "… server CPU s" get_cpu ""
    row "peak RSS after the data transfers (VmHWM, MiB)" rss_data ""
  fi
  echo
  for e in $ENDPOINTS; do
    echo -n "- $(label_of "$e"):"; for s in "${ORDER[@]}"; do echo -n " $s ${R[$s,$e,sample]};"; done; echo
  done
  echo "- $LOADS."
  if [ "$DATA_MIB" -gt 0 ]; then
    echo -n "- data check:"; for s in "${ORDER[@]}"; do echo -n " $s ${R[$s,data_check]};"; done; echo
    echo "- reference limits, same run: openssl speed -evp md5 ${R[ref,md5]} MB/s, sha512 ${R[ref,sha512]} MB/s (16 KiB blocks); curl over loopback to a Go sink (bench/sink): PUT ${R[ref,put]} MB/s, GET from a reused memory buffer ${R[ref,get]} MB/s, GET of the same file through net/http's file server (sendfile from the page cache) ${R[ref,getfile]} MB/s ($DATA_MIB MiB; GET figures are the best of $GET_TRIES)."
  fi
  [[ " $ENDPOINTS " == *" filter "* ]] && echo "- The filter asks for status=queued: the created images have no data in either server."
  [ -s "$OUT/notes.txt" ] && sed 's/^/- /' "$OUT/notes.txt"
  echo "- raw output: ${OUT#"$ROOT"/}/"
} | tee "$OUT/table.md"
