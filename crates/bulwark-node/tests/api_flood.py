#!/usr/bin/env python3
"""Connection exhaustion against a validator's API, measured from an honest client.

The flooder opens --connections connections from --flooder-address (another loopback address:
Linux routes all of 127/8 to the loopback interface, so one machine plays two clients) and
holds them idle, reopening each the server closes a second later; meanwhile an honest client
on 127.0.0.1 asks `GET /status` --requests times, a new connection each. Printed for a baseline (no flood) and
under the flood: how many honest requests were answered, and their latency.

    python3 crates/bulwark-node/tests/api_flood.py http://127.0.0.1:8080 [--connections 1500]

Standard library only. Unanswered means the connection was closed or reset before an answer,
or nothing came within --timeout seconds.
"""

import argparse
import resource
import selectors
import socket
import statistics
import threading
import time
import urllib.parse


def honest(host, port, requests, spacing, timeout):
    answered, latencies = 0, []
    for _ in range(requests):
        start = time.perf_counter()
        try:
            with socket.create_connection((host, port), timeout=timeout) as s:
                s.settimeout(timeout)
                s.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            if data.startswith(b"HTTP/1.1 200"):
                answered += 1
                latencies.append((time.perf_counter() - start) * 1000)
        except OSError:
            pass
        time.sleep(spacing)
    return answered, latencies


def summary(name, requests, answered, latencies):
    line = f"{name}: answered {answered}/{requests}"
    if latencies:
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        line += f", p50 {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms"
    print(line, flush=True)


class Flooder:
    """Holds `count` idle connections from `source`; those the server closes are reopened a
    second later (an attacker who keeps trying, not a connection-rate flood: that one is for
    the kernel's SYN cookies and the network's filters)."""

    def __init__(self, host, port, source, count):
        self.target, self.source, self.count = (host, port), source, count
        self.opened, self.stop = 0, False

    def open_one(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((self.source, 0))
        s.setblocking(False)
        try:
            s.connect(self.target)
        except BlockingIOError:
            pass
        self.opened += 1
        return s

    def run(self):
        # epoll, not select(): more than 1,024 descriptors.
        watch = selectors.DefaultSelector()
        # Opened 100 at a time: a burst past the listen backlog (often 128) is dropped by the
        # kernel before the server sees it.
        for start in range(0, self.count, 100):
            for _ in range(min(100, self.count - start)):
                watch.register(self.open_one(), selectors.EVENT_READ)
            time.sleep(0.05)
        closed_at = []
        while not self.stop:
            # A socket the server closed reads as end of stream (or a reset).
            for key, _ in watch.select(timeout=0.1):
                s = key.fileobj
                try:
                    closed = s.recv(1) == b""
                except (BlockingIOError, InterruptedError):
                    closed = False
                except OSError:
                    closed = True
                if closed:
                    watch.unregister(s)
                    s.close()
                    closed_at.append(time.monotonic())
            now = time.monotonic()
            while closed_at and closed_at[0] <= now - 1.0:
                closed_at.pop(0)
                watch.register(self.open_one(), selectors.EVENT_READ)
        for key in list(watch.get_map().values()):
            key.fileobj.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("api", help="the validator API, e.g. http://127.0.0.1:8080")
    parser.add_argument("--connections", type=int, default=1500)
    parser.add_argument("--flooder-address", default="127.0.0.2")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--spacing", type=float, default=0.02, help="seconds between requests")
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    url = urllib.parse.urlparse(args.api)
    host, port = url.hostname, url.port or 80
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, args.connections + 256)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    answered, latencies = honest(host, port, args.requests, args.spacing, args.timeout)
    summary("baseline", args.requests, answered, latencies)

    flooder = Flooder(host, port, args.flooder_address, args.connections)
    thread = threading.Thread(target=flooder.run, daemon=True)
    thread.start()
    time.sleep(3.0)  # the flooder's connections are accepted (or closed) by now
    answered, latencies = honest(host, port, args.requests, args.spacing, args.timeout)
    opened_during = flooder.opened
    summary(
        f"flood ({args.connections} connections held from {args.flooder_address})",
        args.requests,
        answered,
        latencies,
    )
    flooder.stop = True
    thread.join()
    print(f"flooder: {opened_during} connections opened ({args.connections} at first, then reopened a second after the server closed them)")


if __name__ == "__main__":
    main()
