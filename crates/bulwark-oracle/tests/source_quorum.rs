//! One validator's sources, some honest, some lying anything at all, the rest failed: a
//! minority of liars among the configured sources never makes the observation on its own,
//! and what it reports stays within the agreement band of the honest prices; while the
//! honest sources are a majority of the configured ones, the validator always observes.
//!
//! The expectations come from the generated honest prices alone.

use bulwark_oracle::{PriceSource, SourceQuorum, SourceQuote, observe_sources};
use bulwark_types::{AssetCode, PrivateKey, UnitPrice};
use commonware_cryptography::Signer;
use proptest::prelude::*;

const NOW_MS: u64 = 1_700_000_000_000;

struct Fixed(Option<SourceQuote>);

impl PriceSource for Fixed {
    fn observe(&mut self, _: AssetCode, _: u64) -> Option<SourceQuote> {
        self.0
    }
}

fn fixed(price: i64) -> Fixed {
    Fixed(Some(SourceQuote {
        price: UnitPrice::from_micros(price),
        observed_at_ms: NOW_MS,
    }))
}

/// What a lying source prints, relative to the honest price `p`.
#[derive(Clone, Debug)]
enum Lie {
    /// Parts per million of `p`: anywhere from nothing to ten times it.
    Ppm(u32),
    /// Anything at all.
    Raw(i64),
}

fn lie() -> impl Strategy<Value = Lie> {
    prop_oneof![
        (0u32..=10_000_000).prop_map(Lie::Ppm),
        // Just inside and just outside the band, where a liar is most useful.
        (980_000u32..=1_020_000).prop_map(Lie::Ppm),
        any::<i64>().prop_map(Lie::Raw),
    ]
}

fn price_of(lie: &Lie, p: i64) -> i64 {
    match lie {
        Lie::Ppm(ppm) => i64::try_from(i128::from(p) * i128::from(*ppm) / 1_000_000).unwrap(),
        Lie::Raw(v) => *v,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn a_minority_of_liars_stays_within_the_band(
        configured in 1usize..=9,
        liars_wanted in 0usize..=4,
        honest_wanted in 0usize..=9,
        p in 1_000_000i64..=1_000_000_000_000,
        // Each honest source within 10 bps of p: honest venues of a liquid index agree.
        noise in proptest::collection::vec(-1_000i32..=1_000, 9),
        lies in proptest::collection::vec(lie(), 4),
        order in any::<u64>(),
    ) {
        let liars = liars_wanted.min((configured - 1) / 2);
        let honest = honest_wanted.min(configured - liars);
        let quorum = SourceQuorum::DEFAULT;
        let b = i128::from(quorum.agree_bps);
        let honest_prices: Vec<i64> = noise[..honest]
            .iter()
            .map(|n| p + p / 1_000_000 * i64::from(*n))
            .collect();
        let mut sources: Vec<Fixed> = honest_prices.iter().map(|h| fixed(*h)).collect();
        sources.extend(lies[..liars].iter().map(|l| fixed(price_of(l, p))));
        sources.extend((honest + liars..configured).map(|_| Fixed(None)));
        // Any order of the sources.
        let len = sources.len();
        sources.rotate_left(usize::try_from(order % len as u64).unwrap());
        let mut refs: Vec<&mut dyn PriceSource> =
            sources.iter_mut().map(|s| s as &mut dyn PriceSource).collect();
        let key = PrivateKey::from_seed(7).public_key();
        let btc = AssetCode::parse("BTC").unwrap();
        let observed = observe_sources(&key, btc, NOW_MS, &mut refs, quorum);

        let majority = configured / 2 + 1;
        if honest >= majority {
            prop_assert!(observed.is_some(), "an honest majority always observes");
        }
        let Some(o) = observed else { return Ok(()) };
        prop_assert!(honest >= 1, "liars alone never make an observation");
        prop_assert!(usize::from(o.sources) >= majority);
        let (lo, hi) = (
            i128::from(*honest_prices.iter().min().unwrap()),
            i128::from(*honest_prices.iter().max().unwrap()),
        );
        let price = i128::from(o.price.micros());
        // Within twice the band of the honest prices (the band is taken around the median,
        // itself within a band of an honest price: 2b(1 + b) < 2b + 3 bps for b = 100); and
        // within one band while the honest sources outnumber the liars answering.
        let slack = if honest > liars { b } else { 2 * b + 3 };
        prop_assert!(
            price * 10_000 >= lo * (10_000 - slack) && price * 10_000 <= hi * (10_000 + slack),
            "{price} outside [{lo}, {hi}] by more than {slack} bps"
        );
    }
}
