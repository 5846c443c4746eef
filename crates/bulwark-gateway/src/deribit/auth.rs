//! `deri-hmac-sha256` request signatures (contract section 3), checked per request.
//!
//! The client signs `ts \n nonce \n METHOD \n request-target \n body \n` with HMAC-SHA256
//! under its client secret; the header is
//! `Authorization: deri-hmac-sha256 id=<client_id>,ts=<ms>,sig=<hex>,nonce=<nonce>` (pairs in
//! any order). The server takes the request-target exactly as received (raw, still
//! percent-encoded query), compares in constant time, accepts `ts` within
//! [`TS_WINDOW_MS`] of its clock, and refuses a `(id, ts, nonce, sig)` it has seen
//! ([`ReplayCache`], bounded).
//! `public/auth`'s `client_signature` grant (contract section 10) signs
//! `timestamp \n nonce \n data` instead ([`verify_grant`]); its `(client_id, timestamp,
//! nonce)` goes through the same replay cache. [`Tokens`] keeps the bearer tokens `public/auth`
//! issues (bounded by [`TOKENS_MAX`]).
//! Never: decodes or re-encodes the target, compares secrets or MACs with `==`, keeps more
//! than [`REPLAY_CACHE_MAX`] entries.

use super::error::{self, RpcError};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::{HashMap, HashSet, VecDeque};
use subtle::ConstantTimeEq;

/// Accepted distance between the request's `ts` and the server clock.
pub const TS_WINDOW_MS: u64 = 60_000;
/// Signatures remembered for replay refusal. An entry is forgotten only once its `ts` has left
/// the accepted window (it could not be replayed anyway); while the cache is full of entries
/// still inside it, new signed requests are refused (`10028`) rather than any replay let in.
pub const REPLAY_CACHE_MAX: usize = 100_000;
/// Longest `Authorization` header read.
pub const HEADER_BYTES_MAX: usize = 512;

/// A parsed `Authorization` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub client_id: String,
    pub ts: u64,
    pub nonce: String,
    /// Lower-case hex, 64 characters.
    pub sig: String,
}

/// Parses the header; every failure is `13009 unauthorized`.
pub fn parse_header(header: &str) -> Result<Signature, RpcError> {
    if header.len() > HEADER_BYTES_MAX {
        return Err(error::unauthorized("authorization header too long"));
    }
    let rest = header
        .strip_prefix("deri-hmac-sha256 ")
        .ok_or_else(|| error::unauthorized("expected a deri-hmac-sha256 signature"))?;
    let (mut id, mut ts, mut sig, mut nonce) = (None, None, None, None);
    for pair in rest.split(',') {
        let (key, value) = pair
            .trim()
            .split_once('=')
            .ok_or_else(|| error::unauthorized("malformed authorization header"))?;
        let slot = match key {
            "id" => &mut id,
            "ts" => &mut ts,
            "sig" => &mut sig,
            "nonce" => &mut nonce,
            _ => return Err(error::unauthorized("unknown authorization field")),
        };
        if slot.replace(value.to_string()).is_some() {
            return Err(error::unauthorized("repeated authorization field"));
        }
    }
    let (Some(client_id), Some(ts), Some(sig), Some(nonce)) = (id, ts, sig, nonce) else {
        return Err(error::unauthorized(
            "authorization needs id, ts, sig and nonce",
        ));
    };
    let ts = ts
        .parse::<u64>()
        .map_err(|_| error::unauthorized("ts must be integer milliseconds"))?;
    if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(error::unauthorized("sig must be 64 hex characters"));
    }
    if client_id.is_empty() || nonce.is_empty() || nonce.len() > 64 || client_id.len() > 64 {
        return Err(error::unauthorized("empty or overlong id or nonce"));
    }
    Ok(Signature {
        client_id,
        ts,
        nonce,
        sig: sig.to_ascii_lowercase(),
    })
}

/// The string a request's signature covers.
pub fn signed_string(ts: u64, nonce: &str, method: &str, target: &str, body: &[u8]) -> Vec<u8> {
    let mut text = Vec::with_capacity(64 + target.len() + body.len());
    text.extend_from_slice(format!("{ts}\n{nonce}\n{method}\n{target}\n").as_bytes());
    text.extend_from_slice(body);
    text.push(b'\n');
    text
}

/// Lower-case hex HMAC-SHA256 of `message` under `secret`.
pub fn sign(secret: &str, message: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks `signature` for a request; `secret` is the client's. Constant time in the MAC.
pub fn verify(
    signature: &Signature,
    secret: &str,
    method: &str,
    target: &str,
    body: &[u8],
    now_ms: u64,
) -> Result<(), RpcError> {
    if signature.ts.abs_diff(now_ms) > TS_WINDOW_MS {
        return Err(error::unauthorized("ts outside the accepted window"));
    }
    let expected = sign(
        secret,
        &signed_string(signature.ts, &signature.nonce, method, target, body),
    );
    if bool::from(expected.as_bytes().ct_eq(signature.sig.as_bytes())) {
        Ok(())
    } else {
        Err(error::unauthorized("invalid signature"))
    }
}

/// What the replay cache made of a signature.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Replay {
    /// Not seen before: recorded.
    Fresh,
    /// Seen before: refuse.
    Replayed,
    /// The cache is full of signatures still inside the window and this key holds as many as
    /// any: refuse for now.
    Full,
}

/// A remembered signature: client id, ts, nonce, sig.
type Marker = (String, u64, String, String);

/// Recently accepted signatures, refused if seen again. Bounded by [`REPLAY_CACHE_MAX`].
///
/// Full, it does not refuse everyone: a key holding fewer markers than the heaviest key takes
/// the heaviest key's oldest marker's place. So keys that sign as fast as their budgets allow
/// (about 2,500 markers each per two windows) fill it only for themselves; a key signing a few
/// requests is never refused for room. The price falls on the heaviest key alone: its evicted
/// signature could be replayed within its window by whoever captured it.
#[derive(Default)]
pub struct ReplayCache {
    seen: HashSet<Marker>,
    /// In arrival order, with the arrival time (ms), for expiry. May also hold evicted markers
    /// (no longer in `seen`), at most as many as `seen` holds (compacted past that).
    order: VecDeque<(u64, Marker)>,
    /// Each client's live markers, oldest first.
    by_client: HashMap<String, VecDeque<Marker>>,
    /// (live markers, client id) of every client holding any: the heaviest last.
    weights: std::collections::BTreeSet<(usize, String)>,
}

impl ReplayCache {
    fn marker(signature: &Signature) -> Marker {
        (
            signature.client_id.clone(),
            signature.ts,
            signature.nonce.clone(),
            signature.sig.clone(),
        )
    }

    /// Whether `signature` was admitted already (and is still remembered).
    pub fn contains(&self, signature: &Signature) -> bool {
        self.seen.contains(&Self::marker(signature))
    }

    /// How many live markers `client` holds.
    fn weight(&self, client: &str) -> usize {
        self.by_client.get(client).map_or(0, VecDeque::len)
    }

    /// Moves `client`'s weight from `before` to its current count.
    fn reweigh(&mut self, client: &str, before: usize) {
        if before > 0 {
            self.weights.remove(&(before, client.to_string()));
        }
        let now = self.weight(client);
        if now > 0 {
            self.weights.insert((now, client.to_string()));
        } else {
            self.by_client.remove(client);
        }
    }

    /// Forgets `client`'s oldest live marker (expired, or evicted for room).
    fn forget_oldest(&mut self, client: &str) -> Option<Marker> {
        let before = self.weight(client);
        let oldest = self.by_client.get_mut(client)?.pop_front()?;
        self.seen.remove(&oldest);
        self.reweigh(client, before);
        Some(oldest)
    }

    /// Records `signature`, which arrived at `now_ms` (its `ts` already checked to lie within
    /// [`TS_WINDOW_MS`] of it).
    pub fn admit(&mut self, signature: &Signature, now_ms: u64) -> Replay {
        let key = Self::marker(signature);
        // Entries that arrived over two windows ago carry a `ts` no request can now reuse.
        while let Some((arrived, _)) = self.order.front() {
            if arrived.saturating_add(2 * TS_WINDOW_MS) >= now_ms {
                break;
            }
            let Some((_, old)) = self.order.pop_front() else {
                break;
            };
            // A client's live markers expire in arrival order, so a live `old` is its oldest.
            // Unless `old` was evicted for room and the same signature admitted again since:
            // then this entry is the evicted one, and the live copy expires by its own entry.
            if self.by_client.get(&old.0).and_then(VecDeque::front) == Some(&old) {
                self.forget_oldest(&old.0);
            }
        }
        if self.seen.contains(&key) {
            return Replay::Replayed;
        }
        if self.seen.len() >= REPLAY_CACHE_MAX {
            let mine = self.weight(&key.0);
            let Some((heaviest, client)) = self.weights.last().cloned() else {
                return Replay::Full;
            };
            if mine >= heaviest {
                return Replay::Full;
            }
            self.forget_oldest(&client);
        }
        if self.order.len() >= 2 * REPLAY_CACHE_MAX {
            let seen = &self.seen;
            self.order.retain(|(_, marker)| seen.contains(marker));
        }
        let before = self.weight(&key.0);
        self.order.push_back((now_ms, key.clone()));
        self.by_client
            .entry(key.0.clone())
            .or_default()
            .push_back(key.clone());
        let client = key.0.clone();
        self.seen.insert(key);
        self.reweigh(&client, before);
        debug_assert!(self.seen.len() <= REPLAY_CACHE_MAX, "bounded");
        Replay::Fresh
    }
}

/// The string a WebSocket `public/auth` `client_signature` covers (contract section 10):
/// `timestamp \n nonce \n data`.
pub fn auth_string(ts: u64, nonce: &str, data: &str) -> Vec<u8> {
    format!("{ts}\n{nonce}\n{data}").into_bytes()
}

/// Checks a `client_signature` grant: `ts` within [`TS_WINDOW_MS`], the MAC in constant time.
/// The caller refuses a replay through [`ReplayCache`].
pub fn verify_grant(
    secret: &str,
    ts: u64,
    nonce: &str,
    data: &str,
    sig: &str,
    now_ms: u64,
) -> Result<(), RpcError> {
    if ts.abs_diff(now_ms) > TS_WINDOW_MS {
        return Err(error::unauthorized("timestamp outside the accepted window"));
    }
    let expected = sign(secret, &auth_string(ts, nonce, data));
    if bool::from(
        expected
            .as_bytes()
            .ct_eq(sig.to_ascii_lowercase().as_bytes()),
    ) {
        Ok(())
    } else {
        Err(error::unauthorized("invalid signature"))
    }
}

/// Tokens held at once (access and refresh together).
pub const TOKENS_MAX: usize = 65_536;
/// Grants (access and refresh token pairs) one API key holds at once: a grant past it retires
/// the key's oldest pair. One key alone could otherwise fill [`TOKENS_MAX`] within half an
/// hour of `public/auth` at its rate budget and shut everyone out for a refresh token's life;
/// with this bound that takes `TOKENS_MAX / 32` keys, and an account holds at most
/// `agents_max` (8) of them.
pub const TOKENS_PER_KEY_MAX: usize = 16;
/// An access token's life (Deribit's: 900 s).
pub const ACCESS_TOKEN_TTL_MS: u64 = 900_000;
/// A refresh token's life.
pub const REFRESH_TOKEN_TTL_MS: u64 = 24 * 3_600_000;

/// Tokens `public/auth` issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in_s: u64,
}

/// Bearer tokens: access tokens (accepted on HTTP private calls as
/// `Authorization: bearer <token>`) and refresh tokens (each good for one `refresh_token`
/// grant), each bound to an API key's client id, bounded by [`TOKENS_MAX`] (expired ones
/// are dropped first; when full of live ones, no new token is issued) and by
/// [`TOKENS_PER_KEY_MAX`] grants per key.
#[derive(Default)]
pub struct Tokens {
    /// token -> (client id, expiry ms)
    access: HashMap<String, (String, u64)>,
    refresh: HashMap<String, (String, u64)>,
    /// Each client id's grants, oldest first: (access token, refresh token). A token spent or
    /// expired is absent from its map; its grant leaves here when both are, or when retired.
    grants: HashMap<String, VecDeque<(String, String)>>,
}

fn random_token() -> String {
    use rand::RngExt as _;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Tokens {
    fn room(&mut self, now_ms: u64) -> bool {
        if self.access.len() + self.refresh.len() + 2 <= TOKENS_MAX {
            return true;
        }
        self.access.retain(|_, (_, expiry)| *expiry > now_ms);
        self.refresh.retain(|_, (_, expiry)| *expiry > now_ms);
        let (access, refresh) = (&self.access, &self.refresh);
        self.grants.retain(|_, grants| {
            grants.retain(|(a, r)| access.contains_key(a) || refresh.contains_key(r));
            !grants.is_empty()
        });
        self.access.len() + self.refresh.len() + 2 <= TOKENS_MAX
    }

    /// New tokens for `client_id`, retiring its oldest grant if it holds
    /// [`TOKENS_PER_KEY_MAX`]; `None` while full of live ones.
    pub fn issue(&mut self, client_id: &str, now_ms: u64) -> Option<Issued> {
        if let Some(grants) = self.grants.get_mut(client_id)
            && grants.len() >= TOKENS_PER_KEY_MAX
            && let Some((access, refresh)) = grants.pop_front()
        {
            self.access.remove(&access);
            self.refresh.remove(&refresh);
        }
        if !self.room(now_ms) {
            return None;
        }
        let issued = Issued {
            access_token: random_token(),
            refresh_token: random_token(),
            expires_in_s: ACCESS_TOKEN_TTL_MS / 1_000,
        };
        self.access.insert(
            issued.access_token.clone(),
            (client_id.to_string(), now_ms + ACCESS_TOKEN_TTL_MS),
        );
        self.refresh.insert(
            issued.refresh_token.clone(),
            (client_id.to_string(), now_ms + REFRESH_TOKEN_TTL_MS),
        );
        let grants = self.grants.entry(client_id.to_string()).or_default();
        grants.push_back((issued.access_token.clone(), issued.refresh_token.clone()));
        debug_assert!(
            grants.len() <= TOKENS_PER_KEY_MAX,
            "a key's grants are bounded"
        );
        Some(issued)
    }

    /// The client id an unexpired access token stands for.
    pub fn access(&self, token: &str, now_ms: u64) -> Option<String> {
        self.access
            .get(token)
            .filter(|(_, expiry)| *expiry > now_ms)
            .map(|(client, _)| client.clone())
    }

    /// Spends a refresh token: the client id it stood for, if unexpired and unspent.
    pub fn spend_refresh(&mut self, token: &str, now_ms: u64) -> Option<String> {
        self.refresh
            .remove(token)
            .filter(|(_, expiry)| *expiry > now_ms)
            .map(|(client, _)| client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: u64 = 1_767_225_600_000;

    /// The contract's test vectors (section 3).
    #[test]
    fn contract_test_vectors() {
        let cases = [
            (
                "/api/v2/private/get_account_summaries",
                "6cd8da3af37ed6eff3d1226bf1dbe5566fe49b2d4bd53ff9dc453f9747e0c4a1",
            ),
            (
                "/api/v2/private/buy?instrument_name=BTC-PERPETUAL&amount=0.01&type=limit&price=30000&post_only=true&reject_post_only=true&label=a%20b%2Fc%3Ad",
                "77730a0c1f0f031428ce1030a4284929cb7260c6b175dc179d94171f1b545963",
            ),
        ];
        for (target, expected) in cases {
            let message = signed_string(TS, &TS.to_string(), "GET", target, b"");
            assert_eq!(sign("test-secret", &message), expected, "{target}");
            let header =
                format!("deri-hmac-sha256 id=test-client,ts={TS},sig={expected},nonce={TS}");
            let parsed = parse_header(&header).unwrap();
            assert_eq!(parsed.client_id, "test-client");
            verify(&parsed, "test-secret", "GET", target, b"", TS + 1_000).unwrap();
            // Any change to what is signed fails, as do another secret and a stale ts.
            assert!(verify(&parsed, "test-secret", "POST", target, b"", TS).is_err());
            assert!(
                verify(
                    &parsed,
                    "test-secret",
                    "GET",
                    &format!("{target}&x=1"),
                    b"",
                    TS
                )
                .is_err()
            );
            assert!(verify(&parsed, "other", "GET", target, b"", TS).is_err());
            assert!(
                verify(
                    &parsed,
                    "test-secret",
                    "GET",
                    target,
                    b"",
                    TS + TS_WINDOW_MS + 1
                )
                .is_err()
            );
        }
    }

    #[test]
    fn headers_parse_in_any_order_and_malformed_ones_are_unauthorized() {
        let sig = "ab".repeat(32);
        let ok = parse_header(&format!("deri-hmac-sha256 nonce=5,sig={sig},ts=7,id=c")).unwrap();
        assert_eq!(
            (ok.ts, ok.nonce.as_str(), ok.client_id.as_str()),
            (7, "5", "c")
        );
        for bad in [
            String::new(),
            "Bearer x".to_string(),
            format!("deri-hmac-sha256 id=c,ts=7,sig={sig}"),
            format!("deri-hmac-sha256 id=c,ts=x,sig={sig},nonce=1"),
            "deri-hmac-sha256 id=c,ts=7,sig=zz,nonce=1".to_string(),
            format!("deri-hmac-sha256 id=c,id=d,ts=7,sig={sig},nonce=1"),
            format!("deri-hmac-sha256 id=c,ts=7,sig={sig},nonce=1,extra=2"),
            format!(
                "deri-hmac-sha256 id=c,ts=7,sig={sig},nonce={}",
                "n".repeat(600)
            ),
        ] {
            assert_eq!(
                parse_header(&bad).unwrap_err().code,
                error::UNAUTHORIZED,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_replayed_signature_is_refused() {
        let mut cache = ReplayCache::default();
        let signature = Signature {
            client_id: "c".into(),
            ts: 1,
            nonce: "1".into(),
            sig: "ab".repeat(32),
        };
        assert_eq!(cache.admit(&signature, 10), Replay::Fresh);
        assert_eq!(cache.admit(&signature, 10 + TS_WINDOW_MS), Replay::Replayed);
        let other = Signature {
            nonce: "2".into(),
            ..signature.clone()
        };
        assert_eq!(cache.admit(&other, 20), Replay::Fresh);
        // Long after the window, entries expire (their ts would be refused anyway).
        assert_eq!(
            cache.admit(&signature, 11 + 2 * TS_WINDOW_MS),
            Replay::Fresh
        );
        assert_eq!(
            cache.order.len(),
            2,
            "the first entry expired, the second not yet"
        );
        // Full of live entries: new signatures are refused, never a replay let in.
        for n in 0..REPLAY_CACHE_MAX as u64 {
            let _ = cache.admit(
                &Signature {
                    nonce: format!("n{n}"),
                    ..signature.clone()
                },
                12 + 2 * TS_WINDOW_MS,
            );
        }
        let late = Signature {
            nonce: "late".into(),
            ..signature.clone()
        };
        assert_eq!(cache.admit(&late, 13 + 2 * TS_WINDOW_MS), Replay::Full);
        assert_eq!(
            cache.admit(&signature, 13 + 2 * TS_WINDOW_MS),
            Replay::Replayed
        );
    }

    /// Signature `n` of `client`, all at one `ts`: markers for the replay cache's tests.
    fn signed(client: &str, n: u64) -> Signature {
        Signature {
            client_id: client.into(),
            ts: 1,
            nonce: format!("n{n}"),
            sig: "ab".repeat(32),
        }
    }

    /// The attack: keys signing as fast as their budgets allow fill the shared cache, and then
    /// every signed request of every user was refused. Full, the cache now makes room for a
    /// lighter key at the heaviest key's expense, and refuses only the heaviest.
    #[test]
    fn a_full_replay_cache_refuses_only_its_heaviest_keys() {
        let mut cache = ReplayCache::default();
        // Forty greedy keys fill it.
        let per_key = (REPLAY_CACHE_MAX / 40) as u64;
        for k in 0..40 {
            for n in 0..per_key {
                assert_eq!(
                    cache.admit(&signed(&format!("greedy{k}"), n), 10),
                    Replay::Fresh
                );
            }
        }
        assert_eq!(cache.seen.len(), REPLAY_CACHE_MAX);
        // A greedy key, as heavy as any, is refused; an honest key with a few is not.
        assert_eq!(cache.admit(&signed("greedy0", per_key), 11), Replay::Full);
        for n in 0..5 {
            assert_eq!(cache.admit(&signed("honest", n), 11), Replay::Fresh);
        }
        assert_eq!(cache.seen.len(), REPLAY_CACHE_MAX, "still bounded");
        // The honest key's markers still refuse their replays.
        assert_eq!(cache.admit(&signed("honest", 0), 12), Replay::Replayed);
        // What was evicted came from the heaviest keys, one marker each.
        let lightest_greedy = (0..40)
            .map(|k| cache.weight(&format!("greedy{k}")))
            .min()
            .unwrap();
        assert_eq!(lightest_greedy as u64, per_key - 1);
        // Expiry still forgets everything in time, evicted markers included.
        assert_eq!(
            cache.admit(&signed("late", 0), 12 + 2 * TS_WINDOW_MS),
            Replay::Fresh
        );
        assert_eq!(cache.seen.len(), 1);
        assert!(cache.by_client.len() == 1 && cache.weights.len() == 1);
    }

    /// A signature evicted for room and sent again is admitted again (it was forgotten), and
    /// its new copy stays until its own time runs out. Expiry used to forget the client's
    /// oldest live marker at the evicted copy's time, so the new copy went early (replayable)
    /// and a debug build panicked on the arrival order it assumed.
    #[test]
    fn an_evicted_signature_sent_again_expires_by_its_own_time() {
        let mut cache = ReplayCache::default();
        let half = REPLAY_CACHE_MAX as u64 / 2;
        for n in 0..half {
            assert_eq!(cache.admit(&signed("a", n), 10), Replay::Fresh);
            assert_eq!(cache.admit(&signed("b", n), 10), Replay::Fresh);
        }
        // "b" ties "a" and sorts last: the light key takes b's oldest place...
        assert_eq!(cache.admit(&signed("light", 0), 20), Replay::Fresh);
        assert!(!cache.contains(&signed("b", 0)));
        // ...and b's evicted signature, sent again, takes a's oldest place.
        assert_eq!(cache.admit(&signed("b", 0), 30), Replay::Fresh);
        // Time 10's markers run out; the copy admitted at 30 and the light key's stay.
        let after_ten = 10 + 2 * TS_WINDOW_MS + 1;
        assert_eq!(cache.admit(&signed("late", 0), after_ten), Replay::Fresh);
        assert_eq!(cache.admit(&signed("b", 0), after_ten), Replay::Replayed);
        assert_eq!(
            cache.admit(&signed("light", 0), after_ten),
            Replay::Replayed
        );
        assert_eq!((cache.weight("a"), cache.weight("b")), (0, 1));
        // Then it runs out too.
        assert_eq!(
            cache.admit(&signed("late", 1), 30 + 2 * TS_WINDOW_MS + 1),
            Replay::Fresh
        );
        assert_eq!(cache.weight("b"), 0);
    }

    #[test]
    fn a_grant_signature_covers_timestamp_nonce_and_data() {
        let sig = sign("secret", b"1000\nabc\n");
        assert!(verify_grant("secret", 1_000, "abc", "", &sig, 1_000).is_ok());
        assert!(verify_grant("secret", 1_000, "abc", "x", &sig, 1_000).is_err());
        assert!(verify_grant("other", 1_000, "abc", "", &sig, 1_000).is_err());
        let stale = verify_grant("secret", 1_000, "abc", "", &sig, 1_000 + TS_WINDOW_MS + 1);
        assert_eq!(stale.unwrap_err().code, error::UNAUTHORIZED);
    }

    #[test]
    fn tokens_expire_and_refresh_tokens_are_spent_once() {
        let mut tokens = Tokens::default();
        let issued = tokens.issue("c", 0).unwrap();
        assert_eq!(tokens.access(&issued.access_token, 1).as_deref(), Some("c"));
        assert_eq!(
            tokens.access(&issued.access_token, ACCESS_TOKEN_TTL_MS),
            None
        );
        assert_eq!(tokens.access("nope", 1), None);
        assert_eq!(
            tokens.spend_refresh(&issued.refresh_token, 5).as_deref(),
            Some("c")
        );
        assert_eq!(
            tokens.spend_refresh(&issued.refresh_token, 5),
            None,
            "spent"
        );
    }

    /// One key granting over and over keeps only its newest grants, and cannot fill the
    /// table against everyone else.
    #[test]
    fn one_key_holds_at_most_its_share_of_tokens() {
        let mut tokens = Tokens::default();
        let first = tokens.issue("greedy", 0).unwrap();
        let mut last = first.clone();
        for n in 1..(TOKENS_MAX as u64) {
            last = tokens
                .issue("greedy", n)
                .expect("a key's own grants retire its oldest");
        }
        assert!(tokens.access.len() + tokens.refresh.len() <= 2 * TOKENS_PER_KEY_MAX);
        assert_eq!(tokens.access(&first.access_token, 10), None, "retired");
        assert_eq!(
            tokens.spend_refresh(&first.refresh_token, 10),
            None,
            "retired"
        );
        assert_eq!(
            tokens.access(&last.access_token, 10).as_deref(),
            Some("greedy")
        );
        let other = tokens.issue("other", 10).expect("room for everyone else");
        assert_eq!(
            tokens.access(&other.access_token, 11).as_deref(),
            Some("other")
        );
        // Spent and expired grants leave the per-key record once the table is pruned.
        let mut full = Tokens::default();
        for n in 0..(TOKENS_MAX / 2) {
            full.issue(
                &format!("k{}", n % (TOKENS_MAX / 2 / TOKENS_PER_KEY_MAX)),
                0,
            )
            .unwrap();
        }
        assert!(full.issue("late", 1).is_none(), "full of live tokens");
        assert!(
            full.issue("late", REFRESH_TOKEN_TTL_MS).is_some(),
            "expired ones make room"
        );
        assert_eq!(full.grants.len(), 1, "only the new grant's key is recorded");
    }
}
