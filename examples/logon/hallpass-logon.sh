#!/bin/sh
# Tell Hallpass who is logged on at this computer, so the filter applies their policy.
# Call it from the display manager or PAM at logon and logoff (and, for long sessions,
# every few minutes with "heartbeat"):
#
#   hallpass-logon.sh logon      # POST /api/v1/sessions; keeps the session id
#   hallpass-logon.sh heartbeat  # POST /api/v1/sessions/ID/heartbeat
#   hallpass-logon.sh logoff     # DELETE /api/v1/sessions/ID (or ?ip= without an id)
#   hallpass-logon.sh declaration  # the acceptable use declaration (ICT policy 14): shows
#                                # each one the person has not accepted (GET
#                                # /api/v1/declarations/pending) and records "yes" (POST
#                                # /api/v1/declarations). Run it in the person's session
#                                # (a terminal at login); it reads the answer from stdin.
#                                # Needs jq; without it, or if they decline, the person
#                                # is asked on the first web page they open instead.
#
# Settings (environment, or /etc/hallpass/logon.conf in the same NAME=value form):
#   HALLPASS_URL         the console, e.g. https://hallpass.school.local (required)
#   HALLPASS_TOKEN       a token made with: hallpass token create --name logon --scope sessions
#   HALLPASS_TOKEN_FILE  or a file holding it (readable by root only)
#   HALLPASS_USER        default: $PAM_USER, then $USER
#   HALLPASS_IP          default: the address this computer reaches HALLPASS_URL from
#   HALLPASS_STATE       where the session id is kept (default /run/hallpass-session, or
#                        $XDG_RUNTIME_DIR/hallpass-session)
# Exits 0 when the server accepted the call, 1 otherwise (with the server's reason).
set -eu
[ -r /etc/hallpass/logon.conf ] && . /etc/hallpass/logon.conf
action=${1:-}
url=${HALLPASS_URL:?set HALLPASS_URL to the Hallpass console, e.g. https://hallpass.school.local}
url=${url%/}
token=${HALLPASS_TOKEN:-}
if [ -z "$token" ] && [ -n "${HALLPASS_TOKEN_FILE:-}" ]; then
  token=$(cat "$HALLPASS_TOKEN_FILE")
fi
[ -n "$token" ] || { echo "hallpass-logon: set HALLPASS_TOKEN or HALLPASS_TOKEN_FILE" >&2; exit 1; }
user=${HALLPASS_USER:-${PAM_USER:-${USER:-}}}
user=${user##*\\}   # DOMAIN\user -> user (the server strips it too, and @realm)
state=${HALLPASS_STATE:-${XDG_RUNTIME_DIR:-/run}/hallpass-session}
ip=${HALLPASS_IP:-}
if [ -z "$ip" ]; then
  host=$(printf '%s' "$url" | sed -e 's|^[a-z]*://||' -e 's|[/:].*||')
  target=$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR == 1 {print $1}')
  ip=$(ip -4 route get "${target:-192.0.2.1}" 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
fi
json() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }
call() { # METHOD PATH [JSON]: prints the body; fails with the server's reason
  out=$(curl -sS -X "$1" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    ${3:+-d "$3"} -w '\n%{http_code}' "$url$2") || return 1
  code=$(printf '%s' "$out" | tail -n 1)
  body=$(printf '%s' "$out" | sed '$d')
  case "$code" in
    2*) printf '%s\n' "$body" ;;
    *) echo "hallpass-logon: $1 $2: $code $body" >&2; return 1 ;;
  esac
}
case "$action" in
  logon)
    [ -n "$user" ] || { echo "hallpass-logon: no user (set HALLPASS_USER)" >&2; exit 1; }
    [ -n "$ip" ] || { echo "hallpass-logon: could not tell this computer's address (set HALLPASS_IP)" >&2; exit 1; }
    body=$(printf '{"user": "%s", "ip": "%s", "workstation": "%s"}' \
      "$(json "$user")" "$(json "$ip")" "$(json "$(hostname)")")
    id=$(call POST /api/v1/sessions "$body" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
    [ -n "$id" ] || exit 1
    umask 077
    echo "$id" >"$state"
    printf 'hallpass: %s logged on at %s (session %s)\n' "$user" "$ip" "$id"
    ;;
  heartbeat)
    id=$(cat "$state" 2>/dev/null || true)
    [ -n "$id" ] || { echo "hallpass-logon: no session to keep alive (log on first)" >&2; exit 1; }
    call POST "/api/v1/sessions/$id/heartbeat" >/dev/null
    ;;
  logoff)
    id=$(cat "$state" 2>/dev/null || true)
    if [ -n "$id" ]; then
      call DELETE "/api/v1/sessions/$id" >/dev/null || true
      rm -f "$state"
    fi
    # Whatever happened to the id, nobody stays logged on at this address.
    [ -n "$ip" ] && call DELETE "/api/v1/sessions?ip=$ip" >/dev/null
    echo "hallpass: logged off at $ip"
    ;;
  declaration)
    [ -n "$user" ] || { echo "hallpass-logon: no user (set HALLPASS_USER)" >&2; exit 1; }
    pending=$(curl -sS -G -H "Authorization: Bearer $token" --data-urlencode "user=$user" \
      -w '\n%{http_code}' "$url/api/v1/declarations/pending") || exit 1
    code=$(printf '%s' "$pending" | tail -n 1)
    pending=$(printf '%s' "$pending" | sed '$d')
    case "$code" in
      2*) ;;
      *) echo "hallpass-logon: GET /api/v1/declarations/pending: $code $pending" >&2; exit 1 ;;
    esac
    if ! command -v jq >/dev/null 2>&1; then
      [ "$pending" = "[]" ] || echo "hallpass: you have an acceptable use declaration to accept: open any web page to read and accept it"
      exit 0
    fi
    count=$(printf '%s' "$pending" | jq length)
    i=0
    while [ "$i" -lt "$count" ]; do
      item() { printf '%s' "$pending" | jq -r ".[$i].$1"; }
      document=$(item document)
      version=$(item version)
      printf '\n%s\n\n%s\n\n' "$(item title)" "$(item text)"
      printf 'Type yes to accept (version %s): ' "$version"
      read -r answer || answer=""
      case "$answer" in
        yes | YES | Yes)
          ip_field=""
          [ -z "$ip" ] || ip_field=$(printf ', "ip": "%s"' "$(json "$ip")")
          body=$(printf '{"user": "%s", "document": "%s", "version": "%s", "workstation": "%s"%s}' \
            "$(json "$user")" "$(json "$document")" "$(json "$version")" "$(json "$(hostname)")" \
            "$ip_field")
          call POST /api/v1/declarations "$body" >/dev/null || exit 1
          printf 'hallpass: %s accepted %s version %s\n' "$user" "$document" "$version"
          ;;
        *)
          echo "hallpass: not accepted: internet access stays restricted until you accept"
          exit 1
          ;;
      esac
      i=$((i + 1))
    done
    ;;
  *)
    echo "usage: hallpass-logon.sh logon|heartbeat|logoff|declaration (see the comments at the top)" >&2
    exit 2
    ;;
esac
