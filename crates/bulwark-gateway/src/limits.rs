//! Rate limits in the manner of Deribit's credit system: token buckets per API key and per
//! client address, a request costing credits that refill at a steady rate. Matching-engine
//! calls (buy, sell, edit, cancel*) draw on a separate, smaller bucket, as Deribit's do.
//!
//! Owns: the buckets, bounded in number ([`BUCKETS_MAX`]; idle full buckets are forgotten
//! first, and when every slot is busy a new client is refused rather than memory grown).
//! Never: sleeps or queues; a request over its budget is refused at once (`10028`).

use std::collections::HashMap;
use std::time::Instant;

/// Most buckets tracked at once (keys and addresses together).
pub const BUCKETS_MAX: usize = 65_536;

/// One bucket's terms.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Rate {
    /// Requests allowed at once (the bucket's size).
    pub burst: f64,
    /// Requests per second refilled.
    pub per_second: f64,
}

/// The limits the gateway applies.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct RateLimits {
    /// Non-matching-engine calls, per address.
    pub address_reads: Rate,
    /// Matching-engine calls, per address.
    pub address_engine: Rate,
    /// Non-matching-engine calls, per API key.
    pub key_reads: Rate,
    /// Matching-engine calls, per API key.
    pub key_engine: Rate,
}

impl RateLimits {
    /// Deribit's default tier: 20 requests per second (burst 100), matching engine 5 per
    /// second (burst 20); ccxt's default pacing (50 ms, 200 ms) stays within it. Addresses get
    /// more (several keys may share one).
    pub const DEFAULT: Self = Self {
        address_reads: Rate {
            burst: 500.0,
            per_second: 100.0,
        },
        address_engine: Rate {
            burst: 100.0,
            per_second: 25.0,
        },
        key_reads: Rate {
            burst: 100.0,
            per_second: 20.0,
        },
        key_engine: Rate {
            burst: 20.0,
            per_second: 5.0,
        },
    };
}

/// Which budget a request draws on.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Budget {
    Reads,
    Engine,
}

#[derive(Copy, Clone, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    rate: Rate,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        self.updated = now;
    }
}

/// The buckets.
#[derive(Default)]
pub struct Limiter {
    buckets: HashMap<(String, Budget), Bucket>,
}

impl Limiter {
    /// Takes one request from `who`'s `budget` under `rate`; false when it is spent.
    pub fn take(&mut self, who: &str, budget: Budget, rate: Rate, now: Instant) -> bool {
        let key = (who.to_string(), budget);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= BUCKETS_MAX {
            // Forget buckets that have refilled completely: they carry no information.
            self.buckets.retain(|_, bucket| {
                bucket.refill(now);
                bucket.tokens < bucket.rate.burst
            });
            if self.buckets.len() >= BUCKETS_MAX {
                return false;
            }
        }
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: rate.burst,
            updated: now,
            rate,
        });
        bucket.rate = rate;
        bucket.refill(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut limiter = Limiter::default();
        let rate = Rate {
            burst: 3.0,
            per_second: 2.0,
        };
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take("a", Budget::Reads, rate, start));
        }
        assert!(!limiter.take("a", Budget::Reads, rate, start));
        // Another budget and another client are separate.
        assert!(limiter.take("a", Budget::Engine, rate, start));
        assert!(limiter.take("b", Budget::Reads, rate, start));
        // Half a second refills one.
        let later = start + Duration::from_millis(500);
        assert!(limiter.take("a", Budget::Reads, rate, later));
        assert!(!limiter.take("a", Budget::Reads, rate, later));
    }
}
