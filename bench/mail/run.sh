#!/usr/bin/env bash
# Email filter benchmark (issue 21): messages/s and p50/p99 time in filter for a corpus of
# a few thousand realistic messages (bench/mail/corpus.py: text, HTML, attachments up to
# a few MB, UK NI numbers, programs renamed .pdf, zips holding a .scr, blocked senders),
# in one run, all fed by the same SMTP load generator (bench/mail/load.py, C concurrent
# connections, time in filter = from DATA's final dot to the reply). Targets, one after
# the other, all with the same private Postfix (loopback ports, `postfix -c DIR`) relaying
# to Postfix's own smtp-sink:
#
#   postfix          Postfix alone (no filter): the floor under both filtered rows
#   postfix+hallpass Postfix's smtpd_proxy_filter -> Hallpass (WCS policy) -> Postfix's
#                    re-injection listener (as .ci/mail-e2e.sh)
#   postfix+rspamd   Postfix with rspamd as its milter (proxy worker, milter = yes,
#                    self_scan), network checks off, the same checks made to reject
#   postfix+hallpass-milter  Postfix with Hallpass as its milter (`--milter-listen`,
#                    the same instance as postfix+hallpass): the set-up rspamd has
#   postfix+hallpass-nojournal  the same with `[mail] journal_days = 0`: Hallpass keeps
#                    no copy of each delivered message in its store (rspamd keeps none)
#   hallpass         the load generator straight to Hallpass, next hop smtp-sink (the
#                    filter on its own; no rspamd equivalent, it speaks milter only)
#   postfix+hallpass-milter@R, postfix+rspamd@R, postfix+hallpass@R   the filtered
#                    set-ups again at the same offered load of R messages a second
#                    (RATE, default 70% of the slowest one's rate above), paced by the
#                    load generator
#
# "cpu ms" is the whole machine's busy CPU time per message during the row (every
# process of the set-up, and the load generator, the same for all rows).
#
# Every row runs the load generator with 16 connections. Without a rate each connection
# sends its next message as soon as it has the answer (closed loop): messages/s is what
# the set-up sustains, and its time in filter is mostly the queue in front of the
# slowest process (16 connections / messages a second), so it is shown but not judged.
# Time in filter is judged at the same offered load below saturation.
#
# Floor (issue 21), judged like for like, both filters as Postfix's milter:
# postfix+hallpass-milter (journal on, as by default) msgs/s >= postfix+rspamd's, and
# at the same offered load its p99 no worse than rspamd's. The proxy-filter set-up's
# ratios are printed beside it (each smtpd line goes through two Postfix smtpd processes
# and Hallpass there, so its tail is longer). A missed floor is printed and the script
# exits 1.
#
#   bench/mail/run.sh                              # 20 s per target, 16 connections
#   DURATION=5 MESSAGES=500 bench/mail/run.sh      # a quick look
#   CORPUS=/tmp/mail-corpus bench/mail/run.sh      # keep and reuse a generated corpus
#
# Needs postfix (smtp-sink), rspamd (apt-get install when missing, as root), python3
# and a release build of hallpass (HALLPASS, default target/release/hallpass; this script
# does not build). Ports 43000-43999 (PORT_BASE, default 43100, and the next 18).
# Bounded: WARMUP + DURATION seconds per target plus start-up and queue drain (at most
# 60 s each), a few minutes in all.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/bench/mail"
HALLPASS="${HALLPASS:-$ROOT/target/release/hallpass}"
POLICY="${POLICY:-$ROOT/examples/policies/wcs.toml}"
DURATION="${DURATION:-20}"
WARMUP="${WARMUP:-3}"
CONNECTIONS="${CONNECTIONS:-16}"
MESSAGES="${MESSAGES:-3000}"
PORT_BASE="${PORT_BASE:-43100}"
WORK="${WORK:-$(mktemp -d /tmp/hallpass-mail-bench.XXXXXX)}"
CORPUS="${CORPUS:-$WORK/corpus}"
mkdir -p "$WORK"
chmod 755 "$WORK"
pf="$WORK/postfix"
rs="$WORK/rspamd"

pids=()
postfix_started=0
cleanup() {
  set +e
  [ "$postfix_started" = 1 ] && postfix -c "$pf" stop >/dev/null 2>&1
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 1
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
  # rspamd's main process takes its workers with it; a postfix master that outlived
  # `postfix stop` is killed by the pid it wrote.
  [ -f "$pf/queue/pid/master.pid" ] && kill -9 "$(tr -d ' ' <"$pf/queue/pid/master.pid")" 2>/dev/null
  [ "${KEEP:-0}" = 1 ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

need() { # command package
  command -v "$1" >/dev/null && return
  [ "$(id -u)" = 0 ] || { echo "$1 missing: apt-get install $2" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }
}
need postfix postfix
need smtp-sink postfix
need rspamd rspamd
[ -x "$HALLPASS" ] || { echo "no hallpass binary at $HALLPASS (cargo build --release -p hallpass)" >&2; exit 1; }

p_sink=$PORT_BASE
p_plain=$((PORT_BASE + 1))      # Postfix, no filter
p_front_hp=$((PORT_BASE + 2))   # Postfix -> Hallpass (smtpd_proxy_filter)
p_front_rs=$((PORT_BASE + 3))   # Postfix + rspamd milter
p_reinject=$((PORT_BASE + 4))   # Postfix's re-injection listener (Hallpass's next hop)
p_hp=$((PORT_BASE + 5))         # Hallpass behind Postfix
p_hp_direct=$((PORT_BASE + 6))  # Hallpass on its own (next hop smtp-sink)
p_milter=$((PORT_BASE + 7))     # rspamd proxy worker, milter mode
p_dns=$((PORT_BASE + 8)); p_admin=$((PORT_BASE + 9))
p_dns2=$((PORT_BASE + 10)); p_admin2=$((PORT_BASE + 11))
p_nodns=$((PORT_BASE + 12))     # nothing listens: rspamd's resolver, so no lookup leaves
p_front_hp3=$((PORT_BASE + 13)) # Postfix -> Hallpass without its journal
p_hp3=$((PORT_BASE + 14)); p_dns3=$((PORT_BASE + 15)); p_admin3=$((PORT_BASE + 16))
p_hp_milter=$((PORT_BASE + 17))   # Hallpass (hp1) as a milter
p_front_hpm=$((PORT_BASE + 18))   # Postfix + Hallpass milter
for p in $(seq "$PORT_BASE" $((PORT_BASE + 18))); do
  python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$p)) == 0)" \
    || { echo "port $p is in use (set PORT_BASE)" >&2; exit 1; }
done
wait_port() { # port name
  for _ in $(seq 1 600); do
    python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$1)))" && return
    sleep 0.1
  done
  echo "nothing listens on $1 ($2)" >&2
  tail -20 "$WORK"/*.log "$pf/maillog" "$rs/log/rspamd.log" 2>/dev/null >&2
  exit 1
}

if [ ! -f "$CORPUS/index.tsv" ]; then
  echo "== corpus: $MESSAGES messages"
  python3 "$HERE/corpus.py" "$CORPUS" "$MESSAGES"
fi
echo "== corpus: $(wc -l <"$CORPUS/index.tsv") messages, $(du -sm "$CORPUS" | cut -f1) MB;" \
  "$(cut -f2 "$CORPUS/index.tsv" | sort | uniq -c | awk '{ printf "%s %s, ", $2, $1 }' | sed 's/, $//')"

echo "== sink: smtp-sink on $p_sink"
smtp-sink -u postfix -m 256 "127.0.0.1:$p_sink" 1024 >"$WORK/sink.log" 2>&1 &
pids+=($!)

echo "== rspamd $(rspamd --version | awk '{ print $NF }') as a milter on $p_milter"
mkdir -p "$rs/local.d" "$rs/db" "$rs/run" "$rs/log"
cat >"$rs/rspamd.conf" <<CONF
# Only the proxy worker, in milter mode, scanning itself (no normal worker, no controller).
.include "\$CONFDIR/common.conf"
options {
  pidfile = "\$RUNDIR/rspamd.pid";
  .include "\$CONFDIR/options.inc"
  .include(try=true; priority=1,duplicate=merge) "\$LOCAL_CONFDIR/local.d/options.inc"
}
logging {
  type = "file";
  filename = "\$LOGDIR/rspamd.log";
  .include "\$CONFDIR/logging.inc"
}
worker "rspamd_proxy" {
  bind_socket = "127.0.0.1:$p_milter";
  milter = yes;
  timeout = 120s;
  count = 2;
  upstream "local" { default = yes; self_scan = yes; }
  discard_on_reject = false;
  quarantine_on_reject = false;
  spam_header = "X-Spam";
  reject_message = "Rejected by rspamd";
}
CONF
# No lookup leaves the machine: the resolver is a closed loopback port, and the modules
# that look things up (DNS lists, SPF/DKIM/DMARC, fuzzy, neural, Redis) are off.
cat >"$rs/local.d/options.inc" <<CONF
dns { nameserver = ["127.0.0.1:$p_nodns"]; timeout = 0.1s; retransmits = 1; }
CONF
for m in rbl surbl dkim dkim_signing arc spf dmarc asn fuzzy_check neural mx_check greylist \
  ratelimit replies rspamd_update dcc clickhouse elastic history_redis metadata_exporter \
  metric_exporter url_reputation reputation emails whitelist hfilter phishing antivirus \
  external_services bimi p0f spamassassin url_redirector aws_s3 spamtrap; do
  echo "enabled = false;" >"$rs/local.d/$m.conf"
done
# The checks Hallpass makes, as rspamd rules that reject: programs by real type or name
# (mime_types with lua_magic: .exe renamed .pdf, a .scr in a zip, double extensions), NI
# numbers in the subject or the text, and the policy's blocked senders.
cat >"$rs/local.d/regexp.conf" <<'CONF'
HP_NI_SUBJECT { re = 'Subject=/\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b/H'; score = 1.0; description = "NI number in the subject"; }
HP_NI_BODY { re = '/\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b/P'; score = 1.0; description = "NI number in the text"; }
CONF
printf '%s\n' bulk-offers.example lottery-winner.example >"$rs/blocked-senders.map"
cat >"$rs/local.d/multimap.conf" <<CONF
HP_BLOCKED_SENDER { type = "from"; filter = "email:domain"; map = "$rs/blocked-senders.map"; score = 1.0; }
CONF
cat >"$rs/local.d/force_actions.conf" <<'CONF'
rules {
  HP_PROGRAMS { action = "reject"; expression = "MIME_BAD_EXTENSION | MIME_DOUBLE_BAD_EXTENSION | MIME_BAD_ATTACHMENT"; message = "Programs and scripts cannot be sent or received by email"; }
  HP_PERSONAL { action = "reject"; expression = "HP_NI_SUBJECT | HP_NI_BODY"; message = "Personal information"; }
  HP_BLOCKED { action = "reject"; expression = "HP_BLOCKED_SENDER"; message = "This sender is blocked"; }
}
CONF
chown -R _rspamd:_rspamd "$rs"
rspamd -f -u _rspamd -g _rspamd -c "$rs/rspamd.conf" --var="CONFDIR=/etc/rspamd" \
  --var="LOCAL_CONFDIR=$rs" --var="DBDIR=$rs/db" --var="RUNDIR=$rs/run" --var="LOGDIR=$rs/log" \
  >"$WORK/rspamd.out" 2>&1 &
pids+=($!)
rspamd_pid=$!
wait_port "$p_milter" rspamd

echo "== hallpass: behind Postfix on $p_hp, on its own on $p_hp_direct"
hallpass() { # name smtp-port next-hop-port dns-port admin-port [serve flags...]
  local name=$1 smtp=$2 next=$3 dns=$4 admin=$5; shift 5
  "$HALLPASS" serve "$@" --policy "$POLICY" --data-dir "$WORK/$name" \
    --dns-listen "127.0.0.1:$dns" --admin-listen "127.0.0.1:$admin" --upstream 127.0.0.1:9 \
    --no-web --no-portal --no-proxy \
    --smtp-listen "127.0.0.1:$smtp" --smtp-next-hop "127.0.0.1:$next" \
    >"$WORK/$name.out" 2>"$WORK/$name.log" &
  pids+=($!)
}
hallpass hp1 "$p_hp" "$p_reinject" "$p_dns" "$p_admin" --milter-listen "127.0.0.1:$p_hp_milter"
hallpass hp2 "$p_hp_direct" "$p_sink" "$p_dns2" "$p_admin2"
printf '%s\n' "version = 1" "[mail]" "journal_days = 0" >"$WORK/nojournal.toml"
hallpass hp3 "$p_hp3" "$p_reinject" "$p_dns3" "$p_admin3" --config "$WORK/nojournal.toml"

echo "== postfix $(postconf -d -h mail_version): no filter on $p_plain, Hallpass on $p_front_hp, rspamd on $p_front_rs"
mkdir -p "$pf"
cp /etc/postfix/master.cf "$pf/master.cf"
cat >"$pf/main.cf" <<CONF
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
# The filters, not Postfix's flow control, set the pace; rejections are the filters' job.
in_flow_delay = 0
smtpd_hard_error_limit = 10000
smtpd_soft_error_limit = 10000
message_size_limit = 30000000
default_destination_concurrency_limit = 32
milter_protocol = 6
milter_default_action = tempfail
milter_mail_macros = i {mail_addr} {client_addr} {client_name} {auth_authen}
CONF
postconf -c "$pf" -F '*/*/chroot = n'
postconf -c "$pf" -MX smtp/inet
postconf -c "$pf" -M "127.0.0.1:$p_plain/inet = 127.0.0.1:$p_plain inet n - n - - smtpd"
postconf -c "$pf" -M "127.0.0.1:$p_front_hp/inet = 127.0.0.1:$p_front_hp inet n - n - - smtpd"
postconf -c "$pf" -P "127.0.0.1:$p_front_hp/inet/smtpd_proxy_filter=127.0.0.1:$p_hp" \
  "127.0.0.1:$p_front_hp/inet/smtpd_proxy_timeout=120s"
postconf -c "$pf" -M "127.0.0.1:$p_front_hp3/inet = 127.0.0.1:$p_front_hp3 inet n - n - - smtpd"
postconf -c "$pf" -P "127.0.0.1:$p_front_hp3/inet/smtpd_proxy_filter=127.0.0.1:$p_hp3" \
  "127.0.0.1:$p_front_hp3/inet/smtpd_proxy_timeout=120s"
postconf -c "$pf" -M "127.0.0.1:$p_front_rs/inet = 127.0.0.1:$p_front_rs inet n - n - - smtpd"
postconf -c "$pf" -P "127.0.0.1:$p_front_rs/inet/smtpd_milters=inet:127.0.0.1:$p_milter"
postconf -c "$pf" -M "127.0.0.1:$p_front_hpm/inet = 127.0.0.1:$p_front_hpm inet n - n - - smtpd"
postconf -c "$pf" -P "127.0.0.1:$p_front_hpm/inet/smtpd_milters=inet:127.0.0.1:$p_hp_milter"
postconf -c "$pf" -M "127.0.0.1:$p_reinject/inet = 127.0.0.1:$p_reinject inet n - n - - smtpd"
postconf -c "$pf" -P "127.0.0.1:$p_reinject/inet/smtpd_proxy_filter=" \
  "127.0.0.1:$p_reinject/inet/receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters" \
  "127.0.0.1:$p_reinject/inet/smtpd_recipient_restrictions=permit_mynetworks,reject"
chmod 755 "$pf"
mkdir -p "$pf/queue" "$pf/data"
chown postfix "$pf/data"
postfix -c "$pf" post-install create-missing >/dev/null 2>&1 || true
postfix -c "$pf" check || { cat "$pf/maillog" 2>/dev/null; echo "postfix check failed" >&2; exit 1; }
postfix -c "$pf" start >/dev/null 2>&1
postfix_started=1
for p in "$p_sink:sink" "$p_plain:postfix" "$p_front_hp:postfix" "$p_front_rs:postfix" \
  "$p_front_hpm:postfix" "$p_hp_milter:hallpass" \
  "$p_front_hp3:postfix" "$p_reinject:postfix" "$p_hp:hallpass" "$p_hp_direct:hallpass" "$p_hp3:hallpass"; do
  wait_port "${p%%:*}" "${p#*:}"
done

# rspamd compiles its regular expressions for Hyperscan in the background after start;
# until then it matches with PCRE. Wait for it (at most 120 s) so the run measures the
# steady state.
echo -n "== rspamd: waiting for its Hyperscan database"
for _ in $(seq 1 240); do
  [ "$(grep -c 'rspamd_proxy.*hyperscan_ready' "$rs/log/rspamd.log" 2>/dev/null)" -ge 2 ] && break
  sleep 0.5
done
echo ": $(grep -o 'full hyperscan database of [0-9]* regexps has been loaded' "$rs/log/rspamd.log" | tail -1 || echo 'not loaded, PCRE')"

drain() { # until Postfix's queue is empty (at most 60 s)
  for _ in $(seq 1 120); do
    postqueue -c "$pf" -p 2>/dev/null | grep -q 'Mail queue is empty' && return
    sleep 0.5
  done
  echo "   (the queue did not drain in 60 s: $(postqueue -c "$pf" -p | tail -1))"
}

declare -A result
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
run() { # name port [rate]
  echo "== $1: ${WARMUP}s warm-up + ${DURATION}s, $CONNECTIONS connections${3:+, offered $3 msgs/s}"
  drain
  result[$1]=$(python3 "$HERE/load.py" 127.0.0.1 "$2" "$CORPUS" --duration "$DURATION" \
    --warmup "$WARMUP" --connections "$CONNECTIONS" --rate "${3:-0}")
  echo "   ${result[$1]}"
}
run postfix "$p_plain"
run postfix+hallpass "$p_front_hp"
run postfix+rspamd "$p_front_rs"
run postfix+hallpass-milter "$p_front_hpm"
run postfix+hallpass-nojournal "$p_front_hp3"
run hallpass "$p_hp_direct"
# Time in filter at the same offered load for both, below what either sustains (RATE, by
# default 70% of the slower's rate above): at saturation a closed loop's latency is
# mostly the queue in front of the filter (16 connections / messages a second).
rate=${RATE:-$(python3 -c "import json, sys; print(int(0.7 * min(json.loads(a)['msgs_per_s'] for a in sys.argv[1:])))" \
  "${result[postfix+hallpass]}" "${result[postfix+rspamd]}" "${result[postfix+hallpass-milter]}")}
run postfix+hallpass-milter@rate "$p_front_hpm" "$rate"
run postfix+rspamd@rate "$p_front_rs" "$rate"
run postfix+hallpass@rate "$p_front_hp" "$rate"
drain

echo "== load average (other work on this machine skews all rows alike only roughly): $load_start at start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
dns_requests=$(grep -oE 'dns req: [0-9]+' "$rs/log/rspamd.log" | awk '{ s += $3 } END { print s + 0 }')
echo
python3 - "$dns_requests" <<PY
import json, sys
rows = [("postfix", '''${result[postfix]}'''), ("postfix+hallpass", '''${result[postfix+hallpass]}'''),
        ("postfix+rspamd", '''${result[postfix+rspamd]}'''),
        ("postfix+hallpass-milter", '''${result[postfix+hallpass-milter]}'''),
        ("postfix+hallpass-nojournal", '''${result[postfix+hallpass-nojournal]}'''), ("hallpass", '''${result[hallpass]}'''),
        ("postfix+hallpass-milter@$rate", '''${result[postfix+hallpass-milter@rate]}'''),
        ("postfix+rspamd@$rate", '''${result[postfix+rspamd@rate]}'''),
        ("postfix+hallpass@$rate", '''${result[postfix+hallpass@rate]}''')]
r = {name: json.loads(text) for name, text in rows}
print(f"{'target':<28}{'msgs/s':>9}{'MB/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'cpu ms':>8}  replies")
for name, _ in rows:
    x = r[name]
    replies = " ".join(f"{k}={v}" for k, v in sorted(x["replies"].items()))
    print(f"{name:<28}{x['msgs_per_s']:>9}{x['mbytes_per_s']:>8}{x['p50_ms']:>9}{x['p99_ms']:>9}{x['max_ms']:>9}{x['cpu_ms_per_msg']:>8}  {replies}")
print()
print("accepted per kind (accepted/sent):")
kinds = sorted(set().union(*(r[n]["accepted_by_kind"] for n, _ in rows)))
print(f"  {'kind':<12}" + "".join(f"{n:>{len(n) + 2}}" for n, _ in rows))
for k in kinds:
    print(f"  {k:<12}" + "".join(f"{r[n]['accepted_by_kind'].get(k, '-'):>{len(n) + 2}}" for n, _ in rows))
print(f"\nrspamd DNS requests during the run: {sys.argv[1]}")
rs, rs_at = r["postfix+rspamd"], r["postfix+rspamd@$rate"]
def ratios(name):
    hp, hp_at = r[name], r[f"{name}@$rate"]
    ratio = hp["msgs_per_s"] / rs["msgs_per_s"] if rs["msgs_per_s"] else float("inf")
    p99_saturated = hp["p99_ms"] / rs["p99_ms"] if rs["p99_ms"] else float("inf")
    p99 = hp_at["p99_ms"] / rs_at["p99_ms"] if rs_at["p99_ms"] else float("inf")
    return ratio, p99, p99_saturated
ratio, p99, p99_saturated = ratios("postfix+hallpass-milter")
print(f"postfix+hallpass-milter / postfix+rspamd: msgs/s x{ratio:.2f} (floor >= 1.00); "
      f"p99 at $rate msgs/s x{p99:.2f} (floor <= 1.00); p99 at saturation x{p99_saturated:.2f} (shown, no floor)")
proxy = ratios("postfix+hallpass")
print(f"postfix+hallpass (proxy filter) / postfix+rspamd: msgs/s x{proxy[0]:.2f}; "
      f"p99 at $rate msgs/s x{proxy[1]:.2f}; p99 at saturation x{proxy[2]:.2f} (shown, no floor)")
missed = []
if ratio < 1: missed.append("msgs/s below rspamd's")
if p99 > 1: missed.append("p99 worse than rspamd's at the same offered load")
for name, x in (("postfix+hallpass-milter@$rate", r["postfix+hallpass-milter@$rate"]), ("postfix+rspamd@$rate", rs_at)):
    if x["msgs_per_s"] < 0.95 * $rate: missed.append(f"{name} did not keep up with the offered load")
errors = sum(x["replies"].get("error", 0) for x in r.values())
if errors: missed.append(f"{errors} connection errors")
print("FLOOR MISSED: " + "; ".join(missed) if missed else "floor holds")
sys.exit(1 if missed else 0)
PY
