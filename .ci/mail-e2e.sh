#!/usr/bin/env bash
# The email filter end to end behind a real Postfix (issue 21): swaks -> Postfix (its
# smtpd proxies each message to Hallpass before queueing it: smtpd_proxy_filter) ->
# Hallpass -> Postfix's re-injection listener -> Postfix's queue -> relayhost, a Python
# aiosmtpd sink writing a Maildir. Everything listens on free loopback ports with a
# temporary Postfix configuration directory (`postfix -c DIR`), so the system's own
# Postfix, if any, is not touched. Needs: postfix, swaks, python3-aiosmtpd, and a built
# hallpass (HALLPASS_BIN, default target/release/hallpass, else target/debug/hallpass),
# and saslpasswd2 (sasl2-bin) for the one SASL login.
#
# Checks: a normal message from outside is delivered with the external-sender banner;
# an .exe renamed .pdf, a zip holding a .scr, a subject with an NI number and a blocked
# sender are refused in the SMTP session with the clause; a class list of pupils' dates
# of birth to an outside address is refused as bulk personal data, and the same list in
# an encrypted zip is delivered; abusive language from a student is held and raises an
# alert, and so is abusive language from a student logged in to Postfix (SASL) under a
# teacher's address, as the student (Hallpass reads the login from Postfix's Received
# header); a burst of 200 messages from one student is limited to the policy's 30 an hour;
# a message sent while the sink is down waits in Postfix's queue and is delivered once
# when the sink is back, and journaled once.
#
# The same decisions as a milter (Postfix smtpd_milters -> Hallpass --milter-listen):
# Postfix keeps the conversation and the delivery. An inbound message is delivered with
# the banner Hallpass put in, an .exe renamed .pdf is refused with the clause in
# Postfix's reply, abusive language from a student logged in (SASL; the login comes as
# the {auth_authen} macro) is accepted by Postfix, dropped from its queue and held in
# Hallpass's quarantine as the student.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${HALLPASS_BIN:-}"
if [ -z "$bin" ]; then
    if [ -x target/release/hallpass ]; then bin=target/release/hallpass; else bin=target/debug/hallpass; fi
fi
for tool in postfix swaks saslpasswd2 /usr/bin/python3 "$bin"; do
    command -v "$tool" >/dev/null || { echo "mail-e2e: $tool is missing"; exit 1; }
done
/usr/bin/python3 -c 'import aiosmtpd' || { echo "mail-e2e: python3-aiosmtpd is missing"; exit 1; }

work=$(mktemp -d)
pf="$work/postfix"
fixtures=crates/mail/tests/fixtures
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p_smtpd=$(free_port); p_filter=$(free_port); p_reinject=$(free_port); p_sink=$(free_port)
p_dns=$(free_port); p_admin=$(free_port); p_milter=$(free_port); p_milter_front=$(free_port)

pids=()
sink_pid=
cleanup() {
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
    postfix -c "$pf" stop >/dev/null 2>&1 || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${KEEP:-}" != 1 ]; then rm -rf "$work"; else echo "mail-e2e: kept $work"; fi
}
trap cleanup EXIT

# The sink: every message Postfix relays to it, one file each.

start_sink() {
    /usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$p_sink" -c aiosmtpd.handlers.Mailbox "$work/maildir" &
    sink_pid=$!
}
start_sink

# The roster: the mail filter knows people by their addresses.
printf '%s\n' "username,display_name,role,year_group,form,email,mis_id,groups" \
    "t.teacher,Tess Teacher,teacher,,,teacher@wcs.london,T1," \
    "s.student,Sam Student,student,9,9B,sam.student@wcs.london,S1," \
    "b.student,Ben Student,student,9,9B,ben.student@wcs.london,S2," \
    "c.student,Cat Student,student,8,8A,cat.student@wcs.london,S3," >"$work/roster.csv"
"$bin" people import --data-dir "$work/data" "$work/roster.csv" >/dev/null

# Hallpass's email filter only (no console, block page or proxy); DNS on a free port.
# Postfix writes the SASL login into the Received header it adds: Hallpass believes it.
printf '%s\n' "version = 1" "[mail]" "authenticated_header = true" >"$work/hallpass.toml"
"$bin" serve --config "$work/hallpass.toml" --policy examples/policies/wcs.toml --data-dir "$work/data" \
    --dns-listen "127.0.0.1:$p_dns" --admin-listen "127.0.0.1:$p_admin" --upstream 127.0.0.1:9 \
    --no-web --no-portal --no-proxy \
    --smtp-listen "127.0.0.1:$p_filter" --smtp-next-hop "127.0.0.1:$p_reinject" \
    --milter-listen "127.0.0.1:$p_milter" \
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
# SASL logins on the public listener (Cyrus, with a sasldb of one student), written into
# the Received header Postfix adds (smtpd_sasl_authenticated_header) for Hallpass.
mkdir -p "$pf/sasl"
printf '%s\n' "pwcheck_method: auxprop" "auxprop_plugin: sasldb" "mech_list: PLAIN LOGIN" \
    "sasldb_path: $work/sasldb2" >"$pf/sasl/smtpd.conf"
echo "cats-password" | saslpasswd2 -p -c -f "$work/sasldb2" -u wcs.london c.student
chown postfix "$work/sasldb2"
postconf -c "$pf" "cyrus_sasl_config_path = $pf/sasl"
postconf -c "$pf" -P "127.0.0.1:$p_smtpd/inet/smtpd_sasl_auth_enable=yes" \
    "127.0.0.1:$p_smtpd/inet/smtpd_sasl_type=cyrus" \
    "127.0.0.1:$p_smtpd/inet/smtpd_sasl_path=smtpd" \
    "127.0.0.1:$p_smtpd/inet/smtpd_sasl_local_domain=wcs.london" \
    "127.0.0.1:$p_smtpd/inet/smtpd_sasl_security_options=noanonymous" \
    "127.0.0.1:$p_smtpd/inet/smtpd_sasl_authenticated_header=yes"
# A second public listener asks Hallpass as a milter instead (same SASL set-up).
postconf -c "$pf" -M "127.0.0.1:$p_milter_front/inet = 127.0.0.1:$p_milter_front inet n - n - - smtpd"
postconf -c "$pf" -P "127.0.0.1:$p_milter_front/inet/smtpd_milters=inet:127.0.0.1:$p_milter" \
    "127.0.0.1:$p_milter_front/inet/milter_default_action=tempfail" \
    "127.0.0.1:$p_milter_front/inet/smtpd_sasl_auth_enable=yes" \
    "127.0.0.1:$p_milter_front/inet/smtpd_sasl_type=cyrus" \
    "127.0.0.1:$p_milter_front/inet/smtpd_sasl_path=smtpd" \
    "127.0.0.1:$p_milter_front/inet/smtpd_sasl_local_domain=wcs.london" \
    "127.0.0.1:$p_milter_front/inet/smtpd_sasl_security_options=noanonymous"
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
wait_port "$p_milter" "hallpass milter"
wait_port "$p_smtpd" postfix
wait_port "$p_milter_front" postfix

failures=0
send() { swaks --server 127.0.0.1 --port "${port:-$p_smtpd}" --helo client.example --timeout 60 "$@" 2>&1 || true; }
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

# Read-only queries of Hallpass's database (SQLite), with Python's sqlite3.
db() { /usr/bin/python3 -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=10)
for row in c.execute(sys.argv[2]): print("|".join(str(v) for v in row))' "$work/data/hallpass.db" "$1"; }
# The query's first non-empty answer within 10 s (what a follower writes comes later).
db_eventually() {
    local got=
    for _ in $(seq 1 100); do
        got=$(db "$1" 2>/dev/null || true)
        [ -n "$got" ] && break
        sleep 0.1
    done
    printf '%s' "$got"
}
arrived_count() { find "$work/maildir" -type f -path '*/new/*' 2>/dev/null | wc -l; }
wait_arrived() { for _ in $(seq 1 600); do [ "$(arrived_count)" -ge "$1" ] && return 0; sleep 0.1; done; return 1; }
check() { # NAME COMMAND...
    local name=$1; shift
    if "$@"; then echo "ok   $name"; else echo "FAIL $name"; failures=$((failures + 1)); fi
}
# The delivered message with SUBJECT has the banner line, the header and its own TEXT.
check_banner() { # NAME SUBJECT TEXT
    local file
    file=$(grep -l "Subject: $2" "$work"/maildir/new/* 2>/dev/null || true)
    if [ -n "$file" ] && grep -q "^CAUTION: this email came from outside WCS" "$file" \
        && grep -q "^X-Hallpass-External-Sender:" "$file" && grep -q "$3" "$file"; then
        echo "ok   $1 carries the external-sender banner"
    else
        echo "FAIL $1 has no banner"; cat "$file" 2>/dev/null | head -30; failures=$((failures + 1))
    fi
}

# Postfix queued the two accepted messages and relays them to the sink.
wait_arrived 2 || true
check "two messages reached the sink through Postfix ($(arrived_count))" test "$(arrived_count)" = 2

# Abusive language from a student: held, and the safeguarding follower raises an alert.
t=$(send --from sam.student@wcs.london --to alex@wcs.london --header "Subject: hey" --body "you fucking idiot, go fuck yourself")
expect "abusive language from a student" "<-  250 2.6.0 Held for review" "" "$t"
alerted=$(db_eventually "SELECT person, theme, route FROM alerts")
check "the held message raised an alert ($alerted)" \
    test "$alerted" = "s.student|mail-student-abusive-language|head_of_year"
check "the held message is in the quarantine" \
    test "$(db "SELECT count(*) FROM mail_quarantine WHERE status = 'held'")" = 1

# A student logged in to Postfix (SASL) who puts a teacher's address in MAIL FROM is
# still the student: Postfix names the login in its Received header, Hallpass holds it.
t=$(send --auth PLAIN --auth-user c.student --auth-password cats-password \
    --from teacher@wcs.london --to alex@wcs.london --header "Subject: hey" --body "you fucking idiot")
expect "abusive language from a logged-in student under a teacher's address" "<-  250 2.6.0 Held for review" "" "$t"
check "held as the student who logged in" \
    test "$(db "SELECT person FROM mail_quarantine WHERE sender = 'teacher@wcs.london'")" = c.student
alerted=$(db_eventually "SELECT person || '|' || theme FROM alerts WHERE person = 'c.student'")
check "and raised an alert for the student ($alerted)" \
    test "$alerted" = "c.student|mail-student-abusive-language"

# The milter: Postfix asks Hallpass at the end of each message and delivers itself.
port=$p_milter_front
before=$(arrived_count)
t=$(send --from parent@gmail.com --to office@wcs.london --header "Subject: Milter inbound" --body "Ben has a cold.")
expect "milter: normal inbound message" "<-  250" "" "$t"
t=$(send --from teacher@wcs.london --to parent@gmail.com --data "@$fixtures/exe-as-pdf.eml")
expect "milter: .exe renamed .pdf" "<** 550 5.7.1" "[wcs 3.2.9, rule mail-executables]" "$t"
t=$(send --auth PLAIN --auth-user c.student --auth-password cats-password \
    --from teacher@wcs.london --to alex@wcs.london --header "Subject: milter hey" --body "you fucking idiot")
expect "milter: abusive language from a logged-in student" "<-  250" "" "$t"
check "milter: held in Hallpass's quarantine as the student who logged in" \
    test "$(db "SELECT person FROM mail_quarantine WHERE status = 'held' AND CAST(message AS TEXT) LIKE '%Subject: milter hey%'")" = c.student
wait_arrived $((before + 1)) || true
sleep 1
check "milter: only the inbound message reached the sink ($(arrived_count) after $before)" \
    test "$(arrived_count)" = $((before + 1))
check_banner "milter: the inbound message" "Milter inbound" "Ben has a cold."
check "milter: the inbound message is journaled" \
    test "$(db "SELECT count(*) FROM mail_journal WHERE CAST(message AS TEXT) LIKE '%Subject: Milter inbound%'")" = 1
login_events() { db "SELECT count(*) FROM events WHERE kind = 'mail' AND verdict = 'quarantine' AND person = 'c.student' AND detail LIKE '%\"login\":\"c.student%'"; }
for _ in $(seq 1 50); do [ "$(login_events)" = 2 ] && break; sleep 0.1; done
check "milter: the held message is an event naming the login, as the relay's is ($(login_events) of 2)" \
    test "$(login_events)" = 2
unset port

# A burst of 200 from one student, four at a time: the first 30 go, the rest are refused.
before=$(arrived_count)
# Each swaks prints only its reply to the message, one short line (so the four do not mix).
export p_smtpd
burst=$(seq 1 200 | xargs -P 4 -I{} bash -c 'swaks --server 127.0.0.1 --port "$p_smtpd" \
    --helo pc.wcs.london --timeout 60 --from ben.student@wcs.london --to friend@wcs.london \
    --header "Subject: Burst {}" --body "spam {}" 2>&1 | awk '"'"'$0 ~ /^ -> \.$/ { getline; print; exit }'"'"'' || true)
accepted=$(printf '%s\n' "$burst" | grep -c '^<-  250 2.0.0' || true)
limited=$(printf '%s\n' "$burst" | grep -c '^<\*\* 550 5.7.1 .*\[wcs 3.2.8, rule mail-student-send-rate\]' || true)
check "a burst of 200: 30 accepted, 170 refused citing 3.2.8 (got $accepted and $limited)" \
    test "$accepted/$limited" = "30/170"
check "the 30 reached the sink" wait_arrived $((before + 30))

# The sink goes down: Postfix keeps the message in its queue (the filter has passed it)
# and delivers it once when the sink is back.
kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=
t=$(send --from teacher@wcs.london --to parent@gmail.com --header "Subject: While down" --body "Queued.")
expect "a message while the sink is down" "<-  250" "" "$t"
sleep 1
check "nothing arrived while the sink was down" test "$(arrived_count)" = $((before + 30))
start_sink
wait_port "$p_sink" sink
postqueue -c "$pf" -f
check "delivered when the sink is back" wait_arrived $((before + 31))
sleep 1
check "delivered once" test "$(grep -l 'Subject: While down' "$work"/maildir/new/* | wc -l)" = 1
check "journaled once" \
    test "$(db "SELECT count(*) FROM mail_journal WHERE CAST(message AS TEXT) LIKE '%Subject: While down%'")" = 1
check_banner "the inbound message" "Absence e2e" "Sam is ill today."

if [ "$failures" -ne 0 ]; then
    echo "mail-e2e: $failures check(s) failed"; tail -30 "$work/hallpass.log"; exit 1
fi
echo "mail-e2e: all checks passed"
