#!/usr/bin/env python3
"""Memory with idle clients: RSS of a fresh `serve`, then with 1000 connections
that sent EHLO and nothing else, and the time a new client's whole
transaction takes meanwhile.

Usage: python3 benches/idle_connections.py target/release/abuse-inbox [PORT]
Loopback only; the database and config go to a temporary directory.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

IDLE = 1000


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def transaction(port):
    conn = socket.create_connection(("127.0.0.1", port))
    replies = conn.makefile("rb")

    def step(line, code):
        if line:
            conn.sendall(line)
        while True:
            reply = replies.readline()
            if reply[3:4] != b"-":
                break
        if not reply.startswith(code):
            raise RuntimeError(f"expected {code!r}, got {reply!r}")

    step(None, b"220")
    step(b"EHLO probe.example\r\n", b"250")
    step(b"MAIL FROM:<reporter@example.net>\r\n", b"250")
    step(b"RCPT TO:<abuse@example.com>\r\n", b"250")
    step(b"DATA\r\n", b"354")
    step(b"Subject: scan\r\nMessage-ID: <idle-probe@example.net>\r\n\r\n"
         b"192.0.2.1 scanned us\r\n.\r\n", b"250")
    step(b"QUIT\r\n", b"221")
    conn.close()


def main():
    binary = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 2537
    with tempfile.TemporaryDirectory() as work:
        config = os.path.join(work, "idle.toml")
        with open(config, "w") as out:
            out.write(f'[smtp]\nlisten = "127.0.0.1:{port}"\n'
                      f"max_connections = {IDLE + 100}\n"
                      f"max_connections_per_ip = {IDLE + 100}\n"
                      f'[store]\npath = "{work}/idle.db"\n')
        server = subprocess.Popen([binary, "serve", "--config", config],
                                  stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.5)
            idle = rss_mb(server.pid)
            clients = []
            for _ in range(IDLE):
                client = socket.create_connection(("127.0.0.1", port))
                client.recv(512)
                client.sendall(b"EHLO idle.example\r\n")
                clients.append(client)
            for client in clients:
                client.recv(4096)
            time.sleep(1)
            loaded = rss_mb(server.pid)
            started = time.monotonic()
            transaction(port)
            took = (time.monotonic() - started) * 1000
            print(f"RSS idle {idle:.1f} MB, with {IDLE} idle connections "
                  f"{loaded:.1f} MB; a new client's transaction {took:.1f} ms")
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
