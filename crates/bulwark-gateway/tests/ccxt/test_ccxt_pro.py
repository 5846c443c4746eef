"""ccxt.pro's Deribit client (bundled in ccxt==4.5.90) against a Bulwark gateway's WebSocket.

Run by `crates/bulwark/tests/gateway_ccxt.rs` after `test_ccxt.py`, with the same environment
(BULWARK_GATEWAY, KEY_A_ID, KEY_A_SECRET, KEY_B_ID, KEY_B_SECRET). Watches a ticker, an order
book and trades (public subscriptions), and A's orders, trades and balance (after ccxt.pro's
own `public/auth` by client_signature) while A and B trade over REST. Exits non-zero with the
failed assertion if anything differs from what ccxt.pro users expect.
"""

import asyncio
import os

import ccxt.pro as ccxtpro

URL = os.environ["BULWARK_GATEWAY"]
WS = URL.replace("http://", "ws://") + "/ws/api/v2"
SYMBOL = "BTC/USDC:USDC"
WAIT = 30


def client(name):
    return ccxtpro.deribit(
        {
            "apiKey": os.environ[f"KEY_{name}_ID"],
            "secret": os.environ[f"KEY_{name}_SECRET"],
            "urls": {"api": {"rest": URL, "ws": WS}},
        }
    )


def usdc_total(balance):
    """USDC equity from watch_balance: ccxt.pro 4.5.90 stores each currency's whole parsed
    balance under its code, so the figure sits one level deeper than fetch_balance's."""
    usdc = balance.get("USDC") or {}
    return (usdc.get("USDC") or usdc).get("total")


async def until(watch, wanted):
    """Calls `watch` until its result satisfies `wanted`, within WAIT seconds."""

    async def loop():
        while True:
            result = await watch()
            if wanted(result):
                return result

    return await asyncio.wait_for(loop(), WAIT)


async def main():
    a, b = client("A"), client("B")
    try:
        await a.load_markets()
        await b.load_markets()

        ticker = await asyncio.wait_for(a.watch_ticker(SYMBOL), WAIT)
        assert ticker["symbol"] == SYMBOL, ticker
        index = float(ticker["info"]["index_price"] or ticker["info"]["mark_price"])
        book = await asyncio.wait_for(a.watch_order_book(SYMBOL), WAIT)
        assert book["symbol"] == SYMBOL, book
        # A price no earlier order rests at.
        bid = round(index * 0.993 * 2) / 2

        # Subscriptions first (each watch sends its subscribe and waits for data).
        trades = asyncio.create_task(until(lambda: a.watch_trades(SYMBOL), lambda t: any(x["price"] == bid for x in t)))
        my_trades = asyncio.create_task(until(lambda: a.watch_my_trades(SYMBOL), lambda t: any(x["price"] == bid for x in t)))
        orders = asyncio.create_task(until(lambda: a.watch_orders(SYMBOL), lambda o: any(x["price"] == bid and x["filled"] == 0.001 for x in o)))
        balance = asyncio.create_task(until(lambda: a.watch_balance(), lambda x: usdc_total(x) is not None))
        books = asyncio.create_task(
            until(lambda: a.watch_order_book(SYMBOL), lambda ob: any(l[0] == bid and l[1] == 0.001 for l in ob["bids"]))
        )
        last = asyncio.create_task(until(lambda: a.watch_ticker(SYMBOL), lambda t: t["last"] == bid))
        await asyncio.sleep(2)

        order = await a.create_order(SYMBOL, "limit", "buy", 0.002, bid)
        assert order["status"] == "open", order
        sold = await b.create_order(SYMBOL, "limit", "sell", 0.001, bid)
        assert sold["status"] == "closed", sold

        seen = await trades
        assert [t for t in seen if t["price"] == bid][-1]["amount"] == 0.001, seen
        mine = await my_trades
        assert [t for t in mine if t["price"] == bid][-1]["takerOrMaker"] == "maker", mine
        placed = await orders
        assert order["id"] in [o["id"] for o in placed], placed
        funds = await balance
        assert usdc_total(funds) > 999_000, funds.get("USDC")
        book = await books
        assert book["bids"][0][0] >= bid, book["bids"][:3]
        ticker = await last
        assert ticker["bid"] is not None, ticker

        await a.cancel_all_orders()
        print("ccxt.pro ok")
    finally:
        await a.close()
        await b.close()


if __name__ == "__main__":
    asyncio.run(main())
