#!/usr/bin/env bash
# Sends the same metadata definitions (metadefs) requests to imaged and to a
# real Glance 25.1 (the peer under ../shared/peers/glance) and reports, for
# each request, both HTTP statuses and a normalised diff of the answers (as
# scripts/compare-glance.sh does: selected headers, the body's shape and
# values; ids, timestamps, request ids and host:port masked).
#
# It is a report: it always exits 0 and ends with a summary count of mismatches.
#
# Both servers use Glance's secure RBAC defaults (metadef writes admin-only,
# reads by visibility). The peer's fakeauth reads a token as
# user:project:roles; imaged gets a tokens file with the same strings.
#
# Settings (environment):
#   COMPARE_IMAGED_PORT (9362)  COMPARE_GLANCE_PORT (9361)
#   COMPARE_IMAGED_URL an imaged that is already running (it must know the tokens below)
#   COMPARE_GLANCE_URL a Glance peer that is already running (secure RBAC, fakeauth;
#                      its metadefs must be empty of the namespaces used here)
#   COMPARE_MAX_DIFF   diff lines printed per request (12)
#   IMAGED_BIN         use this imaged binary instead of building one
#   GLANCE_PEER_DIR    the peer's scripts (default: ../shared/peers/glance next to the repo)
# Raw answers: bench/results/compare-metadefs-<timestamp>/ (git-ignored).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
IPORT=${COMPARE_IMAGED_PORT:-9362}
GPORT=${COMPARE_GLANCE_PORT:-9361}
PEER_DIR=${GLANCE_PEER_DIR:-$ROOT/../shared/peers/glance}
MAXD=${COMPARE_MAX_DIFF:-12}
OUT=$ROOT/bench/results/compare-metadefs-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$OUT"

for t in curl jq go; do command -v "$t" >/dev/null || { echo "compare: missing $t" >&2; exit 0; }; done
if [ -z "${COMPARE_GLANCE_URL:-}" ] && [ ! -x "$PEER_DIR/start.sh" ]; then
  echo "compare: no Glance peer at $PEER_DIR; nothing to compare against." >&2
  exit 0
fi

# --- personas (the same token strings on both servers) ---------------------
ADMIN="admin:admin:admin"
ALICE="alice:projA:member,reader"
BOB="bob:projB:member,reader"
CAROL="carol:projC:member,reader"
MEMONLY="mem:projA:member"
cat >"$OUT/tokens.yaml" <<EOF
tokens:
  - {token: "$ADMIN", user_id: admin, project_id: admin, roles: [admin]}
  - {token: "$ALICE", user_id: alice, project_id: projA, roles: [member, reader]}
  - {token: "$BOB", user_id: bob, project_id: projB, roles: [member, reader]}
  - {token: "$CAROL", user_id: carol, project_id: projC, roles: [member, reader]}
  - {token: "$MEMONLY", user_id: mem, project_id: projA, roles: [member]}
EOF
who() { case $1 in "$ADMIN") echo admin ;; "$ALICE") echo alice ;; "$BOB") echo bob ;; "$CAROL") echo carol ;; "$MEMONLY") echo "member only" ;; -) echo "no token" ;; *) echo "$1" ;; esac; }

# --- start both --------------------------------------------------------------
IMAGED_PID="" GLANCE_STARTED=""
GLANCE_ENV=(GLANCE_PEER_PORT="$GPORT" GLANCE_PEER_DATA="$OUT/glance-data" GLANCE_PEER_AUTH=fakeauth GLANCE_PEER_RBAC=secure GLANCE_PEER_WORKERS=1)
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
    --tokens-file "$OUT/tokens.yaml" --policy secure >"$OUT/imaged.log" 2>&1 &
  IMAGED_PID=$!
fi
GURL=${COMPARE_GLANCE_URL:-http://127.0.0.1:$GPORT}
if [ -z "${COMPARE_GLANCE_URL:-}" ]; then
  if ! env "${GLANCE_ENV[@]}" GLANCE_PEER_FRESH=1 "$PEER_DIR/start.sh" >"$OUT/glance-start.log" 2>&1; then
    echo "compare: the Glance peer did not start: $(tail -2 "$OUT/glance-start.log")" >&2; exit 0
  fi
  GLANCE_STARTED=1
fi
wait_up "$IURL" || { echo "compare: imaged did not start: $(tail -3 "$OUT/imaged.log")" >&2; exit 0; }
declare -A URL=([imaged]="$IURL" [glance]="$GURL")

# shellcheck source=lib/compare-driver.sh
. "$ROOT/scripts/lib/compare-driver.sh"

echo "# imaged (${IURL#http://}) vs Glance 25.1 peer (${GURL#http://}), secure RBAC; raw: ${OUT#"$ROOT"/}"
echo "# columns: n, method, statuses, verdict (STATUS/SHAPE = mismatch, values = same keys and types, other values), path"
NS=/v2/metadefs/namespaces

echo "## schemas"
for s in namespace namespaces object objects property properties tag tags resource_type resource_types; do
  rq "" GET /v2/schemas/metadefs/$s "$ALICE"
done

echo "## namespaces: create"
rq "empty list" GET $NS "$ADMIN"
rq "resource types, none yet" GET /v2/metadefs/resource_types "$ADMIN"
rq "full, public, protected" POST $NS "$ADMIN" -d '{"namespace":"CMP::Pub","display_name":"Public one","description":"d","visibility":"public","protected":true,"resource_type_associations":[{"name":"OS::Glance::Image","prefix":"hw_"},{"name":"OS::Cinder::Volume","prefix":"hw_","properties_target":"image"}],"properties":{"cpu_policy":{"title":"CPU policy","type":"string","enum":["shared","dedicated"],"default":"shared"}},"objects":[{"name":"Watchdog","description":"w","required":["action"],"properties":{"action":{"title":"Action","type":"string","enum":["reset","none"]}}}],"tags":[{"name":"t1"},{"name":"t2"}]}'
rq "private of projA" POST $NS "$ADMIN" -d '{"namespace":"CMP::PrivA","owner":"projA","resource_type_associations":[{"name":"OS::Nova::Flavor","prefix":"hw:"}]}'
rq "minimal (private, admin)" POST $NS "$ADMIN" -d '{"namespace":"CMP::Min"}'
rq "by member" POST $NS "$ALICE" -d '{"namespace":"CMP::Nope"}'
rq "duplicate" POST $NS "$ADMIN" -d '{"namespace":"CMP::Min"}'
rq "no namespace" POST $NS "$ADMIN" -d '{"display_name":"x"}'
rq "bad visibility" POST $NS "$ADMIN" -d '{"namespace":"CMP::X","visibility":"shared"}'
rq "protected as string" POST $NS "$ADMIN" -d '{"namespace":"CMP::X","protected":"yes"}'
rq "unknown attribute" POST $NS "$ADMIN" -d '{"namespace":"CMP::X","colour":"red"}'
rq "read-only self" POST $NS "$ADMIN" -d '{"namespace":"CMP::X","self":"/x"}'
rq "name too long" POST $NS "$ADMIN" -d "{\"namespace\":\"$(printf 'n%.0s' $(seq 1 81))\"}"
rq "property without title" POST $NS "$ADMIN" -d '{"namespace":"CMP::X","properties":{"p":{"type":"string"}}}'
rq "invalid JSON" POST $NS "$ADMIN" -d '{"namespace":'
rq "JSON list" POST $NS "$ADMIN" -d '[]'
rq "no body" POST $NS "$ADMIN"

echo "## namespaces: show and list"
rq "show (admin)" GET $NS/CMP::Pub "$ADMIN"
rq "show public (alice)" GET $NS/CMP::Pub "$ALICE"
rq "show with resource_type prefix" GET "$NS/CMP::Pub?resource_type=OS::Glance::Image" "$ADMIN"
rq "show own private (alice)" GET $NS/CMP::PrivA "$ALICE"
rq "show other's private (bob)" GET $NS/CMP::PrivA "$BOB"
rq "show public, member without reader" GET $NS/CMP::Pub "$MEMONLY"
rq "show missing" GET $NS/CMP::Missing "$ADMIN"
rq "list (admin)" GET $NS "$ADMIN"
rq "list (alice)" GET $NS "$ALICE"
rq "list (bob)" GET $NS "$BOB"
rq "list, member without reader" GET $NS "$MEMONLY"
rq "limit=1" GET "$NS?limit=1" "$ADMIN"
rq "limit=1, marker" GET "$NS?limit=1&marker=CMP::Min" "$ADMIN"
rq "unknown marker" GET "$NS?marker=CMP::Missing" "$ADMIN"
rq "marker first, extra parameter" GET "$NS?marker=CMP::Min&limit=1&sort_dir=desc&foo=1" "$ADMIN"
rq "limit=0" GET "$NS?limit=0" "$ADMIN"
rq "marker not visible" GET "$NS?marker=CMP::PrivA" "$BOB"
rq "limit=1 as bob" GET "$NS?limit=1&sort_key=namespace&sort_dir=asc" "$BOB"
rq "sort_key=namespace asc" GET "$NS?sort_key=namespace&sort_dir=asc" "$ADMIN"
rq "bad sort_dir" GET "$NS?sort_dir=up" "$ADMIN"
rq "visibility=public" GET "$NS?visibility=public" "$ADMIN"
rq "visibility=private" GET "$NS?visibility=private" "$ALICE"
rq "bad visibility" GET "$NS?visibility=shared" "$ADMIN"
rq "resource_types filter" GET "$NS?resource_types=OS::Nova::Flavor" "$ADMIN"
rq "resource_types, two" GET "$NS?resource_types=OS::Nova::Flavor,OS::Glance::Image&sort_key=namespace&sort_dir=asc" "$ADMIN"
rq "limit=-1" GET "$NS?limit=-1" "$ADMIN"
rq "resource types" GET /v2/metadefs/resource_types "$ALICE"

echo "## namespaces: update"
rq "rename and change" PUT $NS/CMP::Min "$ADMIN" -d '{"namespace":"CMP::Min2","description":"new","visibility":"public"}'
rq "by member" PUT $NS/CMP::Pub "$ALICE" -d '{"namespace":"CMP::Pub"}'
rq "other's private, by member" PUT $NS/CMP::PrivA "$BOB" -d '{"namespace":"CMP::PrivA"}'
rq "missing" PUT $NS/CMP::Missing "$ADMIN" -d '{"namespace":"CMP::Missing"}'
rq "to an existing name" PUT $NS/CMP::Min2 "$ADMIN" -d '{"namespace":"CMP::Pub"}'
rq "bad body" PUT $NS/CMP::Min2 "$ADMIN" -d '{"visibility":"public"}'

echo "## objects"
rq "create" POST $NS/CMP::Pub/objects "$ADMIN" -d '{"name":"Obj2","properties":{"size":{"title":"Size","type":"integer","minimum":1}}}'
rq "create duplicate" POST $NS/CMP::Pub/objects "$ADMIN" -d '{"name":"Obj2"}'
rq "create by member" POST $NS/CMP::Pub/objects "$ALICE" -d '{"name":"Obj3"}'
rq "create without name" POST $NS/CMP::Pub/objects "$ADMIN" -d '{"description":"x"}'
rq "create in missing namespace" POST $NS/CMP::Missing/objects "$ADMIN" -d '{"name":"x"}'
rq "list" GET $NS/CMP::Pub/objects "$ALICE"
rq "list, other's private" GET $NS/CMP::PrivA/objects "$BOB"
rq "show" GET $NS/CMP::Pub/objects/Watchdog "$ALICE"
rq "show missing" GET $NS/CMP::Pub/objects/Nope "$ALICE"
rq "update" PUT $NS/CMP::Pub/objects/Obj2 "$ADMIN" -d '{"name":"Obj3","description":"renamed","required":["size"]}'
rq "update by member" PUT $NS/CMP::Pub/objects/Obj3 "$ALICE" -d '{"name":"Obj3"}'
rq "show renamed" GET $NS/CMP::Pub/objects/Obj3 "$ADMIN"
rq "delete in protected namespace" DELETE $NS/CMP::Pub/objects/Obj3 "$ADMIN"
rq "create in private" POST $NS/CMP::PrivA/objects "$ADMIN" -d '{"name":"PO"}'
rq "delete" DELETE $NS/CMP::PrivA/objects/PO "$ADMIN"
rq "delete again" DELETE $NS/CMP::PrivA/objects/PO "$ADMIN"

echo "## properties"
rq "create" POST $NS/CMP::Pub/properties "$ADMIN" -d '{"name":"cores","title":"Cores","type":"integer","minimum":1,"maximum":64}'
rq "create duplicate" POST $NS/CMP::Pub/properties "$ADMIN" -d '{"name":"cores","title":"Cores","type":"integer"}'
rq "create without type" POST $NS/CMP::Pub/properties "$ADMIN" -d '{"name":"x","title":"X"}'
rq "create bad type" POST $NS/CMP::Pub/properties "$ADMIN" -d '{"name":"x","title":"X","type":"float"}'
rq "create by member" POST $NS/CMP::Pub/properties "$ALICE" -d '{"name":"x","title":"X","type":"string"}'
rq "list" GET $NS/CMP::Pub/properties "$ALICE"
rq "show" GET $NS/CMP::Pub/properties/cpu_policy "$ALICE"
rq "show prefixed" GET "$NS/CMP::Pub/properties/hw_cpu_policy?resource_type=OS::Glance::Image" "$ALICE"
rq "show missing" GET $NS/CMP::Pub/properties/nope "$ALICE"
rq "update" PUT $NS/CMP::Pub/properties/cores "$ADMIN" -d '{"name":"threads","title":"Threads","type":"integer"}'
rq "delete in protected namespace" DELETE $NS/CMP::Pub/properties/threads "$ADMIN"
rq "create in private" POST $NS/CMP::PrivA/properties "$ADMIN" -d '{"name":"pp","title":"PP","type":"boolean"}'
rq "delete" DELETE $NS/CMP::PrivA/properties/pp "$ADMIN"
rq "delete missing" DELETE $NS/CMP::PrivA/properties/pp "$ADMIN"

echo "## tags"
rq "create one" POST $NS/CMP::Pub/tags/t3 "$ADMIN"
rq "create one again" POST $NS/CMP::Pub/tags/t3 "$ADMIN"
rq "create one by member" POST $NS/CMP::Pub/tags/t9 "$ALICE"
rq "list" GET $NS/CMP::Pub/tags "$ALICE"
rq "show" GET $NS/CMP::Pub/tags/t3 "$ALICE"
rq "show missing" GET $NS/CMP::Pub/tags/nope "$ALICE"
rq "rename" PUT $NS/CMP::Pub/tags/t3 "$ADMIN" -d '{"name":"t4"}'
rq "batch, append" POST $NS/CMP::Pub/tags "$ADMIN" -d '{"tags":[{"name":"a1"},{"name":"a2"}]}' -t application/json
rq "list after append" GET $NS/CMP::Pub/tags "$ADMIN"
rq "batch, duplicate in request" POST $NS/CMP::Pub/tags "$ADMIN" -d '{"tags":[{"name":"d"},{"name":"d"}]}'
rq "batch, no tags key" POST $NS/CMP::Pub/tags "$ADMIN" -d '{"names":[]}'
rq "batch, replace" POST $NS/CMP::PrivA/tags "$ADMIN" -d '{"tags":[{"name":"r1"},{"name":"r2"}]}'
rq "delete one" DELETE $NS/CMP::PrivA/tags/r1 "$ADMIN"
rq "delete in protected namespace" DELETE $NS/CMP::Pub/tags/t4 "$ADMIN"
rq "delete all in protected" DELETE $NS/CMP::Pub/tags "$ADMIN"
rq "delete all" DELETE $NS/CMP::PrivA/tags "$ADMIN"
rq "list after delete all" GET $NS/CMP::PrivA/tags "$ALICE"

echo "## resource type associations"
rq "list" GET $NS/CMP::Pub/resource_types "$ALICE"
rq "associate" POST $NS/CMP::PrivA/resource_types "$ADMIN" -d '{"name":"OS::Glance::Image","prefix":"img_"}'
rq "associate again" POST $NS/CMP::PrivA/resource_types "$ADMIN" -d '{"name":"OS::Glance::Image"}'
rq "associate by member" POST $NS/CMP::PrivA/resource_types "$ALICE" -d '{"name":"OS::Nova::Server"}'
rq "associate without name" POST $NS/CMP::PrivA/resource_types "$ADMIN" -d '{"prefix":"x"}'
rq "all resource types" GET /v2/metadefs/resource_types "$ADMIN"
rq "dissociate" DELETE $NS/CMP::PrivA/resource_types/OS::Glance::Image "$ADMIN"
rq "dissociate again" DELETE $NS/CMP::PrivA/resource_types/OS::Glance::Image "$ADMIN"
rq "dissociate in protected" DELETE $NS/CMP::Pub/resource_types/OS::Glance::Image "$ADMIN"

echo "## missing namespaces, odd requests"
for kind in objects properties tags resource_types; do
  rq "list in missing namespace" GET $NS/CMP::Nope/$kind "$ADMIN"
done
rq "delete object in missing namespace" DELETE $NS/CMP::Nope/objects/x "$ADMIN"
rq "delete tags of missing namespace" DELETE $NS/CMP::Nope/tags "$ADMIN"
rq "create tag in missing namespace" POST $NS/CMP::Nope/tags/x "$ADMIN"
rq "tag name too long" POST "$NS/CMP::PrivA/tags/$(printf 't%.0s' $(seq 1 81))" "$ADMIN"
rq "rename missing tag" PUT $NS/CMP::PrivA/tags/nope "$ADMIN" -d '{"name":"y"}'
rq "tag update without name" PUT $NS/CMP::PrivA/tags/nope "$ADMIN" -d '{}'
rq "association name too long" POST $NS/CMP::PrivA/resource_types "$ADMIN" -d "{\"name\":\"$(printf 'r%.0s' $(seq 1 81))\"}"
rq "numeric default" POST $NS/CMP::PrivA/properties "$ADMIN" -d '{"name":"d","title":"D","type":"integer","default":5}'
rq "show numeric default" GET $NS/CMP::PrivA/properties/d "$ALICE"
rq "unknown property attribute" POST $NS/CMP::PrivA/objects "$ADMIN" -d '{"name":"o","properties":{"p":{"title":"P","type":"string","foo":1}}}'
rq "prefix of a missing association" GET "$NS/CMP::PrivA/properties/xd?resource_type=OS::Glance::Image" "$ALICE"
rq "duplicate tags in a new namespace" POST $NS "$ADMIN" -d '{"namespace":"CMP::Dup","tags":[{"name":"a"},{"name":"a"}]}'
rq "the failed namespace is gone" GET $NS/CMP::Dup "$ADMIN"

echo "## delete"
rq "delete all objects, protected" DELETE $NS/CMP::Pub/objects "$ADMIN"
rq "delete protected" DELETE $NS/CMP::Pub "$ADMIN"
rq "delete by member" DELETE $NS/CMP::PrivA "$ALICE"
rq "delete other's private by member" DELETE $NS/CMP::PrivA "$BOB"
rq "unprotect" PUT $NS/CMP::Pub "$ADMIN" -d '{"namespace":"CMP::Pub","visibility":"public","protected":false}'
rq "delete all objects" DELETE $NS/CMP::Pub/objects "$ADMIN"
rq "delete all properties" DELETE $NS/CMP::Pub/properties "$ADMIN"
rq "show emptied" GET $NS/CMP::Pub "$ADMIN"
rq "delete" DELETE $NS/CMP::Pub "$ADMIN"
rq "delete again" DELETE $NS/CMP::Pub "$ADMIN"
rq "delete private" DELETE $NS/CMP::PrivA "$ADMIN"
rq "delete renamed" DELETE $NS/CMP::Min2 "$ADMIN"
rq "list at the end" GET $NS "$ADMIN"

echo
echo "## summary"
echo "$N requests: $N_SAME same, $N_VALUES same statuses and shapes but other values, $((N_STATUS + N_SHAPE)) mismatches ($N_STATUS status, $N_SHAPE shape/headers)"
for m in "${MISMATCHES[@]}"; do echo "  $m"; done
exit 0
