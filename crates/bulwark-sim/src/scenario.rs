//! Scenario files: the cluster a lab run sets up, how long it runs, and its timeline of faults.
//!
//! Owns: parsing (TOML through serde, unknown fields refused) and validation into a
//! [`Scenario`]; every [`ScenarioError`] names the field at fault.
//! Never: runs anything, or reads a clock.
//! Bounds: 4, 7 or 10 validators; at most [`BLOCKS_MAX`] blocks or [`SECONDS_MAX`] simulated
//! seconds; at most [`FAULTS_MAX`] faults; at most f Byzantine validators.
//!
//! ```toml
//! name = "crash-restart"
//! description = "validator 3 crashes at height 40 and restarts from its disk 10 s later"
//! validators = 4
//! duration = { blocks = 200 }
//! link = { latency_ms = 10, jitter_ms = 3, success_percent = 100 }
//! market = { instruments = ["BTC_USDC-PERPETUAL"], traders = 16, order_interval_ms = 100 }
//!
//! [[fault]]
//! kind = "crash"
//! validator = 3
//! at_height = 40
//! heal_after_s = 10.0
//! ```
//!
//! Byzantine validators are roles held from the start (`[[byzantine]]`, `kind = "mock"` with
//! `mock = "conflicter" | "equivocator" | "nuller" | "outdated"`, or `kind = "duty-breaker"` with
//! `duty = "cancels-first" | "one-observation-per-validator" | "time-not-before-parent" |
//! "paying-signers" | "transactions-signed" | "observations-signed"`). Faults start at a finalized height (`at_height`) or a simulated time
//! (`at_s`) and, except `fork-state`, heal `heal_after_s` later.

use crate::byzantine::Duty;
use crate::cluster::{TRADERS_MAX, VALIDATORS_MAX};
use serde::{Deserialize, Serialize};

/// Most blocks a scenario runs for.
pub const BLOCKS_MAX: u64 = 100_000;
/// Most simulated seconds a scenario runs for.
pub const SECONDS_MAX: u64 = 24 * 3_600;
/// Most faults in a timeline.
pub const FAULTS_MAX: usize = 64;
/// Most latency, and most jitter, a link model may have.
pub const LINK_DELAY_MS_MAX: u64 = 10_000;
/// Longest a fault may last before it heals.
pub const HEAL_AFTER_MS_MAX: u64 = 3_600_000;
/// The instruments the lab's traders trade (the market's only one today).
pub const INSTRUMENTS: [&str; 1] = ["BTC_USDC-PERPETUAL"];

/// A validated scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// Cluster size: 4, 7 or 10 (n = 3f + 1).
    pub validators: usize,
    pub duration: RunLength,
    /// Every link's model while no fault changes it.
    pub link: LinkModel,
    pub market: Market,
    /// Validators that are Byzantine from the start.
    pub byzantine: Vec<ByzantineRole>,
    /// The timeline, in file order.
    pub faults: Vec<Fault>,
}

impl Scenario {
    /// Parses and validates a scenario file's text.
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let raw: RawScenario = toml::from_str(text)?;
        raw.validate()
    }

    /// f, the most Byzantine validators the cluster tolerates.
    pub fn f(&self) -> usize {
        (self.validators - 1) / 3
    }

    /// This scenario with no fault and no Byzantine validator: the baseline it is scored
    /// against.
    pub fn fault_free(&self) -> Self {
        Self {
            byzantine: Vec::new(),
            faults: Vec::new(),
            ..self.clone()
        }
    }

    /// Whether validator `i` is an impostor (one of Commonware's mocks runs under its key).
    pub fn is_impostor(&self, i: usize) -> bool {
        self.byzantine
            .iter()
            .any(|b| matches!(b, ByzantineRole::Mock { validator, .. } if *validator == i))
    }
}

/// How long a run lasts.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunLength {
    /// Until the cluster finalizes this height.
    Blocks(u64),
    /// This much simulated time, in seconds.
    Seconds(u64),
}

/// One link's delivery model.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkModel {
    pub latency_ms: u64,
    pub jitter_ms: u64,
    /// Messages delivered, in percent (1 to 100).
    pub success_percent: u64,
}

impl LinkModel {
    fn check(&self, field: &str) -> Result<(), ScenarioError> {
        range(
            &format!("{field}.latency_ms"),
            self.latency_ms,
            0,
            LINK_DELAY_MS_MAX,
        )?;
        range(
            &format!("{field}.jitter_ms"),
            self.jitter_ms,
            0,
            LINK_DELAY_MS_MAX,
        )?;
        range(
            &format!("{field}.success_percent"),
            self.success_percent,
            1,
            100,
        )
    }
}

/// The market the traders make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Market {
    /// Instruments listed at the start (names from [`INSTRUMENTS`]).
    pub instruments: Vec<String>,
    /// Traders, each with its own account, submitting to validator `t mod n`.
    pub traders: usize,
    /// Each trader submits one order or cancel every this many milliseconds.
    pub order_interval_ms: u64,
}

/// Commonware's Byzantine consensus mocks, run under a validator's key in its place.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MockKind {
    /// Votes for two different proposals in one view.
    Conflicter,
    /// A leader that withholds its blocks and equivocates on its votes.
    Equivocator,
    /// Votes both to nullify and to finalize one view.
    Nuller,
    /// Replays votes for views long past.
    Outdated,
}

/// A validator that is Byzantine from the start.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ByzantineRole {
    /// One of Commonware's mocks runs under the validator's key instead of the validator.
    Mock { validator: usize, mock: MockKind },
    /// The validator breaks `duty` in every block it proposes (the lab's `DutyBreaker`).
    DutyBreaker { validator: usize, duty: Duty },
}

impl ByzantineRole {
    pub fn validator(&self) -> usize {
        match self {
            Self::Mock { validator, .. } | Self::DutyBreaker { validator, .. } => *validator,
        }
    }
}

/// When a fault starts.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// When any validator has executed this height.
    Height(u64),
    /// At this simulated time since the run began, in milliseconds.
    Millis(u64),
}

/// One fault of the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub start: Trigger,
    /// How long after it starts the fault heals; `None` for a fault that stays.
    pub heal_after_ms: Option<u64>,
    pub action: FaultAction,
}

/// What a fault does while it lasts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum FaultAction {
    /// The validator's process dies; it restarts from its disk when the fault heals.
    Crash { validator: usize },
    /// The validator dies and loses its disk; it restarts empty (state sync) when it heals.
    Wipe { validator: usize },
    /// Every link between different groups is cut, both ways.
    Partition { groups: Vec<Vec<usize>> },
    /// The leader of the newest finalized block loses every link, both ways.
    IsolateLeader,
    /// The links from `from` to each of `to` are cut (the other way stays up).
    OneWay { from: usize, to: Vec<usize> },
    /// A partition between `groups` that is cut and restored every `period_ms`.
    Flapping {
        groups: Vec<Vec<usize>>,
        period_ms: u64,
    },
    /// Every link follows `link` instead of the scenario's model.
    LinkStorm { link: LinkModel },
    /// Every link to and from the validator gets `latency_ms` more latency.
    Slow { validator: usize, latency_ms: u64 },
    /// A deliberate bug, for testing the lab itself: the validator's finalized state gets
    /// 1 USDC more in its insurance fund (and deposits), its outcome chain untouched, as a
    /// state change applied on one validator only. It does not heal.
    ForkState { validator: usize },
}

impl FaultAction {
    /// The `kind` name of the fault, as in scenario files.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Crash { .. } => "crash",
            Self::Wipe { .. } => "wipe",
            Self::Partition { .. } => "partition",
            Self::IsolateLeader => "isolate-leader",
            Self::OneWay { .. } => "one-way",
            Self::Flapping { .. } => "flapping",
            Self::LinkStorm { .. } => "link-storm",
            Self::Slow { .. } => "slow",
            Self::ForkState { .. } => "fork-state",
        }
    }
}

/// Why a scenario file was refused. Each names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Not TOML, a field of the wrong type, a field missing or unknown (toml names it).
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("validators: {0} is not 4, 7 or 10")]
    Validators(usize),
    #[error("duration: give exactly one of `blocks` and `seconds`")]
    DurationChoice,
    #[error("{field}: {value} is not within {min}..={max}")]
    OutOfRange {
        field: String,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("{field}: {value} is not a finite number of seconds within 0..={max_s}")]
    Seconds {
        field: String,
        value: f64,
        max_s: u64,
    },
    #[error("market.instruments: {0:?} is not one the lab lists (one of {INSTRUMENTS:?})")]
    Instrument(String),
    #[error("market.instruments: list at least one instrument")]
    NoInstrument,
    #[error("{field}: validator {validator} does not exist (validators = {n})")]
    NoSuchValidator {
        field: String,
        validator: usize,
        n: usize,
    },
    #[error("byzantine: {count} Byzantine validators, more than f = {f} for n = {n}")]
    TooManyByzantine { count: usize, f: usize, n: usize },
    #[error("byzantine[{index}].validator: validator {validator} already has a Byzantine role")]
    ByzantineTwice { index: usize, validator: usize },
    #[error("fault: {0} faults, more than {FAULTS_MAX}")]
    TooManyFaults(usize),
    #[error("fault[{index}] ({kind}): missing `{field}`")]
    Missing {
        index: usize,
        kind: &'static str,
        field: &'static str,
    },
    #[error("fault[{index}] ({kind}): `{field}` does not apply to this kind")]
    NotApplicable {
        index: usize,
        kind: &'static str,
        field: &'static str,
    },
    #[error("fault[{index}]: give exactly one of `at_height` and `at_s`")]
    TriggerChoice { index: usize },
    #[error("fault[{index}].groups: {why}")]
    Groups { index: usize, why: &'static str },
    #[error(
        "fault[{index}].validator: validator {validator} is an impostor (a Byzantine mock) and \
         has no process to crash, wipe, slow or fork"
    )]
    Impostor { index: usize, validator: usize },
}

fn range(field: &str, value: u64, min: u64, max: u64) -> Result<(), ScenarioError> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(ScenarioError::OutOfRange {
        field: field.to_string(),
        value,
        min,
        max,
    })
}

fn millis(field: &str, seconds: f64, max_ms: u64) -> Result<u64, ScenarioError> {
    let ms = seconds * 1_000.0;
    if !seconds.is_finite() || seconds < 0.0 || ms > max_ms as f64 {
        return Err(ScenarioError::Seconds {
            field: field.to_string(),
            value: seconds,
            max_s: max_ms / 1_000,
        });
    }
    Ok(ms.round() as u64)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default)]
    description: String,
    validators: usize,
    duration: RawDuration,
    link: LinkModel,
    market: Market,
    #[serde(default)]
    byzantine: Vec<ByzantineRole>,
    #[serde(default)]
    fault: Vec<RawFault>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDuration {
    blocks: Option<u64>,
    seconds: Option<u64>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum FaultKind {
    Crash,
    Wipe,
    Partition,
    IsolateLeader,
    OneWay,
    Flapping,
    LinkStorm,
    Slow,
    ForkState,
}

/// A fault as written: the kind, its schedule, and the fields some kinds take.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    kind: FaultKind,
    at_height: Option<u64>,
    at_s: Option<f64>,
    heal_after_s: Option<f64>,
    validator: Option<usize>,
    groups: Option<Vec<Vec<usize>>>,
    from: Option<usize>,
    to: Option<Vec<usize>>,
    period_s: Option<f64>,
    link: Option<LinkModel>,
    latency_ms: Option<u64>,
}

impl RawScenario {
    fn validate(self) -> Result<Scenario, ScenarioError> {
        let n = self.validators;
        if ![4, 7, 10].contains(&n) || n > VALIDATORS_MAX {
            return Err(ScenarioError::Validators(n));
        }
        let duration = match (self.duration.blocks, self.duration.seconds) {
            (Some(blocks), None) => {
                range("duration.blocks", blocks, 1, BLOCKS_MAX)?;
                RunLength::Blocks(blocks)
            }
            (None, Some(seconds)) => {
                range("duration.seconds", seconds, 1, SECONDS_MAX)?;
                RunLength::Seconds(seconds)
            }
            _ => return Err(ScenarioError::DurationChoice),
        };
        self.link.check("link")?;
        self.check_market()?;
        let f = (n - 1) / 3;
        if self.byzantine.len() > f {
            return Err(ScenarioError::TooManyByzantine {
                count: self.byzantine.len(),
                f,
                n,
            });
        }
        for (index, role) in self.byzantine.iter().enumerate() {
            let validator = role.validator();
            check_validator(&format!("byzantine[{index}].validator"), validator, n)?;
            if self.byzantine[..index]
                .iter()
                .any(|r| r.validator() == validator)
            {
                return Err(ScenarioError::ByzantineTwice { index, validator });
            }
        }
        if self.fault.len() > FAULTS_MAX {
            return Err(ScenarioError::TooManyFaults(self.fault.len()));
        }
        let mut scenario = Scenario {
            name: self.name,
            description: self.description,
            validators: n,
            duration,
            link: self.link,
            market: self.market,
            byzantine: self.byzantine,
            faults: Vec::new(),
        };
        for (index, raw) in self.fault.into_iter().enumerate() {
            let fault = raw.validate(index, n)?;
            if let FaultAction::Crash { validator }
            | FaultAction::Wipe { validator }
            | FaultAction::Slow { validator, .. }
            | FaultAction::ForkState { validator } = fault.action
                && scenario.is_impostor(validator)
            {
                return Err(ScenarioError::Impostor { index, validator });
            }
            scenario.faults.push(fault);
        }
        Ok(scenario)
    }

    fn check_market(&self) -> Result<(), ScenarioError> {
        if self.market.instruments.is_empty() {
            return Err(ScenarioError::NoInstrument);
        }
        if let Some(unknown) = self
            .market
            .instruments
            .iter()
            .find(|i| !INSTRUMENTS.contains(&i.as_str()))
        {
            return Err(ScenarioError::Instrument(unknown.clone()));
        }
        range(
            "market.traders",
            self.market.traders as u64,
            1,
            TRADERS_MAX as u64,
        )?;
        range(
            "market.order_interval_ms",
            self.market.order_interval_ms,
            10,
            60_000,
        )
    }
}

fn check_validator(field: &str, validator: usize, n: usize) -> Result<(), ScenarioError> {
    if validator < n {
        return Ok(());
    }
    Err(ScenarioError::NoSuchValidator {
        field: field.to_string(),
        validator,
        n,
    })
}

impl RawFault {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            FaultKind::Crash => "crash",
            FaultKind::Wipe => "wipe",
            FaultKind::Partition => "partition",
            FaultKind::IsolateLeader => "isolate-leader",
            FaultKind::OneWay => "one-way",
            FaultKind::Flapping => "flapping",
            FaultKind::LinkStorm => "link-storm",
            FaultKind::Slow => "slow",
            FaultKind::ForkState => "fork-state",
        }
    }

    /// The fields this kind takes beyond its schedule.
    fn takes(&self) -> &'static [&'static str] {
        match self.kind {
            FaultKind::Crash | FaultKind::Wipe | FaultKind::ForkState => &["validator"],
            FaultKind::Partition => &["groups"],
            FaultKind::IsolateLeader => &[],
            FaultKind::OneWay => &["from", "to"],
            FaultKind::Flapping => &["groups", "period_s"],
            FaultKind::LinkStorm => &["link"],
            FaultKind::Slow => &["validator", "latency_ms"],
        }
    }

    fn validate(self, index: usize, n: usize) -> Result<Fault, ScenarioError> {
        let kind = self.kind_name();
        let given = [
            ("validator", self.validator.is_some()),
            ("groups", self.groups.is_some()),
            ("from", self.from.is_some()),
            ("to", self.to.is_some()),
            ("period_s", self.period_s.is_some()),
            ("link", self.link.is_some()),
            ("latency_ms", self.latency_ms.is_some()),
        ];
        for (field, present) in given {
            if present && !self.takes().contains(&field) {
                return Err(ScenarioError::NotApplicable { index, kind, field });
            }
        }
        let missing = |field| ScenarioError::Missing { index, kind, field };
        let start = match (self.at_height, self.at_s) {
            (Some(height), None) => Trigger::Height(height),
            (None, Some(seconds)) => Trigger::Millis(millis(
                &format!("fault[{index}].at_s"),
                seconds,
                SECONDS_MAX * 1_000,
            )?),
            _ => return Err(ScenarioError::TriggerChoice { index }),
        };
        let heal_after_ms = match (self.kind, self.heal_after_s) {
            (FaultKind::ForkState, Some(_)) => {
                return Err(ScenarioError::NotApplicable {
                    index,
                    kind,
                    field: "heal_after_s",
                });
            }
            (FaultKind::ForkState, None) => None,
            (_, None) => return Err(missing("heal_after_s")),
            (_, Some(seconds)) => Some(millis(
                &format!("fault[{index}].heal_after_s"),
                seconds,
                HEAL_AFTER_MS_MAX,
            )?),
        };
        let validator = |v: Option<usize>, field: &'static str| {
            let v = v.ok_or(missing(field))?;
            check_validator(&format!("fault[{index}].{field}"), v, n)?;
            Ok::<usize, ScenarioError>(v)
        };
        let action = match self.kind {
            FaultKind::Crash => FaultAction::Crash {
                validator: validator(self.validator, "validator")?,
            },
            FaultKind::Wipe => FaultAction::Wipe {
                validator: validator(self.validator, "validator")?,
            },
            FaultKind::ForkState => FaultAction::ForkState {
                validator: validator(self.validator, "validator")?,
            },
            FaultKind::Partition => FaultAction::Partition {
                groups: check_groups(index, self.groups.ok_or(missing("groups"))?, n)?,
            },
            FaultKind::IsolateLeader => FaultAction::IsolateLeader,
            FaultKind::OneWay => {
                let from = validator(self.from, "from")?;
                let to = self.to.ok_or(missing("to"))?;
                if to.is_empty() {
                    return Err(missing("to"));
                }
                for v in &to {
                    check_validator(&format!("fault[{index}].to"), *v, n)?;
                }
                FaultAction::OneWay { from, to }
            }
            FaultKind::Flapping => FaultAction::Flapping {
                groups: check_groups(index, self.groups.ok_or(missing("groups"))?, n)?,
                period_ms: millis(
                    &format!("fault[{index}].period_s"),
                    self.period_s.ok_or(missing("period_s"))?,
                    HEAL_AFTER_MS_MAX,
                )?
                .max(1),
            },
            FaultKind::LinkStorm => {
                let link = self.link.ok_or(missing("link"))?;
                link.check(&format!("fault[{index}].link"))?;
                FaultAction::LinkStorm { link }
            }
            FaultKind::Slow => {
                let latency_ms = self.latency_ms.ok_or(missing("latency_ms"))?;
                range(
                    &format!("fault[{index}].latency_ms"),
                    latency_ms,
                    1,
                    LINK_DELAY_MS_MAX,
                )?;
                FaultAction::Slow {
                    validator: validator(self.validator, "validator")?,
                    latency_ms,
                }
            }
        };
        Ok(Fault {
            start,
            heal_after_ms,
            action,
        })
    }
}

/// Groups of a partition: at least two, none empty, no validator twice, all existing.
fn check_groups(
    index: usize,
    groups: Vec<Vec<usize>>,
    n: usize,
) -> Result<Vec<Vec<usize>>, ScenarioError> {
    if groups.len() < 2 {
        return Err(ScenarioError::Groups {
            index,
            why: "a partition needs at least two groups",
        });
    }
    if groups.iter().any(Vec::is_empty) {
        return Err(ScenarioError::Groups {
            index,
            why: "a group is empty",
        });
    }
    let mut seen = vec![false; n];
    for v in groups.iter().flatten() {
        check_validator(&format!("fault[{index}].groups"), *v, n)?;
        if std::mem::replace(&mut seen[*v], true) {
            return Err(ScenarioError::Groups {
                index,
                why: "a validator is in two groups",
            });
        }
    }
    Ok(groups)
}
