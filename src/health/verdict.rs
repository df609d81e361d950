//! The engine's one decision, as a pure function: from the checks' states and what the
//! engine remembers, at one instant, to what it remembers next, the view routing sees,
//! and the changes to report. No clock, no I/O, no logging: the supervisor reads the
//! clock, and logs, counts, publishes and saves what this returns.

use std::time::Duration;

use tokio::time::Instant;

use super::Check;
use super::writer::{self, DbStatus, Role};
use crate::config::{CheckKind, ClusterConfig, Config, HealthRule, Quorum};
use crate::fleet::Observation;
use crate::model::MemberId;
use crate::state::{ClusterView, ReaderView};

/// What the engine remembers from one step to the next.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Memory {
    /// GSLB names may be answered (the first round is done, or its grace is over).
    pub ready: bool,
    /// Region states as last published, and when each last changed.
    pub up: Vec<bool>,
    pub changed_at: Vec<Option<Instant>>,
    pub clusters: Vec<ClusterMemory>,
    pub readers: Vec<ReaderMemory>,
}

/// What the engine remembers of one database cluster.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct ClusterMemory {
    /// The system identifier every member must report: configured, learned from a
    /// majority of the members, or restored.
    pub identity: Option<u64>,
    pub writer: Option<MemberId>,
    pub writer_changed_at: Option<Instant>,
    /// When a member last reported primary (the writer grace runs from here).
    pub primary_seen_at: Option<Instant>,
    /// The last member seen as primary and elected writer, and when it last was.
    pub last_primary: Option<(MemberId, Instant)>,
    /// The last member that was the writer (a new one is a promotion: its lag is the
    /// RPO seen).
    pub last_writer: Option<MemberId>,
    pub split_brain: bool,
    /// Members reporting another system identifier.
    pub foreign: Vec<MemberId>,
}

/// What the engine remembers of one `reader` name.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct ReaderMemory {
    pub fresh: Vec<bool>,
    pub changed_at: Option<Instant>,
}

/// What does not change between steps.
pub(super) struct Inputs<'a> {
    pub config: &'a Config,
    pub checks: &'a [Check],
    /// By cluster, by member: what the vantages see of it, merged.
    pub members: &'a [Vec<MemberInput>],
    /// The other vantages' fresh observations (none without a fleet): each votes on
    /// every region, as this instance does.
    pub others: &'a [(&'a str, &'a Observation)],
    /// Down votes it takes to call a region down.
    pub quorum: Quorum,
    /// By reader slot: (cluster, the name's index in `config.names`).
    pub readers: &'a [(usize, usize)],
    /// Restored from the state file (or carried over a reload), for regions whose
    /// checks have no result yet.
    pub restored: &'a [Option<bool>],
    pub started: Instant,
}

/// A database member as the vantages see it, merged: reached by any (`status`), a
/// primary if any sees one, the worst lag any measures, fresh for a reader name if most
/// of those that reach it say so.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct MemberInput {
    pub status: Option<DbStatus>,
    pub lag: Option<f64>,
    /// Its last lag while it was a replica (what a promotion may lose).
    pub replica_lag: Option<f64>,
    /// By reader slot.
    pub fresh: Vec<(usize, bool)>,
}

/// The health routing sees, for the regions and clusters the engine probes.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct View {
    pub up: Vec<bool>,
    pub recent: Vec<bool>,
    pub clusters: Vec<ClusterView>,
    pub readers: Vec<ReaderView>,
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
    /// `promotion`: a member other than the last writer became the writer; `rpo` is its
    /// last lag seen while it was a replica. `last`: the last writer before this change
    /// (`from`, or the one before a gap without a writer).
    Writer {
        cluster: usize,
        from: Option<MemberId>,
        last: Option<MemberId>,
        to: Option<MemberId>,
        why: &'static str,
        promotion: bool,
        rpo: Option<f64>,
    },
    SplitBrain {
        cluster: usize,
        primaries: Vec<MemberId>,
    },
    SplitBrainResolved {
        cluster: usize,
    },
    /// A majority of the members agree on the cluster's system identifier.
    Identity {
        cluster: usize,
        id: u64,
        agree: usize,
        of: usize,
    },
    /// A member reports another system identifier than its cluster's.
    Foreign {
        cluster: usize,
        member: MemberId,
        theirs: u64,
        ours: u64,
    },
    ForeignGone {
        cluster: usize,
        member: MemberId,
    },
    /// A member entered or left a reader name's `max_lag`.
    Fresh {
        slot: usize,
        member: MemberId,
        fresh: bool,
        lag: Option<f64>,
    },
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
            let mut reasons = down_reasons(checks, r);
            // Fleet-driven: say which vantages see it down.
            let region = &inputs.config.regions[r];
            let down: Vec<&str> = inputs
                .others
                .iter()
                .filter(|(_, o)| region.checks.iter().any(|c| o.checks.get(&c.id).and_then(|s| s.up) == Some(false)))
                .map(|(name, _)| *name)
                .collect();
            if !down.is_empty() {
                reasons.push(format!("seen down by {}", down.join(", ")));
            }
            changes.push(Change::Region { region: r, up, reasons });
        }
    }

    let within_hold_down = |t: Option<Instant>| t.is_some_and(|t| now.duration_since(t) < settings.hold_down);
    let mut clusters = Vec::new();
    for (c, cluster) in inputs.config.clusters.iter().enumerate() {
        let view = step_cluster(c, cluster, &inputs.members[c], &mut next.clusters[c], now, &mut changes);
        let unsettled = view.writer_unsettled || within_hold_down(next.clusters[c].writer_changed_at);
        clusters.push(ClusterView { writer_unsettled: unsettled, ..view });
    }

    let mut readers = Vec::new();
    for (slot, &(c, _)) in inputs.readers.iter().enumerate() {
        let members = &inputs.members[c];
        let view = &clusters[c];
        let fresh: Vec<bool> = members
            .iter()
            .enumerate()
            .map(|(m, k)| {
                // Only a member of the cluster's identity that answers has a lag at all.
                view.lag[m].is_some()
                    && ((view.writer == Some(m as MemberId) && view.primaries.contains(&(m as MemberId)))
                        || k.fresh.iter().any(|(s, f)| *s == slot && *f))
            })
            .collect();
        let mem = &mut next.readers[slot];
        for (m, (&is, &was)) in fresh.iter().zip(&mem.fresh).enumerate() {
            if is != was {
                changes.push(Change::Fresh { slot, member: m as MemberId, fresh: is, lag: view.lag[m] });
            }
        }
        if fresh != mem.fresh {
            mem.fresh = fresh.clone();
            mem.changed_at = Some(now);
        }
        readers.push(ReaderView { fresh, recent: within_hold_down(mem.changed_at) });
    }

    let view = View {
        up: next.up.clone(),
        recent: next.changed_at.iter().map(|t| within_hold_down(*t)).collect(),
        clusters,
        readers,
        ready: next.ready,
    };
    (next, view, changes)
}

/// One cluster: its identity, who is foreign, the election, fail-open, and lags.
fn step_cluster(
    c: usize,
    cluster: &ClusterConfig,
    checks: &[MemberInput],
    mem: &mut ClusterMemory,
    now: Instant,
    changes: &mut Vec<Change>,
) -> ClusterView {
    // Members that are up and said what they are.
    let reachable: Vec<(MemberId, &DbStatus)> =
        checks.iter().enumerate().filter_map(|(m, k)| k.status.as_ref().map(|s| (m as MemberId, s))).collect();

    if mem.identity.is_none() {
        // Learned only from a majority of the cluster's PostgreSQL members: a lone
        // foreign primary (a wrong DSN, a subscriber) can never define the cluster.
        let of = cluster.members.iter().filter(|m| matches!(m.check.kind, CheckKind::Postgres { .. })).count();
        let mut counts: Vec<(u64, usize)> = Vec::new();
        for id in reachable.iter().filter_map(|(_, s)| s.system_id) {
            match counts.iter_mut().find(|(k, _)| *k == id) {
                Some((_, n)) => *n += 1,
                None => counts.push((id, 1)),
            }
        }
        if let Some(&(id, agree)) = counts.iter().max_by_key(|(_, n)| *n)
            && agree * 2 > of
        {
            mem.identity = Some(id);
            changes.push(Change::Identity { cluster: c, id, agree, of });
        }
    }
    let identity = mem.identity;
    // A member is of the cluster if it has no identity to check (`http_role`) or the
    // cluster's; while the cluster's is unknown, no PostgreSQL member is trusted.
    let ours = |s: &DbStatus| match (s.system_id, identity) {
        (None, _) => true,
        (Some(a), Some(b)) => a == b,
        (Some(_), None) => false,
    };
    let foreign: Vec<(MemberId, u64)> = reachable
        .iter()
        .filter_map(|(m, s)| match (s.system_id, identity) {
            (Some(a), Some(b)) if a != b => Some((*m, a)),
            _ => None,
        })
        .collect();
    for &(m, theirs) in &foreign {
        if !mem.foreign.contains(&m) {
            changes.push(Change::Foreign { cluster: c, member: m, theirs, ours: identity.unwrap_or_default() });
        }
    }
    for &m in &mem.foreign {
        if !foreign.iter().any(|(f, _)| *f == m) {
            changes.push(Change::ForeignGone { cluster: c, member: m });
        }
    }
    mem.foreign = foreign.iter().map(|(m, _)| *m).collect();

    let members: Vec<(MemberId, Role)> = reachable.iter().filter(|(_, s)| ours(s)).map(|(m, s)| (*m, s.role)).collect();
    if members.iter().any(|(_, r)| matches!(r, Role::Primary { .. })) {
        mem.primary_seen_at = Some(now);
    }
    // A writer that now reports replica (demoted in a switchover) or another identity
    // is not kept on grace, and is nothing to fail open to.
    let disowned = |m: MemberId| {
        mem.foreign.contains(&m) || members.iter().any(|(k, r)| *k == m && matches!(r, Role::Replica { .. }))
    };
    let current = mem.writer.filter(|w| !disowned(*w));
    if mem.last_primary.is_some_and(|(m, _)| disowned(m)) {
        mem.last_primary = None;
    }
    let election = writer::elect(&members, current, mem.primary_seen_at, now, cluster.writer_grace);
    if election.writer != mem.writer {
        let why = if election.split_brain() {
            "split brain: the higher timeline wins"
        } else if election.writer.is_none() && current.is_none() && mem.writer.is_some() {
            "the writer reports replica or another system identifier"
        } else if election.writer.is_none() {
            "no member reports primary and the writer grace is over"
        } else {
            "member reports primary"
        };
        let promotion = election.writer.is_some() && mem.last_writer.is_some() && election.writer != mem.last_writer;
        let rpo = election.writer.filter(|_| promotion).and_then(|w| checks[w as usize].replica_lag);
        let last = mem.writer.or(mem.last_writer);
        changes.push(Change::Writer { cluster: c, from: mem.writer, last, to: election.writer, why, promotion, rpo });
        mem.writer = election.writer;
        mem.writer_changed_at = Some(now);
        if election.writer.is_some() {
            mem.last_writer = election.writer;
        }
    }
    if let Some(w) = election.writer
        && election.primaries.contains(&w)
    {
        mem.last_primary = Some((w, now));
    }
    if election.split_brain() != mem.split_brain {
        mem.split_brain = election.split_brain();
        changes.push(if mem.split_brain {
            Change::SplitBrain { cluster: c, primaries: election.primaries.clone() }
        } else {
            Change::SplitBrainResolved { cluster: c }
        });
    }

    // Lag is known only for members of the cluster that answer; of the primaries, only
    // the elected writer is current (a split brain's loser has diverged).
    let mut lag = vec![None; checks.len()];
    for (m, role) in &members {
        lag[*m as usize] = match role {
            Role::Primary { .. } if election.writer == Some(*m) => Some(0.0),
            Role::Primary { .. } => None,
            Role::Replica { .. } => checks[*m as usize].lag,
        };
    }
    let last_primary = mem
        .last_primary
        .filter(|(_, seen)| now.saturating_duration_since(*seen) <= cluster.fail_open_max_age)
        .map(|(m, _)| m);
    ClusterView {
        identity,
        writer: election.writer,
        last_primary,
        writer_unsettled: election.on_grace || election.split_brain(),
        primaries: election.primaries,
        lag,
    }
}

/// Why a region is down: its failing gateway checks' last failures.
pub(super) fn down_reasons(checks: &[Check], region: usize) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c.region == region && c.member.is_none())
        .filter_map(|c| match &c.last {
            Some(Err(f)) => Some(f.to_string()),
            _ => None,
        })
        .collect()
}

/// Whether a region is up: each vantage (this one, and the fleet's others) votes by the
/// region's rule over its gateway checks' states as it sees them; it is down when the
/// quorum of the voters says so. Alone, this instance's vote decides, as it always has.
fn region_up(inputs: &Inputs<'_>, r: usize) -> bool {
    let region = &inputs.config.regions[r];
    if region.checks.is_empty() {
        return true;
    }
    let own: Vec<Option<bool>> =
        inputs.checks.iter().filter(|c| c.region == r && c.member.is_none()).map(|c| c.hysteresis.state()).collect();
    let votes: Vec<bool> = std::iter::once(vote(region.rule, &own))
        .chain(inputs.others.iter().map(|(_, o)| {
            let states: Vec<Option<bool>> =
                region.checks.iter().map(|c| o.checks.get(&c.id).and_then(|seen| seen.up)).collect();
            vote(region.rule, &states)
        }))
        .flatten()
        .collect();
    if votes.is_empty() {
        // Nothing known yet: the state file's word, else up. (In `wait` mode no GSLB
        // name is answered before `ready`; in `assume_up` mode this is the point.)
        return inputs.restored[r].unwrap_or(true);
    }
    let down = votes.iter().filter(|up| !**up).count();
    down < inputs.quorum.needed(votes.len())
}

/// One vantage's vote on a region by its rule; `None` when it knows nothing yet. Checks
/// with no result have no say.
fn vote(rule: HealthRule, states: &[Option<bool>]) -> Option<bool> {
    if states.iter().all(Option::is_none) {
        return None;
    }
    let ups = states.iter().filter(|s| **s == Some(true)).count() as u32;
    let known = states.iter().filter(|s| s.is_some()).count() as u32;
    Some(match rule {
        HealthRule::All => ups == known,
        HealthRule::Any => ups > 0,
        HealthRule::Quorum(q) => ups >= q,
    })
}
