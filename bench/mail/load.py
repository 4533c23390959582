#!/usr/bin/env python3
"""SMTP load generator for bench/mail/run.sh: sends the corpus (bench/mail/corpus.py's
DIR/index.tsv, in a fixed shuffled order, cycled) over C concurrent connections for a
bounded time, one message per transaction (EHLO once per connection; a new connection
after a 421 or a dropped one, or every 50 messages).

With --rate R the connections are paced to R messages a second in all (an offered load
below saturation, where time in filter is the filter's own and not the length of the
queue in front of it); without, each sends as soon as it has its answer.

Time in filter: from the moment the last byte of DATA's terminating dot was handed to
the socket (after drain) to the reply to it. Messages answered in the first WARMUP
seconds are not counted. Prints one JSON object: messages, seconds, msgs_per_s,
mbytes_per_s, p50_ms, p99_ms, max_ms, replies by class (2xx/4xx/5xx/error), and the
accepted share per corpus kind (to check that the targets decide alike), each kind's p99,
and the machine's busy CPU per message in the measured window.

    load.py HOST PORT CORPUS_DIR [--duration S] [--warmup S] [--connections C]
"""
import argparse, asyncio, json, os, random, time

ap = argparse.ArgumentParser()
ap.add_argument("host"); ap.add_argument("port", type=int); ap.add_argument("corpus")
ap.add_argument("--duration", type=float, default=20)
ap.add_argument("--warmup", type=float, default=3)
ap.add_argument("--connections", type=int, default=16)
ap.add_argument("--per-connection", type=int, default=50)
# Offered load: at most RATE messages a second in all (each connection paced to its
# share). 0: as fast as the target answers (closed loop: the rate the target sustains).
ap.add_argument("--rate", type=float, default=0)
args = ap.parse_args()

def load():
    msgs = []
    for line in open(os.path.join(args.corpus, "index.tsv")):
        name, kind, sender, to = line.rstrip("\n").split("\t")
        raw = open(os.path.join(args.corpus, name), "rb").read()
        lines = raw.replace(b"\r\n", b"\n").split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        data = b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)
        msgs.append((kind, sender, to, data))
    random.Random(5).shuffle(msgs)
    return msgs

MSGS = load()

class Stats:
    def __init__(self):
        self.lat, self.codes, self.kinds, self.bytes = [], {}, {}, 0
        self.lat_by_kind = {}

async def reply(reader):
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), b"".join(lines)

async def worker(wid, stats, t_start, t_measure, t_end, counter):
    reader = writer = None
    sent_here = 0
    while time.perf_counter() < t_end:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(args.host, args.port, limit=1 << 20)
                code, _ = await reply(reader)
                if code != 220:
                    raise ConnectionError(f"banner {code}")
                writer.write(b"EHLO load.bench.example\r\n")
                await writer.drain()
                code, _ = await reply(reader)
                sent_here = 0
            if args.rate > 0:
                # This connection's next slot: its share of the rate, offset by its id.
                slot = t_start + (sent_total[wid] * args.connections + wid) / args.rate
                sent_total[wid] += 1
                delay = slot - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            i = counter[0]; counter[0] += 1
            kind, sender, to, data = MSGS[i % len(MSGS)]
            # One command at a time (no PIPELINING assumed of any target).
            c1 = c2 = c3 = 0
            for cmd in (b"MAIL FROM:<%s>\r\n" % sender.encode(), b"RCPT TO:<%s>\r\n" % to.encode(), b"DATA\r\n"):
                writer.write(cmd)
                await writer.drain()
                code, _ = await reply(reader)
                c1, c2, c3 = (code, 0, 0) if not c1 else ((c1, code, 0) if not c2 else (c1, c2, code))
                if code >= 400:
                    break
            if c3 != 354:
                writer.write(b"RSET\r\n"); await writer.drain(); await reply(reader)
                final, lat = max(c1, c2, c3), None
            else:
                writer.write(data + b".\r\n")
                await writer.drain()
                t0 = time.perf_counter()
                final, _ = await reply(reader)
                lat = time.perf_counter() - t0
            now = time.perf_counter()
            if now >= t_measure and now < t_end:
                if lat is not None:
                    stats.lat.append(lat)
                    stats.lat_by_kind.setdefault(kind, []).append(lat)
                cls = f"{final // 100}xx"
                stats.codes[cls] = stats.codes.get(cls, 0) + 1
                k = stats.kinds.setdefault(kind, [0, 0])
                k[0] += 1; k[1] += final < 300
                stats.bytes += len(data)
            sent_here += 1
            if final == 421 or sent_here >= args.per_connection:
                writer.write(b"QUIT\r\n"); await writer.drain()
                try:
                    await asyncio.wait_for(reply(reader), 5)
                except Exception:
                    pass
                writer.close(); writer = None
        except (ConnectionError, OSError, asyncio.IncompleteReadError) as e:
            if time.perf_counter() >= t_measure:
                stats.codes["error"] = stats.codes.get("error", 0) + 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.05)
    if writer is not None:
        writer.close()

def busy_ticks():
    """The machine's busy CPU time so far (user, nice, system, irq, softirq), 1/100 s."""
    with open("/proc/stat") as f:
        v = f.readline().split()
    return sum(int(v[i]) for i in (1, 2, 3, 6, 7))

async def machine_cpu(t_measure, t_end, out):
    """Busy CPU over the measured window only (not the corpus loading or the warm-up)."""
    await asyncio.sleep(max(0, t_measure - time.perf_counter()))
    start = busy_ticks()
    await asyncio.sleep(max(0, t_end - time.perf_counter()))
    out.append(busy_ticks() - start)

async def main():
    stats = Stats()
    t_start = time.perf_counter()
    t_measure, t_end = t_start + args.warmup, t_start + args.warmup + args.duration
    counter = [0]
    global sent_total
    sent_total = [0] * args.connections
    tasks = [asyncio.create_task(worker(w, stats, t_start, t_measure, t_end, counter)) for w in range(args.connections)]
    cpu = []
    tasks.append(asyncio.create_task(machine_cpu(t_measure, t_end, cpu)))
    # A worker stuck in a reply past the end is not waited for beyond 30 s.
    done, pending = await asyncio.wait(tasks, timeout=args.warmup + args.duration + 30)
    for t in pending:
        t.cancel()
    lat = sorted(stats.lat)
    pct = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else None
    n = sum(v for k, v in stats.codes.items() if k != "error")
    print(json.dumps({
        "messages": n, "seconds": args.duration, "msgs_per_s": round(n / args.duration, 1),
        "mbytes_per_s": round(stats.bytes / args.duration / 1e6, 2),
        "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": round(lat[-1] * 1000, 1) if lat else None,
        "replies": stats.codes,
        # The whole machine's busy CPU per message answered in the window (every process
        # of the set-up, and this generator alike for all targets), in ms.
        "cpu_ms_per_msg": round(cpu[0] * 10 / n, 2) if cpu and n else None,
        "accepted_by_kind": {k: f"{a}/{t}" for k, (t, a) in sorted(stats.kinds.items())},
        # Where the tail is: each kind's p99 (large messages are 3% of the corpus).
        "p99_ms_by_kind": {k: round(sorted(v)[min(len(v) - 1, int(0.99 * len(v)))] * 1000, 1)
                           for k, v in sorted(stats.lat_by_kind.items())},
    }))

asyncio.run(main())
