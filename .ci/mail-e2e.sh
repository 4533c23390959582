#!/usr/bin/env bash
# The email filter end to end behind a real Postfix (issue 21): swaks -> Postfix (its
# smtpd proxies each message to Hallpass before queueing it: smtpd_proxy_filter) ->
# Hallpass -> Postfix's re-injection listener -> Postfix's queue -> relayhost, a Python
# aiosmtpd sink writing a Maildir. Everything listens on free loopback ports with a
# temporary Postfix configuration directory (`postfix -c DIR`), so the system's own
# Postfix, if any, is not touched. Needs: postfix, swaks, python3-aiosmtpd, and a built
# hallpass (HALLPASS_BIN, default target/release/hallpass, else target/debug/hallpass).
#
# Checks: a normal message from outside is delivered with the external-sender banner;
# an .exe renamed .pdf, a zip holding a .scr, a subject with an NI number and a blocked
# sender are refused in the SMTP session with the clause; a class list of pupils' dates
# of birth to an outside address is refused as bulk personal data, and the same list in
# an encrypted zip is delivered.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${HALLPASS_BIN:-}"
if [ -z "$bin" ]; then
    if [ -x target/release/hallpass ]; then bin=target/release/hallpass; else bin=target/debug/hallpass; fi
fi
for tool in postfix swaks /usr/bin/python3 "$bin"; do
    command -v "$tool" >/dev/null || { echo "mail-e2e: $tool is missing"; exit 1; }
done
/usr/bin/python3 -c 'import aiosmtpd' || { echo "mail-e2e: python3-aiosmtpd is missing"; exit 1; }

work=$(mktemp -d)
pf="$work/postfix"
fixtures=crates/mail/tests/fixtures
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p_smtpd=$(free_port); p_filter=$(free_port); p_reinject=$(free_port); p_sink=$(free_port)
p_dns=$(free_port); p_admin=$(free_port)

pids=()
cleanup() {
    postfix -c "$pf" stop >/dev/null 2>&1 || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${KEEP:-}" != 1 ]; then rm -rf "$work"; else echo "mail-e2e: kept $work"; fi
}
trap cleanup EXIT

# The sink: every message Postfix relays to it, one file each.

/usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$p_sink" -c aiosmtpd.handlers.Mailbox "$work/maildir" &
pids+=($!)

# Hallpass's email filter only (no console, block page or proxy); DNS on a free port.
"$bin" serve --policy examples/policies/wcs.toml --data-dir "$work/data" \
    --dns-listen "127.0.0.1:$p_dns" --admin-listen "127.0.0.1:$p_admin" --upstream 127.0.0.1:9 \
    --no-web --no-portal --no-proxy \
    --smtp-listen "127.0.0.1:$p_filter" --smtp-next-hop "127.0.0.1:$p_reinject" \
    >"$work/hallpass.out" 2>"$work/hallpass.log" &
pids+=($!)

# Postfix in its own configuration and queue directories.
mkdir -p "$pf"
cp /etc/postfix/master.cf "$pf/master.cf"
cat >"$pf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.wcs.london
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:$p_sink
smtp_tls_security_level = none
maillog_file = $pf/maillog
maillog_file_prefixes = $pf
alias_maps =
alias_database =
biff = no
EOF
# No chroot (the queue directory is the chroot and holds no resolver files); the
# public listener on its loopback port proxies to Hallpass; the re-injection listener
# takes what Hallpass passes back.
postconf -c "$pf" -F '*/*/chroot = n'
postconf -c "$pf" -MX smtp/inet
postconf -c "$pf" -M "127.0.0.1:$p_smtpd/inet = 127.0.0.1:$p_smtpd inet n - n - - smtpd"
postconf -c "$pf" -P "127.0.0.1:$p_smtpd/inet/smtpd_proxy_filter=127.0.0.1:$p_filter" \
    "127.0.0.1:$p_smtpd/inet/smtpd_proxy_timeout=120s"
postconf -c "$pf" -M "127.0.0.1:$p_reinject/inet = 127.0.0.1:$p_reinject inet n - n - - smtpd"
postconf -c "$pf" -P "127.0.0.1:$p_reinject/inet/smtpd_proxy_filter=" \
    "127.0.0.1:$p_reinject/inet/receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters" \
    "127.0.0.1:$p_reinject/inet/smtpd_recipient_restrictions=permit_mynetworks,reject"
# Postfix's daemons run as the postfix user: they must reach their directories.
chmod 755 "$work" "$pf"
mkdir -p "$pf/queue" "$pf/data"
chown postfix "$pf/data"
postfix -c "$pf" post-install create-missing >/dev/null 2>&1 || true
# Postfix reports to stderr only on a terminal: its complaint is in the log file.
postfix -c "$pf" check || { cat "$pf/maillog" 2>/dev/null; echo "mail-e2e: postfix check failed"; exit 1; }
postfix -c "$pf" start

wait_port() {
    for _ in $(seq 1 300); do
        /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "mail-e2e: nothing listens on port $1 ($2)"; cat "$work/hallpass.log" "$pf/maillog" 2>/dev/null | tail -30; exit 1
}
wait_port "$p_sink" sink
wait_port "$p_filter" hallpass
wait_port "$p_smtpd" postfix

failures=0
send() { swaks --server 127.0.0.1 --port "$p_smtpd" --helo client.example --timeout 60 "$@" 2>&1 || true; }
# The reply to the message: the line after the lone dot.
data_reply() { awk 'found { print; exit } $0 ~ /^ -> \.$/ { found = 1 }'; }
expect() { # NAME REPLY-PREFIX TEXT-IN-REPLY TRANSCRIPT
    local reply; reply=$(printf '%s\n' "$4" | data_reply)
    if [[ "$reply" == "$2"* && "$reply" == *"$3"* ]]; then
        echo "ok   $1: $reply"
    else
        echo "FAIL $1: expected '$2...$3', got '$reply'"; printf '%s\n' "$4" | tail -20
        failures=$((failures + 1))
    fi
}

t=$(send --from parent@gmail.com --to office@wcs.london --header "Subject: Absence e2e" --body "Sam is ill today.")
expect "normal inbound message" "<-  250" "" "$t"
t=$(send --from teacher@wcs.london --to parent@gmail.com --data "@$fixtures/exe-as-pdf.eml")
expect ".exe renamed .pdf" "<** 550 5.7.1" "[wcs 3.2.9, rule mail-executables]" "$t"
t=$(send --from stranger@example.net --to office@wcs.london --data "@$fixtures/zip-scr.eml")
expect "zip holding a .scr" "<** 550 5.7.1" "[wcs 3.2.9, rule mail-executables]" "$t"
t=$(send --from teacher@wcs.london --to payroll@wcs.london --data "@$fixtures/ni-subject.eml")
expect "NI number in the subject" "<** 550 5.7.1" "[wcs 5.7, rule mail-personal-data-subject]" "$t"
t=$(send --from deals@bulk-offers.example --to office@wcs.london --data "@$fixtures/blocked-sender.eml")
expect "blocked sender" "<** 550 5.7.1" "[wcs 3.2.7, rule mail-blocked-senders]" "$t"
t=$(send --from teacher@wcs.london --to coach-company@example.com --data "@$fixtures/class-list.eml")
expect "class list to an outside address" "<** 550 5.7.1" "[wcs 3.2.1, rule mail-bulk-personal-data]" "$t"
t=$(send --from teacher@wcs.london --to coach-company@example.com --data "@$fixtures/class-list-encrypted.eml")
expect "class list in an encrypted zip" "<-  250" "" "$t"

# Postfix queued the two accepted messages and relays them to the sink.
for _ in $(seq 1 300); do
    [ "$(find "$work/maildir" -type f -path '*/new/*' | wc -l)" -ge 2 ] && break
    sleep 0.1
done
arrived=$(find "$work/maildir" -type f -path '*/new/*' | wc -l)
if [ "$arrived" -eq 2 ]; then echo "ok   two messages reached the sink through Postfix"; else
    echo "FAIL $arrived messages reached the sink (expected 2)"; tail -20 "$pf/maillog"; failures=$((failures + 1)); fi
inbound=$(grep -l "Subject: Absence e2e" "$work"/maildir/new/* 2>/dev/null || true)
if [ -n "$inbound" ] && grep -q "^CAUTION: this email came from outside WCS" "$inbound" \
    && grep -q "^X-Hallpass-External-Sender:" "$inbound" && grep -q "Sam is ill today." "$inbound"; then
    echo "ok   the inbound message carries the external-sender banner"
else
    echo "FAIL the inbound message has no banner"; cat "$inbound" 2>/dev/null | head -30; failures=$((failures + 1))
fi

if [ "$failures" -ne 0 ]; then
    echo "mail-e2e: $failures check(s) failed"; tail -30 "$work/hallpass.log"; exit 1
fi
echo "mail-e2e: all checks passed"
