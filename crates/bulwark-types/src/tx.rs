//! Signed transactions: what an account, its agents, the bridge authority and the admin may
//! ask of the exchange, encoded canonically and signed with ed25519.
//!
//! Owns: the transaction vocabulary, its wire format (every field fixed-size or bounded, so a
//! transaction is at most [`TX_BYTES_MAX`] bytes), signing under the [`TX_NAMESPACE`], and
//! single and batch signature verification.
//! Never: looks at exchange state. Whether the signer may do what it asks (owner, agent,
//! bridge, admin) and whether its nonce is fresh are the exchange's checks.

use crate::asset::AssetCode;
use crate::batch::{Entry, verify_bisecting};
use crate::ids::InstrumentId;
use crate::ids::Nonce;
use crate::instrument::InstrumentSpec;
use crate::num::Money;
use crate::order::{OrderRef, OrderRequest};
use crate::reject::RejectReason;
use bytes::BufMut;
use commonware_codec::{
    Buf, Encode, EncodeSize, Error as CodecError, FixedSize, Read, ReadExt, Write,
};
use commonware_cryptography::ed25519::{PrivateKey, PublicKey, Signature};
use commonware_cryptography::{Signer, Verifier};
use rand_core::CryptoRng;
use std::borrow::Borrow;

/// Domain separation for transaction signatures: a signature over a transaction can never be
/// mistaken for a consensus vote or a peer handshake.
pub const TX_NAMESPACE: &[u8] = b"_BULWARK_TX_V1";

/// Largest single deposit or withdrawal: 10^15 USDC (in micro-USDC).
pub const TRANSFER_MAX: Money = Money::from_micros(1_000_000_000_000_000_000_000);

/// Domain separation for an agent's proof of possession: a signature made to consent to
/// trading for an account can never be taken for a transaction or anything else.
pub const AGENT_PROOF_NAMESPACE: &[u8] = b"_BULWARK_AGENT_V1";

/// Largest body, in bytes: a custodian's attestation of a listing with the longest name
/// (8 + 1 + 114), or an agent's authorisation with its proof (96).
const BODY_BYTES_MAX: usize = {
    let listing = 1 + crate::name::NAME_LEN_MAX + 4 * 8;
    let attest_listing = 8 + 1 + listing;
    let authorise = PublicKey::SIZE + Signature::SIZE;
    if attest_listing > authorise {
        attest_listing
    } else {
        authorise
    }
};

/// Largest encoded signed transaction, in bytes.
pub const TX_BYTES_MAX: usize =
    PublicKey::SIZE + Nonce::SIZE + 1 + BODY_BYTES_MAX + Signature::SIZE;

/// What an agent key signs to consent to trading for the account of `owner`: the owner's key
/// and the nonce of the owner's `AuthoriseAgent` transaction, so one proof authorises one
/// binding and cannot be replayed into another account's transaction.
pub fn agent_proof_message(owner: &PublicKey, nonce: Nonce) -> Vec<u8> {
    let mut message = Vec::with_capacity(PublicKey::SIZE + Nonce::SIZE);
    owner.write(&mut message);
    nonce.write(&mut message);
    message
}

/// Whether `proof` is `agent`'s signature consenting to trade for `owner` in the owner's
/// transaction with `nonce`.
pub fn agent_proof_valid(
    agent: &PublicKey,
    owner: &PublicKey,
    nonce: Nonce,
    proof: &Signature,
) -> bool {
    agent.verify(
        AGENT_PROOF_NAMESPACE,
        &agent_proof_message(owner, nonce),
        proof,
    )
}

/// What, on an exchange whose genesis names custodians, no single key may do: it takes effect
/// once a quorum of custodians attested the same action under the same id
/// ([`TxBody::Attest`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CustodyAction {
    /// Credit `amount` to the account owned by `owner`, creating it if new.
    Deposit { owner: PublicKey, amount: Money },
    /// Credit `amount` to the insurance fund.
    FundInsurance { amount: Money },
    /// List a new instrument.
    ListInstrument(InstrumentSpec),
}

impl CustodyAction {
    /// Checks that need no exchange state.
    pub fn check(&self) -> Result<(), RejectReason> {
        match self {
            CustodyAction::Deposit { amount, .. } | CustodyAction::FundInsurance { amount } => {
                check_amount(*amount)
            }
            CustodyAction::ListInstrument(_) => Ok(()),
        }
    }
}

/// What a transaction asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxBody {
    /// Credit `amount` to the account owned by `owner`, creating it if new. Bridge only.
    Deposit { owner: PublicKey, amount: Money },
    /// Pay out `amount` of the account's available funds. Account owner only.
    Withdraw { amount: Money },
    /// Cancel the account's withdrawal still held (waiting for prices observed after it was
    /// asked for): its hold on the account's funds lifts, nothing is paid. Account owner only.
    CancelWithdrawal,
    /// Place an order. Owner or agent.
    PlaceOrder(OrderRequest),
    /// Cancel one open order. Owner or agent.
    CancelOrder {
        instrument: InstrumentId,
        order: OrderRef,
    },
    /// Cancel every open order of the account, in one instrument or in all. Owner or agent.
    CancelAll { instrument: Option<InstrumentId> },
    /// Change an open order's price or quantity. Raising the quantity or moving the price loses
    /// time priority; lowering the quantity keeps it. Owner or agent.
    AmendOrder {
        instrument: InstrumentId,
        order: OrderRef,
        price: crate::num::UnitPrice,
        qty: crate::num::Qty,
    },
    /// Let `agent` trade for the account (never withdraw). Account owner only. `proof` is the
    /// agent key's signature of [`agent_proof_message`] (the owner's key and this
    /// transaction's nonce): nobody can bind a key whose private half they do not hold.
    AuthoriseAgent { agent: PublicKey, proof: Signature },
    /// Withdraw an agent's authority. Account owner only.
    RevokeAgent { agent: PublicKey },
    /// List a new instrument. Admin only.
    ListInstrument(InstrumentSpec),
    /// Set (or with `None` remove) market maker protection for the account's quotes in
    /// instruments on `asset`. Owner or agent.
    SetMmp {
        asset: AssetCode,
        config: Option<MmpConfig>,
    },
    /// Lift a market maker protection freeze before its time. Owner or agent.
    ResetMmp { asset: AssetCode },
    /// Switch the account between standard margin (`portfolio: false`) and portfolio margin.
    /// Refused when the account would not meet initial margin under the new method. Owner only.
    SetMarginMode { portfolio: bool },
    /// Credit `amount` to the insurance fund (the exchange capitalising it). Bridge only.
    FundInsurance { amount: Money },
    /// A custodian's attestation that `action` is due under `id` (for a deposit, the source
    /// chain's deposit number). Custodians named in the genesis only. The action takes effect
    /// when the genesis' threshold of distinct custodians attested the same action under the
    /// same id, and each id takes effect at most once.
    Attest { id: u64, action: CustodyAction },
}

/// Market maker protection, in the manner of Deribit's MMP: when the account's resting orders
/// in one underlying are filled for more than `qty_limit` contracts, or more than
/// `delta_limit_e8` of net delta (in units of the underlying, times 10^8), within
/// `interval_ms`, the exchange cancels all its resting orders in that underlying and refuses
/// new ones that would rest for `frozen_ms` (0: until a `ResetMmp`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MmpConfig {
    pub interval_ms: u64,
    pub frozen_ms: u64,
    pub qty_limit: crate::num::Qty,
    pub delta_limit_e8: i64,
}

impl MmpConfig {
    /// Longest window and freeze: one hour.
    pub const TIME_MAX_MS: u64 = 3_600_000;

    pub fn check(&self) -> Result<(), RejectReason> {
        let in_range = (1..=Self::TIME_MAX_MS).contains(&self.interval_ms)
            && self.frozen_ms <= Self::TIME_MAX_MS
            && self.qty_limit.is_positive()
            && self.qty_limit.contracts() <= crate::order::QTY_MAX
            && self.delta_limit_e8 > 0;
        if in_range {
            Ok(())
        } else {
            Err(RejectReason::MmpConfigInvalid)
        }
    }
}

impl Write for MmpConfig {
    fn write(&self, buf: &mut impl BufMut) {
        self.interval_ms.write(buf);
        self.frozen_ms.write(buf);
        self.qty_limit.write(buf);
        self.delta_limit_e8.write(buf);
    }
}

impl FixedSize for MmpConfig {
    const SIZE: usize = 8 * 4;
}

impl Read for MmpConfig {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            interval_ms: u64::read(buf)?,
            frozen_ms: u64::read(buf)?,
            qty_limit: crate::num::Qty::read(buf)?,
            delta_limit_e8: i64::read(buf)?,
        })
    }
}

impl TxBody {
    /// Checks that need no exchange state.
    pub fn check(&self) -> Result<(), RejectReason> {
        match self {
            TxBody::Deposit { amount, .. }
            | TxBody::Withdraw { amount }
            | TxBody::FundInsurance { amount } => check_amount(*amount),
            TxBody::Attest { action, .. } => action.check(),
            TxBody::PlaceOrder(order) => order.check(),
            TxBody::AmendOrder { price, qty, .. } => {
                crate::order::check_qty(*qty)?;
                crate::order::check_price(*price)
            }
            TxBody::CancelOrder { .. }
            | TxBody::CancelAll { .. }
            | TxBody::CancelWithdrawal
            | TxBody::AuthoriseAgent { .. }
            | TxBody::RevokeAgent { .. }
            | TxBody::ListInstrument(_)
            | TxBody::SetMmp { config: None, .. }
            | TxBody::ResetMmp { .. }
            | TxBody::SetMarginMode { .. } => Ok(()),
            TxBody::SetMmp {
                config: Some(config),
                ..
            } => config.check(),
        }
    }

    /// Whether this transaction cancels orders (block builders put cancels first).
    pub fn is_cancel(&self) -> bool {
        matches!(self, TxBody::CancelOrder { .. } | TxBody::CancelAll { .. })
    }
}

fn check_amount(amount: Money) -> Result<(), RejectReason> {
    if !amount.is_positive() {
        return Err(RejectReason::AmountNotPositive);
    }
    if amount > TRANSFER_MAX {
        return Err(RejectReason::AmountTooLarge);
    }
    Ok(())
}

/// An unsigned transaction: who signs it, its nonce, and what it asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tx {
    pub signer: PublicKey,
    pub nonce: Nonce,
    pub body: TxBody,
}

impl TxBody {
    /// The body that authorises `agent` for the account `owner` controls, with the agent's
    /// proof of possession for the owner's transaction with `nonce`.
    pub fn authorise_agent(agent: &PrivateKey, owner: &PublicKey, nonce: u64) -> Self {
        let proof = agent.sign(
            AGENT_PROOF_NAMESPACE,
            &agent_proof_message(owner, Nonce::new(nonce)),
        );
        TxBody::AuthoriseAgent {
            agent: agent.public_key(),
            proof,
        }
    }

    /// This body as a transaction of `key`'s with `nonce`, signed.
    pub fn signed(self, key: &PrivateKey, nonce: u64) -> SignedTx {
        Tx {
            signer: key.public_key(),
            nonce: Nonce::new(nonce),
            body: self,
        }
        .sign(key)
    }
}

impl Tx {
    pub fn sign(self, key: &PrivateKey) -> SignedTx {
        debug_assert_eq!(key.public_key(), self.signer, "signed by its signer");
        let signature = key.sign(TX_NAMESPACE, &self.encode());
        SignedTx {
            tx: self,
            signature,
        }
    }
}

/// A transaction with its signer's signature. Decoding does not verify the signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTx {
    pub tx: Tx,
    pub signature: Signature,
}

impl SignedTx {
    /// Whether the signature is the signer's over this transaction.
    pub fn verify(&self) -> bool {
        self.tx
            .signer
            .verify(TX_NAMESPACE, &self.tx.encode(), &self.signature)
    }
}

/// Which transactions of a batch carry a valid signature. Randomness (`rng`) blinds the
/// batch equation only; the verdicts do not depend on it. Takes the transactions or references
/// to them, so a caller verifying part of a block need not copy it.
///
/// Verifies the whole batch at once (several times faster per signature than one by one);
/// a failed batch is halved until the bad signatures are found
/// ([`crate::batch::verify_bisecting`]): a peer that slips one bad signature into a gossip
/// message admitted with others (`bulwark-node`'s gossip) cannot make this validator check them
/// all one by one.
pub fn verify_batch<T: Borrow<SignedTx> + Sync>(rng: &mut impl CryptoRng, txs: &[T]) -> Vec<bool> {
    let messages: Vec<_> = txs.iter().map(|t| t.borrow().tx.encode()).collect();
    let entries: Vec<Entry<'_>> = txs
        .iter()
        .zip(&messages)
        .map(|(t, message)| {
            let t = t.borrow();
            Entry {
                key: &t.tx.signer,
                signature: &t.signature,
                message,
            }
        })
        .collect();
    verify_bisecting(rng, TX_NAMESPACE, &entries)
}

// ---- codec ----

const TAG_DEPOSIT: u8 = 0;
const TAG_WITHDRAW: u8 = 1;
const TAG_PLACE: u8 = 2;
const TAG_CANCEL: u8 = 3;
const TAG_CANCEL_ALL: u8 = 4;
const TAG_AMEND: u8 = 5;
// Tag 6 was `AuthoriseAgent` without a proof of possession; it is retired, never reused.
const TAG_AUTHORISE: u8 = 13;
const TAG_REVOKE: u8 = 7;
const TAG_LIST: u8 = 8;
const TAG_SET_MMP: u8 = 9;
const TAG_RESET_MMP: u8 = 10;
const TAG_SET_MARGIN_MODE: u8 = 11;
const TAG_FUND_INSURANCE: u8 = 12;
const TAG_ATTEST: u8 = 14;
const TAG_CANCEL_WITHDRAWAL: u8 = 15;

const ACTION_DEPOSIT: u8 = 0;
const ACTION_FUND_INSURANCE: u8 = 1;
const ACTION_LIST: u8 = 2;

impl Write for CustodyAction {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            CustodyAction::Deposit { owner, amount } => {
                ACTION_DEPOSIT.write(buf);
                owner.write(buf);
                amount.write(buf);
            }
            CustodyAction::FundInsurance { amount } => {
                ACTION_FUND_INSURANCE.write(buf);
                amount.write(buf);
            }
            CustodyAction::ListInstrument(spec) => {
                ACTION_LIST.write(buf);
                spec.write(buf);
            }
        }
    }
}

impl EncodeSize for CustodyAction {
    fn encode_size(&self) -> usize {
        1 + match self {
            CustodyAction::Deposit { .. } => PublicKey::SIZE + Money::SIZE,
            CustodyAction::FundInsurance { .. } => Money::SIZE,
            CustodyAction::ListInstrument(spec) => spec.encode_size(),
        }
    }
}

impl Read for CustodyAction {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(match u8::read(buf)? {
            ACTION_DEPOSIT => CustodyAction::Deposit {
                owner: PublicKey::read(buf)?,
                amount: Money::read(buf)?,
            },
            ACTION_FUND_INSURANCE => CustodyAction::FundInsurance {
                amount: Money::read(buf)?,
            },
            ACTION_LIST => CustodyAction::ListInstrument(InstrumentSpec::read(buf)?),
            other => return Err(CodecError::InvalidEnum(other)),
        })
    }
}

impl Write for TxBody {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            TxBody::Deposit { owner, amount } => {
                TAG_DEPOSIT.write(buf);
                owner.write(buf);
                amount.write(buf);
            }
            TxBody::Withdraw { amount } => {
                TAG_WITHDRAW.write(buf);
                amount.write(buf);
            }
            TxBody::CancelWithdrawal => TAG_CANCEL_WITHDRAWAL.write(buf),
            TxBody::PlaceOrder(order) => {
                TAG_PLACE.write(buf);
                order.write(buf);
            }
            TxBody::CancelOrder { instrument, order } => {
                TAG_CANCEL.write(buf);
                instrument.write(buf);
                order.write(buf);
            }
            TxBody::CancelAll { instrument } => {
                TAG_CANCEL_ALL.write(buf);
                instrument.write(buf);
            }
            TxBody::AmendOrder {
                instrument,
                order,
                price,
                qty,
            } => {
                TAG_AMEND.write(buf);
                instrument.write(buf);
                order.write(buf);
                price.write(buf);
                qty.write(buf);
            }
            TxBody::AuthoriseAgent { agent, proof } => {
                TAG_AUTHORISE.write(buf);
                agent.write(buf);
                proof.write(buf);
            }
            TxBody::RevokeAgent { agent } => {
                TAG_REVOKE.write(buf);
                agent.write(buf);
            }
            TxBody::ListInstrument(spec) => {
                TAG_LIST.write(buf);
                spec.write(buf);
            }
            TxBody::SetMmp { asset, config } => {
                TAG_SET_MMP.write(buf);
                asset.write(buf);
                config.write(buf);
            }
            TxBody::ResetMmp { asset } => {
                TAG_RESET_MMP.write(buf);
                asset.write(buf);
            }
            TxBody::SetMarginMode { portfolio } => {
                TAG_SET_MARGIN_MODE.write(buf);
                portfolio.write(buf);
            }
            TxBody::FundInsurance { amount } => {
                TAG_FUND_INSURANCE.write(buf);
                amount.write(buf);
            }
            TxBody::Attest { id, action } => {
                TAG_ATTEST.write(buf);
                id.write(buf);
                action.write(buf);
            }
        }
    }
}

impl EncodeSize for TxBody {
    fn encode_size(&self) -> usize {
        1 + match self {
            TxBody::Deposit { .. } => PublicKey::SIZE + Money::SIZE,
            TxBody::Withdraw { .. } => Money::SIZE,
            TxBody::CancelWithdrawal => 0,
            TxBody::PlaceOrder(order) => order.encode_size(),
            TxBody::CancelOrder { .. } => InstrumentId::SIZE + OrderRef::SIZE,
            TxBody::CancelAll { instrument } => instrument.encode_size(),
            TxBody::AmendOrder { .. } => InstrumentId::SIZE + OrderRef::SIZE + 8 + 8,
            TxBody::AuthoriseAgent { .. } => PublicKey::SIZE + Signature::SIZE,
            TxBody::RevokeAgent { .. } => PublicKey::SIZE,
            TxBody::ListInstrument(spec) => spec.encode_size(),
            TxBody::SetMmp { asset, config } => asset.encode_size() + config.encode_size(),
            TxBody::ResetMmp { asset } => asset.encode_size(),
            TxBody::SetMarginMode { .. } => bool::SIZE,
            TxBody::FundInsurance { .. } => Money::SIZE,
            TxBody::Attest { action, .. } => 8 + action.encode_size(),
        }
    }
}

impl Read for TxBody {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(match u8::read(buf)? {
            TAG_DEPOSIT => TxBody::Deposit {
                owner: PublicKey::read(buf)?,
                amount: Money::read(buf)?,
            },
            TAG_WITHDRAW => TxBody::Withdraw {
                amount: Money::read(buf)?,
            },
            TAG_CANCEL_WITHDRAWAL => TxBody::CancelWithdrawal,
            TAG_PLACE => TxBody::PlaceOrder(OrderRequest::read(buf)?),
            TAG_CANCEL => TxBody::CancelOrder {
                instrument: InstrumentId::read(buf)?,
                order: OrderRef::read(buf)?,
            },
            TAG_CANCEL_ALL => TxBody::CancelAll {
                instrument: Option::<InstrumentId>::read(buf)?,
            },
            TAG_AMEND => TxBody::AmendOrder {
                instrument: InstrumentId::read(buf)?,
                order: OrderRef::read(buf)?,
                price: crate::num::UnitPrice::read(buf)?,
                qty: crate::num::Qty::read(buf)?,
            },
            TAG_AUTHORISE => TxBody::AuthoriseAgent {
                agent: PublicKey::read(buf)?,
                proof: Signature::read(buf)?,
            },
            TAG_REVOKE => TxBody::RevokeAgent {
                agent: PublicKey::read(buf)?,
            },
            TAG_LIST => TxBody::ListInstrument(InstrumentSpec::read(buf)?),
            TAG_SET_MMP => TxBody::SetMmp {
                asset: AssetCode::read(buf)?,
                config: Option::<MmpConfig>::read(buf)?,
            },
            TAG_RESET_MMP => TxBody::ResetMmp {
                asset: AssetCode::read(buf)?,
            },
            TAG_SET_MARGIN_MODE => TxBody::SetMarginMode {
                portfolio: bool::read(buf)?,
            },
            TAG_FUND_INSURANCE => TxBody::FundInsurance {
                amount: Money::read(buf)?,
            },
            TAG_ATTEST => TxBody::Attest {
                id: u64::read(buf)?,
                action: CustodyAction::read(buf)?,
            },
            other => return Err(CodecError::InvalidEnum(other)),
        })
    }
}

impl Write for Tx {
    fn write(&self, buf: &mut impl BufMut) {
        self.signer.write(buf);
        self.nonce.write(buf);
        self.body.write(buf);
    }
}

impl EncodeSize for Tx {
    fn encode_size(&self) -> usize {
        PublicKey::SIZE + Nonce::SIZE + self.body.encode_size()
    }
}

impl Read for Tx {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            signer: PublicKey::read(buf)?,
            nonce: Nonce::read(buf)?,
            body: TxBody::read(buf)?,
        })
    }
}

impl Write for SignedTx {
    fn write(&self, buf: &mut impl BufMut) {
        self.tx.write(buf);
        self.signature.write(buf);
    }
}

impl EncodeSize for SignedTx {
    fn encode_size(&self) -> usize {
        self.tx.encode_size() + Signature::SIZE
    }
}

impl Read for SignedTx {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            tx: Tx::read(buf)?,
            signature: Signature::read(buf)?,
        })
    }
}
