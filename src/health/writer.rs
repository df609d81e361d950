//! Who is the writer of one cluster: election over its members' reported roles.
//! Members of another system identifier never get here (see `verdict`).
//!
//! Exactly one primary: that member. Two or more (a promoted standby while the old
//! primary still runs): the highest timeline wins; among equal timelines the current
//! writer stays if it is one of them, else the first in config order; either way it is
//! split brain. None: the current writer is kept for `grace` after the last time a
//! primary was seen, then there is no writer. switchyard never promotes anything.

use std::time::Duration;

use tokio::time::Instant;

use crate::model::MemberId;

/// A database member's role.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Role {
    Primary {
        timeline: u32,
    },
    /// Replication lag in seconds; `None` when it cannot be known.
    Replica {
        lag: Option<f64>,
    },
}

/// What one database member reports.
#[derive(Debug, Clone, PartialEq)]
pub struct DbStatus {
    pub role: Role,
    /// The PostgreSQL system identifier (`pg_control_system()`); `None` for `http_role`.
    pub system_id: Option<u64>,
    /// A standby: how its upstream's `pg_stat_replication` names it.
    pub name: Option<String>,
    /// Its own standbys, as it sees them.
    pub standbys: Vec<Standby>,
}

impl DbStatus {
    /// A role and nothing else (an `http_role` member).
    pub fn of(role: Role) -> DbStatus {
        DbStatus { role, system_id: None, name: None, standbys: Vec::new() }
    }
}

/// One downstream standby in its upstream's `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq)]
pub struct Standby {
    pub name: String,
    /// Replay lag in seconds; `None` once it has caught up and gone idle.
    pub lag: Option<f64>,
    /// WAL the upstream has that the standby has not replayed.
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Election {
    pub writer: Option<MemberId>,
    /// Members reporting primary, in config order.
    pub primaries: Vec<MemberId>,
    /// No member reports primary; the writer is the previous one, kept on grace.
    pub on_grace: bool,
}

impl Election {
    pub fn split_brain(&self) -> bool {
        self.primaries.len() > 1
    }
}

/// `members`: (member, role) of every reachable member of the cluster. `last_primary`: when a primary
/// was last seen.
pub fn elect(
    members: &[(MemberId, Role)],
    current: Option<MemberId>,
    last_primary: Option<Instant>,
    now: Instant,
    grace: Duration,
) -> Election {
    let primaries: Vec<(MemberId, u32)> = members
        .iter()
        .filter_map(|(r, role)| match role {
            Role::Primary { timeline } => Some((*r, *timeline)),
            Role::Replica { .. } => None,
        })
        .collect();
    let ids = primaries.iter().map(|(r, _)| *r).collect();
    match primaries.as_slice() {
        [] => {
            let within = last_primary.is_some_and(|t| now.saturating_duration_since(t) <= grace);
            Election { writer: current.filter(|_| within), primaries: ids, on_grace: within && current.is_some() }
        }
        [(only, _)] => Election { writer: Some(*only), primaries: ids, on_grace: false },
        many => {
            let top = many.iter().map(|(_, t)| *t).max().unwrap_or(0);
            let best: Vec<MemberId> = many.iter().filter(|(_, t)| *t == top).map(|(r, _)| *r).collect();
            let writer = match current {
                Some(c) if best.contains(&c) => c,
                _ => best[0],
            };
            Election { writer: Some(writer), primaries: ids, on_grace: false }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P1: Role = Role::Primary { timeline: 1 };
    const P2: Role = Role::Primary { timeline: 2 };
    const R: Role = Role::Replica { lag: Some(0.0) };

    /// (members, current writer, last primary seen) → (writer, split brain, on grace)
    type Case = (Vec<(MemberId, Role)>, Option<MemberId>, Option<Instant>, (Option<MemberId>, bool, bool));

    #[test]
    fn elections() {
        let now = Instant::now();
        let grace = Duration::from_secs(10);
        let recent = Some(now - Duration::from_secs(3));
        let old = Some(now - Duration::from_secs(30));
        // (members, current, last primary seen) → (writer, split brain, on grace)
        let cases: Vec<Case> = vec![
            (vec![(0, P1), (1, R), (2, R)], None, None, (Some(0), false, false)),
            (vec![(0, P1), (1, R)], Some(0), recent, (Some(0), false, false)),
            // Promotion: the standby reports primary on a new timeline.
            (vec![(1, P2), (2, R)], Some(0), recent, (Some(1), false, false)),
            // Split brain: the old primary still runs; the higher timeline wins.
            (vec![(0, P1), (1, P2)], Some(0), recent, (Some(1), true, false)),
            (vec![(0, P2), (1, P1)], Some(1), recent, (Some(0), true, false)),
            // Equal timelines: the current writer stays.
            (vec![(0, P1), (1, P1)], Some(1), recent, (Some(1), true, false)),
            (vec![(0, P1), (1, P1)], None, recent, (Some(0), true, false)),
            // No primary: kept on grace, then none.
            (vec![(1, R), (2, R)], Some(0), recent, (Some(0), false, true)),
            (vec![(1, R)], Some(0), old, (None, false, false)),
            (vec![], Some(0), recent, (Some(0), false, true)),
            (vec![], None, None, (None, false, false)),
        ];
        for (members, current, seen, want) in cases {
            let e = elect(&members, current, seen, now, grace);
            assert_eq!((e.writer, e.split_brain(), e.on_grace), want, "{members:?} current {current:?}");
        }
    }
}
