#!/usr/bin/env bash
# Sends the same requests to imaged and to a real Glance 25.1 (the peer under
# ../shared/peers/glance) and reports, for each request, both HTTP statuses and
# a normalised diff of the answers: selected headers, the body's keys and types
# (its shape) and, separately, its values. Ids, timestamps, request ids and the
# host:port are masked; arrays of scalars (tags) are compared as sets.
#
# It is a report: it always exits 0 and ends with a summary count of mismatches.
#
# Both servers use Glance's legacy (Zed) policy. The peer's fakeauth reads a
# token as user:project:roles; imaged gets a tokens file whose tokens are those
# same strings, so one header means the same persona on both.
#
# Settings (environment):
#   COMPARE_IMAGED_PORT (9352)  COMPARE_GLANCE_PORT (9351)
#   COMPARE_IMAGED_URL an imaged that is already running (then none is built or started;
#                      it must know the tokens above, e.g. from the tokens file this writes)
#   COMPARE_MAX_DIFF   diff lines printed per request (12)
#   IMAGED_BIN         use this imaged binary instead of building one
#   GLANCE_PEER_DIR    the peer's scripts (default: ../shared/peers/glance next to the repo)
# Raw answers: bench/results/compare-<timestamp>/ (git-ignored).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
IPORT=${COMPARE_IMAGED_PORT:-9352}
GPORT=${COMPARE_GLANCE_PORT:-9351}
PEER_DIR=${GLANCE_PEER_DIR:-$ROOT/../shared/peers/glance}
MAXD=${COMPARE_MAX_DIFF:-12}
OUT=$ROOT/bench/results/compare-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"

for t in curl jq go; do command -v "$t" >/dev/null || { echo "compare: missing $t" >&2; exit 0; }; done
if [ ! -x "$PEER_DIR/start.sh" ]; then
  echo "compare: no Glance peer at $PEER_DIR; nothing to compare against." >&2
  exit 0
fi

# --- personas (the same token strings on both servers) ---------------------
ADMIN="admin:admin:admin"
ALICE="alice:projA:member,reader"
BOB="bob:projB:member,reader"
CAROL="carol:projC:member,reader"
cat >"$OUT/tokens.yaml" <<EOF
tokens:
  - {token: "$ADMIN", user_id: admin, project_id: admin, roles: [admin]}
  - {token: "$ALICE", user_id: alice, project_id: projA, roles: [member, reader]}
  - {token: "$BOB", user_id: bob, project_id: projB, roles: [member, reader]}
  - {token: "$CAROL", user_id: carol, project_id: projC, roles: [member, reader]}
EOF
who() { case $1 in "$ADMIN") echo admin ;; "$ALICE") echo alice ;; "$BOB") echo bob ;; "$CAROL") echo carol ;; -) echo "no token" ;; *) echo "$1" ;; esac; }

# --- start both --------------------------------------------------------------
IMAGED_PID="" GLANCE_STARTED=""
GLANCE_ENV=(GLANCE_PEER_PORT="$GPORT" GLANCE_PEER_DATA="$OUT/glance-data" GLANCE_PEER_AUTH=fakeauth GLANCE_PEER_RBAC=legacy GLANCE_PEER_WORKERS=1)
cleanup() {
  if [ -n "$IMAGED_PID" ]; then
    kill -TERM "$IMAGED_PID" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$IMAGED_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$IMAGED_PID" 2>/dev/null
  fi
  [ -n "$GLANCE_STARTED" ] && env "${GLANCE_ENV[@]}" "$PEER_DIR/stop.sh" >/dev/null 2>&1
  return 0
}
trap cleanup EXIT
wait_up() { for _ in $(seq 1 600); do curl -fsS -m 2 -o /dev/null "$1/versions" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

IURL=${COMPARE_IMAGED_URL:-http://127.0.0.1:$IPORT}
if [ -z "${COMPARE_IMAGED_URL:-}" ]; then
  BIN=${IMAGED_BIN:-$OUT/imaged}
  if [ -z "${IMAGED_BIN:-}" ] && ! (cd "$ROOT" && go build -o "$BIN" ./cmd/imaged) >"$OUT/build.log" 2>&1; then
    echo "compare: imaged does not build:" >&2; head -20 "$OUT/build.log" >&2; exit 0
  fi
  "$BIN" serve --addr "127.0.0.1:$IPORT" --data-dir "$OUT/imaged-data" --auth tokens \
    --tokens-file "$OUT/tokens.yaml" --policy legacy >"$OUT/imaged.log" 2>&1 &
  IMAGED_PID=$!
fi
if ! env "${GLANCE_ENV[@]}" GLANCE_PEER_FRESH=1 "$PEER_DIR/start.sh" >"$OUT/glance-start.log" 2>&1; then
  echo "compare: the Glance peer did not start: $(tail -2 "$OUT/glance-start.log")" >&2; exit 0
fi
GLANCE_STARTED=1
wait_up "$IURL" || { echo "compare: imaged did not start: $(tail -3 "$OUT/imaged.log")" >&2; exit 0; }
declare -A URL=([imaged]="$IURL" [glance]="http://127.0.0.1:$GPORT")

# shellcheck source=lib/compare-driver.sh
. "$ROOT/scripts/lib/compare-driver.sh"

echo "# imaged (${IURL#http://}) vs Glance 25.1 peer (127.0.0.1:$GPORT), legacy policy; raw: ${OUT#"$ROOT"/}"
echo "# columns: n, method, statuses, verdict (STATUS/SHAPE = mismatch, values = same keys and types, other values), path"

echo "## versions and schemas"
rq "version list" GET / -
rq "version list" GET /versions -
rq "no trailing slash" GET /v2 "$ALICE"
for sch in image images member members; do rq "" GET /v2/schemas/$sch "$ALICE"; done
rq "unknown schema" GET /v2/schemas/nope "$ALICE"
rq "import info" GET /v2/info/import "$ALICE"
rq "stores info (single store)" GET /v2/info/stores "$ALICE"
rq "unknown path" GET /v2/nope "$ALICE"
rq "method not allowed" PUT /v2/images "$ALICE" -a "text/html"
rq "no token" GET /v2/images - -a application/json
rq "no token, html" GET /v2/images - -a text/html

echo "## create"
rq "full create" POST /v2/images "$ALICE" -d '{"id":"{IMG_A}","name":"alpha","disk_format":"raw","container_format":"bare","tags":["b","a"],"min_ram":512,"min_disk":1,"os_distro":"debian","hw_disk_bus":"virtio"}'
rq "private" POST /v2/images "$BOB" -d '{"id":"{IMG_B}","name":"bravo","visibility":"private","disk_format":"qcow2","container_format":"bare"}'
rq "public by admin" POST /v2/images "$ADMIN" -d '{"id":"{IMG_P}","name":"public-one","visibility":"public","disk_format":"iso","container_format":"bare"}'
rq "community" POST /v2/images "$ALICE" -d '{"id":"{IMG_C}","name":"charlie","visibility":"community"}'
rq "protected" POST /v2/images "$ALICE" -d '{"id":"{IMG_X}","name":"xray","protected":true}'
rq "empty body object" POST /v2/images "$ALICE" -d '{}' -s ANON
rq "public by member" POST /v2/images "$ALICE" -d '{"name":"nope","visibility":"public"}'
rq "duplicate id" POST /v2/images "$ALICE" -d '{"id":"{IMG_A}"}'
rq "bad disk_format" POST /v2/images "$ALICE" -d '{"disk_format":"floppy"}'
rq "bad container_format" POST /v2/images "$ALICE" -d '{"container_format":"box"}'
rq "bad visibility" POST /v2/images "$ALICE" -d '{"visibility":"everyone"}'
rq "read-only status" POST /v2/images "$ALICE" -d '{"status":"active"}'
rq "read-only size" POST /v2/images "$ALICE" -d '{"size":5}'
rq "reserved attribute" POST /v2/images "$ALICE" -d '{"location":"file:///etc/passwd"}'
rq "bad id" POST /v2/images "$ALICE" -d '{"id":"not-a-uuid"}'
rq "name too long" POST /v2/images "$ALICE" -d "{\"name\":\"$(printf 'n%.0s' $(seq 1 256))\"}"
rq "negative min_ram" POST /v2/images "$ALICE" -d '{"min_ram":-1}'
rq "min_disk as string" POST /v2/images "$ALICE" -d '{"min_disk":"1"}'
rq "protected as string" POST /v2/images "$ALICE" -d '{"protected":"yes"}'
rq "non-string property" POST /v2/images "$ALICE" -d '{"foo":1}'
rq "tags not a list" POST /v2/images "$ALICE" -d '{"tags":"a"}'
rq "tag too long" POST /v2/images "$ALICE" -d "{\"tags\":[\"$(printf 't%.0s' $(seq 1 256))\"]}"
rq "invalid JSON" POST /v2/images "$ALICE" -d '{"name":'
rq "JSON array (Glance: 500)" POST /v2/images "$ALICE" -d '[]'
rq "text/plain body" POST /v2/images "$ALICE" -d '{"name":"t"}' -t text/plain
rq "no content type" POST /v2/images "$ALICE" -d '{"name":"t"}' -t none
rq "no token" POST /v2/images - -d '{}'

echo "## show"
rq "owner" GET "/v2/images/{IMG_A}" "$ALICE"
rq "admin" GET "/v2/images/{IMG_A}" "$ADMIN"
rq "not a member" GET "/v2/images/{IMG_A}" "$BOB"
rq "private, other project" GET "/v2/images/{IMG_B}" "$ALICE"
rq "community, other project" GET "/v2/images/{IMG_C}" "$BOB"
rq "generated id" GET "/v2/images/{ANON}" "$ALICE"
rq "not a uuid" GET /v2/images/not-a-uuid "$ALICE"
for a in application/json text/html "*/*" none; do rq "missing, Accept: $a" GET "/v2/images/{MISSING}" "$ALICE" -a "$a"; done
rq "image data of a queued image" GET "/v2/images/{IMG_A}/file" "$ALICE"

echo "## list"
rq "default" GET /v2/images "$ALICE"
rq "default" GET /v2/images "$BOB"
rq "default" GET /v2/images "$ADMIN"
rq "limit=1" GET "/v2/images?limit=1" "$ALICE"
rq "marker" GET "/v2/images?limit=2&marker={IMG_C}" "$ALICE"
rq "unknown marker" GET "/v2/images?marker={MISSING}" "$ALICE"
rq "limit=-1" GET "/v2/images?limit=-1" "$ALICE"
rq "limit=abc" GET "/v2/images?limit=abc" "$ALICE"
rq "limit=0" GET "/v2/images?limit=0" "$ALICE"
rq "huge limit" GET "/v2/images?limit=100000" "$ALICE"
rq "sort_key/sort_dir" GET "/v2/images?sort_key=name&sort_dir=asc" "$ALICE"
rq "two sort keys" GET "/v2/images?sort_key=name&sort_key=id&sort_dir=asc&sort_dir=desc" "$ALICE"
rq "sort=" GET "/v2/images?sort=name:asc,created_at:desc" "$ALICE"
rq "sort without dir" GET "/v2/images?sort=name" "$ALICE"
rq "bad sort key" GET "/v2/images?sort=bogus:asc" "$ALICE"
rq "bad sort dir" GET "/v2/images?sort=name:up" "$ALICE"
rq "bad sort_dir" GET "/v2/images?sort_dir=up" "$ALICE"
rq "bad sort_key" GET "/v2/images?sort_key=bogus" "$ALICE"
rq "sort and sort_key" GET "/v2/images?sort=name:asc&sort_key=id" "$ALICE"
rq "name" GET "/v2/images?name=alpha" "$ALICE"
rq "name in:" GET '/v2/images?name=in:alpha,charlie' "$ALICE"
rq "id in:" GET '/v2/images?id=in:{IMG_A},{IMG_P}' "$ALICE"
rq "status" GET "/v2/images?status=queued" "$ALICE"
rq "bad status" GET "/v2/images?status=bogus" "$ALICE"
for vis in public private shared community all bogus; do rq "visibility=$vis" GET "/v2/images?visibility=$vis" "$ALICE"; done
rq "tag" GET "/v2/images?tag=a" "$ALICE"
rq "two tags" GET "/v2/images?tag=a&tag=b" "$ALICE"
rq "owner" GET "/v2/images?owner=projA" "$ADMIN"
rq "disk_format" GET "/v2/images?disk_format=raw" "$ALICE"
rq "protected=true" GET "/v2/images?protected=true" "$ALICE"
rq "protected=maybe" GET "/v2/images?protected=maybe" "$ALICE"
rq "os_hidden=true" GET "/v2/images?os_hidden=true" "$ALICE"
rq "size_min=abc" GET "/v2/images?size_min=abc" "$ALICE"
rq "min_ram filter" GET "/v2/images?min_ram=512" "$ALICE"
rq "created_at gt" GET "/v2/images?created_at=gt:2000-01-01T00:00:00Z" "$ALICE"
rq "created_at bad" GET "/v2/images?created_at=gt:yesterday" "$ALICE"
rq "created_at bad op" GET "/v2/images?created_at=xx:2000-01-01T00:00:00Z" "$ALICE"
rq "custom property" GET "/v2/images?os_distro=debian" "$ALICE"
rq "member_status without visibility" GET "/v2/images?member_status=all" "$BOB"
rq "bad member_status" GET "/v2/images?member_status=bogus" "$BOB"

echo "## patch"
P=application/openstack-images-v2.1-json-patch
rq "replace name, add property" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"replace","path":"/name","value":"alpha2"},{"op":"add","path":"/os_version","value":"12"}]'
rq "remove property" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"remove","path":"/os_version"}]'
rq "remove missing property" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"remove","path":"/os_version"}]'
rq "replace missing property" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"replace","path":"/nope","value":"x"}]'
rq "replace tags" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"replace","path":"/tags","value":["z","y"]}]'
rq "min_ram, min_disk" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"replace","path":"/min_ram","value":1024},{"op":"replace","path":"/min_disk","value":2}]'
rq "null name" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"replace","path":"/name","value":null}]'
rq "v2.0 patch media type" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"replace":"/name","value":"alpha3"}]' -t application/openstack-images-v2.0-json-patch
rq "application/json" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"replace","path":"/name","value":"x"}]' -t application/json
rq "invalid JSON" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":'
rq "not a list" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '{"op":"replace","path":"/name","value":"x"}'
rq "bad op" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"move","from":"/name","path":"/x"}]'
rq "bad path" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"replace","path":"name","value":"x"}]'
rq "nested path" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"replace","path":"/a/b","value":"x"}]'
rq "read-only status" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"replace","path":"/status","value":"active"}]'
rq "read-only id" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"replace","path":"/id","value":"{MISSING}"}]'
rq "read-only created_at" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"replace","path":"/created_at","value":"2000-01-01T00:00:00Z"}]'
rq "reserved self" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"add","path":"/self","value":"x"}]'
rq "reserved location" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"add","path":"/location","value":"x"}]'
rq "bad disk_format" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"replace","path":"/disk_format","value":"floppy"}]'
rq "owner change by member" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"replace","path":"/owner","value":"projB"}]'
rq "publicize by member" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"replace","path":"/visibility","value":"public"}]'
rq "non-string property" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[{"op":"add","path":"/foo","value":1}]'
rq "other project" PATCH "/v2/images/{IMG_A}" "$BOB" -d '[{"op":"replace","path":"/name","value":"x"}]'
rq "admin" PATCH "/v2/images/{IMG_A}" "$ADMIN" -d '[{"op":"replace","path":"/name","value":"alpha-admin"}]'
rq "empty list" PATCH "/v2/images/{IMG_A}" "$ALICE" -d '[]'
rq "missing image" PATCH "/v2/images/{MISSING}" "$ALICE" -d '[]'

echo "## tags"
rq "add" PUT "/v2/images/{IMG_A}/tags/new-tag" "$ALICE"
rq "add again" PUT "/v2/images/{IMG_A}/tags/new-tag" "$ALICE"
rq "too long" PUT "/v2/images/{IMG_A}/tags/$(printf 't%.0s' $(seq 1 256))" "$ALICE"
rq "show after" GET "/v2/images/{IMG_A}" "$ALICE"
rq "delete" DELETE "/v2/images/{IMG_A}/tags/new-tag" "$ALICE"
rq "delete missing" DELETE "/v2/images/{IMG_A}/tags/new-tag" "$ALICE"
rq "other project" PUT "/v2/images/{IMG_A}/tags/x" "$BOB"

echo "## members"
rq "add projB" POST "/v2/images/{IMG_A}/members" "$ALICE" -d '{"member":"projB"}'
rq "add projB again" POST "/v2/images/{IMG_A}/members" "$ALICE" -d '{"member":"projB"}'
rq "add projC" POST "/v2/images/{IMG_A}/members" "$ALICE" -d '{"member":"projC"}'
rq "bad body" POST "/v2/images/{IMG_A}/members" "$ALICE" -d '{}'
rq "list (owner)" GET "/v2/images/{IMG_A}/members" "$ALICE"
rq "list (member)" GET "/v2/images/{IMG_A}/members" "$BOB"
rq "show (member)" GET "/v2/images/{IMG_A}/members/projB" "$BOB"
rq "show other member" GET "/v2/images/{IMG_A}/members/projC" "$BOB"
rq "image, member pending" GET "/v2/images/{IMG_A}" "$BOB"
rq "list, member pending" GET "/v2/images" "$BOB"
rq "list pending shared" GET "/v2/images?visibility=shared&member_status=pending" "$BOB"
rq "accept" PUT "/v2/images/{IMG_A}/members/projB" "$BOB" -d '{"status":"accepted"}'
rq "list, member accepted" GET "/v2/images" "$BOB"
rq "bad status" PUT "/v2/images/{IMG_A}/members/projB" "$BOB" -d '{"status":"maybe"}'
rq "owner sets status" PUT "/v2/images/{IMG_A}/members/projB" "$ALICE" -d '{"status":"accepted"}'
rq "reject" PUT "/v2/images/{IMG_A}/members/projC" "$CAROL" -d '{"status":"rejected"}'
rq "member adds member" POST "/v2/images/{IMG_A}/members" "$BOB" -d '{"member":"projC"}'
rq "member of nothing" GET "/v2/images/{IMG_A}/members/projB" "$CAROL"
rq "private image" POST "/v2/images/{IMG_B}/members" "$BOB" -d '{"member":"projA"}'
rq "public image" POST "/v2/images/{IMG_P}/members" "$ADMIN" -d '{"member":"projA"}'
rq "not visible" POST "/v2/images/{IMG_B}/members" "$ALICE" -d '{"member":"projA"}'
rq "missing member" GET "/v2/images/{IMG_A}/members/projZ" "$ALICE"
rq "delete (owner)" DELETE "/v2/images/{IMG_A}/members/projC" "$ALICE"
rq "delete again" DELETE "/v2/images/{IMG_A}/members/projC" "$ALICE"
rq "delete by member" DELETE "/v2/images/{IMG_A}/members/projB" "$BOB"

echo "## deactivate / reactivate"
rq "queued image, member" POST "/v2/images/{IMG_A}/actions/deactivate" "$ALICE"
rq "queued image, admin" POST "/v2/images/{IMG_A}/actions/deactivate" "$ADMIN"
rq "reactivate queued" POST "/v2/images/{IMG_A}/actions/reactivate" "$ADMIN"
rq "missing image" POST "/v2/images/{MISSING}/actions/deactivate" "$ADMIN"
rq "unknown action" POST "/v2/images/{IMG_A}/actions/explode" "$ADMIN"

echo "## delete"
rq "protected" DELETE "/v2/images/{IMG_X}" "$ALICE"
rq "protected, html" DELETE "/v2/images/{IMG_X}" "$ALICE" -a text/html
rq "protected, no Accept" DELETE "/v2/images/{IMG_X}" "$ALICE" -a none
rq "unprotect" PATCH "/v2/images/{IMG_X}" "$ALICE" -d '[{"op":"replace","path":"/protected","value":false}]'
rq "other project" DELETE "/v2/images/{IMG_X}" "$BOB"
rq "delete" DELETE "/v2/images/{IMG_X}" "$ALICE"
rq "show deleted" GET "/v2/images/{IMG_X}" "$ALICE"
rq "delete again" DELETE "/v2/images/{IMG_X}" "$ALICE"
rq "no token" DELETE "/v2/images/{IMG_A}" -
rq "re-create a deleted id" POST /v2/images "$ALICE" -d '{"id":"{IMG_X}"}'
rq "list after delete" GET /v2/images "$ALICE"

echo
echo "## summary"
echo "$N requests: $N_SAME same, $N_VALUES same statuses and shapes but other values, $((N_STATUS + N_SHAPE)) mismatches ($N_STATUS status, $N_SHAPE shape/headers)"
for m in "${MISMATCHES[@]}"; do echo "  $m"; done
exit 0
