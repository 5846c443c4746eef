//! Why a transaction was not applied. Recorded in the block outcome, so the codes are wire
//! format: append new variants with new codes; never renumber or reuse one.
//!
//! Declaration order is check order: authentication first, then stateless checks of the
//! request, then the stateful checks of the exchange, with margin last. A transaction that
//! fails several checks reports the first.

use crate::instrument::SpecError;
use crate::num::Money;
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, ReadExt, Write};

#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    // ---- authentication ----
    #[error("signature does not verify")]
    SignatureInvalid,
    #[error(
        "the nonce is a time (microseconds since the Unix epoch) more than 60 s before the \
         block's: the transaction expired unexecuted"
    )]
    NonceExpired,
    #[error(
        "the nonce is a time (microseconds since the Unix epoch) more than 60 s after the \
         block's"
    )]
    NonceAhead,
    #[error("signer is neither an account key, an agent, the bridge nor the admin")]
    SignerUnknown,
    #[error("nonce must exceed the signer's last nonce")]
    NonceNotIncreasing,
    #[error("only the bridge authority may deposit")]
    NotBridge,
    #[error("only the admin may list instruments")]
    NotAdmin,
    #[error("only the account's own key may do this; agents may only trade")]
    NotOwner,
    #[error("agent key has been revoked")]
    AgentRevoked,
    // ---- stateless ----
    #[error("amount must be positive")]
    AmountNotPositive,
    #[error("amount is larger than any single transfer may be")]
    AmountTooLarge,
    #[error("quantity must be positive")]
    QtyNotPositive,
    #[error("quantity is larger than any order may be")]
    QtyTooLarge,
    #[error("price must be positive")]
    PriceNotPositive,
    #[error("price is larger than any order may carry")]
    PriceTooLarge,
    #[error("a post-only order must be good-til-cancelled")]
    PostOnlyMustRest,
    #[error("market maker protection settings out of range")]
    MmpConfigInvalid,
    // ---- stateful: instrument and order terms ----
    #[error("no instrument has this id")]
    InstrumentUnknown,
    #[error("instrument does not trade (expired or settled)")]
    InstrumentNotTrading,
    #[error("price is not a multiple of the tick size")]
    PriceNotOnTick,
    #[error("quantity is not a multiple of the lot size")]
    QtyNotMultipleOfLot,
    #[error("quantity is below the minimum order size")]
    QtyBelowMinimum,
    #[error("no index price is known for the underlying")]
    IndexPriceUnavailable,
    #[error("no mark price is known for the instrument")]
    MarkPriceUnavailable,
    #[error("price lies outside the band around the mark price")]
    PriceOutsideBand,
    #[error("post-only order would trade on arrival")]
    PostOnlyWouldCross,
    #[error("reduce-only order would open or increase a position")]
    ReduceOnlyWouldIncrease,
    #[error("client order id is already used by an open order of this account")]
    ClientOrderIdInUse,
    #[error("account has as many open orders as it may")]
    OpenOrderLimit,
    #[error("position would exceed the largest allowed")]
    PositionLimit,
    #[error(
        "open interest would exceed the instrument's cap, which follows its book depth: only \
         orders that reduce a position are taken"
    )]
    OpenInterestCap,
    #[error("no open order matches")]
    OrderUnknown,
    #[error("amend changes neither price nor quantity")]
    AmendUnchanged,
    #[error("market maker protection tripped: quoting in this underlying is frozen")]
    MmpFrozen,
    #[error("no market maker protection is set for this underlying")]
    MmpNotConfigured,
    #[error(
        "the oracle has no quorum for this underlying: only orders that reduce a position are taken"
    )]
    OracleStale,
    #[error("portfolio margin is not offered on this exchange")]
    PortfolioMarginUnavailable,
    #[error("the account already uses this margin method")]
    MarginModeUnchanged,
    // ---- stateful: keys, transfers, listing ----
    #[error("key already belongs to an account")]
    KeyInUse,
    #[error("account has as many agents as it may")]
    AgentLimit,
    #[error("key is not an agent of this account")]
    AgentUnknown,
    #[error("an instrument with this name is already listed")]
    InstrumentExists,
    #[error("instrument terms are invalid: {0}")]
    InstrumentSpecInvalid(SpecError),
    #[error("as many instruments are listed as may be")]
    InstrumentLimit,
    #[error("as many accounts exist as may")]
    AccountLimit,
    #[error("the agent key's proof of possession does not verify for this owner and nonce")]
    AgentProofInvalid,
    #[error("withdrawals wait while an underlying the account holds has no fresh oracle quorum")]
    WithdrawalOracleStale,
    #[error(
        "withdrawals wait while the oracle's deviation guard holds an underlying the account \
         holds away from the validators' median (the index is catching up with a large move)"
    )]
    WithdrawalIndexCatchingUp,
    #[error("a withdrawal of this account is already waiting for its release (one at a time)")]
    WithdrawalPending,
    #[error("no withdrawal of this account is waiting for its release: nothing to cancel")]
    NoWithdrawalPending,
    #[error("the account's owner cancelled the withdrawal before its release")]
    WithdrawalCancelledByOwner,
    #[error("withdrawals wait while the account is below maintenance margin (in liquidation)")]
    WithdrawalDuringLiquidation,
    #[error(
        "withdrawals are suspended: the insurance fund does not cover the deficits it must pay"
    )]
    WithdrawalsSuspended,
    #[error("this exchange's custodians deposit, fund and list by quorum: no single key may do it")]
    QuorumRequired,
    #[error("only a custodian named in the genesis may attest")]
    NotCustodian,
    #[error("this custody id was already carried out, or lies below the ids still kept")]
    CustodyIdUsed,
    #[error("this custodian already attested this action under this id")]
    AttestationRepeated,
    #[error("this custodian has as many attestations waiting for a quorum as it may")]
    AttestationsPendingLimit,
    #[error("a balance would leave its allowed range")]
    BalanceOverflow,
    // ---- margin, last ----
    #[error("initial margin would not be covered; short by {shortfall} USDC")]
    MarginInsufficient { shortfall: Money },
    #[error("withdrawal exceeds available withdrawal funds by {shortfall} USDC")]
    WithdrawalExceedsAvailable { shortfall: Money },
    #[error(
        "option premium and fees must be paid from realised funds (unrealised gains and long \
         options' value do not count); short by {shortfall} USDC"
    )]
    PremiumNotCovered { shortfall: Money },
}

impl RejectReason {
    /// The stable wire code of this reason.
    pub const fn code(&self) -> u16 {
        match self {
            RejectReason::SignatureInvalid => 1,
            RejectReason::SignerUnknown => 2,
            RejectReason::NonceNotIncreasing => 3,
            RejectReason::NotBridge => 4,
            RejectReason::NotAdmin => 5,
            RejectReason::NotOwner => 6,
            RejectReason::AgentRevoked => 7,
            RejectReason::NonceExpired => 8,
            RejectReason::NonceAhead => 9,
            RejectReason::AmountNotPositive => 20,
            RejectReason::AmountTooLarge => 21,
            RejectReason::QtyNotPositive => 22,
            RejectReason::QtyTooLarge => 23,
            RejectReason::PriceNotPositive => 24,
            RejectReason::PriceTooLarge => 25,
            RejectReason::PostOnlyMustRest => 26,
            RejectReason::MmpConfigInvalid => 27,
            RejectReason::InstrumentUnknown => 40,
            RejectReason::InstrumentNotTrading => 41,
            RejectReason::PriceNotOnTick => 42,
            RejectReason::QtyNotMultipleOfLot => 43,
            RejectReason::QtyBelowMinimum => 44,
            RejectReason::IndexPriceUnavailable => 45,
            RejectReason::MarkPriceUnavailable => 46,
            RejectReason::PriceOutsideBand => 47,
            RejectReason::PostOnlyWouldCross => 48,
            RejectReason::ReduceOnlyWouldIncrease => 49,
            RejectReason::ClientOrderIdInUse => 50,
            RejectReason::OpenOrderLimit => 51,
            RejectReason::PositionLimit => 52,
            RejectReason::OrderUnknown => 53,
            RejectReason::AmendUnchanged => 54,
            RejectReason::MmpFrozen => 55,
            RejectReason::MmpNotConfigured => 56,
            RejectReason::OracleStale => 57,
            RejectReason::PortfolioMarginUnavailable => 58,
            RejectReason::MarginModeUnchanged => 59,
            RejectReason::OpenInterestCap => 60,
            RejectReason::KeyInUse => 70,
            RejectReason::AgentLimit => 71,
            RejectReason::AgentUnknown => 72,
            RejectReason::InstrumentExists => 73,
            RejectReason::InstrumentSpecInvalid(_) => 74,
            RejectReason::InstrumentLimit => 75,
            RejectReason::AccountLimit => 76,
            RejectReason::BalanceOverflow => 77,
            RejectReason::MarginInsufficient { .. } => 90,
            RejectReason::WithdrawalExceedsAvailable { .. } => 91,
            RejectReason::PremiumNotCovered { .. } => 92,
            RejectReason::AgentProofInvalid => 78,
            RejectReason::WithdrawalOracleStale => 79,
            RejectReason::WithdrawalIndexCatchingUp => 87,
            RejectReason::WithdrawalPending => 88,
            RejectReason::NoWithdrawalPending => 89,
            RejectReason::WithdrawalCancelledByOwner => 93,
            RejectReason::WithdrawalDuringLiquidation => 80,
            RejectReason::WithdrawalsSuspended => 81,
            RejectReason::QuorumRequired => 82,
            RejectReason::NotCustodian => 83,
            RejectReason::CustodyIdUsed => 84,
            RejectReason::AttestationRepeated => 85,
            RejectReason::AttestationsPendingLimit => 86,
        }
    }

    fn from_code(code: u16) -> Option<Self> {
        // Data-carrying variants are built by the decoder itself.
        const PLAIN: [RejectReason; 58] = [
            RejectReason::SignatureInvalid,
            RejectReason::SignerUnknown,
            RejectReason::NonceNotIncreasing,
            RejectReason::NotBridge,
            RejectReason::NotAdmin,
            RejectReason::NotOwner,
            RejectReason::AgentRevoked,
            RejectReason::NonceExpired,
            RejectReason::NonceAhead,
            RejectReason::AmountNotPositive,
            RejectReason::AmountTooLarge,
            RejectReason::QtyNotPositive,
            RejectReason::QtyTooLarge,
            RejectReason::PriceNotPositive,
            RejectReason::PriceTooLarge,
            RejectReason::PostOnlyMustRest,
            RejectReason::MmpConfigInvalid,
            RejectReason::InstrumentUnknown,
            RejectReason::InstrumentNotTrading,
            RejectReason::PriceNotOnTick,
            RejectReason::QtyNotMultipleOfLot,
            RejectReason::QtyBelowMinimum,
            RejectReason::IndexPriceUnavailable,
            RejectReason::MarkPriceUnavailable,
            RejectReason::PriceOutsideBand,
            RejectReason::PostOnlyWouldCross,
            RejectReason::ReduceOnlyWouldIncrease,
            RejectReason::ClientOrderIdInUse,
            RejectReason::OpenOrderLimit,
            RejectReason::PositionLimit,
            RejectReason::OpenInterestCap,
            RejectReason::OrderUnknown,
            RejectReason::AmendUnchanged,
            RejectReason::MmpFrozen,
            RejectReason::MmpNotConfigured,
            RejectReason::OracleStale,
            RejectReason::PortfolioMarginUnavailable,
            RejectReason::MarginModeUnchanged,
            RejectReason::KeyInUse,
            RejectReason::AgentLimit,
            RejectReason::AgentUnknown,
            RejectReason::InstrumentExists,
            RejectReason::InstrumentLimit,
            RejectReason::AccountLimit,
            RejectReason::BalanceOverflow,
            RejectReason::AgentProofInvalid,
            RejectReason::WithdrawalOracleStale,
            RejectReason::WithdrawalIndexCatchingUp,
            RejectReason::WithdrawalPending,
            RejectReason::NoWithdrawalPending,
            RejectReason::WithdrawalCancelledByOwner,
            RejectReason::WithdrawalDuringLiquidation,
            RejectReason::WithdrawalsSuspended,
            RejectReason::QuorumRequired,
            RejectReason::NotCustodian,
            RejectReason::CustodyIdUsed,
            RejectReason::AttestationRepeated,
            RejectReason::AttestationsPendingLimit,
        ];
        PLAIN.into_iter().find(|reason| reason.code() == code)
    }
}

fn spec_error_from_tag(tag: u8) -> Option<SpecError> {
    [
        SpecError::TickSize,
        SpecError::Multiplier,
        SpecError::LotSize,
        SpecError::SizeMin,
        SpecError::TickValue,
        SpecError::StrikeOffTick,
    ]
    .into_iter()
    .find(|e| *e as u8 == tag)
}

impl Write for RejectReason {
    fn write(&self, buf: &mut impl BufMut) {
        self.code().write(buf);
        match self {
            RejectReason::InstrumentSpecInvalid(e) => (*e as u8).write(buf),
            RejectReason::MarginInsufficient { shortfall }
            | RejectReason::WithdrawalExceedsAvailable { shortfall }
            | RejectReason::PremiumNotCovered { shortfall } => shortfall.write(buf),
            _ => {}
        }
    }
}

impl EncodeSize for RejectReason {
    fn encode_size(&self) -> usize {
        2 + match self {
            RejectReason::InstrumentSpecInvalid(_) => 1,
            RejectReason::MarginInsufficient { .. }
            | RejectReason::WithdrawalExceedsAvailable { .. }
            | RejectReason::PremiumNotCovered { .. } => 16,
            _ => 0,
        }
    }
}

impl Read for RejectReason {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let code = u16::read(buf)?;
        match code {
            74 => {
                let tag = u8::read(buf)?;
                let e = spec_error_from_tag(tag).ok_or(CodecError::InvalidEnum(tag))?;
                Ok(RejectReason::InstrumentSpecInvalid(e))
            }
            90 => Ok(RejectReason::MarginInsufficient {
                shortfall: Money::read(buf)?,
            }),
            91 => Ok(RejectReason::WithdrawalExceedsAvailable {
                shortfall: Money::read(buf)?,
            }),
            92 => Ok(RejectReason::PremiumNotCovered {
                shortfall: Money::read(buf)?,
            }),
            _ => Self::from_code(code).ok_or(CodecError::Invalid("RejectReason", "unknown code")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};

    #[test]
    fn every_code_is_unique_and_round_trips() {
        let mut seen = std::collections::BTreeSet::new();
        let mut all: Vec<RejectReason> = (0..=200u16).filter_map(RejectReason::from_code).collect();
        all.push(RejectReason::InstrumentSpecInvalid(
            SpecError::StrikeOffTick,
        ));
        all.push(RejectReason::MarginInsufficient {
            shortfall: Money::from_micros(12),
        });
        all.push(RejectReason::WithdrawalExceedsAvailable {
            shortfall: Money::from_micros(-3),
        });
        all.push(RejectReason::PremiumNotCovered {
            shortfall: Money::from_micros(7),
        });
        assert_eq!(all.len(), 62, "every variant is reachable from its code");
        for reason in all {
            assert!(
                seen.insert(reason.code()),
                "duplicate code {}",
                reason.code()
            );
            let bytes = reason.encode();
            assert_eq!(bytes.len(), reason.encode_size());
            assert_eq!(RejectReason::decode(bytes).unwrap(), reason);
        }
    }

    #[test]
    fn unknown_code_is_a_decode_error() {
        assert!(RejectReason::decode(commonware_codec::Copying(&[0u8, 199])).is_err());
    }
}
