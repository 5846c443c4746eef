"""What a Deribit client waits for: the unmodified CCXT client (ccxt==4.5.90) placing and
cancelling one order at a time through a gateway, each call timed from send to answer.

Not a test (CI does not run it): a measurement users run against a devnet, e.g.

    bulwark devnet --dir /tmp/lat --no-bots              # prints the gateway and an apikey line
    bulwark apikey create --gateway http://127.0.0.1:8084 --api http://127.0.0.1:8080 \
        --key /tmp/lat/keys/demo-0.key                    # prints client_id and client_secret
    BULWARK_GATEWAY=http://127.0.0.1:8084 KEY_ID=... KEY_SECRET=... \
        target/ccxt-venv/bin/python crates/bulwark-gateway/tests/ccxt/latency.py 100

(`target/ccxt-venv` is the virtual environment `.ci/run` and the ccxt test create, with
`crates/bulwark-gateway/tests/ccxt/requirements.txt`.)

A gateway's `private/buy` and `private/cancel` answer once the block holding the transaction
is finalized and applied by the gateway, so each figure is: to the gateway, to a validator,
into a block, finalized, seen by the gateway, back. The split says where: from sending to the
time of the block that holds the order, and from that block time to the answer.

ccxt paces matching-engine calls itself (5 a second) by sleeping before it sends, inside any
timing around the call; its pacing is turned off here and the calls are spaced by hand
(0.2 to 0.3 s apart, random, so they do not lock onto the chain's block times).
"""

import os
import random
import statistics
import sys
import time

import ccxt

SYMBOL = "BTC/USDC:USDC"


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def line(name, values):
    return (
        f"{name}: n={len(values)} mean={statistics.mean(values):.1f} "
        f"p50={percentile(values, 0.5):.1f} p90={percentile(values, 0.9):.1f} "
        f"p99={percentile(values, 0.99):.1f} ms"
    )


def pause():
    time.sleep(0.2 + random.random() * 0.1)


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    client = ccxt.deribit(
        {
            "apiKey": os.environ["KEY_ID"],
            "secret": os.environ["KEY_SECRET"],
            "urls": {"api": {"rest": os.environ["BULWARK_GATEWAY"]}},
            "enableRateLimit": False,
        }
    )
    client.load_markets()
    ticker = client.fetch_ticker(SYMBOL)
    index = float(ticker["info"]["index_price"] or ticker["info"]["mark_price"])
    # Well below the touch: the order rests, and is cancelled.
    bid = round(index * 0.97 * 2) / 2
    place, cancel, to_block, from_block = [], [], [], []
    for _ in range(count):
        pause()
        sent_ms = time.time() * 1e3
        start = time.perf_counter()
        order = client.create_order(SYMBOL, "limit", "buy", 0.001, bid)
        place.append((time.perf_counter() - start) * 1e3)
        answered_ms = time.time() * 1e3
        to_block.append(order["timestamp"] - sent_ms)
        from_block.append(answered_ms - order["timestamp"])
        pause()
        start = time.perf_counter()
        client.cancel_order(order["id"], SYMBOL)
        cancel.append((time.perf_counter() - start) * 1e3)
    print(line("place", place))
    print(line("cancel", cancel))
    print(line("place, send to block time", to_block))
    print(line("place, block time to answer", from_block))


if __name__ == "__main__":
    main()
