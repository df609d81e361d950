//! What the status page shows beyond gauges: the last result of every check, and the
//! recent state changes. The health engine and the admin API's drains write it; the
//! status page and `/status` read it. Control plane only (it locks).

use std::sync::Mutex;

/// The last check results, the recent state changes, and the last minutes of each
/// cluster's writer and members' lag (the status page's sparklines).
#[derive(Default)]
pub struct Recent {
    events: Mutex<std::collections::VecDeque<(std::time::SystemTime, String)>>,
    checks: Mutex<std::collections::BTreeMap<String, CheckStatus>>,
    history: Mutex<std::collections::BTreeMap<String, ClusterHistory>>,
}

/// One cluster's recent samples, oldest first.
#[derive(Debug, Clone, Default)]
pub struct ClusterHistory {
    /// The writer member at each sample (`None`: no writer).
    pub writer: std::collections::VecDeque<Option<String>>,
    /// Each member's lag at each sample (`None`: down or unknown), by member name.
    pub lag: std::collections::BTreeMap<String, std::collections::VecDeque<Option<f64>>>,
}

/// One cluster at one moment: its name, its writer, and each member's lag.
pub type ClusterSample = (String, Option<String>, Vec<(String, Option<f64>)>);

/// Samples kept: ten minutes at one every five seconds.
pub const HISTORY_SAMPLES: usize = 120;

/// The last word on one check.
#[derive(Debug, Clone)]
pub struct CheckStatus {
    pub region: String,
    pub database: bool,
    pub up: Option<bool>,
    /// `ok`, or the failure reason.
    pub last: String,
    /// `ok`, or the failure in a few words (`HTTP 503`, `timeout after 1s`).
    pub short: String,
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

    /// Records one sample of every cluster: its writer and each member's lag.
    pub fn sample(&self, clusters: &[ClusterSample]) {
        let mut h = self.history.lock().expect("not poisoned");
        // Clusters no longer configured go.
        h.retain(|name, _| clusters.iter().any(|(c, _, _)| c == name));
        for (name, writer, members) in clusters {
            let c = h.entry(name.clone()).or_default();
            push(&mut c.writer, writer.clone());
            c.lag.retain(|m, _| members.iter().any(|(n, _)| n == m));
            for (member, lag) in members {
                push(c.lag.entry(member.clone()).or_default(), *lag);
            }
        }
    }

    pub fn history(&self, cluster: &str) -> Option<ClusterHistory> {
        self.history.lock().expect("not poisoned").get(cluster).cloned()
    }
}

fn push<T>(q: &mut std::collections::VecDeque<T>, v: T) {
    if q.len() == HISTORY_SAMPLES {
        q.pop_front();
    }
    q.push_back(v);
}
