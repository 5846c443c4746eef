"""The unmodified CCXT Deribit client (ccxt==4.5.90) against a Bulwark gateway.

Run by `crates/bulwark/tests/gateway_ccxt.rs`, which starts a devnet, creates two API keys and
passes them in the environment: BULWARK_GATEWAY (origin URL), KEY_A_ID, KEY_A_SECRET, KEY_B_ID,
KEY_B_SECRET. Exits non-zero (with the failed assertion) if anything differs from what ccxt
users expect.
"""

import os

import ccxt

URL = os.environ["BULWARK_GATEWAY"]
SYMBOL = "BTC/USDC:USDC"


def client(name):
    return ccxt.deribit(
        {
            "apiKey": os.environ[f"KEY_{name}_ID"],
            "secret": os.environ[f"KEY_{name}_SECRET"],
            "urls": {"api": {"rest": URL}},
        }
    )


def expect(error_class, call):
    try:
        call()
    except error_class:
        return
    raise AssertionError(f"expected {error_class.__name__}")


def main():
    a, b = client("A"), client("B")

    # Markets: two public calls; USDC-settled instruments are linear.
    markets = a.load_markets()
    b.load_markets()
    perp = markets[SYMBOL]
    assert perp["swap"] and perp["linear"] and perp["settle"] == "USDC", perp
    assert perp["precision"]["amount"] == 0.001 and perp["precision"]["price"] == 0.5, perp
    options = [m for m in markets.values() if m["option"]]
    assert options, "options listed"
    assert all(o["linear"] and o["settle"] == "USDC" for o in options)
    assert a.fetch_time() > 1_700_000_000_000
    assert a.fetch_status()["status"] == "ok"

    # Tickers and books.
    ticker = a.fetch_ticker(SYMBOL)
    index = float(ticker["info"]["index_price"] or ticker["info"]["mark_price"])
    assert index > 0, ticker
    bid = round(index * 0.995 * 2) / 2

    # Place, fill, edit, cancel.
    order = a.create_order(SYMBOL, "limit", "buy", 0.002, bid)
    assert order["status"] == "open" and order["amount"] == 0.002, order
    book = a.fetch_order_book(SYMBOL, 5)
    assert book["bids"][0] == [bid, 0.002], book
    sold = b.create_order(SYMBOL, "limit", "sell", 0.001, bid)
    assert sold["status"] == "closed" and sold["filled"] == 0.001, sold
    assert sold["trades"][0]["takerOrMaker"] == "taker", sold
    fetched = a.fetch_order(order["id"], SYMBOL)
    assert fetched["filled"] == 0.001 and fetched["remaining"] == 0.001, fetched
    assert fetched["average"] == bid, fetched
    edited = a.edit_order(order["id"], SYMBOL, "limit", "buy", 0.003, bid - 50)
    assert edited["id"] == order["id"], edited
    assert edited["price"] == bid - 50 and edited["amount"] == 0.003, edited
    assert [o["id"] for o in a.fetch_open_orders(SYMBOL)] == [order["id"]]
    assert [o["id"] for o in a.fetch_open_orders()] == [order["id"]]
    cancelled = a.cancel_order(order["id"], SYMBOL)
    assert cancelled["status"] == "canceled", cancelled
    assert order["id"] in [o["id"] for o in a.fetch_closed_orders(SYMBOL)]
    mine = a.fetch_my_trades(SYMBOL)
    assert mine and mine[0]["takerOrMaker"] == "maker" and mine[0]["amount"] == 0.001, mine
    assert mine[0]["fee"]["currency"] == "USDC", mine
    assert a.fetch_trades(SYMBOL)[-1]["amount"] == 0.001
    since = mine[0]["timestamp"] - 1
    assert a.fetch_trades(SYMBOL, since)[-1]["amount"] == 0.001
    assert [t["id"] for t in a.fetch_my_trades(SYMBOL, since)] == [mine[0]["id"]]
    assert order["id"] in [o["id"] for o in a.fetch_closed_orders()]
    tickers = a.fetch_tickers([SYMBOL])
    assert tickers[SYMBOL]["bid"] is None or tickers[SYMBOL]["bid"] > 0, tickers

    # Balance and positions.
    balance = a.fetch_balance()
    assert balance["USDC"]["total"] > 999_000 and balance["USDC"]["free"] > 0, balance["USDC"]
    positions = a.fetch_positions()
    assert len(positions) == 1 and positions[0]["symbol"] == SYMBOL, positions
    assert positions[0]["side"] == "long" and positions[0]["contracts"] == 0.001, positions
    short = b.fetch_position(SYMBOL)
    assert short["side"] == "short", short

    # Transfers: the devnet's deposit, no withdrawal; an API key (an agent) may not withdraw.
    deposits = a.fetch_deposits("USDC")
    assert deposits and deposits[0]["type"] == "deposit" and deposits[0]["status"] == "ok", deposits
    assert deposits[0]["amount"] > 0 and deposits[0]["currency"] == "USDC", deposits
    assert a.fetch_withdrawals("USDC") == [], a.fetch_withdrawals("USDC")
    expect(ccxt.PermissionDenied, lambda: a.withdraw("USDC", 1, "0x00000000000000000000000000000000000000aa"))

    # Errors map to ccxt's exception classes.
    resting = a.create_order(SYMBOL, "limit", "buy", 0.001, bid)
    expect(ccxt.InvalidOrder, lambda: b.create_order(SYMBOL, "limit", "sell", 0.001, bid, {"postOnly": True}))
    expect(ccxt.InsufficientFunds, lambda: a.create_order(SYMBOL, "limit", "buy", 500, bid))
    expect(ccxt.OrderNotFound, lambda: a.fetch_order("BLW-999999", SYMBOL))
    a.cancel_order(resting["id"], SYMBOL)
    a.cancel_all_orders()
    bad = ccxt.deribit({"apiKey": os.environ["KEY_A_ID"], "secret": "wrong", "urls": {"api": {"rest": URL}}})
    bad.markets = a.markets
    bad.markets_by_id = a.markets_by_id
    bad.currencies = a.currencies
    expect(ccxt.AuthenticationError, lambda: bad.fetch_balance())
    print("ccxt ok")


if __name__ == "__main__":
    main()
