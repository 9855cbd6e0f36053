#!/usr/bin/env python3
"""End to end: from SMTP to stored report and decided reply, with sender
checks on, against a real DNS server on loopback.

Starts `abuse-inbox serve` (release build) on a fresh SQLite store with the
default configuration but for its listen address, store and nameserver; a DNS
server (UDP and TCP, this script) that answers for K sender domains with a
given latency and loss, and never answers for a blackholed zone; then sends N
6 KB reports from C clients, either as fast as they go or at an offered rate.

Prints one JSON line: intake msg/s, reports/s during the load, seconds from
the last 250 to the last report and to the last decided reply, and p50/p99 of
250 -> report and 250 -> reply decided (from the store's own times).

    cargo build --release
    python3 benches/e2e.py --messages 20000 --clients 8 --domains 1000
    python3 benches/e2e.py --rate 1000 --seconds 60 --clients 8 --domains 1000
    python3 benches/e2e.py --messages 5000 --clients 8 --domains 100 --blackhole-share 0.02

Loopback only; every loop is bounded by a message count and a deadline.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- DNS ------------------------------------------------------------------

def parse_query(data):
    """(id, flags, qname, qtype, question bytes) of a DNS query."""
    qid, flags, qd = struct.unpack(">HHH", data[:6])
    pos, labels = 12, []
    while True:
        n = data[pos]
        pos += 1
        if n == 0:
            break
        labels.append(data[pos:pos + n].decode("ascii", "replace").lower())
        pos += n
    qtype, _qclass = struct.unpack(">HH", data[pos:pos + 4])
    return qid, flags, ".".join(labels), qtype, data[12:pos + 4]


def encode_name(name):
    out = b""
    for label in name.split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def rr(name, rtype, ttl, rdata):
    return encode_name(name) + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


A, MX, TXT, SOA, AAAA = 1, 15, 16, 6, 28


class Zone:
    """d0.example … d{K-1}.example: SPF passing from 127.0.0.1, an address,
    no DMARC (NXDOMAIN with an SOA: cacheable), no MX (NODATA with an SOA)."""

    def __init__(self, domains, blackhole):
        self.domains = {f"d{i}.example" for i in range(domains)}
        self.blackhole = blackhole

    def answer(self, query):
        qid, flags, name, qtype, question = parse_query(query)
        if self.blackhole and (name == self.blackhole or name.endswith("." + self.blackhole)):
            return None
        base = name.split(".", 1)[1] if name.startswith("_dmarc.") else name
        answers = []
        rcode = 0
        if name in self.domains or name == "blackhole.example":
            if qtype == TXT:
                spf = b"v=spf1 ip4:127.0.0.1 -all"
                answers.append(rr(name, TXT, 300, bytes([len(spf)]) + spf))
            elif qtype == A:
                answers.append(rr(name, A, 300, socket.inet_aton("192.0.2.25")))
        elif base not in self.domains:
            rcode = 3
        else:
            rcode = 3  # no _dmarc record
        soa_zone = base if base in self.domains else "example"
        soa = rr(soa_zone, SOA, 300, encode_name("ns." + soa_zone) + encode_name("hostmaster." + soa_zone)
                 + struct.pack(">IIIII", 1, 3600, 600, 86400, 300))
        header = struct.pack(">HHHHHH", qid, 0x8400 | (flags & 0x0100) | 0x0080 | rcode,
                             1, len(answers), 0 if answers else 1, 0)
        return header + question + b"".join(answers) + (b"" if answers else soa)


class Dns:
    def __init__(self, zone, latency, loss):
        self.zone, self.latency, self.loss = zone, latency, loss
        self.queries = 0

    async def start(self):
        # The UDP port the system picks may be taken for TCP: pick again.
        for _ in range(50):
            try:
                await self.bind()
                return
            except OSError:
                self.udp_transport.close()
        raise OSError("no loopback port free for both UDP and TCP")

    async def bind(self):
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        server = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                server.queries += 1
                if random.random() < server.loss:
                    return
                reply = server.zone.answer(data)
                if reply is not None:
                    loop.call_later(server.latency, self.transport.sendto, reply, addr)

        self.udp_transport, _ = await loop.create_datagram_endpoint(Udp, sock=sock)

        async def tcp(reader, writer):
            try:
                while True:
                    n = struct.unpack(">H", await reader.readexactly(2))[0]
                    query = await reader.readexactly(n)
                    server.queries += 1
                    reply = server.zone.answer(query)
                    if reply is None or random.random() < server.loss:
                        await asyncio.sleep(3600)
                        return
                    await asyncio.sleep(server.latency)
                    writer.write(struct.pack(">H", len(reply)) + reply)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass

        self.tcp = await asyncio.start_server(tcp, "127.0.0.1", self.port)


# --- SMTP load --------------------------------------------------------------

def message(n, domain, csv_rows=50):
    rows = "\r\n".join(
        f"192.0.2.{(n + i) % 250 + 1},2026-12-01T10:{i:02d}:00Z,sshd[{4000 + i}]: Failed password "
        f"for root from 192.0.2.{(n + i) % 250 + 1} port {40000 + i} ssh2"
        for i in range(csv_rows))
    body = (f"From: SOC <noc@{domain}>\r\nTo: abuse@example.com\r\nSubject: SSH brute force {n}\r\n"
            f"Message-ID: <e2e-{n}-{time.time_ns()}@{domain}>\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            "Content-Type: text/plain\r\n\r\nBrute force against our server 203.0.113.50, log attached.\r\n"
            "--b\r\nContent-Type: text/csv; name=log.csv\r\n\r\n" + rows + "\r\n--b--\r\n")
    return body.encode()


async def client(host, port, jobs, acked, stop_at, csv_rows):
    reader, writer = await asyncio.open_connection(host, port)

    async def reply():
        while True:
            line = await reader.readline()
            if not line:
                raise ConnectionError("closed")
            if line[3:4] != b"-":
                return line

    await reply()
    writer.write(b"EHLO load.example\r\n")
    await writer.drain()
    await reply()
    while time.monotonic() < stop_at:
        try:
            n, domain, due = jobs.get_nowait()
        except asyncio.QueueEmpty:
            return
        if due:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        writer.write(f"MAIL FROM:<noc@{domain}>\r\nRCPT TO:<abuse@example.com>\r\nDATA\r\n".encode())
        await writer.drain()
        for _ in range(3):
            await reply()
        writer.write(message(n, domain, csv_rows) + b".\r\n")
        await writer.drain()
        line = await reply()
        if line.startswith(b"250"):
            acked.append(time.time())


# --- the run ------------------------------------------------------------------

def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def run(args):
    dns = Dns(Zone(args.domains, "blackhole.example" if args.blackhole_share else None),
              args.dns_latency_ms / 1000, args.dns_loss)
    await dns.start()
    work = tempfile.mkdtemp(prefix="abuse-e2e-")
    db = os.path.join(work, "e2e.db")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = os.path.join(work, "e2e.toml")
    with open(config, "w") as f:
        f.write(f'[smtp]\nlisten = "127.0.0.1:{port}"\n[store]\npath = "{db}"\n'
                f'[auth]\nnameservers = ["127.0.0.1:{dns.port}"]\n')
        if args.no_auth:
            f.write('enabled = false\n[reply]\nrequire_auth = false\n')
        if args.processes:
            f.write(f'[worker]\nprocesses = {args.processes}\n')
    daemon = subprocess.Popen([args.binary, "--config", config, "serve"], stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(work, "serve.log"), "w"),
                              env={**os.environ, "RUST_LOG": os.environ.get("E2E_LOG", "warn")})
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        jobs = asyncio.Queue()
        total = args.messages if not args.rate else int(args.rate * args.seconds)
        start = time.monotonic() + 0.2
        for n in range(total):
            blackholed = args.blackhole_share and random.random() < args.blackhole_share
            domain = "blackhole.example" if blackholed else f"d{n % args.domains}.example"
            due = start + n / args.rate if args.rate else 0
            jobs.put_nowait((n, domain, due))
        acked = []
        deadline = time.monotonic() + args.timeout
        load_started = time.time()
        await asyncio.gather(*(client("127.0.0.1", port, jobs, acked, deadline, args.csv_rows)
                               for _ in range(args.clients)))
        load_ended = time.time()
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        reports_at_end = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
        good = len(acked) - (0 if not args.blackhole_share else conn.execute(
            "SELECT count(*) FROM raw_messages WHERE mail_from LIKE '%blackhole.example'").fetchone()[0])
        last_report = last_decided = None
        while time.monotonic() < deadline:
            reports = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
            decided = conn.execute(
                "SELECT count(*) FROM reports WHERE reply != 'pending' AND reporter NOT LIKE '%blackhole.example'"
            ).fetchone()[0]
            if reports >= len(acked) and last_report is None:
                last_report = time.time()
            if decided >= good and last_decided is None:
                last_decided = time.time()
            if last_report and last_decided:
                break
            await asyncio.sleep(0.05)
        rows = conn.execute(
            "SELECT m.received_at, r.processed_at, r.reporter,"
            " (SELECT max(e.at) FROM report_events e WHERE e.report_id = r.id AND e.kind = 'reply')"
            " FROM reports r JOIN raw_messages m ON m.id = r.raw_id").fetchall()
        to_report = [parse_time(p) - parse_time(r) for r, p, _, _ in rows]
        to_decided = [parse_time(d) - parse_time(r) for r, _, who, d in rows
                      if d and not (who or "").endswith("blackhole.example")]
        good_auth = conn.execute(
            "SELECT count(*) FROM reports WHERE reporter NOT LIKE '%blackhole.example'"
            " AND json_extract(auth, '$.authenticated') = 1").fetchone()[0]
        load_seconds = load_ended - load_started
        result = {
            "messages": total, "csv_rows": args.csv_rows, "acked": len(acked), "clients": args.clients, "domains": args.domains,
            "rate": args.rate, "dns_latency_ms": args.dns_latency_ms, "dns_loss": args.dns_loss,
            "blackhole_share": args.blackhole_share, "auth": not args.no_auth,
            "intake_msg_per_s": round(len(acked) / max(1e-9, (max(acked) if acked else load_ended) - load_started)),
            "reports_per_s_during_load": round(reports_at_end / load_seconds),
            "last_250_to_last_report_s": round(last_report - load_ended, 2) if last_report else None,
            "last_250_to_last_decided_s": round(last_decided - load_ended, 2) if last_decided else None,
            "p50_250_to_report_s": round(percentile(to_report, 50), 3) if to_report else None,
            "p99_250_to_report_s": round(percentile(to_report, 99), 3) if to_report else None,
            "p50_250_to_decided_s": round(percentile(to_decided, 50), 3) if to_decided else None,
            "p99_250_to_decided_s": round(percentile(to_decided, 99), 3) if to_decided else None,
            "good_reports_authenticated": good_auth,
            "dns_queries": dns.queries,
        }
        print(json.dumps(result))
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        if not args.keep:
            subprocess.run(["rm", "-rf", work])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--domains", type=int, default=1000)
    p.add_argument("--rate", type=float, default=0, help="offered messages/s (0: as fast as they go)")
    p.add_argument("--seconds", type=float, default=60, help="with --rate: how long")
    p.add_argument("--dns-latency-ms", type=float, default=20)
    p.add_argument("--dns-loss", type=float, default=0.01)
    p.add_argument("--blackhole-share", type=float, default=0, help="share of messages from a blackholed zone")
    p.add_argument("--timeout", type=float, default=300, help="the whole run's deadline, s")
    p.add_argument("--keep", action="store_true", help="keep the store and the log")
    p.add_argument("--csv-rows", type=int, default=50, help="log rows per report (50: the 6 KB report)")
    p.add_argument("--no-auth", action="store_true", help="sender checks off (auth.enabled = false)")
    p.add_argument("--processes", type=int, default=0, help="worker.processes (0: the default)")
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "abuse-inbox"))
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
