//! `bulwark node`'s configuration file (TOML, or JSON when the name ends in `.json`).
//!
//! ```toml
//! namespace = "bulwark-local"         # the network's name; the same on every validator
//! key_file = "validator-0.key"        # this validator's private key (paths relative to this file)
//! data_dir = "data/validator-0"       # storage; keep it across restarts
//! api_listen = "127.0.0.1:8080"
//! p2p_listen = "127.0.0.1:30400"      # optional: defaults to this validator's address below
//! block_interval_ms = 100             # optional
//! api_connections_per_client_max = 128 # optional: connections one client (an IPv4 address or
//!                                     # an IPv6 /64) holds open to the API at once, 1..=1024;
//!                                     # raise it for a gateway that serves many users
//!
//! [genesis]                           # the same on every validator
//! time_ms = 1795478400000             # must not lie in the future
//! admin = "<hex public key>"
//! bridge = "<hex public key>"
//! # custodians = ["<hex>", ...]      # optional: who deposits and lists, by quorum; by default
//! # custody_threshold = 3            # the validators, 2f + 1 of them; `custodians = []` leaves
//!                                     # it to the single admin and bridge keys
//!
//! [prices]                            # the same on every validator
//! seed = 7                            # synthetic BTC market each validator observes
//! index_start_usdc = 100000
//! noise_bps = 2                       # each validator's observation noise
//!
//! [[validators]]                      # every validator, this one included, in any order
//! public_key = "<hex>"
//! address = "127.0.0.1:30400"
//! ```
//!
//! Everything is checked before the node starts, and each refusal names the field and why.
//! `data_dir` must name a directory of its own (not empty, not the key file's directory). With
//! the default custody (no `custodians`: the validators, `2f + 1` of them) a network has 1, 4,
//! 5 or 7 to 16 validators ([`default_custody_counts`]); with `custodians` named, or `[]`, up to
//! 256 (a block carries one price observation from each). The file is read through a bound of
//! [`CONFIG_BYTES_MAX`] bytes, the key file through [`keys::KEY_FILE_BYTES_MAX`].

use crate::genesis;
use crate::keys;
use crate::validator::{NodeSettings, PriceSettings, ValidatorSetup};
use anyhow::{Context, Result, bail, ensure};
use bulwark_exchange::Genesis;
use bulwark_exchange::custody::CUSTODIANS_MAX;
use bulwark_oracle::OracleConfig;
use bulwark_types::PublicKey;
use commonware_cryptography::Signer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest configuration file read: one listing 256 validators is under 40 KiB.
pub const CONFIG_BYTES_MAX: u64 = 1 << 20;
/// Most validators one configuration may list.
pub const VALIDATORS_MAX: usize = 1_024;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    pub namespace: String,
    pub key_file: PathBuf,
    pub data_dir: PathBuf,
    pub api_listen: SocketAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p_listen: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_interval_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_connections_per_client_max: Option<usize>,
    /// `"production"` (the default: public addresses only, strict handshake limits) or
    /// `"local"` (loopback and private addresses; for a network on one machine or a LAN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p_preset: Option<crate::validator::P2pPreset>,
    pub genesis: GenesisFile,
    pub prices: PriceSettings,
    pub validators: Vec<ValidatorEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisFile {
    pub time_ms: u64,
    pub admin: String,
    pub bridge: String,
    /// Who deposits, funds the insurance fund and lists, by quorum (`custody.rs` in the
    /// exchange). Absent: the validators. Empty: nobody; the single admin and bridge keys do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custodians: Option<Vec<String>>,
    /// How many custodians carry out an action. Absent: `2f + 1` of `3f + 1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custody_threshold: Option<u8>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorEntry {
    pub public_key: String,
    pub address: SocketAddr,
}

/// A checked configuration, ready to start.
pub struct NodePlan {
    pub data_dir: PathBuf,
    pub setup: ValidatorSetup,
}

/// Reads and parses `path` (no checks beyond the shape).
/// The file is read once, through a reader that stops after [`CONFIG_BYTES_MAX`] bytes: a
/// device, FIFO or `/proc` file (whose size the file system reports as 0) is bounded too.
pub fn read(path: &Path) -> Result<NodeFile> {
    let bytes = keys::read_bounded(path, CONFIG_BYTES_MAX, "config")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("config {} is not UTF-8 text", path.display()))?;
    let parsed = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{e}"))
    } else {
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{e}"))
    };
    parsed.with_context(|| format!("config {} is not valid", path.display()))
}

/// Writes `file` as TOML.
pub fn write(path: &Path, file: &NodeFile) -> Result<()> {
    let text = toml::to_string(file).context("encoding config")?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Checks `file` (read from `path`) and resolves it into a plan. `now_ms` is the machine's
/// clock, only to refuse a genesis in the future (blocks could never be timed after it).
pub fn check(file: &NodeFile, path: &Path, now_ms: u64) -> Result<NodePlan> {
    let base = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    ensure!(
        !file.namespace.is_empty()
            && file.namespace.len() <= 64
            && file.namespace.chars().all(|c| c.is_ascii_graphic()),
        "namespace must be 1 to 64 printable ASCII characters without spaces"
    );
    let key_path = resolve(&file.key_file);
    let signer = keys::read_key(&key_path).context("key_file")?;
    check_data_dir(&file.data_dir, &resolve(&file.data_dir), &key_path)?;
    check_validator_bound(file.validators.len())?;
    let mut peers = Vec::with_capacity(file.validators.len());
    let (mut seen_keys, mut seen_addrs) = (BTreeSet::new(), BTreeSet::new());
    for (i, entry) in file.validators.iter().enumerate() {
        let key = keys::parse_public_key(&entry.public_key)
            .with_context(|| format!("validators[{i}].public_key"))?;
        ensure!(
            seen_keys.insert(key.clone()),
            "validators[{i}]: public key listed twice"
        );
        ensure!(
            seen_addrs.insert(entry.address),
            "validators[{i}]: address {} listed twice",
            entry.address
        );
        peers.push((key, entry.address));
    }
    // Before the genesis, whose custody check would refuse the count with a vaguer message.
    check_default_custody_count(peers.len(), file.genesis.custodians.is_none())?;
    let me = signer.public_key();
    let Some((_, my_address)) = peers.iter().find(|(key, _)| *key == me) else {
        bail!(
            "the key in key_file ({}) is not among the validators",
            keys::public_hex(&me)
        );
    };
    ensure!(
        file.genesis.time_ms <= now_ms,
        "genesis.time_ms lies in the future ({} > now {now_ms})",
        file.genesis.time_ms
    );
    let validators: Vec<PublicKey> = peers.iter().map(|(key, _)| key.clone()).collect();
    let genesis = genesis_of(file, validators)?;
    ensure!(
        file.prices.index_start_usdc > 0 && file.prices.index_start_usdc <= 1_000_000_000,
        "prices.index_start_usdc must lie in 1..=1e9"
    );
    ensure!(
        file.prices.noise_bps <= 1_000,
        "prices.noise_bps must be at most 1,000"
    );
    let mut settings = NodeSettings::DEFAULT;
    if let Some(ms) = file.block_interval_ms {
        ensure!(
            (10..=10_000).contains(&ms),
            "block_interval_ms must lie in 10..=10000"
        );
        settings.block_interval = Duration::from_millis(ms);
    }
    if let Some(per_client) = file.api_connections_per_client_max {
        let max = settings.api.connections_max;
        ensure!(
            (1..=max).contains(&per_client),
            "api_connections_per_client_max must lie in 1..={max}"
        );
        settings.api.connections_per_client_max = per_client;
    }
    let setup = ValidatorSetup {
        signer,
        p2p_listen: file.p2p_listen.unwrap_or(*my_address),
        peers,
        api_listen: file.api_listen,
        namespace: file.namespace.clone(),
        genesis,
        prices: file.prices,
        partition_prefix: "validator".to_string(),
        settings,
        state_sync: true,
        p2p_preset: file
            .p2p_preset
            .unwrap_or(crate::validator::P2pPreset::Production),
    };
    Ok(NodePlan {
        data_dir: resolve(&file.data_dir),
        setup,
    })
}

/// Refuses a `data_dir` that is no directory of its own: empty (the storage would land in the
/// configuration's directory, or fail at startup when that is the working directory), or the
/// directory holding `key_file` (the storage's files would sit beside the private key).
/// `resolved` is `data_dir` resolved against the configuration's directory.
fn check_data_dir(data_dir: &Path, resolved: &Path, key_path: &Path) -> Result<()> {
    ensure!(
        !data_dir.as_os_str().is_empty(),
        "data_dir is empty: name the directory for this validator's storage, e.g. \"data\""
    );
    // Lexical comparison (`.` components dropped): the directory need not exist yet.
    let lexical = |p: &Path| -> PathBuf {
        p.components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect()
    };
    let key_dir = key_path.parent().unwrap_or(Path::new(""));
    ensure!(
        lexical(resolved) != lexical(key_dir),
        "data_dir {} is the directory of key_file: give the storage a directory of its own, \
         e.g. \"data\"",
        data_dir.display()
    );
    ensure!(
        lexical(resolved) != lexical(key_path),
        "data_dir {} is key_file",
        data_dir.display()
    );
    Ok(())
}

/// Validator counts the default custody accepts (`genesis.custodians` absent: the validators
/// themselves, `2f + 1` of them): at most [`CUSTODIANS_MAX`], and `2f + 1` a strict majority.
/// That leaves out 2, 3 and 6, whose `2f + 1` is not more than half of them.
pub fn default_custody_counts() -> impl Iterator<Item = usize> {
    (1..=CUSTODIANS_MAX).filter(|&n| 2 * usize::from(genesis::bft_threshold(n)) > n)
}

/// Checks the number of validators against the bounds of any configuration (before reading
/// the list), the refusal saying what is allowed and why.
fn check_validator_bound(count: usize) -> Result<()> {
    ensure!(count > 0, "validators: list at least this validator");
    // Every validator observes prices, and a block must carry one observation from each.
    let observations_max = OracleConfig::GENESIS.observations_per_asset_max as usize;
    let most = VALIDATORS_MAX.min(observations_max);
    ensure!(
        count <= most,
        "validators: {count} listed, at most {most}: a block carries at most \
         {observations_max} price observations per asset, one from each validator"
    );
    Ok(())
}

/// Checks the number of (distinct) validators against the default custody when it applies,
/// before the genesis is built, the refusal saying what is allowed and why.
fn check_default_custody_count(count: usize, default_custody: bool) -> Result<()> {
    if default_custody && !default_custody_counts().any(|n| n == count) {
        bail!(
            "validators: {count} listed, but without genesis.custodians the validators are the \
             custodians and 2f + 1 of them must attest (f = (n - 1) / 3), which needs a strict \
             majority of at most {CUSTODIANS_MAX}: list {} validators, or name \
             genesis.custodians (1 to {CUSTODIANS_MAX} keys, with custody_threshold a strict \
             majority of them), or set `custodians = []` to leave deposits and listings to the \
             admin and bridge keys",
            spoken_list(&default_custody_counts().collect::<Vec<_>>())
        );
    }
    Ok(())
}

/// Sorted numbers as English: runs of three or more as "a to b", the last item after "or"
/// (`[1, 4, 5, 7, 8, 9]` is "1, 4, 5 or 7 to 9").
fn spoken_list(numbers: &[usize]) -> String {
    let mut items: Vec<String> = Vec::new();
    let mut start = 0;
    while start < numbers.len() {
        let mut end = start;
        while end + 1 < numbers.len() && numbers[end + 1] == numbers[end] + 1 {
            end += 1;
        }
        if end - start >= 2 {
            items.push(format!("{} to {}", numbers[start], numbers[end]));
        } else {
            items.extend(numbers[start..=end].iter().map(usize::to_string));
        }
        start = end + 1;
    }
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// The genesis a node configuration describes for `validators` (its `[genesis]`: admin and
/// bridge keys, custody, time; every validator observes prices for the oracle), checked. The
/// validators and every follower of their chain (`bulwark gateway`) build it here, so they
/// agree on it byte for byte.
pub fn genesis_of(file: &NodeFile, validators: Vec<PublicKey>) -> Result<Genesis> {
    let admin = keys::parse_public_key(&file.genesis.admin).context("genesis.admin")?;
    let bridge = keys::parse_public_key(&file.genesis.bridge).context("genesis.bridge")?;
    ensure!(
        admin != bridge,
        "genesis: admin and bridge must be different keys"
    );
    let custody = match &file.genesis.custodians {
        None => Some(genesis::validator_custody(validators.clone())),
        Some(list) if list.is_empty() => {
            ensure!(
                file.genesis.custody_threshold.is_none(),
                "genesis.custody_threshold without custodians"
            );
            None
        }
        Some(list) => {
            let custodians = list
                .iter()
                .enumerate()
                .map(|(i, hex)| {
                    keys::parse_public_key(hex).with_context(|| format!("genesis.custodians[{i}]"))
                })
                .collect::<Result<Vec<_>>>()?;
            Some(bulwark_exchange::Custody {
                threshold: genesis::bft_threshold(custodians.len()),
                custodians,
            })
        }
    };
    let custody = custody.map(|mut custody| {
        if let Some(threshold) = file.genesis.custody_threshold {
            custody.threshold = threshold;
        }
        custody
    });
    // Every validator observes prices for the oracle.
    let genesis = genesis::genesis_with_custody(
        &admin,
        &bridge,
        file.genesis.time_ms,
        Some(validators),
        custody,
    );
    genesis
        .check()
        .map_err(|e| anyhow::anyhow!("genesis: {e}"))?;
    Ok(genesis)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid one-validator configuration in a fresh directory, and its path.
    fn valid(name: &str) -> (NodeFile, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("bulwark-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = keys::generate();
        keys::write_key(&dir.join("v.key"), &key).unwrap();
        let file = NodeFile {
            namespace: "test".into(),
            key_file: "v.key".into(),
            data_dir: "data".into(),
            api_listen: "127.0.0.1:0".parse().unwrap(),
            p2p_listen: None,
            block_interval_ms: None,
            api_connections_per_client_max: None,
            p2p_preset: None,
            genesis: GenesisFile {
                time_ms: 1_000,
                admin: keys::public_hex(&keys::generate().public_key()),
                bridge: keys::public_hex(&keys::generate().public_key()),
                custodians: None,
                custody_threshold: None,
            },
            prices: PriceSettings {
                seed: 1,
                index_start_usdc: 100_000,
                noise_bps: 2,
            },
            validators: vec![ValidatorEntry {
                public_key: keys::public_hex(&key.public_key()),
                address: "127.0.0.1:1".parse().unwrap(),
            }],
        };
        (file, dir.join("node.toml"))
    }

    fn refusal(file: &NodeFile, path: &Path) -> String {
        match check(file, path, 2_000) {
            Ok(_) => "accepted".into(),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn a_valid_file_round_trips_through_toml_and_checks() {
        let (file, path) = valid("ok");
        write(&path, &file).unwrap();
        let read_back = read(&path).unwrap();
        let plan = check(&read_back, &path, 2_000).unwrap();
        assert_eq!(plan.data_dir, path.parent().unwrap().join("data"));
        assert!(
            plan.setup.genesis.oracle.is_some(),
            "every validator observes for the oracle"
        );
        assert_eq!(plan.setup.settings.api.connections_per_client_max, 128);
        let mut gateway_host = read_back;
        gateway_host.api_connections_per_client_max = Some(512);
        let plan = check(&gateway_host, &path, 2_000).unwrap();
        assert_eq!(plan.setup.settings.api.connections_per_client_max, 512);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    type Mistake = Box<dyn Fn(&mut NodeFile)>;

    #[test]
    fn each_mistake_is_named() {
        let (good, path) = valid("bad");
        let cases: Vec<(Mistake, &str)> = vec![
            (Box::new(|f| f.namespace = String::new()), "namespace"),
            (Box::new(|f| f.key_file = "missing.key".into()), "key_file"),
            (
                Box::new(|f| f.validators[0].public_key = "zz".into()),
                "validators[0].public_key",
            ),
            (
                Box::new(|f| f.validators.push(f.validators[0].clone())),
                "listed twice",
            ),
            (
                Box::new(|f| {
                    f.validators[0].public_key = keys::public_hex(&keys::generate().public_key())
                }),
                "not among the validators",
            ),
            (Box::new(|f| f.genesis.time_ms = 5_000), "in the future"),
            (
                Box::new(|f| f.genesis.bridge = f.genesis.admin.clone()),
                "admin and bridge",
            ),
            (Box::new(|f| f.prices.noise_bps = 5_000), "noise_bps"),
            (
                Box::new(|f| f.block_interval_ms = Some(1)),
                "block_interval_ms",
            ),
            (
                Box::new(|f| f.api_connections_per_client_max = Some(0)),
                "api_connections_per_client_max",
            ),
            (
                Box::new(|f| f.api_connections_per_client_max = Some(1_025)),
                "api_connections_per_client_max",
            ),
            (
                Box::new(|f| f.genesis.custodians = Some(vec!["zz".into()])),
                "genesis.custodians[0]",
            ),
            (
                Box::new(|f| f.genesis.custody_threshold = Some(0)),
                "custody",
            ),
            (
                Box::new(|f| {
                    f.genesis.custodians = Some(vec![]);
                    f.genesis.custody_threshold = Some(1);
                }),
                "custody_threshold without custodians",
            ),
            (
                Box::new(|f| {
                    let key = keys::public_hex(&keys::generate().public_key());
                    f.genesis.custodians = Some(vec![key.clone(), key]);
                }),
                "custody",
            ),
        ];
        for (mutate, expected) in cases {
            let mut file = good.clone();
            mutate(&mut file);
            let message = refusal(&file, &path);
            assert!(
                message.contains(expected),
                "expected `{expected}` in: {message}"
            );
        }
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_data_dir_that_is_no_directory_of_its_own_is_refused_by_name() {
        let (good, path) = valid("data-dir");
        let cases: [(&str, &str); 5] = [
            ("", "data_dir is empty"),
            (".", "directory of key_file"),
            ("./", "directory of key_file"),
            ("./.", "directory of key_file"),
            ("v.key", "data_dir v.key is key_file"),
        ];
        for (data_dir, expected) in cases {
            let mut file = good.clone();
            file.data_dir = data_dir.into();
            let message = refusal(&file, &path);
            assert!(
                message.contains(expected),
                "{data_dir:?}: expected `{expected}` in: {message}"
            );
        }
        // The same directory named absolutely is the key's directory too.
        let mut file = good.clone();
        file.data_dir = path.parent().unwrap().to_path_buf();
        assert!(refusal(&file, &path).contains("directory of key_file"));
        // A subdirectory, or one elsewhere, is the storage's own.
        for data_dir in ["data", "./data/v0", "../elsewhere"] {
            let mut file = good.clone();
            file.data_dir = data_dir.into();
            assert_eq!(refusal(&file, &path), "accepted", "{data_dir}");
        }
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// `good` with `count` validators (this one first), and custodians as given.
    fn with_validators(good: &NodeFile, count: usize, custodians: Option<Vec<String>>) -> NodeFile {
        let mut file = good.clone();
        file.genesis.custodians = custodians;
        for i in 1..count {
            file.validators.push(ValidatorEntry {
                public_key: keys::public_hex(&keys::generate().public_key()),
                address: SocketAddr::from(([127, 0, 0, 1], 10_000 + i as u16)),
            });
        }
        file
    }

    #[test]
    fn the_default_custody_takes_1_4_5_and_7_to_16_validators() {
        let counts: Vec<usize> = default_custody_counts().collect();
        let mut expected = vec![1, 4, 5];
        expected.extend(7..=16);
        assert_eq!(counts, expected);
        assert_eq!(spoken_list(&counts), "1, 4, 5 or 7 to 16");
        assert_eq!(spoken_list(&[3]), "3");
        assert_eq!(spoken_list(&[3, 4]), "3 or 4");
        assert_eq!(spoken_list(&[]), "");
    }

    #[test]
    fn a_validator_count_is_checked_first_with_its_own_message() {
        let (good, path) = valid("count");
        for count in [2, 3, 6, 17, 40] {
            let message = refusal(&with_validators(&good, count, None), &path);
            assert!(
                message.starts_with(&format!("validators: {count} listed"))
                    && message.contains("list 1, 4, 5 or 7 to 16 validators")
                    && message.contains("genesis.custodians"),
                "{count}: {message}"
            );
        }
        for count in [4, 5, 7, 16] {
            assert_eq!(
                refusal(&with_validators(&good, count, None), &path),
                "accepted",
                "{count}"
            );
        }
        // Custody named apart from the validators, or left to the admin and bridge keys: the
        // validator count is free up to the oracle's bound.
        let custodian = keys::public_hex(&keys::generate().public_key());
        for count in [2, 3, 6, 17, 256] {
            let own = Some(vec![custodian.clone()]);
            assert_eq!(
                refusal(&with_validators(&good, count, own), &path),
                "accepted",
                "{count}"
            );
            assert_eq!(
                refusal(&with_validators(&good, count, Some(vec![])), &path),
                "accepted",
                "{count}"
            );
        }
        let message = refusal(&with_validators(&good, 257, Some(vec![])), &path);
        assert!(
            message.starts_with("validators: 257 listed, at most 256"),
            "{message}"
        );
        let mut none = good.clone();
        none.validators.clear();
        assert!(refusal(&none, &path).contains("list at least this validator"));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_config_is_read_through_its_bound() {
        let (file, path) = valid("bound");
        write(&path, &file).unwrap();
        let padded = format!(
            "{}\n# {}\n",
            std::fs::read_to_string(&path).unwrap(),
            "x".repeat(CONFIG_BYTES_MAX as usize)
        );
        std::fs::write(&path, padded).unwrap();
        let message = format!("{:#}", read(&path).unwrap_err());
        assert!(message.contains("larger than 1048576 bytes"), "{message}");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn unknown_fields_and_bad_syntax_are_refused() {
        let (file, path) = valid("syntax");
        let text = toml::to_string(&file)
            .unwrap()
            .replace("namespace =", "namespaec =");
        std::fs::write(&path, text).unwrap();
        assert!(format!("{:#}", read(&path).unwrap_err()).contains("namespaec"));
        std::fs::write(&path, "this is = = not toml").unwrap();
        assert!(read(&path).is_err());
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
