//! The engine's one decision, as a pure function: from the checks' states and what the
//! engine remembers, at one instant, to what it remembers next, the view routing sees,
//! and the changes to report. No clock, no I/O, no logging: the supervisor reads the
//! clock, and logs, counts, publishes and saves what this returns.

use std::time::Duration;

use tokio::time::Instant;

use super::Check;
use super::writer::{self, Role};
use crate::config::{Config, HealthRule};
use crate::model::RegionId;

/// What the engine remembers from one step to the next.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Memory {
    /// GSLB names may be answered (the first round is done, or its grace is over).
    pub ready: bool,
    /// Region states as last published, and when each last changed.
    pub up: Vec<bool>,
    pub changed_at: Vec<Option<Instant>>,
    pub writer: Option<RegionId>,
    pub last_writer: Option<RegionId>,
    pub writer_changed_at: Option<Instant>,
    /// When a database member last reported primary.
    pub last_primary: Option<Instant>,
    pub split_brain: bool,
}

/// What does not change between steps.
pub(super) struct Inputs<'a> {
    pub config: &'a Config,
    pub checks: &'a [Check],
    /// Restored from the state file (or carried over a reload), for regions whose
    /// checks have no result yet.
    pub restored: &'a [Option<bool>],
    pub started: Instant,
}

/// The health routing sees, for the regions the engine probes.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct View {
    pub up: Vec<bool>,
    pub recent: Vec<bool>,
    pub writer: Option<RegionId>,
    pub last_writer: Option<RegionId>,
    pub writer_unsettled: bool,
    /// Members that report primary right now (two or more: split brain).
    pub primaries: Vec<RegionId>,
    pub db_lag: Vec<Option<f64>>,
    pub ready: bool,
}

/// A change worth a log line and a line on the status page.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Change {
    /// The first round completed (`unknown` is 0) or its grace ran out.
    Ready {
        unknown: usize,
        elapsed: Duration,
    },
    /// A region went up or down; `reasons` are its failing checks' last failures.
    Region {
        region: usize,
        up: bool,
        reasons: Vec<String>,
    },
    Writer {
        from: Option<RegionId>,
        to: Option<RegionId>,
        why: &'static str,
    },
    SplitBrain {
        primaries: Vec<RegionId>,
    },
    SplitBrainResolved,
}

/// One step at `now`.
pub(super) fn step(inputs: &Inputs<'_>, memory: &Memory, now: Instant) -> (Memory, View, Vec<Change>) {
    let settings = &inputs.config.health;
    let n = inputs.config.regions.len();
    let checks = inputs.checks;
    let mut next = memory.clone();
    let mut changes = Vec::new();

    if !next.ready {
        let all_known = checks.iter().all(|c| c.hysteresis.state().is_some());
        let late = now.duration_since(inputs.started) >= settings.cold_start_grace;
        if all_known || late {
            next.ready = true;
            let unknown = checks.iter().filter(|c| c.hysteresis.state().is_none()).count();
            changes.push(Change::Ready { unknown, elapsed: now.duration_since(inputs.started) });
        }
    }

    // Regions.
    for r in 0..n {
        let up = region_up(inputs, r);
        if up != next.up[r] {
            next.up[r] = up;
            next.changed_at[r] = Some(now);
            let reasons = checks
                .iter()
                .filter(|c| c.region == r && !c.database)
                .filter_map(|c| match &c.last {
                    Some(Err(f)) => Some(f.to_string()),
                    _ => None,
                })
                .collect();
            changes.push(Change::Region { region: r, up, reasons });
        }
    }

    // Database members and the writer.
    let mut db_lag = vec![None; n];
    let mut members = Vec::new();
    for c in checks.iter().filter(|c| c.database) {
        if c.hysteresis.state() == Some(true)
            && let Some(role) = c.role
        {
            members.push((c.region as RegionId, role));
            db_lag[c.region] = Some(match role {
                Role::Primary { .. } => 0.0,
                Role::Replica { lag } => lag,
            });
        }
    }
    if members.iter().any(|(_, r)| matches!(r, Role::Primary { .. })) {
        next.last_primary = Some(now);
    }
    let election = writer::elect(&members, next.writer, next.last_primary, now, settings.writer_grace);
    if election.writer != next.writer {
        let why = if election.split_brain() {
            "split brain: the higher timeline wins"
        } else if election.writer.is_none() {
            "no database member reports primary and the writer grace is over"
        } else {
            "database member reports primary"
        };
        changes.push(Change::Writer { from: next.writer, to: election.writer, why });
        next.writer = election.writer;
        next.writer_changed_at = Some(now);
    }
    if election.writer.is_some() {
        next.last_writer = election.writer;
    }
    if election.split_brain() != next.split_brain {
        next.split_brain = election.split_brain();
        changes.push(if next.split_brain {
            Change::SplitBrain { primaries: election.primaries.clone() }
        } else {
            Change::SplitBrainResolved
        });
    }

    let within_hold_down = |t: Option<Instant>| t.is_some_and(|t| now.duration_since(t) < settings.hold_down);
    let view = View {
        up: next.up.clone(),
        recent: next.changed_at.iter().map(|t| within_hold_down(*t)).collect(),
        writer: next.writer,
        last_writer: next.last_writer,
        writer_unsettled: election.on_grace || election.split_brain() || within_hold_down(next.writer_changed_at),
        primaries: election.primaries,
        db_lag,
        ready: next.ready,
    };
    (next, view, changes)
}

/// Whether a region is up by its rule over its gateway checks' states.
fn region_up(inputs: &Inputs<'_>, r: usize) -> bool {
    let region = &inputs.config.regions[r];
    if region.checks.is_empty() {
        return true;
    }
    let states: Vec<Option<bool>> =
        inputs.checks.iter().filter(|c| c.region == r && !c.database).map(|c| c.hysteresis.state()).collect();
    if states.iter().all(Option::is_none) {
        // Nothing known yet: the state file's word, else up. (In `wait` mode no GSLB
        // name is answered before `ready`; in `assume_up` mode this is the point.)
        return inputs.restored[r].unwrap_or(true);
    }
    // Checks with no result yet have no vote.
    let ups = states.iter().filter(|s| **s == Some(true)).count() as u32;
    let known = states.iter().filter(|s| s.is_some()).count() as u32;
    match region.rule {
        HealthRule::All => ups == known,
        HealthRule::Any => ups > 0,
        HealthRule::Quorum(q) => ups >= q,
    }
}
