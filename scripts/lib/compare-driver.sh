# shellcheck shell=bash
# The request driver shared by scripts/compare-glance.sh and
# scripts/compare-metadefs.sh, sourced by them once both servers are up. It
# expects from the caller: OUT (raw answers' directory), MAXD (diff lines
# shown per request), URL[imaged] and URL[glance], and who() (a token's
# persona for the report). It defines V (values substituted for {NAME}) and
# rq, which sends one request to both servers and prints the verdict line.

# --- one request to both -----------------------------------------------------
# V[server,NAME] are values substituted for {NAME} in paths and bodies; -s NAME
# saves the answer's .id under NAME. Fixed ids make most of them the same on both.
declare -A V
for s in imaged glance; do
  V[$s,IMG_A]=aaaaaaaa-0000-4000-8000-00000000000a # alice, shared (the default)
  V[$s,IMG_B]=bbbbbbbb-0000-4000-8000-00000000000b # bob, private
  V[$s,IMG_P]=cccccccc-0000-4000-8000-00000000000c # admin, public
  V[$s,IMG_C]=dddddddd-0000-4000-8000-00000000000d # alice, community
  V[$s,IMG_X]=eeeeeeee-0000-4000-8000-00000000000e # alice, protected, deleted at the end
  V[$s,MISSING]=00000000-0000-4000-8000-000000000000
done
subst() { # $1 server $2 string
  local k str=$2
  for k in "${!V[@]}"; do [[ $k == "$1",* ]] && str=${str//\{${k#*,}\}/${V[$k]}}; done
  printf '%s' "$str"
}

# normalise FILE.h FILE.b -> lines "kind<TAB>path<TAB>type<TAB>value"
JQ_NORM='
def mask: if type == "string" then
    gsub("req-[0-9a-f-]{36}"; "<request-id>")
  | gsub("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"; "<id>")
  | gsub("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:?[0-9]{2})?"; "<time>")
  | gsub("https?://127\\.0\\.0\\.1:[0-9]+"; "<host>")
  else . end;
walk(if type == "array" and all(.[]; type != "array" and type != "object") then sort else . end)
| walk(mask)
| paths(type != "array" and type != "object" or length == 0) as $p
| getpath($p) as $v
| ["body", ($p | map(tostring) | join(".")), ($v | type), ($v | tojson)] | join("\t")'
normalise() {
  local h=$1 b=$2
  tr -d '\r' <"$h" | awk -F': ' 'tolower($1) ~ /^(content-type|location|allow|openstack-image-import-methods|x-openstack-request-id|content-range|accept-patch)$/ {
      n = tolower($1); v = substr($0, length($1) + 3)
      gsub(/req-[0-9a-f-]+/, "<request-id>", v); gsub(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/, "<id>", v)
      gsub(/https?:\/\/127\.0\.0\.1:[0-9]+/, "<host>", v)
      print "header\t" n "\tpresent\t" v }'
  if [ ! -s "$b" ]; then
    printf 'body\t\tempty\t\n'
  elif jq -e . "$b" >/dev/null 2>&1; then
    jq -r "$JQ_NORM" "$b"
  else
    # Not JSON (webob's HTML or plain-text error pages): compare the text.
    printf 'body\t\ttext\t%s\n' "$(tr -s ' \n\t' ' ' <"$b" | sed -E 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/<id>/g; s/req-<id>/<request-id>/g' | cut -c1-300)"
  fi
}

N=0 N_STATUS=0 N_SHAPE=0 N_VALUES=0 N_SAME=0
MISMATCHES=()
rq() { # label method path token [-d body] [-t content-type|none] [-a accept|none] [-s NAME]
  local label=$1 method=$2 path=$3 tok=$4; shift 4
  local body="" has_body="" ctype="" accept="application/json" save="" s
  while [ $# -gt 0 ]; do
    case $1 in
      -d) body=$2; has_body=1; shift 2 ;;
      -t) ctype=$2; shift 2 ;;
      -a) accept=$2; shift 2 ;;
      -s) save=$2; shift 2 ;;
      *) echo "rq: bad option $1" >&2; return ;;
    esac
  done
  if [ -z "$ctype" ] && [ -n "$has_body" ]; then
    case $method in PATCH) ctype=application/openstack-images-v2.1-json-patch ;; *) ctype=application/json ;; esac
  fi
  N=$((N + 1))
  local f=$OUT/$(printf '%03d' "$N")
  declare -A code
  for s in imaged glance; do
    local args=(-s -m 30 -X "$method" -D "$f-$s.h" -o "$f-$s.b" -w '%{http_code}')
    [ "$tok" != - ] && args+=(-H "X-Auth-Token: $tok")
    if [ "$accept" = none ]; then args+=(-H 'Accept:'); else args+=(-H "Accept: $accept"); fi
    if [ "$ctype" = none ]; then args+=(-H 'Content-Type:'); elif [ -n "$ctype" ]; then args+=(-H "Content-Type: $ctype"); fi
    [ -n "$has_body" ] && args+=(--data-binary "$(subst "$s" "$body")")
    code[$s]=$(curl "${args[@]}" "${URL[$s]}$(subst "$s" "$path")")
    normalise "$f-$s.h" "$f-$s.b" | LC_ALL=C sort >"$f-$s.n"
    if [ -n "$save" ]; then V[$s,$save]=$(jq -r '.id // empty' "$f-$s.b" 2>/dev/null); fi
  done
  local shape values verdict
  shape=$(diff <(cut -f1-3 "$f-imaged.n" | LC_ALL=C sort -u) <(cut -f1-3 "$f-glance.n" | LC_ALL=C sort -u) | grep '^[<>]')
  values=$(diff "$f-imaged.n" "$f-glance.n" | grep '^[<>]')
  if [ "${code[imaged]}" != "${code[glance]}" ]; then
    verdict="STATUS"; N_STATUS=$((N_STATUS + 1))
  elif [ -n "$shape" ]; then
    verdict="SHAPE"; N_SHAPE=$((N_SHAPE + 1))
  elif [ -n "$values" ]; then
    verdict="values"; N_VALUES=$((N_VALUES + 1))
  else
    verdict="same"; N_SAME=$((N_SAME + 1))
  fi
  printf '%3d %-7s imaged %s glance %s  %-6s %s %s  (%s)\n' "$N" "$method" "${code[imaged]}" "${code[glance]}" "$verdict" "$(printf '%.80s' "$path")" "${label:+- $label}" "$(who "$tok")"
  [ "$verdict" = STATUS ] || [ "$verdict" = SHAPE ] && MISMATCHES+=("$N $verdict $method $path - $label (imaged ${code[imaged]}, glance ${code[glance]})")
  if [ "$verdict" != same ]; then
    local d
    if [ -n "$shape" ]; then d=$shape; else d=$values; fi
    printf '%s\n' "$d" | sed -e 's/^< /      imaged: /' -e 's/^> /      glance: /' -e 's/\t/ /g' | cut -c1-220 | head -n "$MAXD"
    local more=$(($(printf '%s\n' "$d" | wc -l) - MAXD))
    [ "$more" -gt 0 ] && echo "      ... $more more lines ($f-*.n)"
  fi
}

