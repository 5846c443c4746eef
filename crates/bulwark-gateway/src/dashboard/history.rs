//! What the dashboard shows over time, recorded from each proven block the replica applies:
//! the insurance fund, liquidations and index per block, the latest signed observation of every
//! validator, the verified state digest per height, and a log of market-mode changes.
//!
//! Owns: the bounded rings below (oldest dropped first). Never: records anything a block did
//! not prove (observations with a bad signature or from a key outside the oracle's validator
//! set are skipped); grows without bound.

use bulwark_exchange::{BlockOutcome, Event, Exchange};
use bulwark_node::block::ChainBlock;
use bulwark_node::executor::hex;
use bulwark_types::{AccountId, AssetCode, CheckedBlock, InstrumentId, Money, UnitPrice};
use std::collections::{BTreeMap, VecDeque};

/// Block samples kept (about seven minutes at the devnet's nine blocks a second).
pub const SAMPLES_MAX: usize = 4_096;
/// Liquidation events kept.
pub const LIQUIDATIONS_MAX: usize = 256;
/// Market-mode changes kept.
pub const MODE_CHANGES_MAX: usize = 128;
/// Verified state digests kept, by height.
pub const DIGESTS_MAX: usize = 4_096;

/// One block's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub height: u64,
    pub time_ms: u64,
    /// The insurance fund after the block, micro-USDC.
    pub insurance_fund: Money,
    /// The agreed index per underlying after the block.
    pub index: Vec<(AssetCode, UnitPrice)>,
    pub trades: u32,
    pub margin_calls: u32,
    pub liquidation_steps: u32,
    pub backstop_takeovers: u32,
    pub deleveraged: u32,
    /// Deficits nobody could pay this block (carried by the fund), micro-USDC.
    pub uncovered: Money,
}

/// What a liquidation event was.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LiquidationKind {
    MarginCall,
    Step,
    Backstop,
    Deleveraged,
    DeficitCovered,
    Queued,
}

impl LiquidationKind {
    pub const fn name(self) -> &'static str {
        match self {
            Self::MarginCall => "margin_call",
            Self::Step => "liquidation_step",
            Self::Backstop => "backstop_takeover",
            Self::Deleveraged => "deleveraged",
            Self::DeficitCovered => "deficit_covered",
            Self::Queued => "liquidation_queued",
        }
    }
}

/// One liquidation event, as the block's outcome reported it.
#[derive(Clone, Debug, PartialEq)]
pub struct LiquidationEntry {
    pub height: u64,
    pub time_ms: u64,
    pub kind: LiquidationKind,
    pub account: AccountId,
    pub instrument: Option<InstrumentId>,
    /// The event's figures in words (`equity -120.5 USDC < maintenance 300 USDC`, ...).
    pub detail: String,
}

/// One change of an instrument's or an underlying's mode.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeChange {
    pub height: u64,
    pub time_ms: u64,
    /// What changed, in words (`BTC_USDC-PERPETUAL halted until ...`).
    pub what: String,
}

/// A validator's newest proven observation of one underlying.
#[derive(Clone, Debug, PartialEq)]
pub struct LastObservation {
    pub price: UnitPrice,
    pub observed_at_ms: u64,
    /// The block that carried it.
    pub height: u64,
    /// Whether the oracle flagged the validator as an outlier in that block.
    pub outlier: bool,
}

/// The dashboard's memory.
#[derive(Clone, Debug, Default)]
pub struct History {
    samples: VecDeque<Sample>,
    liquidations: VecDeque<LiquidationEntry>,
    modes: VecDeque<ModeChange>,
    digests: VecDeque<(u64, String)>,
    /// (underlying, validator key hex) -> newest observation. Bounded by the oracle's
    /// validator set times its tracked underlyings.
    observations: BTreeMap<(AssetCode, String), LastObservation>,
    /// Outliers counted per validator so far, to tell which were flagged in the last block.
    outliers_seen: BTreeMap<String, u64>,
}

fn money_text(amount: Money) -> String {
    format!("{} USDC", crate::deribit::convert::money(amount))
}

impl History {
    /// Records one applied block: `after` is the state it produced.
    pub fn record(
        &mut self,
        block: &ChainBlock,
        checked: &CheckedBlock,
        outcome: &BlockOutcome,
        after: &Exchange,
    ) {
        let height = block.body.height.get();
        let time_ms = block.body.time.millis();
        let mut sample = Sample {
            height,
            time_ms,
            insurance_fund: after.ledger().insurance_fund,
            index: Vec::new(),
            trades: 0,
            margin_calls: 0,
            liquidation_steps: 0,
            backstop_takeovers: 0,
            deleveraged: 0,
            uncovered: Money::ZERO,
        };
        let name = |id: InstrumentId| {
            after.instrument(id).map_or_else(
                || format!("instrument {}", id.get()),
                |i| i.spec.name.to_string(),
            )
        };
        for event in &outcome.events {
            let liquidation = |kind, account: AccountId, instrument, detail| LiquidationEntry {
                height,
                time_ms,
                kind,
                account,
                instrument,
                detail,
            };
            let entry = match event {
                Event::Trade(_) => {
                    sample.trades = sample.trades.saturating_add(1);
                    None
                }
                Event::MarginCall {
                    account,
                    equity,
                    maintenance,
                } => {
                    sample.margin_calls = sample.margin_calls.saturating_add(1);
                    Some(liquidation(
                        LiquidationKind::MarginCall,
                        *account,
                        None,
                        format!(
                            "equity {} below maintenance {}",
                            money_text(*equity),
                            money_text(*maintenance)
                        ),
                    ))
                }
                Event::LiquidationStep {
                    account,
                    instrument,
                    side,
                    qty,
                    filled,
                    fee,
                } => {
                    sample.liquidation_steps = sample.liquidation_steps.saturating_add(1);
                    Some(liquidation(
                        LiquidationKind::Step,
                        *account,
                        Some(*instrument),
                        format!(
                            "{side:?} {} of {} contracts on {}, fee {}",
                            filled.contracts(),
                            qty.contracts(),
                            name(*instrument),
                            money_text(*fee)
                        ),
                    ))
                }
                Event::BackstopTakeover {
                    account,
                    instrument,
                    position,
                    price,
                } => {
                    sample.backstop_takeovers = sample.backstop_takeovers.saturating_add(1);
                    Some(liquidation(
                        LiquidationKind::Backstop,
                        *account,
                        Some(*instrument),
                        format!(
                            "{position} contracts of {} to the backstop at {}",
                            name(*instrument),
                            crate::deribit::convert::unit_price(*price)
                        ),
                    ))
                }
                Event::Deleveraged {
                    account,
                    counterparty,
                    instrument,
                    position,
                    price,
                    charged,
                } => {
                    sample.deleveraged = sample.deleveraged.saturating_add(1);
                    Some(liquidation(
                        LiquidationKind::Deleveraged,
                        *account,
                        Some(*instrument),
                        format!(
                            "{position} contracts of {} closed against account {} at {}, which paid {}",
                            name(*instrument),
                            counterparty.get(),
                            crate::deribit::convert::unit_price(*price),
                            money_text(*charged)
                        ),
                    ))
                }
                Event::DeficitCovered {
                    account,
                    from_fund,
                    from_deleveraging,
                    uncovered,
                } => {
                    sample.uncovered = Money::from_micros(
                        sample.uncovered.micros().saturating_add(uncovered.micros()),
                    );
                    Some(liquidation(
                        LiquidationKind::DeficitCovered,
                        *account,
                        None,
                        format!(
                            "{} from the fund, {} from deleveraging, {} uncovered",
                            money_text(*from_fund),
                            money_text(*from_deleveraging),
                            money_text(*uncovered)
                        ),
                    ))
                }
                Event::LiquidationQueued { account, equity } => Some(liquidation(
                    LiquidationKind::Queued,
                    *account,
                    None,
                    format!("equity {}: first in line next block", money_text(*equity)),
                )),
                _ => {
                    if let Some(what) = mode_change(event, &name) {
                        push_bounded(
                            &mut self.modes,
                            ModeChange {
                                height,
                                time_ms,
                                what,
                            },
                            MODE_CHANGES_MAX,
                        );
                    }
                    None
                }
            };
            if let Some(entry) = entry {
                push_bounded(&mut self.liquidations, entry, LIQUIDATIONS_MAX);
            }
        }
        if let Some(oracle) = after.oracle_state() {
            sample.index = oracle
                .assets()
                .filter_map(|(asset, index)| index.index().map(|price| (*asset, price)))
                .collect();
        } else {
            sample.index = after
                .instruments()
                .iter()
                .map(|i| i.spec.underlying())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter_map(|asset| after.index_price(asset).map(|price| (asset, price)))
                .collect();
        }
        self.record_observations(block, checked, after, height);
        push_bounded(&mut self.samples, sample, SAMPLES_MAX);
        push_bounded(
            &mut self.digests,
            (height, hex(after.state_digest().as_ref())),
            DIGESTS_MAX,
        );
    }

    /// The block's validly signed observations by members of the oracle's validator set, and
    /// which of those validators the oracle flagged as outliers in this block.
    fn record_observations(
        &mut self,
        block: &ChainBlock,
        checked: &CheckedBlock,
        after: &Exchange,
        height: u64,
    ) {
        let (Some(oracle), Some(validators)) = (after.oracle_state(), after.oracle_validators())
        else {
            return;
        };
        let mut flagged = Vec::new();
        for (key, record) in oracle.records().iter() {
            let key = hex(key.as_ref());
            let before = self.outliers_seen.insert(key.clone(), record.outliers);
            if before.is_some_and(|b| record.outliers > b) {
                flagged.push(key);
            }
        }
        let verdicts = checked.observation_verdicts();
        for (signed, valid) in block.body.observations.iter().zip(verdicts) {
            let observation = &signed.observation;
            if !valid
                || validators.index_of(&observation.validator).is_none()
                || oracle.asset(&observation.asset).is_none()
            {
                continue;
            }
            let key = hex(observation.validator.as_ref());
            let outlier = flagged.contains(&key);
            self.observations.insert(
                (observation.asset, key),
                LastObservation {
                    price: observation.price,
                    observed_at_ms: observation.observed_at_ms,
                    height,
                    outlier,
                },
            );
        }
    }

    pub fn samples(&self) -> impl DoubleEndedIterator<Item = &Sample> + ExactSizeIterator {
        self.samples.iter()
    }

    pub fn liquidations(&self) -> impl DoubleEndedIterator<Item = &LiquidationEntry> {
        self.liquidations.iter()
    }

    pub fn mode_changes(&self) -> impl DoubleEndedIterator<Item = &ModeChange> {
        self.modes.iter()
    }

    /// The verified state digest after block `height`, if still kept.
    pub fn digest_at(&self, height: u64) -> Option<&str> {
        let first = self.digests.front()?.0;
        let offset = usize::try_from(height.checked_sub(first)?).ok()?;
        self.digests
            .get(offset)
            .filter(|(h, _)| *h == height)
            .map(|(_, d)| d.as_str())
    }

    /// Every validator's newest proven observation of `asset`, by key hex.
    pub fn observations(&self, asset: AssetCode) -> impl Iterator<Item = (&str, &LastObservation)> {
        self.observations
            .range((asset, String::new())..)
            .take_while(move |((a, _), _)| *a == asset)
            .map(|((_, key), observation)| (key.as_str(), observation))
    }

    /// Forgets everything (the replica restarted from a snapshot: heights jump).
    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

fn push_bounded<T>(ring: &mut VecDeque<T>, item: T, max: usize) {
    if ring.len() == max {
        ring.pop_front();
    }
    ring.push_back(item);
    debug_assert!(ring.len() <= max);
}

/// An event that changes how an instrument or an underlying trades, in words.
fn mode_change(event: &Event, name: &impl Fn(InstrumentId) -> String) -> Option<String> {
    Some(match event {
        Event::InstrumentHalted {
            instrument,
            until_ms,
            ..
        } => format!(
            "{} halted by the circuit breaker until {until_ms} ms",
            name(*instrument)
        ),
        Event::InstrumentReopened {
            instrument,
            price,
            volume,
        } => format!(
            "{} reopened by auction ({} contracts at {})",
            name(*instrument),
            volume.contracts(),
            price.map_or("no cross".to_string(), |p| p.to_string())
        ),
        Event::OracleModeChanged { asset, fresh } => format!(
            "{} oracle {}",
            asset.as_str(),
            if *fresh {
                "fresh: trading normally"
            } else {
                "stale: reduce-only, no funding"
            }
        ),
        Event::IndexClamped {
            asset,
            raw,
            applied,
        } => format!(
            "{} index clamped by the deviation guard: median {} applied {}",
            asset.as_str(),
            crate::deribit::convert::unit_price(*raw),
            crate::deribit::convert::unit_price(*applied)
        ),
        Event::InstrumentExpired { instrument } => format!("{} expired", name(*instrument)),
        Event::InstrumentSettled { instrument, price } => format!(
            "{} settled at {}",
            name(*instrument),
            crate::deribit::convert::unit_price(*price)
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_stay_bounded_and_digests_are_found_by_height() {
        let mut history = History::default();
        for height in 1..=(DIGESTS_MAX as u64 + 10) {
            push_bounded(
                &mut history.digests,
                (height, format!("d{height}")),
                DIGESTS_MAX,
            );
        }
        assert_eq!(history.digests.len(), DIGESTS_MAX);
        assert_eq!(history.digest_at(10), None, "dropped");
        assert_eq!(history.digest_at(11), Some("d11"));
        assert_eq!(
            history.digest_at(DIGESTS_MAX as u64 + 10),
            Some(format!("d{}", DIGESTS_MAX + 10).as_str())
        );
        assert_eq!(history.digest_at(DIGESTS_MAX as u64 + 11), None);
    }
}
