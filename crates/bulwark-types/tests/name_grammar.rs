//! Golden tests of the Deribit instrument-name grammar: accepted names round-trip byte for byte;
//! every rejected name fails with the reason that names its fault.

use bulwark_types::name::{InstrumentName, NameError, NameKind, Right};
use bulwark_types::num::UnitPrice;

#[test]
fn accepted_names_round_trip_exactly() {
    for name in [
        "BTC_USDC-PERPETUAL",
        "ETH_USDC-PERPETUAL",
        "BTC_USDC-27DEC26-100000-C",
        "BTC_USDC-27DEC26-100000-P",
        "BTC_USDC-5JAN27-95000-C",
        "XRP_USDC-30JUN27-0d625-C",
        "SOL_USDC-29FEB28-150d5-P",
        "1000PEPE_USDC-31DEC99-1-C",
        "BTC_USDC-1JAN00-123456789012d123456-P",
    ] {
        let parsed = InstrumentName::parse(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed.to_string(), name);
    }
}

#[test]
fn option_fields_are_read_from_the_name() {
    let name = InstrumentName::parse("BTC_USDC-27DEC26-100000-C").unwrap();
    assert_eq!(name.base().as_str(), "BTC");
    let NameKind::Option {
        expiry,
        strike,
        right,
    } = name.kind()
    else {
        panic!("an option")
    };
    assert_eq!(
        (expiry.year(), expiry.month(), expiry.day()),
        (2026, 12, 27)
    );
    assert_eq!(strike, UnitPrice::from_usdc(100_000));
    assert_eq!(right, Right::Call);
    // 2026-12-27T08:00:00Z, from `date -u -d 2026-12-27T08:00:00Z +%s` = 1798358400.
    assert_eq!(expiry.expiry_millis(), 1_798_358_400_000);
}

#[test]
fn fractional_strikes_use_d_as_decimal_point() {
    let name = InstrumentName::parse("XRP_USDC-30JUN27-0d625-C").unwrap();
    let NameKind::Option { strike, .. } = name.kind() else {
        panic!("an option")
    };
    assert_eq!(strike, UnitPrice::from_micros(625_000));
}

#[test]
fn malformed_names_are_rejected_with_their_reason() {
    let cases: &[(&str, NameError)] = &[
        ("BTC-PERPETUAL", NameError::NotLinear),
        ("BTC-27DEC26-100000-C", NameError::NotLinear),
        ("BTC_USDT-PERPETUAL", NameError::SettlementUnsupported),
        ("BTC_USDC", NameError::Shape),
        ("BTC_USDC-27DEC26", NameError::FutureUnsupported),
        ("BTC_USDC-27DEC26-100000", NameError::Shape),
        ("BTC_USDC-27DEC26-100000-C-X", NameError::Shape),
        ("BTC_USDC-027DEC26-100000-C", NameError::ExpiryFormat),
        ("BTC_USDC-27Dec26-100000-C", NameError::ExpiryFormat),
        ("BTC_USDC-27DEC2026-100000-C", NameError::ExpiryFormat),
        ("BTC_USDC-DEC26-100000-C", NameError::ExpiryFormat),
        ("BTC_USDC-31NOV26-100000-C", NameError::ExpiryNotADate),
        ("BTC_USDC-29FEB27-100000-C", NameError::ExpiryNotADate),
        ("BTC_USDC-0DEC26-100000-C", NameError::ExpiryFormat),
        ("BTC_USDC-27DEC26-0100000-C", NameError::StrikeFormat),
        ("BTC_USDC-27DEC26-0-C", NameError::StrikeFormat),
        ("BTC_USDC-27DEC26-1d50-C", NameError::StrikeFormat),
        ("BTC_USDC-27DEC26-1.5-C", NameError::StrikeFormat),
        ("BTC_USDC-27DEC26-1d1234567-C", NameError::StrikePrecision),
        (
            "BTC_USDC-27DEC26-1234567890123-C",
            NameError::StrikeTooLarge,
        ),
        ("BTC_USDC-27DEC26--C", NameError::StrikeFormat),
        ("BTC_USDC-27DEC26-100000-c", NameError::Right),
        ("BTC_USDC-27DEC26-100000-CALL", NameError::Right),
        (
            "btc_USDC-PERPETUAL",
            NameError::Base(bulwark_types::asset::AssetCodeError::BadCharacter),
        ),
        (
            "_USDC-PERPETUAL",
            NameError::Base(bulwark_types::asset::AssetCodeError::Empty),
        ),
        ("BTC_USDC-PERPETUAL-X", NameError::Shape),
        ("", NameError::Shape),
    ];
    for (name, reason) in cases {
        assert_eq!(InstrumentName::parse(name), Err(*reason), "{name}");
    }
    let long = format!("BTC_USDC-27DEC26-{}-C", "1".repeat(40));
    assert_eq!(InstrumentName::parse(&long), Err(NameError::TooLong));
}

/// Regression (found by the `tx_decode` fuzz target on a clean checkout): a multi-byte
/// character inside the expiry made the parser slice a `str` off a character boundary and
/// panic. Every position of every kind of name now refuses such a character by name.
#[test]
fn multi_byte_characters_anywhere_are_refused_not_a_panic() {
    for name in [
        "BTC_USDC-27DEC26-100000-C",
        "BTC_USDC-PERPETUAL",
        "XRP_USDC-30JUN27-0d625-P",
    ] {
        for at in 0..=name.len() {
            for ch in ['\u{3bf}', '\u{e9}', '\u{20ac}', '\u{1f600}'] {
                let mut hostile = name.to_string();
                hostile.insert(at, ch);
                assert_eq!(
                    InstrumentName::parse(&hostile),
                    Err(NameError::NotAscii),
                    "{hostile}"
                );
            }
        }
    }
    assert_eq!(
        InstrumentName::parse("BTC_USDC-53CE\u{3bf}6-100000-C"),
        Err(NameError::NotAscii)
    );
    // The expiry parser is public on its own too.
    for text in ["53CE\u{3bf}6", "1\u{3bf}EC26", "27D\u{e9}C2", "27DEC\u{e9}"] {
        assert_eq!(
            bulwark_types::name::ExpiryDate::parse(text),
            Err(NameError::ExpiryFormat),
            "{text}"
        );
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever string comes in, parsing never panics, and what parses formats back to it.
        #[test]
        fn parse_never_panics_and_accepted_names_are_canonical(s in "\\PC{0,40}") {
            if let Ok(name) = InstrumentName::parse(&s) {
                prop_assert_eq!(name.to_string(), s);
            }
        }

        /// Names of the right shape with any character in the expiry, strike or right: the parts
        /// parsed by position, where a byte index could fall inside a character.
        #[test]
        fn shaped_names_with_any_characters_never_panic(
            expiry in "\\PC{1,8}", strike in "\\PC{1,8}", right in "\\PC{1,2}",
        ) {
            let name = format!("BTC_USDC-{expiry}-{strike}-{right}");
            if let Ok(parsed) = InstrumentName::parse(&name) {
                prop_assert_eq!(parsed.to_string(), name);
            }
            let _ = bulwark_types::name::ExpiryDate::parse(&expiry);
        }

        /// Strings built from the grammar's own alphabet hit the interesting paths more often.
        #[test]
        fn grammar_alphabet_strings_round_trip(s in "[A-Z0-9_d-]{1,30}") {
            if let Ok(name) = InstrumentName::parse(&s) {
                prop_assert_eq!(name.to_string(), s);
            }
        }

        /// Every valid option formats to a name that parses back to the same option.
        #[test]
        fn generated_options_round_trip(
            year in 2000u16..=2099, month in 1u8..=12, day in 1u8..=28,
            strike_micros in 1i64..1_000_000_000_000_000, call in any::<bool>(),
        ) {
            let base = bulwark_types::asset::AssetCode::parse("BTC").unwrap();
            let expiry = bulwark_types::name::ExpiryDate::new(year, month, day).unwrap();
            let right = if call { Right::Call } else { Right::Put };
            let name = InstrumentName::option(base, expiry, UnitPrice::from_micros(strike_micros), right).unwrap();
            prop_assert_eq!(InstrumentName::parse(&name.to_string()), Ok(name));
        }
    }
}
