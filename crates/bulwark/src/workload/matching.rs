//! The matching workload: a stream of book operations for one order book, generated from a
//! seed or replayed from a file of JSON lines, and the timed run that measures it.
//!
//! Stream shape (the issue's): a book of 10,000 resting orders, then about 70% new passive
//! orders near the top of the book, 25% cancels of resting orders, and 5% crossing orders
//! (immediate-or-cancel) that each take a random 1 to 17 resting orders (9 on average, scaled
//! by how far the book is from its starting size, so that it stays near 10,000).
//!
//! File format, one operation per line, prices in ticks and sizes in lots:
//! `{"op":"new","id":7,"side":"buy","price":99950,"size":12,"ioc":false}` or
//! `{"op":"cancel","id":7}`.

use bulwark_book::{Book, BookLimits, MatchSink, NewOrder};
use bulwark_types::{
    AccountId, ClientOrderId, OrderId, Price, Qty, SelfTradePrevention, Side, TimeInForce,
};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

/// Orders resting before timing starts; the first this many operations are not timed.
pub const SETUP_ORDERS: usize = 10_000;
/// The book's centre, in ticks.
const MID_TICKS: i64 = 100_000;
/// Longest line accepted in a replay file.
const LINE_BYTES_MAX: usize = 1_024;
/// Largest price or size accepted from a replay file.
const VALUE_MAX: i64 = 1_000_000_000_000;

/// One operation on the book.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum BookOp {
    New {
        id: u64,
        side: WireSide,
        price: i64,
        size: i64,
        ioc: bool,
    },
    Cancel {
        id: u64,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireSide {
    Buy,
    Sell,
}

impl From<WireSide> for Side {
    fn from(side: WireSide) -> Self {
        match side {
            WireSide::Buy => Side::Buy,
            WireSide::Sell => Side::Sell,
        }
    }
}

/// Why a replay file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading the replay file: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line}: longer than {LINE_BYTES_MAX} bytes")]
    LineTooLong { line: usize },
    #[error("line {line}: {source}")]
    Json {
        line: usize,
        source: serde_json::Error,
    },
    #[error("line {line}: price and size must be in 1..={VALUE_MAX}")]
    OutOfRange { line: usize },
    #[error(
        "the file has {found} operations; at least {SETUP_ORDERS} build the book and one more is timed"
    )]
    TooShort { found: usize },
}

/// Reads a replay file.
pub fn read_replay(reader: impl BufRead) -> Result<Vec<BookOp>, ReplayError> {
    let mut ops = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let line_no = index + 1;
        let line = line?;
        if line.len() > LINE_BYTES_MAX {
            return Err(ReplayError::LineTooLong { line: line_no });
        }
        if line.trim().is_empty() {
            continue;
        }
        let op: BookOp = serde_json::from_str(&line).map_err(|source| ReplayError::Json {
            line: line_no,
            source,
        })?;
        if let BookOp::New { price, size, .. } = op {
            if !(1..=VALUE_MAX).contains(&price) || !(1..=VALUE_MAX).contains(&size) {
                return Err(ReplayError::OutOfRange { line: line_no });
            }
        }
        ops.push(op);
    }
    if ops.len() <= SETUP_ORDERS {
        return Err(ReplayError::TooShort { found: ops.len() });
    }
    Ok(ops)
}

/// Writes operations as JSON lines, the replay format.
pub fn write_replay(ops: &[BookOp], mut out: impl Write) -> std::io::Result<()> {
    for op in ops {
        serde_json::to_writer(&mut out, op)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// The live resting orders of the generator's shadow book, for picking cancels in O(1).
#[derive(Default)]
struct LiveOrders {
    ids: Vec<u64>,
    position: FxHashMap<u64, usize>,
}

impl LiveOrders {
    fn insert(&mut self, id: u64) {
        self.position.insert(id, self.ids.len());
        self.ids.push(id);
    }

    fn remove(&mut self, id: u64) {
        if let Some(at) = self.position.remove(&id) {
            self.ids.swap_remove(at);
            if let Some(moved) = self.ids.get(at) {
                self.position.insert(*moved, at);
            }
        }
    }
}

/// Generates `SETUP_ORDERS` resting orders and then `timed_ops` operations of the mix above.
pub fn generate(seed: u64, timed_ops: usize) -> Vec<BookOp> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut shadow = Book::new(BookLimits {
        orders_max: 10_000_000,
        fills_per_match_max: 1_000_000,
    });
    let mut live = LiveOrders::default();
    let mut sink = MatchSink::default();
    let mut ops = Vec::with_capacity(SETUP_ORDERS + timed_ops);
    let mut next_id = 0u64;
    for i in 0..SETUP_ORDERS + timed_ops {
        let roll = if i < SETUP_ORDERS {
            0
        } else {
            rng.random_range(0..100)
        };
        let op = if roll < 70 || live.ids.is_empty() {
            let side = if rng.random_bool(0.5) {
                WireSide::Buy
            } else {
                WireSide::Sell
            };
            // Distance behind the top of book, 0 to 200 ticks: mostly close, sometimes deep
            // (a cubed uniform, in integers so every machine generates the same stream).
            let u: i64 = rng.random_range(0..1_000);
            let depth = u * u * u * 200 / 1_000_000_000;
            let price = match side {
                WireSide::Buy => {
                    shadow.best_ask().map_or(MID_TICKS, |(p, _)| p.ticks()) - 1 - depth
                }
                WireSide::Sell => {
                    shadow.best_bid().map_or(MID_TICKS, |(p, _)| p.ticks()) + 1 + depth
                }
            };
            next_id += 1;
            BookOp::New {
                id: next_id,
                side,
                price: price.max(1),
                size: rng.random_range(1..=100),
                ioc: false,
            }
        } else if roll < 95 {
            BookOp::Cancel {
                id: live.ids[rng.random_range(0..live.ids.len())],
            }
        } else {
            let side = if rng.random_bool(0.5) {
                Side::Buy
            } else {
                Side::Sell
            };
            // 1 to 17 makers (9 on average) when the book holds SETUP_ORDERS, scaled by its
            // size so the book reverts to that size instead of wandering off.
            let take_max = (17 * shadow.len() / SETUP_ORDERS).clamp(1, 200);
            let take = rng.random_range(1..=take_max);
            // An empty opposite side leaves a one-lot order at the centre.
            let (mut size, mut price) = (0i64, MID_TICKS);
            for maker in shadow.orders(side.opposite()).take(take) {
                size += maker.qty.contracts();
                price = maker.price.ticks();
            }
            next_id += 1;
            let side = if side == Side::Buy {
                WireSide::Buy
            } else {
                WireSide::Sell
            };
            BookOp::New {
                id: next_id,
                side,
                price,
                size: size.max(1),
                ioc: true,
            }
        };
        apply(&mut shadow, &op, &mut sink);
        match op {
            BookOp::New { id, ioc: false, .. } if shadow.get(OrderId::new(id)).is_some() => {
                live.insert(id)
            }
            BookOp::Cancel { id } => live.remove(id),
            _ => {}
        }
        for fill in &sink.fills {
            if fill.maker_qty_left.is_zero() {
                live.remove(fill.maker_order_id.get());
            }
        }
        ops.push(op);
    }
    ops
}

/// Applies one operation; returns the lots it filled.
#[inline]
fn apply(book: &mut Book, op: &BookOp, sink: &mut MatchSink) -> i64 {
    sink.clear();
    match *op {
        BookOp::New {
            id,
            side,
            price,
            size,
            ioc,
        } => {
            let order = NewOrder {
                order_id: OrderId::new(id),
                // One account per order: no self-trade prevention in this workload.
                account: AccountId::new(id),
                client_order_id: ClientOrderId::new(id),
                side: side.into(),
                price: Price::from_ticks(price),
                qty: Qty::from_contracts(size),
                time_in_force: if ioc {
                    TimeInForce::ImmediateOrCancel
                } else {
                    TimeInForce::GoodTilCancelled
                },
                post_only: false,
                reduce_only: false,
                self_trade: SelfTradePrevention::CancelMaker,
            };
            // A duplicate id in a replay file is refused by the book and counts as an operation.
            match book.place(&order, sink) {
                Ok(placement) => placement.filled.contracts(),
                Err(_) => 0,
            }
        }
        BookOp::Cancel { id } => {
            book.cancel(OrderId::new(id));
            0
        }
    }
}

/// What a timed run measured.
#[derive(Copy, Clone, Debug)]
pub struct MatchingReport {
    pub ops_timed: usize,
    pub elapsed: Duration,
    pub resting_after: usize,
    /// Lots filled during the timed part.
    pub filled_lots: i64,
}

impl MatchingReport {
    pub fn ops_per_second(&self) -> f64 {
        self.ops_timed as f64 / self.elapsed.as_secs_f64()
    }
}

/// The book after the first `SETUP_ORDERS` operations: the untimed part of a run.
pub fn setup_book(ops: &[BookOp]) -> Book {
    let mut book = Book::new(BookLimits {
        orders_max: 10_000_000,
        fills_per_match_max: 1_000_000,
    });
    let mut sink = MatchSink::default();
    for op in &ops[..SETUP_ORDERS.min(ops.len())] {
        apply(&mut book, op, &mut sink);
    }
    book
}

/// Applies `ops` to `book`; returns the lots filled. The timed part of a run.
pub fn replay(book: &mut Book, ops: &[BookOp]) -> i64 {
    let mut sink = MatchSink::default();
    ops.iter().map(|op| apply(book, op, &mut sink)).sum()
}

/// Builds the book from the first `SETUP_ORDERS` operations (untimed), then times the rest.
pub fn run(ops: &[BookOp]) -> MatchingReport {
    assert!(
        ops.len() > SETUP_ORDERS,
        "a workload has setup and timed operations"
    );
    let mut book = setup_book(ops);
    let timed = &ops[SETUP_ORDERS..];
    let start = Instant::now();
    let filled_lots = replay(&mut book, timed);
    let elapsed = start.elapsed();
    MatchingReport {
        ops_timed: timed.len(),
        elapsed,
        resting_after: book.len(),
        filled_lots,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_stream_has_the_advertised_mix_and_stays_near_its_size() {
        let ops = generate(7, 50_000);
        let timed = &ops[SETUP_ORDERS..];
        let cancels = timed
            .iter()
            .filter(|o| matches!(o, BookOp::Cancel { .. }))
            .count();
        let crossing = timed
            .iter()
            .filter(|o| matches!(o, BookOp::New { ioc: true, .. }))
            .count();
        let share = |n: usize| n as f64 / timed.len() as f64;
        assert!(
            (share(cancels) - 0.25).abs() < 0.02,
            "cancels {}",
            share(cancels)
        );
        assert!(
            (share(crossing) - 0.05).abs() < 0.01,
            "crossing {}",
            share(crossing)
        );
        let report = run(&ops);
        assert!(
            (9_000..11_000).contains(&report.resting_after),
            "book drifted to {}",
            report.resting_after
        );
        assert!(report.filled_lots > 0);
    }

    #[test]
    fn replay_round_trips_and_rejects_bad_lines() {
        let ops = generate(1, 100);
        let mut bytes = Vec::new();
        write_replay(&ops, &mut bytes).unwrap();
        assert_eq!(read_replay(bytes.as_slice()).unwrap(), ops);
        let first = String::from_utf8(bytes.clone())
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string();
        assert!(
            first.starts_with(r#"{"op":"new","id":1,"side":"#),
            "{first}"
        );
        let mut bad = bytes.clone();
        bad.extend_from_slice(
            b"{\"op\":\"new\",\"id\":1,\"side\":\"up\",\"price\":1,\"size\":1,\"ioc\":false}\n",
        );
        assert!(
            matches!(read_replay(bad.as_slice()), Err(ReplayError::Json { line, .. }) if line == ops.len() + 1)
        );
        let mut bad = bytes.clone();
        bad.extend_from_slice(
            b"{\"op\":\"new\",\"id\":1,\"side\":\"buy\",\"price\":0,\"size\":1,\"ioc\":false}\n",
        );
        assert!(matches!(
            read_replay(bad.as_slice()),
            Err(ReplayError::OutOfRange { .. })
        ));
        assert!(matches!(
            read_replay(&b"{\"op\":\"cancel\",\"id\":1}\n"[..]),
            Err(ReplayError::TooShort { found: 1 })
        ));
    }
}
