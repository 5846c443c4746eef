//! The devnet's market: a genesis, the instruments listed, the deposits and the insurance
//! fund's capital, all as ordinary signed transactions: each custodian's attestations.
//!
//! Owns: the devnet's instrument strip (a BTC perpetual and BTC options at several expiries
//! after the genesis date, strikes around the money, calls and puts) and the setup
//! transactions. Their nonces are fixed (1, 2, ...), so submitting them again after a restart
//! is harmless: an executed nonce is refused as stale.

use bulwark_exchange::oracle::OracleGenesis;
use bulwark_exchange::{Custody, ExchangeParams, Genesis};
use bulwark_oracle::OracleConfig;
use bulwark_types::{
    AssetCode, BlockTime, CustodyAction, ExpiryDate, InstrumentName, InstrumentSpec, Money,
    PrivateKey, PublicKey, Right, SignedTx, TxBody, UnitPrice,
};
use commonware_cryptography::Signer as _;

/// The BTC index the devnet's price walk starts from, USDC.
pub const INDEX_START_USDC: i64 = 100_000;
/// Days after the genesis date on which the devnet's options expire (08:00 UTC).
pub const EXPIRY_DAYS: [u64; 4] = [2, 9, 30, 91];
/// Strikes as a fraction of the starting index, in percent.
pub const STRIKE_PERCENT: [i64; 5] = [90, 95, 100, 105, 110];

pub fn btc() -> AssetCode {
    AssetCode::parse("BTC").expect("valid asset code")
}

/// A genesis with the default parameters and, when `oracle` names the observing validators,
/// the price oracle with its genesis configuration. Without custodians (see
/// [`genesis_with_custody`]) the admin lists and the bridge deposits alone.
pub fn genesis(
    admin: &PublicKey,
    bridge: &PublicKey,
    time_ms: u64,
    oracle: Option<Vec<PublicKey>>,
) -> Genesis {
    genesis_with_custody(admin, bridge, time_ms, oracle, None)
}

/// [`genesis`] with `custody`: deposits, insurance funding and listings only by a quorum of
/// custodians' attestations.
pub fn genesis_with_custody(
    admin: &PublicKey,
    bridge: &PublicKey,
    time_ms: u64,
    oracle: Option<Vec<PublicKey>>,
    custody: Option<Custody>,
) -> Genesis {
    Genesis {
        admin: admin.clone(),
        bridge: bridge.clone(),
        params: ExchangeParams::defaults(),
        time: BlockTime::from_millis(time_ms),
        oracle: oracle.map(|validators| OracleGenesis {
            validators,
            config: OracleConfig::GENESIS,
        }),
        custody,
    }
}

/// Custody by `validators`, `2f + 1` of `n = 3f + 1` (rounded down), as BFT venues' bridges
/// do: the f faulty ones together can credit or list nothing.
pub fn validator_custody(validators: Vec<PublicKey>) -> Custody {
    Custody {
        threshold: bft_threshold(validators.len()),
        custodians: validators,
    }
}

/// `2f + 1` for `n = 3f + 1` custodians (`f` rounded down): more than any `f` of them.
pub fn bft_threshold(n: usize) -> u8 {
    let f = n.saturating_sub(1) / 3;
    u8::try_from(2 * f + 1).unwrap_or(u8::MAX)
}

/// The custodians that attest a venue's set-up: the first `threshold` of `keys` each sign
/// every action.
pub struct Custodians {
    pub keys: Vec<PrivateKey>,
    pub threshold: u8,
}

/// What a venue starts with: instruments, funded accounts, the insurance fund's capital.
#[derive(Clone, Debug, Default)]
pub struct Setup {
    pub listings: Vec<InstrumentSpec>,
    pub deposits: Vec<(PublicKey, Money)>,
    pub insurance: Option<Money>,
}

impl Setup {
    /// The setup's actions in order: listings, deposits, the insurance fund.
    fn actions(&self) -> Vec<CustodyAction> {
        let listings = self
            .listings
            .iter()
            .map(|spec| CustodyAction::ListInstrument(*spec));
        let deposits = self
            .deposits
            .iter()
            .map(|(owner, amount)| CustodyAction::Deposit {
                owner: owner.clone(),
                amount: *amount,
            });
        let insurance = self
            .insurance
            .map(|amount| CustodyAction::FundInsurance { amount });
        listings.chain(deposits).chain(insurance).collect()
    }

    /// The setup's signed transactions: each action attested by `threshold` custodians.
    /// Nonces (each custodian's 1, 2, ...) and ids (1, 2, ... in the order of
    /// [`Setup::actions`]) are fixed, so submitting them again is harmless: an executed nonce
    /// is refused as stale.
    pub fn txs(&self, custodians: &Custodians) -> Vec<SignedTx> {
        let actions = self.actions();
        let attesting = &custodians.keys[..usize::from(custodians.threshold)];
        let mut txs = Vec::with_capacity(actions.len() * attesting.len());
        for (i, action) in actions.into_iter().enumerate() {
            let id = i as u64 + 1;
            for key in attesting {
                let body = TxBody::Attest {
                    id,
                    action: action.clone(),
                };
                txs.push(sign(key, id, body));
            }
        }
        txs
    }

    /// Each attesting custodian with the nonce of its last transaction in [`Setup::txs`]: the
    /// setup has executed once every one of them has spent it.
    pub fn last_nonces(&self, custodians: &Custodians) -> Vec<(PublicKey, u64)> {
        let actions = self.actions().len() as u64;
        if actions == 0 {
            return Vec::new();
        }
        custodians.keys[..usize::from(custodians.threshold)]
            .iter()
            .map(|key| (key.public_key(), actions))
            .collect()
    }
}

/// The BTC perpetual: tick 0.5 USDC, 0.001 BTC per contract.
pub fn perpetual_spec() -> InstrumentSpec {
    spec_for(InstrumentName::perpetual(btc()))
}

/// The devnet's contract terms for an instrument of any name: Deribit's linear BTC terms
/// ([`InstrumentSpec::linear`]).
pub fn spec_for(name: InstrumentName) -> InstrumentSpec {
    InstrumentSpec::linear(name)
}

/// The civil date (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The expiry date `days_after` days after the date of `time_ms`.
pub fn expiry_after(time_ms: u64, days_after: u64) -> Option<ExpiryDate> {
    let days = i64::try_from(time_ms / 86_400_000 + days_after).ok()?;
    let (year, month, day) = civil_from_days(days);
    ExpiryDate::new(u16::try_from(year).ok()?, month as u8, day as u8)
}

/// An option on BTC: tick 5 USDC, 0.01 BTC per contract (Deribit's linear BTC options).
pub fn option_spec(expiry: ExpiryDate, strike_usdc: i64, right: Right) -> InstrumentSpec {
    spec_for(
        InstrumentName::option(btc(), expiry, UnitPrice::from_usdc(strike_usdc), right)
            .expect("positive strike"),
    )
}

/// Every instrument the devnet lists, the perpetual first.
pub fn instruments(genesis_ms: u64) -> Vec<InstrumentSpec> {
    let mut specs = vec![perpetual_spec()];
    for days in EXPIRY_DAYS {
        let Some(expiry) = expiry_after(genesis_ms, days) else {
            continue;
        };
        for percent in STRIKE_PERCENT {
            for right in [Right::Call, Right::Put] {
                specs.push(option_spec(expiry, INDEX_START_USDC * percent / 100, right));
            }
        }
    }
    specs
}

pub fn sign(key: &PrivateKey, nonce: u64, body: TxBody) -> SignedTx {
    body.signed(key, nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip_through_expiry_millis() {
        // 2026-11-24T11:00Z: two days later is 26NOV26, 91 days later 23FEB27.
        let now = 1_795_518_000_000;
        let expiry = expiry_after(now, 2).unwrap();
        assert_eq!(expiry.to_string(), "26NOV26");
        assert_eq!(expiry_after(now, 91).unwrap().to_string(), "23FEB27");
        assert!(expiry.expiry_millis() > now);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn the_strip_lists_and_every_spec_checks() {
        let specs = instruments(1_795_518_000_000);
        assert_eq!(
            specs.len(),
            1 + EXPIRY_DAYS.len() * STRIKE_PERCENT.len() * 2
        );
        for spec in &specs {
            spec.check().unwrap();
            assert_eq!(
                InstrumentName::parse(&spec.name.to_string()).unwrap(),
                spec.name
            );
        }
    }
}
