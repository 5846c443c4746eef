//! Deribit's JSON-RPC error codes, as the contract (section 4) lists them, and the mapping of
//! every exchange [`RejectReason`] to the closest one.
//!
//! Owns: [`RpcError`] (an integer code, Deribit's message name, optional `data`) and
//! [`reject_error`]. Codes are what clients (ccxt) map to exception classes; never change one.

use bulwark_types::RejectReason;
use serde_json::{Value, json};

/// A JSON-RPC error as Deribit sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: &'static str,
    pub data: Option<Value>,
}

impl RpcError {
    pub const fn new(code: i64, message: &'static str) -> Self {
        Self {
            code,
            message,
            data: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// `-32602 Invalid params`, naming the parameter and why.
    pub fn invalid_param(param: &str, reason: &str) -> Self {
        Self::new(INVALID_PARAMS, "Invalid params")
            .with_data(json!({"param": param, "reason": reason}))
    }

    /// A required parameter is missing.
    pub fn missing_param(param: &str) -> Self {
        Self::invalid_param(param, "must be present")
    }

    /// The JSON `error` object.
    pub fn to_json(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        error
    }
}

pub const PARSE_ERROR: i64 = -32700;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INVALID_REQUEST: i64 = -32600;
pub const AUTHORIZATION_REQUIRED: i64 = 10000;
pub const ERROR: i64 = 10001;
pub const QTY_TOO_LOW: i64 = 10002;
pub const ORDER_NOT_FOUND: i64 = 10004;
pub const PRICE_TOO_LOW: i64 = 10005;
pub const PRICE_TOO_HIGH: i64 = 10006;
pub const INVALID_AMOUNT: i64 = 10008;
pub const NOT_ENOUGH_FUNDS: i64 = 10009;
pub const ALREADY_CLOSED: i64 = 10010;
pub const INVALID_OR_UNSUPPORTED_INSTRUMENT: i64 = 10020;
pub const INVALID_PRICE: i64 = 10021;
pub const PRICE_WRONG_TICK: i64 = 10043;
pub const TOO_MANY_REQUESTS: i64 = 10028;
pub const NOT_OWNER_OF_ORDER: i64 = 10029;
pub const RETRY: i64 = 10040;
pub const SETTLEMENT_IN_PROGRESS: i64 = 10041;
pub const MATCHING_ENGINE_QUEUE_FULL: i64 = 10047;
pub const INVALID_ARGUMENTS: i64 = 11029;
pub const BAD_ARGUMENTS: i64 = 11049;
pub const VALUE_REQUIRED: i64 = 13010;
pub const OTHER_REJECT: i64 = 11030;
pub const PERMISSION_DENIED: i64 = 11042;
pub const NOT_OPEN_ORDER: i64 = 11044;
pub const POST_ONLY_REJECT: i64 = 11054;
pub const INTERNAL_SERVER_ERROR: i64 = 11094;
pub const INVALID_CREDENTIALS: i64 = 13004;
pub const UNAUTHORIZED: i64 = 13009;
pub const BAD_REQUEST: i64 = 11050;
pub const FORBIDDEN: i64 = 13021;
pub const SYSTEM_MAINTENANCE: i64 = 11051;

pub fn method_not_found() -> RpcError {
    RpcError::new(METHOD_NOT_FOUND, "Method not found")
}
pub fn parse_error() -> RpcError {
    RpcError::new(PARSE_ERROR, "Parse error")
}
pub fn unauthorized(why: &str) -> RpcError {
    RpcError::new(UNAUTHORIZED, "unauthorized").with_data(json!({"reason": why}))
}
pub fn invalid_credentials() -> RpcError {
    RpcError::new(INVALID_CREDENTIALS, "invalid_credentials")
}
pub fn too_many_requests() -> RpcError {
    RpcError::new(TOO_MANY_REQUESTS, "too_many_requests")
}
pub fn order_not_found() -> RpcError {
    RpcError::new(ORDER_NOT_FOUND, "order_not_found")
}
pub fn internal(why: &str) -> RpcError {
    RpcError::new(INTERNAL_SERVER_ERROR, "internal_server_error").with_data(json!({"reason": why}))
}
/// The gateway could not learn the outcome in time (the transaction may still execute).
pub fn retry(why: &str) -> RpcError {
    RpcError::new(RETRY, "retry").with_data(json!({"reason": why}))
}
/// The replica stopped following the chain (a divergence): nothing it says is current.
pub fn unavailable(why: &str) -> RpcError {
    RpcError::new(SYSTEM_MAINTENANCE, "system_maintenance").with_data(json!({"reason": why}))
}

/// The Deribit error closest to an exchange rejection. The table in the crate README lists it.
pub fn reject_error(reason: &RejectReason) -> RpcError {
    use RejectReason as R;
    let (code, message) = match reason {
        R::SignatureInvalid | R::SignerUnknown | R::NonceNotIncreasing | R::NonceAhead => {
            (UNAUTHORIZED, "unauthorized")
        }
        // It never executed and never will: place it again.
        R::NonceExpired => (RETRY, "retry"),
        R::NotBridge | R::NotAdmin | R::NotOwner | R::QuorumRequired | R::NotCustodian => {
            (PERMISSION_DENIED, "permission_denied")
        }
        R::AgentRevoked => (INVALID_CREDENTIALS, "invalid_credentials"),
        R::AmountNotPositive | R::AmountTooLarge | R::QtyNotPositive | R::QtyTooLarge => {
            (INVALID_AMOUNT, "invalid_amount")
        }
        R::QtyNotMultipleOfLot => (INVALID_AMOUNT, "invalid_amount"),
        R::QtyBelowMinimum => (QTY_TOO_LOW, "qty_too_low"),
        R::PriceNotPositive => (PRICE_TOO_LOW, "price_too_low"),
        R::PriceTooLarge => (PRICE_TOO_HIGH, "price_too_high"),
        R::PriceNotOnTick => (PRICE_WRONG_TICK, "price_wrong_tick"),
        R::PriceOutsideBand => (INVALID_PRICE, "invalid_price"),
        R::PostOnlyMustRest => (BAD_ARGUMENTS, "bad_arguments"),
        R::PostOnlyWouldCross => (POST_ONLY_REJECT, "post_only_reject"),
        R::InstrumentUnknown => (
            INVALID_OR_UNSUPPORTED_INSTRUMENT,
            "invalid_or_unsupported_instrument",
        ),
        R::InstrumentNotTrading => (ALREADY_CLOSED, "already_closed"),
        R::IndexPriceUnavailable | R::MarkPriceUnavailable | R::OracleStale => (RETRY, "retry"),
        R::OrderUnknown => (ORDER_NOT_FOUND, "order_not_found"),
        R::AmendUnchanged => (BAD_ARGUMENTS, "bad_arguments"),
        R::MarginInsufficient { .. } | R::PremiumNotCovered { .. } => {
            (NOT_ENOUGH_FUNDS, "not_enough_funds")
        }
        R::WithdrawalExceedsAvailable { .. } => (NOT_ENOUGH_FUNDS, "not_enough_funds"),
        R::MmpConfigInvalid | R::ClientOrderIdInUse => (BAD_ARGUMENTS, "bad_arguments"),
        // Listed one by one, so a new reason must be placed here on purpose.
        R::ReduceOnlyWouldIncrease
        | R::OpenOrderLimit
        | R::PositionLimit
        | R::OpenInterestCap
        | R::MmpFrozen
        | R::MmpNotConfigured
        | R::PortfolioMarginUnavailable
        | R::MarginModeUnchanged
        | R::KeyInUse
        | R::AgentLimit
        | R::AgentUnknown
        | R::InstrumentExists
        | R::InstrumentSpecInvalid(_)
        | R::InstrumentLimit
        | R::AccountLimit
        | R::AgentProofInvalid
        | R::WithdrawalOracleStale
        | R::WithdrawalIndexCatchingUp
        | R::WithdrawalPending
        | R::NoWithdrawalPending
        | R::WithdrawalCancelledByOwner
        | R::WithdrawalDuringLiquidation
        | R::WithdrawalsSuspended
        | R::CustodyIdUsed
        | R::AttestationRepeated
        | R::AttestationsPendingLimit
        | R::BalanceOverflow => (OTHER_REJECT, "other_reject"),
    };
    RpcError::new(code, message).with_data(json!({
        "reason": reason.to_string(),
        "reject_code": reason.code(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_types::Money;

    #[test]
    fn rejections_map_to_the_codes_ccxt_classifies() {
        let cases = [
            (
                RejectReason::MarginInsufficient {
                    shortfall: Money::from_usdc(5),
                },
                NOT_ENOUGH_FUNDS,
            ),
            (RejectReason::PostOnlyWouldCross, POST_ONLY_REJECT),
            (RejectReason::PriceNotOnTick, PRICE_WRONG_TICK),
            (RejectReason::QtyBelowMinimum, QTY_TOO_LOW),
            (RejectReason::QtyNotMultipleOfLot, INVALID_AMOUNT),
            (RejectReason::OrderUnknown, ORDER_NOT_FOUND),
            (RejectReason::PriceOutsideBand, INVALID_PRICE),
            (RejectReason::NotOwner, PERMISSION_DENIED),
            (RejectReason::AgentRevoked, INVALID_CREDENTIALS),
            (RejectReason::OpenOrderLimit, OTHER_REJECT),
            (RejectReason::NonceExpired, RETRY),
            (RejectReason::NonceAhead, UNAUTHORIZED),
        ];
        for (reason, code) in cases {
            let error = reject_error(&reason);
            assert_eq!(error.code, code, "{reason}");
            let json = error.to_json();
            assert!(json["code"].is_i64(), "codes are JSON integers");
            assert_eq!(json["data"]["reject_code"], reason.code());
        }
    }
}
