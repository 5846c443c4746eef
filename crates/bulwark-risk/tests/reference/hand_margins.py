#!/usr/bin/env python3
"""Hand computation of the portfolio margins pinned in tests/hand_computed.rs, independent of the
crate: mpmath closed forms at 40 digits, the default parameters written out below.

Run: pip install mpmath && python3 hand_margins.py

Grid (defaults, range 16%): moves j x 4% for j = -4..4, each with vol down / unchanged / up;
extremes -32% and +32% at unchanged vol, counted at 35%. Vol shocks are relative and scaled by
s = clamp(sqrt(30 / days), 0.25, 3): up vol x (1 + 0.40 s), down vol x (1 - 0.25 s).
Black-76 with rate 0 and forward = index: call = F N(d1) - K N(d2), put = K N(-d2) - F N(-d1),
d1 = ln(F/K)/(v sqrt T) + v sqrt T / 2, T = days / 365.
Maintenance = max(0, worst weighted loss) + 1% x index x short option units + 1 micro-USDC per
contract (rounding allowance); initial = 1.25 x maintenance.
"""
import mpmath as mp

mp.mp.dps = 40
S0 = mp.mpf(100_000)
VOL = mp.mpf("0.6")

def black(kind, F, K, days, v):
    T = mp.mpf(days) / 365
    s = v * mp.sqrt(T)
    d1 = mp.log(F / K) / s + s / 2
    d2 = d1 - s
    N = lambda x: mp.ncdf(x)
    if kind == "C":
        return F * N(d1) - K * N(d2)
    return K * N(-d2) - F * N(-d1)

def shifted(v, days, shift):
    s = min(max(mp.sqrt(mp.mpf(30) / days), mp.mpf("0.25")), mp.mpf(3))
    if shift == "up":
        return v * (1 + mp.mpf("0.4") * s)
    if shift == "down":
        return v * (1 - mp.mpf("0.25") * s)
    return v

SCENARIOS = [(mp.mpf(j) * 4 / 100, shift, 1) for j in range(-4, 5) for shift in ("down", "same", "up")]
SCENARIOS += [(mp.mpf("-0.32"), "same", mp.mpf("0.35")), (mp.mpf("0.32"), "same", mp.mpf("0.35"))]

def value(pos, F, shift):
    """pos = (kind, strike, days, units) with kind C/P/PERP; units of underlying, signed."""
    kind, K, days, units = pos
    if kind == "PERP":
        return units * F
    return units * black(kind, F, mp.mpf(K), days, shifted(VOL, days, shift))

def margin(name, positions, contracts, short_option_units):
    base = sum(value(p, S0, "same") for p in positions)
    worst, worst_at = mp.mpf(0), None
    print(f"== {name}")
    for move, shift, cover in SCENARIOS:
        pnl = sum(value(p, S0 * (1 + move), shift) for p in positions) - base
        weighted = max(-pnl, 0) * cover
        print(f"   move {float(move)*100:+6.1f}% vol {shift:<4} P&L {float(pnl):14.6f}  weighted loss {float(weighted):14.6f}")
        if weighted > worst:
            worst, worst_at = weighted, (float(move), shift)
    addon = mp.mpf("0.01") * S0 * short_option_units
    allowance = mp.mpf(contracts) / 1_000_000
    maintenance = worst + addon + allowance
    print(f"   worst {worst_at}: {float(worst):.6f}; add-on {float(addon):.6f}; allowance {float(allowance):.6f}")
    print(f"   maintenance {mp.nstr(maintenance, 15)}  initial {mp.nstr(maintenance * mp.mpf('1.25'), 15)}")

margin("short straddle", [("C", 100_000, 30, -1), ("P", 100_000, 30, -1)], 2, 2)
margin("covered call", [("PERP", 0, 0, 1), ("C", 110_000, 30, -1)], 1_001, 1)
margin("calendar spread", [("C", 100_000, 30, -1), ("C", 100_000, 90, 1)], 2, 1)
d1 = (VOL * mp.sqrt(mp.mpf(30) / 365)) / 2
delta = mp.ncdf(d1)
hedge = int(mp.nint(10 * delta * 1000))
print(f"delta of one 30-day ATM call: {mp.nstr(delta, 12)}; hedge {hedge} perpetual contracts of 0.001")
margin("delta-hedged long calls", [("C", 100_000, 30, 10), ("PERP", 0, 0, -mp.mpf(hedge) / 1000)], 10 + hedge, 0)
