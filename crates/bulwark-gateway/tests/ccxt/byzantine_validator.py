"""A Byzantine validator's API for measuring a gateway behind it. Not a test (CI does not run
it; the swallower in Rust is `crates/bulwark/tests/gateway.rs`,
`a_validator_that_swallows_submissions_neither_stops_nor_holds_orders`).

- `swallow` (the default): answers every submission (`POST /tx`, `POST /txs`) "pending",
  keeps the transactions and passes them on to no one; answers everything else 503.
- `hang`: reads each request and never answers (a gateway's request to it waits for its
  client timeout, 5 s).

    python3 crates/bulwark-gateway/tests/ccxt/byzantine_validator.py 8099 swallow &
    bulwark gateway --genesis node.toml \
        --validators http://127.0.0.1:8099,http://127.0.0.1:8080,http://127.0.0.1:8081 ...

then `latency.py` against that gateway. On exit (SIGINT or SIGTERM) it prints how many
transactions it kept.
"""

import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEPT = []
MODE = "swallow"


class Liar(BaseHTTPRequestHandler):
    def answer(self, status, body):
        text = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            body = None
        if MODE == "hang":
            threading.Event().wait()
        pending = {"digest": "00", "status": "pending"}
        if self.path == "/txs" and isinstance(body, dict):
            txs = body.get("txs") or []
            KEPT.extend(txs)
            self.answer(200, {"results": [pending] * len(txs)})
        elif self.path == "/tx" and isinstance(body, dict):
            KEPT.append(body.get("tx"))
            self.answer(200, pending)
        else:
            self.answer(503, {"error": "unavailable", "code": "node_halted"})

    def do_GET(self):
        if MODE == "hang":
            threading.Event().wait()
        self.answer(503, {"error": "unavailable", "code": "node_halted"})

    def log_message(self, *args):
        pass


def main():
    global MODE
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8099
    MODE = sys.argv[2] if len(sys.argv) > 2 else "swallow"
    if MODE not in ("swallow", "hang"):
        sys.exit(f"mode {MODE}: swallow or hang")
    server = ThreadingHTTPServer(("127.0.0.1", port), Liar)
    server.daemon_threads = True

    def stop(*_):
        print(f"kept {len(KEPT)} transactions", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
