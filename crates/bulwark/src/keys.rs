//! Key files: an ed25519 private key as 64 hex characters on one line.
//!
//! Owns: reading and writing key files, hex of public keys, and the devnet's derived keys.
//! Devnet keys are derived from a seed so that anyone can recreate them: never use them for
//! anything but a local devnet.
//! Bounds: a key file is read through a reader that stops after [`KEY_FILE_BYTES_MAX`] bytes,
//! so a device (`/dev/zero`), a FIFO or a huge file is refused without reading it whole.

use anyhow::{Context, Result, ensure};
use bulwark_types::{PrivateKey, PublicKey};
use commonware_codec::{DecodeExt, Encode};
use commonware_cryptography::{Signer, ed25519};
use std::io::{Read as _, Write as _};
use std::path::Path;

/// Largest key file read: a key is 64 hex characters and a line end, and 1 KiB leaves room for
/// surrounding spaces while refusing anything that cannot be a key.
pub const KEY_FILE_BYTES_MAX: u64 = 1_024;

/// Reads at most `limit` bytes of `path`, refusing a longer file (or an endless device) after
/// reading `limit + 1` bytes of it. `what` names the file in errors ("key file", "config").
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("reading {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {what} {}", path.display()))?;
    ensure!(
        bytes.len() as u64 <= limit,
        "{what} {} is larger than {limit} bytes",
        path.display()
    );
    Ok(bytes)
}

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

/// Reads the key file at `path`: one line of 64 hex characters, optionally surrounded by
/// spaces and ended by one line break (`\n` or `\r\n`). Anything after that line is refused,
/// so a file holding two keys, or a key and notes, is not silently cut to its first line.
pub fn read_key(path: &Path) -> Result<PrivateKey> {
    let bytes = read_bounded(path, KEY_FILE_BYTES_MAX, "key file")?;
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!(
            "key file {}: not text; a key file is one line of 64 hex characters",
            path.display()
        )
    })?;
    key_line(&text)
        .and_then(parse_private_key)
        .with_context(|| format!("key file {}", path.display()))
}

/// The one line of a key file's `text`, without its line break.
fn key_line(text: &str) -> Result<&str> {
    ensure!(
        !text.starts_with('\u{feff}'),
        "starts with a byte-order mark; save the key as plain ASCII"
    );
    let line = text
        .strip_suffix('\n')
        .map_or(text, |t| t.strip_suffix('\r').unwrap_or(t));
    ensure!(
        !line.contains(['\n', '\r']),
        "holds more than one line; a key file is one line of 64 hex characters and nothing after it"
    );
    Ok(line)
}

/// Writes `key` to `path`, replacing a file there (the devnet rewrites its derived keys on every
/// start), creating parent directories. On Unix a new file is created with mode 0600, never
/// readable by others even for a moment, and an existing one is restricted to 0600.
pub fn write_key(path: &Path, key: &PrivateKey) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    write_key_with(path, key, &mut options)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    Ok(())
}

/// Writes `key` to a new file at `path` (mode 0600 on Unix from its creation), creating parent
/// directories. Refuses any existing path, a dangling symbolic link included: the file is
/// created with `O_CREAT | O_EXCL` in one step, so there is no window between a check and the
/// write, and the key is never written through a link.
pub fn create_key(path: &Path, key: &PrivateKey) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    // A key a user generates may be the only copy: on disk before `keygen` reports it.
    write_key_with(path, key, &mut options)?
        .sync_all()
        .with_context(|| format!("writing key file {}", path.display()))
}

/// Opens `path` with `options` (mode 0600 on Unix), writes `key` and returns the file.
fn write_key_with(
    path: &Path,
    key: &PrivateKey,
    options: &mut std::fs::OpenOptions,
) -> Result<std::fs::File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{} exists; not overwriting a key", path.display())
        } else {
            anyhow::Error::new(e).context(format!("writing key file {}", path.display()))
        }
    })?;
    let text = format!("{}\n", hex(&key.encode()));
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing key file {}", path.display()))?;
    Ok(file)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bulwark-keys-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn refusal(path: &Path) -> String {
        match read_key(path) {
            Ok(_) => "accepted".into(),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn a_key_file_is_one_line_and_nothing_after_it() {
        let dir = scratch("lines");
        let key = generate();
        let line = hex(&key.encode());
        let accepted = [
            line.clone(),
            format!("{line}\n"),
            format!("{line}\r\n"),
            format!("  {line}  \n"),
        ];
        for (i, text) in accepted.iter().enumerate() {
            let path = dir.join(format!("ok-{i}.key"));
            std::fs::write(&path, text).unwrap();
            assert_eq!(
                read_key(&path).unwrap().public_key(),
                key.public_key(),
                "{text:?}"
            );
        }
        let refused = [
            (format!("{line}\ngarbage\n"), "more than one line"),
            (format!("{line}\n\n"), "more than one line"),
            (format!("{line}\n{line}\n"), "more than one line"),
            (format!("\n{line}\n"), "more than one line"),
            (format!("\u{feff}{line}\n"), "byte-order mark"),
            (format!("{line}\r\r\n"), "more than one line"),
        ];
        for (i, (text, expected)) in refused.iter().enumerate() {
            let path = dir.join(format!("bad-{i}.key"));
            std::fs::write(&path, text).unwrap();
            let message = refusal(&path);
            assert!(message.contains(expected), "{text:?}: {message}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_long_key_file_is_refused_after_its_bound() {
        // `/dev/zero` is tested on the binary under a memory limit (tests/hostile_files_cli.rs):
        // a regression here would read it until memory runs out.
        let dir = scratch("long");
        let path = dir.join("long.key");
        std::fs::write(&path, "0".repeat(4 << 20)).unwrap();
        assert!(refusal(&path).contains("larger than 1024 bytes"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn a_created_key_is_private_from_its_creation_and_never_overwrites() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("create");
        let path = dir.join("nested").join("new.key");
        let key = generate();
        create_key(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        assert_eq!(read_key(&path).unwrap().public_key(), key.public_key());
        // An existing file is kept as it was.
        let message = format!("{:#}", create_key(&path, &generate()).unwrap_err());
        assert!(message.contains("exists"), "{message}");
        assert_eq!(read_key(&path).unwrap().public_key(), key.public_key());
        // A dangling symbolic link is refused, and nothing is written through it.
        let target = dir.join("target.key");
        let link = dir.join("link.key");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let message = format!("{:#}", create_key(&link, &generate()).unwrap_err());
        assert!(message.contains("exists"), "{message}");
        assert!(!target.exists(), "the key was written through the link");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn a_rewritten_key_is_restricted_too() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("rewrite");
        let path = dir.join("devnet.key");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let key = generate();
        write_key(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        assert_eq!(read_key(&path).unwrap().public_key(), key.public_key());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
