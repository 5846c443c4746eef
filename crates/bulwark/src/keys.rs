//! Key files: an ed25519 private key as 64 hex characters on one line.
//!
//! Owns: reading and writing key files, hex of public keys, and the devnet's derived keys.
//! Devnet keys are derived from a seed so that anyone can recreate them: never use them for
//! anything but a local devnet.

use anyhow::{Context, Result, bail};
use bulwark_types::{PrivateKey, PublicKey};
use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::{Signer, ed25519};
use std::path::Path;

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bulwark_node::executor::hex(bytes)
}

/// Decodes hex of exactly `len` bytes.
pub fn unhex(text: &str, len: usize) -> Option<Vec<u8>> {
    bulwark_node::api::decode_hex(text.trim(), len).filter(|b| b.len() == len)
}

pub fn public_hex(key: &PublicKey) -> String {
    hex(key.as_ref())
}

pub fn parse_public_key(text: &str) -> Result<PublicKey> {
    let bytes = unhex(text, 32).context("a public key is 64 hex characters")?;
    PublicKey::decode(bytes).map_err(|e| anyhow::anyhow!("not a valid ed25519 public key: {e}"))
}

pub fn parse_private_key(text: &str) -> Result<PrivateKey> {
    let bytes = unhex(text, 32).context("a private key is 64 hex characters")?;
    PrivateKey::decode(bytes).map_err(|e| anyhow::anyhow!("not a valid ed25519 private key: {e}"))
}

/// A fresh key from the operating system's randomness.
pub fn generate() -> PrivateKey {
    use commonware_math::algebra::Random as _;
    ed25519::PrivateKey::random(rand::rng())
}

pub fn read_key(path: &Path) -> Result<PrivateKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    if text.len() > 1_024 {
        bail!("key file {} is too long to be a key", path.display());
    }
    parse_private_key(text.lines().next().unwrap_or(""))
        .with_context(|| format!("key file {}", path.display()))
}

/// Writes `key` to `path` (mode 0600 on Unix), creating parent directories.
pub fn write_key(path: &Path, key: &PrivateKey) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let text = format!("{}\n", hex(&key.encode()));
    std::fs::write(path, text).with_context(|| format!("writing key file {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    Ok(())
}

/// Roles of the devnet's derived keys: each role and number gives one key for a seed.
#[derive(Copy, Clone, Debug)]
pub enum DevnetKey {
    Validator(u64),
    Admin,
    Bridge,
    /// Accounts for people to trade with, funded at genesis.
    Demo(u64),
    /// The bots' accounts.
    Bot(u64),
}

/// The devnet key of `role` under `seed`. Insecure by design: anyone with the seed has it.
pub fn devnet_key(seed: u64, role: DevnetKey) -> PrivateKey {
    let base = seed.wrapping_mul(1_000_003) << 20;
    let offset = match role {
        DevnetKey::Validator(i) => i,
        DevnetKey::Admin => 1_000,
        DevnetKey::Bridge => 1_001,
        DevnetKey::Demo(i) => 10_000 + i,
        DevnetKey::Bot(i) => 100_000 + i,
    };
    PrivateKey::from_seed(base.wrapping_add(offset))
}
