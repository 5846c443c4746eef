#!/usr/bin/env python3
"""Reference Black-76 prices and greeks for tests/black.rs, computed independently of the crate.

Run: pip install QuantLib==1.44 mpmath && python3 black76_reference.py > black76_reference.txt

Two independent computations per case:
1. mpmath at 60 significant digits, closed forms (inputs are the exact binary doubles):
   DF = exp(-r T), d1 = ln(F/K)/(v sqrt T) + v sqrt T / 2, d2 = d1 - v sqrt T, w = +1 call / -1 put
   price = DF w (F N(w d1) - K N(w d2))      delta = w DF N(w d1)
   gamma = DF phi(d1) / (F v sqrt T)         vega  = DF F phi(d1) sqrt T
   theta = r price - DF F phi(d1) v / (2 sqrt T)   (dV/dt, per year, F fixed)
   rho   = -T price                          (dV/dr, F fixed)
   vanna = -DF phi(d1) d2 / v                volga = vega d1 d2 / v
2. QuantLib 1.44 AnalyticEuropeanEngine over a BlackProcess (flat forward curve at r with
   Actual365Fixed, continuous compounding; flat BlackConstantVol), expiry `days` after the
   evaluation date so T = days / 365. QuantLib's Black-process rho and dividendRho both move the
   one curve; the Black-76 rho (forward fixed) is their sum. QuantLib gives no vanna or volga.
The script asserts the two agree (1e-12 relative on price, 1e-9 on greeks, QuantLib's own
precision) and prints the mpmath values as a Rust table.
"""
import QuantLib as ql
import mpmath as mp

mp.mp.dps = 60

# (kind, forward, strike, days, vol, rate)
CASES = [
    ("call", 100.0, 100.0, 365, 0.20, 0.05),
    ("put", 100.0, 100.0, 365, 0.20, 0.05),
    ("call", 100.0, 120.0, 182, 0.35, 0.01),
    ("put", 100.0, 80.0, 182, 0.35, 0.01),
    ("call", 100.0, 60.0, 30, 0.50, 0.03),
    ("put", 100.0, 140.0, 30, 0.50, 0.03),
    ("call", 60000.0, 75000.0, 7, 0.80, 0.0),
    ("put", 60000.0, 45000.0, 7, 0.80, 0.0),
    ("call", 3000.0, 3100.0, 1, 1.20, 0.05),
    ("put", 3000.0, 2900.0, 1, 1.20, 0.05),
    ("call", 1.0, 1.5, 1825, 0.25, -0.005),
    ("put", 1.0, 0.5, 1825, 0.25, -0.005),
    ("call", 100.0, 100.0, 730, 2.50, 0.02),
    ("put", 100.0, 250.0, 730, 2.50, 0.02),
    ("call", 100.0, 90.0, 91, 0.05, 0.04),
    ("put", 100.0, 110.0, 91, 0.05, 0.04),
]


def mp_greeks(kind, f, k, t, v, r):
    f, k, t, v, r = (mp.mpf(x) for x in (f, k, t, v, r))
    w = 1 if kind == "call" else -1
    df = mp.e ** (-r * t)
    s = v * mp.sqrt(t)
    d1 = mp.log(f / k) / s + s / 2
    d2 = d1 - s
    phi = mp.npdf(d1)
    price = df * w * (f * mp.ncdf(w * d1) - k * mp.ncdf(w * d2))
    vega = df * f * phi * mp.sqrt(t)
    return {
        "price": price,
        "delta": w * df * mp.ncdf(w * d1),
        "gamma": df * phi / (f * s),
        "vega": vega,
        "theta": r * price - df * f * phi * v / (2 * mp.sqrt(t)),
        "rho": -t * price,
        "vanna": -df * phi * d2 / v,
        "volga": vega * d1 * d2 / v,
    }


def ql_greeks(kind, f, k, days, v, r):
    today = ql.Date(15, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    curve = ql.YieldTermStructureHandle(ql.FlatForward(today, r, dc))
    vol = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), v, dc))
    process = ql.BlackProcess(ql.QuoteHandle(ql.SimpleQuote(f)), curve, vol)
    option_type = ql.Option.Call if kind == "call" else ql.Option.Put
    option = ql.EuropeanOption(
        ql.PlainVanillaPayoff(option_type, k), ql.EuropeanExercise(today + days)
    )
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return {
        "price": option.NPV(),
        "delta": option.delta(),
        "gamma": option.gamma(),
        "vega": option.vega(),
        "theta": option.theta(),
        "rho": option.rho() + option.dividendRho(),
    }


def main():
    print(f"// QuantLib {ql.__version__}, mpmath {mp.__version__} at {mp.mp.dps} digits")
    for kind, f, k, days, v, r in CASES:
        t = days / 365.0
        ref = mp_greeks(kind, f, k, t, v, r)
        check = ql_greeks(kind, f, k, days, v, r)
        for name, value in check.items():
            exact = float(ref[name])
            tolerance = 1e-12 if name == "price" else 1e-9
            assert abs(value - exact) <= tolerance * max(abs(exact), 1e-300), (kind, f, k, name, value, exact)
        kind_rust = "OptionKind::Call" if kind == "call" else "OptionKind::Put"
        values = ", ".join(mp.nstr(ref[n], 17, min_fixed=0, max_fixed=0) for n in
                           ("price", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga"))
        print(f"    ({kind_rust}, {f!r}, {k!r}, {days}.0 / 365.0, {v!r}, {r!r}, [{values}]),")


if __name__ == "__main__":
    main()
