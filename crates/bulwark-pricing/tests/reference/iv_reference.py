#!/usr/bin/env python3
"""Reference option prices for the implied-volatility tests in tests/implied.rs.

Run: pip install mpmath && python3 iv_reference.py > iv_reference.txt

For each (vol, T, z, kind): forward F = 1, strike K = exp(z vol sqrt(T)) (Python's math.exp, the
double printed), rate r = 0.03, and the discounted Black-76 price computed with mpmath at 60
digits, DF w (F N(w d1) - K N(w d2)), then rounded to the nearest double. The Rust test inverts
the price and compares with `vol`; nothing here uses the crate.
"""
import math
import mpmath as mp

mp.mp.dps = 60
VOLS = [0.01, 0.2, 1.0, 5.0]
TIMES = [("1.0 / 8760.0", 1.0 / 8760.0), ("1.0 / 365.0", 1.0 / 365.0), ("1.0", 1.0), ("5.0", 5.0)]
ZS = [-3.0, -1.0, 0.0, 1.0, 3.0]
RATE = 0.03


def price(kind, f, k, t, v, r):
    f, k, t, v, r = (mp.mpf(x) for x in (f, k, t, v, r))
    w = 1 if kind == "call" else -1
    s = v * mp.sqrt(t)
    d1 = mp.log(f / k) / s + s / 2
    d2 = d1 - s
    return mp.e ** (-r * t) * w * (f * mp.ncdf(w * d1) - k * mp.ncdf(w * d2))


print(f"// mpmath {mp.__version__} at {mp.mp.dps} digits; F = 1, r = {RATE}")
for v in VOLS:
    for t_text, t in TIMES:
        for z in ZS:
            k = math.exp(z * v * math.sqrt(t))
            for kind in ("call", "put"):
                p = float(price(kind, 1.0, k, t, v, RATE))
                rust_kind = "OptionKind::Call" if kind == "call" else "OptionKind::Put"
                print(f"    ({rust_kind}, {k!r}, {t_text}, {v!r}, {p!r}),")
