//! The named scenarios shipped in the binary: every file under `scenarios/`, by its name.
//!
//! Owns: finding a scenario by name or path. A catalogue file's `name` is its file name
//! (tested), so `bulwark simulate <name>` replays what a report names.

use crate::scenario::{Scenario, ScenarioError};
use std::path::Path;

/// Every catalogue scenario: name and file text, by name.
pub const CATALOGUE: &[(&str, &str)] = &[
    (
        "agent-key-squat",
        include_str!("../scenarios/agent-key-squat.toml"),
    ),
    (
        "agents-market",
        include_str!("../scenarios/agents-market.toml"),
    ),
    (
        "backstop-whale",
        include_str!("../scenarios/backstop-whale.toml"),
    ),
    (
        "backstop-whale-warm",
        include_str!("../scenarios/backstop-whale-warm.toml"),
    ),
    ("baseline", include_str!("../scenarios/baseline.toml")),
    (
        "cancel-flood",
        include_str!("../scenarios/cancel-flood.toml"),
    ),
    ("censor", include_str!("../scenarios/censor.toml")),
    ("clock-skew", include_str!("../scenarios/clock-skew.toml")),
    (
        "crash-restart",
        include_str!("../scenarios/crash-restart.toml"),
    ),
    (
        "crash-two-of-7",
        include_str!("../scenarios/crash-two-of-7.toml"),
    ),
    ("disk-fault", include_str!("../scenarios/disk-fault.toml")),
    ("disk-lies", include_str!("../scenarios/disk-lies.toml")),
    ("disk-rots", include_str!("../scenarios/disk-rots.toml")),
    (
        "duty-breakers-7",
        include_str!("../scenarios/duty-breakers-7.toml"),
    ),
    ("flapping", include_str!("../scenarios/flapping.toml")),
    ("flooder", include_str!("../scenarios/flooder.toml")),
    ("front-run", include_str!("../scenarios/front-run.toml")),
    (
        "front-run-liquidations",
        include_str!("../scenarios/front-run-liquidations.toml"),
    ),
    (
        "front-run-options",
        include_str!("../scenarios/front-run-options.toml"),
    ),
    (
        "funding-push",
        include_str!("../scenarios/funding-push.toml"),
    ),
    (
        "isolate-leader",
        include_str!("../scenarios/isolate-leader.toml"),
    ),
    (
        "liquidation-cascade",
        include_str!("../scenarios/liquidation-cascade.toml"),
    ),
    (
        "liquidation-cascade-warm",
        include_str!("../scenarios/liquidation-cascade-warm.toml"),
    ),
    ("link-storm", include_str!("../scenarios/link-storm.toml")),
    (
        "mark-proposer",
        include_str!("../scenarios/mark-proposer.toml"),
    ),
    ("mixed-10", include_str!("../scenarios/mixed-10.toml")),
    (
        "mock-conflicter",
        include_str!("../scenarios/mock-conflicter.toml"),
    ),
    (
        "mock-equivocator",
        include_str!("../scenarios/mock-equivocator.toml"),
    ),
    ("mock-nuller", include_str!("../scenarios/mock-nuller.toml")),
    (
        "mock-outdated",
        include_str!("../scenarios/mock-outdated.toml"),
    ),
    ("one-way", include_str!("../scenarios/one-way.toml")),
    (
        "oracle-outage-early-withdrawal",
        include_str!("../scenarios/oracle-outage-early-withdrawal.toml"),
    ),
    (
        "oracle-outage-withdrawal",
        include_str!("../scenarios/oracle-outage-withdrawal.toml"),
    ),
    (
        "option-squeeze",
        include_str!("../scenarios/option-squeeze.toml"),
    ),
    (
        "partition-2-2",
        include_str!("../scenarios/partition-2-2.toml"),
    ),
    (
        "quote-sniper",
        include_str!("../scenarios/quote-sniper.toml"),
    ),
    (
        "quote-sniper-frozen-index",
        include_str!("../scenarios/quote-sniper-frozen-index.toml"),
    ),
    (
        "slow-validator",
        include_str!("../scenarios/slow-validator.toml"),
    ),
    (
        "spam-throwaway-keys",
        include_str!("../scenarios/spam-throwaway-keys.toml"),
    ),
    ("spoof-touch", include_str!("../scenarios/spoof-touch.toml")),
    ("sweep-200", include_str!("../scenarios/sweep-200.toml")),
    (
        "sweep-byzantine-7",
        include_str!("../scenarios/sweep-byzantine-7.toml"),
    ),
    (
        "squeeze-perpetual",
        include_str!("../scenarios/squeeze-perpetual.toml"),
    ),
    (
        "validators-lie",
        include_str!("../scenarios/validators-lie.toml"),
    ),
    (
        "validators-lie-withdrawal",
        include_str!("../scenarios/validators-lie-withdrawal.toml"),
    ),
    (
        "venue-false-price",
        include_str!("../scenarios/venue-false-price.toml"),
    ),
    (
        "wipe-state-sync",
        include_str!("../scenarios/wipe-state-sync.toml"),
    ),
    (
        "withhold-around-refit",
        include_str!("../scenarios/withhold-around-refit.toml"),
    ),
    (
        "withhold-observations",
        include_str!("../scenarios/withhold-observations.toml"),
    ),
    (
        "withhold-replay",
        include_str!("../scenarios/withhold-replay.toml"),
    ),
    (
        "withhold-timed",
        include_str!("../scenarios/withhold-timed.toml"),
    ),
];

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no catalogue scenario is named {name:?} and no such file exists (see --list)")]
    Unknown { name: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{origin}: {source}")]
    Invalid {
        origin: String,
        source: ScenarioError,
    },
}

/// The catalogue's scenario names, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().map(|(name, _)| *name)
}

/// The catalogue scenario `name`.
pub fn get(name: &str) -> Option<Result<Scenario, ScenarioError>> {
    CATALOGUE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| Scenario::parse(text))
}

/// Largest scenario file read: the catalogue's scenarios are a few KiB; 4 MiB leaves room for
/// long fault timelines and comments (a path such as `/dev/zero` would otherwise be read until
/// memory ran out).
pub const SCENARIO_BYTES_MAX: u64 = 4 << 20;

/// The catalogue scenario named `name_or_path`, else the scenario file at that path, read
/// through [`SCENARIO_BYTES_MAX`].
pub fn load(name_or_path: &str) -> Result<Scenario, LoadError> {
    use std::io::Read as _;
    if let Some(parsed) = get(name_or_path) {
        return parsed.map_err(|source| LoadError::Invalid {
            origin: format!("catalogue scenario {name_or_path}"),
            source,
        });
    }
    let path = Path::new(name_or_path);
    if !path.exists() {
        return Err(LoadError::Unknown {
            name: name_or_path.to_string(),
        });
    }
    let io = |source| LoadError::Io {
        path: name_or_path.to_string(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(SCENARIO_BYTES_MAX + 1).read_to_end(&mut bytes))
        .map_err(io)?;
    if bytes.len() as u64 > SCENARIO_BYTES_MAX {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {SCENARIO_BYTES_MAX} bytes"),
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })?;
    Scenario::parse(&text).map_err(|source| LoadError::Invalid {
        origin: name_or_path.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_file_is_read_through_its_bound() {
        let dir = std::env::temp_dir().join(format!("bulwark-catalogue-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("huge.toml");
        // A valid TOML comment, one byte over the bound.
        let huge = format!("#{}", "x".repeat(SCENARIO_BYTES_MAX as usize));
        std::fs::write(&path, huge).unwrap();
        let message = load(path.to_str().unwrap()).unwrap_err().to_string();
        assert!(
            message.contains(&format!("larger than {SCENARIO_BYTES_MAX} bytes")),
            "{message}"
        );
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        let message = load(path.to_str().unwrap()).unwrap_err().to_string();
        assert!(message.contains("valid UTF-8"), "{message}");
        // The catalogue's names still come first.
        let name = names().next().unwrap();
        assert!(load(name).is_ok());
        assert!(matches!(
            load("no-such-scenario"),
            Err(LoadError::Unknown { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
