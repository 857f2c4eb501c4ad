#!/usr/bin/python3
"""tests/integration/shim/throttle.py -- a slow TCP relay (standard library only).

    /usr/bin/python3 throttle.py --backend HOST:PORT --port-file F [--chunk BYTES] [--delay S]

Listens on 127.0.0.1 (a free port, written to F) and relays every connection to the backend.
Requests go through as they come; answers are passed on CHUNK bytes (default 64 KiB) at a time
with DELAY seconds (default 0.02) between chunks, so a download of a few MB takes seconds and
every reader started meanwhile joins it. Small answers (manifests) take one chunk: no delay.
"""
import argparse
import os
import socket
import threading
import time


def pump(src, dst, chunk, delay):
    try:
        while True:
            data = src.recv(chunk)
            if not data:
                break
            dst.sendall(data)
            if delay and len(data) == chunk:
                time.sleep(delay)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn, backend, chunk, delay):
    try:
        up = socket.create_connection(backend, timeout=10)
        up.settimeout(None)
    except OSError:
        conn.close()
        return
    t = threading.Thread(target=pump, args=(conn, up, 65536, 0), daemon=True)
    t.start()
    pump(up, conn, chunk, delay)
    t.join(5)
    conn.close()
    up.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--delay", type=float, default=0.02)
    a = ap.parse_args()
    host, port = a.backend.rsplit(":", 1)
    backend = (host, int(port))
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn, backend, a.chunk, a.delay), daemon=True).start()


if __name__ == "__main__":
    main()
