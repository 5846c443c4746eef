//! A small venue for exchange tests: genesis keys, funded traders, listed instruments, and
//! blocks built from signed transactions with nonces handled.

#![allow(dead_code)]

use bulwark_exchange::*;
use bulwark_types::*;
use commonware_cryptography::Signer;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::BTreeMap;

pub const BTC_PERP: &str = "BTC_USDC-PERPETUAL";
pub const BTC_CALL: &str = "BTC_USDC-27DEC26-100000-C";
pub const BTC_PUT: &str = "BTC_USDC-27DEC26-100000-P";
/// 2026-11-24T00:00:00Z.
pub const START_MS: u64 = 1_795_478_400_000;

pub fn btc() -> AssetCode {
    AssetCode::parse("BTC").unwrap()
}

pub fn spec(name: &str) -> InstrumentSpec {
    let name = InstrumentName::parse(name).unwrap();
    match name.kind() {
        bulwark_types::name::NameKind::Perpetual => InstrumentSpec {
            name,
            tick_size: UnitPrice::from_micros(500_000),
            multiplier: Multiplier::from_e8(100_000),
            lot_size: Qty::from_contracts(1),
            size_min: Qty::from_contracts(1),
        },
        _ => InstrumentSpec {
            name,
            tick_size: UnitPrice::from_usdc(5),
            multiplier: Multiplier::from_e8(1_000_000),
            lot_size: Qty::from_contracts(1),
            size_min: Qty::from_contracts(1),
        },
    }
}

pub struct Venue {
    pub exchange: Exchange,
    pub admin: PrivateKey,
    pub bridge: PrivateKey,
    pub keys: BTreeMap<String, PrivateKey>,
    nonces: BTreeMap<PublicKey, u64>,
    pub time_ms: u64,
    pub prices: PriceInputs,
    /// Signed observations every block carries (exchanges with an oracle).
    pub observations: Vec<SignedObservation>,
    /// The outcome of the last block applied.
    pub last: Option<BlockOutcome>,
    rng: ChaCha20Rng,
}

impl Venue {
    pub fn new() -> Self {
        Self::with_params(ExchangeParams::defaults())
    }

    pub fn with_params(params: ExchangeParams) -> Self {
        Self::with_genesis(params, None)
    }

    pub fn with_genesis(
        params: ExchangeParams,
        oracle: Option<bulwark_exchange::oracle::OracleGenesis>,
    ) -> Self {
        let admin = PrivateKey::from_seed(1);
        let bridge = PrivateKey::from_seed(2);
        let genesis = Genesis {
            admin: admin.public_key(),
            bridge: bridge.public_key(),
            params,
            time: BlockTime::from_millis(START_MS),
            oracle,
            custody: None,
        };
        Self {
            exchange: Exchange::new(&genesis).unwrap(),
            admin,
            bridge,
            keys: BTreeMap::new(),
            nonces: BTreeMap::new(),
            time_ms: START_MS,
            prices: PriceInputs::default(),
            observations: Vec::new(),
            last: None,
            rng: ChaCha20Rng::seed_from_u64(9),
        }
    }

    /// A venue with the BTC perpetual, a call and a put listed, index 100,000, marks set,
    /// and traders `alice`, `bob`, `carol` funded with 1,000,000 USDC each.
    pub fn standard() -> Self {
        Self::standard_with(ExchangeParams::defaults())
    }

    /// [`Venue::standard`] with other parameters.
    pub fn standard_with(params: ExchangeParams) -> Self {
        let mut v = Self::with_params(params);
        let listings: Vec<_> = [BTC_PERP, BTC_CALL, BTC_PUT]
            .iter()
            .map(|n| v.admin_tx(TxBody::ListInstrument(spec(n))))
            .collect();
        v.block(listings);
        v.set_prices(
            100_000,
            &[(BTC_PERP, 100_000), (BTC_CALL, 5_000), (BTC_PUT, 5_000)],
        );
        for name in ["alice", "bob", "carol"] {
            v.fund(name, 1_000_000);
        }
        v
    }

    pub fn key(&mut self, name: &str) -> PrivateKey {
        let seed = 1_000 + self.keys.len() as u64;
        self.keys
            .entry(name.to_string())
            .or_insert_with(|| PrivateKey::from_seed(seed))
            .clone()
    }

    pub fn account(&mut self, name: &str) -> AccountId {
        let key = self.key(name).public_key();
        self.exchange.key_binding(&key).expect("funded").0
    }

    pub fn id(&self, name: &str) -> InstrumentId {
        self.exchange
            .instrument_by_name(&InstrumentName::parse(name).unwrap())
            .unwrap()
            .id
    }

    pub fn signed(&mut self, key: &PrivateKey, body: TxBody) -> SignedTx {
        let nonce = self.nonces.entry(key.public_key()).or_insert(0);
        *nonce += 1;
        Tx {
            signer: key.public_key(),
            nonce: Nonce::new(*nonce),
            body,
        }
        .sign(key)
    }

    pub fn tx(&mut self, name: &str, body: TxBody) -> SignedTx {
        let key = self.key(name);
        self.signed(&key, body)
    }

    /// `owner`'s transaction authorising `agent`'s key, with the agent's proof of possession
    /// for the nonce the transaction takes.
    pub fn authorise_tx(&mut self, owner: &str, agent: &str) -> SignedTx {
        let owner_key = self.key(owner);
        let agent_key = self.key(agent);
        let nonce = self
            .nonces
            .get(&owner_key.public_key())
            .copied()
            .unwrap_or(0)
            + 1;
        let body = TxBody::authorise_agent(&agent_key, &owner_key.public_key(), nonce);
        self.signed(&owner_key, body)
    }

    pub fn admin_tx(&mut self, body: TxBody) -> SignedTx {
        let key = self.admin.clone();
        self.signed(&key, body)
    }

    pub fn bridge_tx(&mut self, body: TxBody) -> SignedTx {
        let key = self.bridge.clone();
        self.signed(&key, body)
    }

    /// The next block of `txs`, one second after the last, with the current prices and
    /// observations, checked but not applied (to apply it to a second replica as well).
    pub fn next_block(&mut self, txs: Vec<SignedTx>) -> CheckedBlock {
        Block {
            height: self.exchange.height().next(),
            time: BlockTime::from_millis(self.time_ms + 1_000),
            prices: self.prices.clone(),
            observations: self.observations.clone(),
            txs,
        }
        .check_signatures(&mut self.rng)
    }

    /// Applies a block of `txs` one second after the last, with the current prices.
    pub fn block(&mut self, txs: Vec<SignedTx>) -> BlockOutcome {
        let checked = self.next_block(txs);
        self.time_ms += 1_000;
        let outcome = self
            .exchange
            .apply_block(&checked)
            .expect("well-formed block");
        self.exchange.check_invariants().unwrap();
        self.last = Some(outcome.clone());
        outcome
    }

    /// Applies one transaction in its own block and returns its result and events.
    pub fn run(&mut self, tx: SignedTx) -> (Option<RejectReason>, Vec<Event>) {
        let outcome = self.block(vec![tx]);
        (outcome.txs[0].rejection, outcome.tx_events(0).to_vec())
    }

    pub fn set_prices(&mut self, index_usdc: i64, marks: &[(&str, i64)]) {
        let marks = marks
            .iter()
            .map(|(name, usdc)| MarkPrice {
                instrument: self.id(name),
                price: UnitPrice::from_usdc(*usdc),
            })
            .collect();
        self.prices = PriceInputs::new(
            vec![IndexPrice {
                asset: btc(),
                price: UnitPrice::from_usdc(index_usdc),
            }],
            marks,
            vec![],
        )
        .unwrap();
    }

    /// The end of the held withdrawal of `name`: the `Withdrawn` or `WithdrawalCancelled`
    /// event of the last block, or else of the empty blocks run after it (each with the current
    /// prices and observations), at most 64.
    pub fn until_withdrawal_settles(&mut self, name: &str) -> Event {
        let account = self.account(name);
        let settled = |outcome: &BlockOutcome| {
            outcome
                .end_events()
                .iter()
                .find(|e| {
                    matches!(e,
                        Event::Withdrawn { account: a, .. }
                            | Event::WithdrawalCancelled { account: a, .. } if *a == account)
                })
                .cloned()
        };
        if let Some(event) = self.last.as_ref().and_then(settled) {
            return event;
        }
        for _ in 0..64 {
            let outcome = self.block(vec![]);
            if let Some(event) = settled(&outcome) {
                return event;
            }
        }
        panic!("the withdrawal of {name} neither paid nor cancelled in 64 blocks");
    }

    /// Asserts that the held withdrawal of `name` was paid `usdc` (see
    /// [`Self::until_withdrawal_settles`]): the ledger's and the account's withdrawals show it
    /// and nothing is held any more.
    #[allow(dead_code)] // not every test file withdraws
    pub fn assert_withdrawal_paid(&mut self, name: &str, usdc: i64) {
        let account = self.account(name);
        let amount = Money::from_usdc(usdc);
        assert_eq!(
            self.until_withdrawal_settles(name),
            Event::Withdrawn { account, amount }
        );
        assert_eq!(self.exchange.ledger().withdrawals, amount);
        assert_eq!(self.exchange.account(account).unwrap().withdrawn, amount);
        assert_eq!(self.exchange.pending_withdrawal(account), None);
    }

    pub fn fund(&mut self, name: &str, usdc: i64) {
        let owner = self.key(name).public_key();
        let tx = self.bridge_tx(TxBody::Deposit {
            owner,
            amount: Money::from_usdc(usdc),
        });
        let (rejection, _) = self.run(tx);
        assert_eq!(rejection, None);
    }

    pub fn order(
        &mut self,
        name: &str,
        instrument: &str,
        side: Side,
        qty: i64,
        price_usdc: i64,
    ) -> (Option<RejectReason>, Vec<Event>) {
        let request = limit(
            self.id(instrument),
            side,
            qty,
            UnitPrice::from_usdc(price_usdc),
            self.keys.len() as u64 * 1_000 + self.exchange.height().get(),
        );
        let tx = self.tx(name, TxBody::PlaceOrder(request));
        self.run(tx)
    }

    pub fn cash(&mut self, name: &str) -> Money {
        let id = self.account(name);
        self.exchange.account(id).unwrap().cash
    }

    pub fn position(&mut self, name: &str, instrument: &str) -> i64 {
        let (id, inst) = (self.account(name), self.id(instrument));
        self.exchange.account(id).unwrap().position(inst)
    }
}

pub fn limit(
    instrument: InstrumentId,
    side: Side,
    qty: i64,
    price: UnitPrice,
    client: u64,
) -> OrderRequest {
    OrderRequest::limit(
        instrument,
        ClientOrderId::new(client),
        side,
        Qty::from_contracts(qty),
        price,
        TimeInForce::GoodTilCancelled,
    )
}

pub fn trades(events: &[Event]) -> Vec<Trade> {
    events
        .iter()
        .filter_map(|e| {
            if let Event::Trade(t) = e {
                Some(*t)
            } else {
                None
            }
        })
        .collect()
}

/// Replaces a snapshot's trailing digest so a forged body passes the integrity check and
/// reaches the decoder.
#[allow(dead_code)] // not every test file forges snapshots
pub fn redigest(mut bytes: Vec<u8>) -> Vec<u8> {
    use commonware_cryptography::{Hasher, Sha256};
    let body_len = bytes.len() - 32;
    let digest = Sha256::hash(&[&bytes[..body_len]]);
    bytes[body_len..].copy_from_slice(digest.as_ref());
    bytes
}
