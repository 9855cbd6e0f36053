#!/usr/bin/env python3
"""Intake on one node with SQLite, one node on PostgreSQL, and two nodes on
one PostgreSQL: messages/s acknowledged and the DATA-to-250 latency, with
the load generator of ../shared/bench (smtp_load.py, 6 KB reports).

Usage (from the project root, after `cargo build --release`):
    python3 benches/nodes.py --pg postgres://abuse@127.0.0.1:5499/postgres \
        [--messages 4000] [--concurrency 32] [--repeats 3]

Each run gets a fresh database (a new SQLite file, or a new PostgreSQL
database created through the given URL). The two-node run splits the
clients in half, one half per node; its messages/s is all accepted
messages over the longer of the two runs, its p99 the larger of the two.
Prints one JSON line per run and a median table."""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "abuse-inbox")
LOAD = os.path.join(ROOT, "..", "shared", "bench", "smtp_load.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daemon(db, config):
    port = free_port()
    proc = subprocess.Popen(
        [BINARY, "serve", "--listen", f"127.0.0.1:{port}", "--db", db, "--config", config],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("daemon did not start")


def load(port, messages, concurrency, pid):
    out = subprocess.run(
        [sys.executable, LOAD, "--host", "127.0.0.1", "--port", str(port),
         "--messages", str(messages), "--concurrency", str(concurrency),
         "--size-kb", "6", "--csv-rows", "50", "--rcpt", "abuse@example.com",
         "--from", "reporter@example.net", "--reuse-connections", "--timeout", "300",
         "--server-pid", str(pid), "--quiet"],
        capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def new_pg_db(url, n):
    name = f"bench_{os.getpid()}_{n}"
    base = re.sub(r"/[^/]*$", "/postgres", url)
    subprocess.run(["psql", base, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    return re.sub(r"/[^/]*$", f"/{name}", url)


def run(setup, args, n, config):
    if setup == "sqlite-1":
        dbs = [os.path.join(tempfile.mkdtemp(), "bench.db")]
    else:
        url = new_pg_db(args.pg, n)
        dbs = [url] * (2 if setup == "postgres-2" else 1)
    daemons = [start_daemon(db, config) for db in dbs]
    try:
        if len(daemons) == 1:
            proc, port = daemons[0]
            r = load(port, args.messages, args.concurrency, proc.pid)
            return {"setup": setup, "msgs_per_s": r["msgs_per_s"],
                    "p99_ms": r["data_end_to_250_ms"]["p99"], "accepted": r["accepted"],
                    "non_250": r["non_250"], "errors": r["errors"]}
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(
                lambda d: load(d[1], args.messages // 2, args.concurrency // 2, d[0].pid), daemons))
        accepted = sum(r["accepted"] for r in results)
        span = max(r["accepted"] / r["msgs_per_s"] for r in results if r["msgs_per_s"])
        return {"setup": setup, "msgs_per_s": round(accepted / span, 2),
                "p99_ms": max(r["data_end_to_250_ms"]["p99"] for r in results),
                "accepted": accepted, "non_250": sum(r["non_250"] for r in results),
                "errors": sum(r["errors"] for r in results)}
    finally:
        for proc, _ in daemons:
            proc.terminate()
            proc.wait()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pg", required=True, help="a PostgreSQL URL whose server lets us create databases")
    p.add_argument("--messages", type=int, default=4000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--setups", default="sqlite-1,postgres-1,postgres-2")
    args = p.parse_args()
    config = os.path.join(tempfile.mkdtemp(), "bench.toml")
    with open(config, "w") as f:
        # As the shared harness runs the daemon: no DNS here.
        f.write("[auth]\nenabled = false\n")
    table = {}
    n = 0
    for _ in range(args.repeats):
        for setup in args.setups.split(","):
            n += 1
            result = run(setup, args, n, config)
            print(json.dumps(result), flush=True)
            table.setdefault(setup, []).append(result)
    print("\n| setup | msg/s (median) | p99 DATA→250 ms (median) |")
    print("|---|---|---|")
    for setup, results in table.items():
        print(f"| {setup} | {statistics.median(r['msgs_per_s'] for r in results):.0f} | "
              f"{statistics.median(r['p99_ms'] for r in results):.1f} |")


if __name__ == "__main__":
    main()
