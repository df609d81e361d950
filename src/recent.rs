//! What the status page shows beyond gauges: the last result of every check, and the
//! recent state changes. The health engine and the admin API's drains write it; the
//! status page and `/status` read it. Control plane only (it locks).

use std::sync::Mutex;

/// The last check results and the recent state changes.
#[derive(Default)]
pub struct Recent {
    events: Mutex<std::collections::VecDeque<(std::time::SystemTime, String)>>,
    checks: Mutex<std::collections::BTreeMap<String, CheckStatus>>,
}

/// The last word on one check.
#[derive(Debug, Clone)]
pub struct CheckStatus {
    pub region: String,
    pub database: bool,
    pub up: Option<bool>,
    /// `ok`, or the failure reason.
    pub last: String,
    /// For database members: what the last successful probe saw (`primary (timeline
    /// N)`, `replica (lag S s)`), and when. Current only while the check is up and its
    /// last probe succeeded; otherwise it is history, and shown as such.
    pub role: Option<(String, std::time::SystemTime)>,
    pub at: std::time::SystemTime,
}

/// How many state changes the status page keeps.
const EVENTS_KEPT: usize = 50;

impl Recent {
    pub fn event(&self, what: String) {
        let mut e = self.events.lock().expect("not poisoned");
        if e.len() == EVENTS_KEPT {
            e.pop_front();
        }
        e.push_back((std::time::SystemTime::now(), what));
    }

    /// Newest first.
    pub fn events(&self) -> Vec<(std::time::SystemTime, String)> {
        self.events.lock().expect("not poisoned").iter().rev().cloned().collect()
    }

    pub fn set_check(&self, id: &str, status: CheckStatus) {
        self.checks.lock().expect("not poisoned").insert(id.to_owned(), status);
    }

    pub fn checks(&self) -> Vec<(String, CheckStatus)> {
        self.checks.lock().expect("not poisoned").iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
