//! The health engine: probes every check on its own schedule, smooths results with
//! rise/fall hysteresis, combines them per region, elects the writer, and publishes a
//! new `HealthView` whenever anything routing can see has changed.
//!
//! One task per check runs probes (`probe`); one supervisor task owns all mutable state
//! and is the only writer of health into `State`. A hung target costs its own check
//! one timeout and never delays another. Every state change is logged once with its
//! reason. The engine never promotes or demotes anything; it only observes.
//!
//! Cold start: with `cold_start = "wait"`, GSLB names get SERVFAIL until every check
//! has a first result or `cold_start_grace` passes, unless the state file restores the
//! last known health, in which case answers are honest at once.

pub mod hysteresis;
pub mod pgconn;
pub mod probe;
pub mod statefile;
mod verdict;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
// Tokio's clock, not the wall clock: hold-down, grace and hysteresis run on paused time
// in tests.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{CheckConfig, ColdStart, Config};
use crate::hash::hash64;
use crate::metrics::Metrics;
use crate::model::{Model, RegionId};
use crate::recent::Recent;
use crate::state::State;
use hysteresis::Hysteresis;
use probe::{Failure, Prober};
use verdict::{Change, Inputs, Memory};
use writer::Role;

/// What the engine knows of one check.
struct Check {
    /// The check's stable id (never contains a secret).
    id: String,
    region: usize,
    database: bool,
    hysteresis: Hysteresis,
    /// The last result: `Ok` or why it failed.
    last: Option<Result<(), Failure>>,
    role: Option<Role>,
}

/// A running engine; dropping it does not stop it, `stop` does.
pub struct HealthEngine {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Carry>,
}

/// What a stopped engine knew, for the next one (after a reload) to start from: check
/// states by check id, the writer and when things changed, by region name.
#[derive(Default)]
pub struct Carry {
    checks: std::collections::HashMap<String, CheckState>,
    writer: Option<String>,
    last_writer: Option<String>,
    writer_changed_at: Option<Instant>,
    last_primary: Option<Instant>,
    changed_at: std::collections::HashMap<String, Instant>,
    ready: bool,
}

impl Carry {
    /// Nothing known, but the server is already serving: no cold start.
    pub fn warm(ready: bool) -> Carry {
        Carry { ready, ..Carry::default() }
    }
}

/// What carries over for one check: its hysteresis, last result and role.
type CheckState = (Hysteresis, Option<Result<(), Failure>>, Option<Role>);

/// Where the engine reports what it sees: the metrics, and the status page's log.
#[derive(Clone)]
pub struct Observers {
    pub metrics: Arc<Metrics>,
    pub recent: Arc<Recent>,
}

/// One probe's result, and how long it took.
type Report = (usize, probe::Outcome, Duration);

impl HealthEngine {
    /// Starts probing the checks of `config` and publishing into `state`, whose current
    /// model must be the one compiled from `config`.
    pub fn start(state: Arc<State>, config: Arc<Config>, observers: Observers, carry: Option<Carry>) -> HealthEngine {
        let (tx, rx) = mpsc::channel(1024);
        let engine = HealthEngine::supervise(state, config.clone(), observers, carry, rx);
        for (index, (_, check, _)) in check_configs(&config).enumerate() {
            match Prober::new(check.clone()) {
                Ok(prober) => {
                    tokio::spawn(run_check(index, Arc::new(prober), tx.clone(), engine.stop.clone()));
                }
                Err(e) => {
                    // Validation catches most of these; what is left (an unreadable CA
                    // file) makes the check fail every round, visibly.
                    error!(check = %check.id, error = %e, "cannot set up check");
                    let failure = Failure { kind: probe::FailureKind::Protocol, detail: e };
                    tokio::spawn(run_failing(index, check.interval, failure, tx.clone(), engine.stop.clone()));
                }
            }
        }
        engine
    }

    /// The supervisor alone, fed probe reports through `reports` (the probes send
    /// there; tests send there themselves).
    fn supervise(
        state: Arc<State>,
        config: Arc<Config>,
        observers: Observers,
        carry: Option<Carry>,
        reports: mpsc::Receiver<Report>,
    ) -> HealthEngine {
        let stop = CancellationToken::new();
        let mut carry = carry.unwrap_or_default();
        let model = state.snapshot().model.clone();
        assert_eq!(model.regions.len(), config.regions.len(), "the model of this config");
        let checks = check_configs(&config)
            .map(|(region, config, database)| {
                let (hysteresis, last, role) = match carry.checks.remove(&config.id) {
                    Some((mut h, last, role)) => {
                        h.set_thresholds(config.rise, config.fall);
                        (h, last, role)
                    }
                    None => (Hysteresis::new(config.rise, config.fall), None, None),
                };
                Check { id: config.id.clone(), region, database, hysteresis, last, role }
            })
            .collect();
        let supervisor = Supervisor::new(state, observers, config, model, checks, carry);
        let task = tokio::spawn(supervisor.run(reports, stop.clone()));
        HealthEngine { stop, task }
    }

    /// Stops every probe and returns what the engine knew.
    pub async fn stop(self) -> Carry {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// Every check of a config, in the order the engine indexes them: per region, its
/// gateway checks, then its database member. (region, check, is the database member)
fn check_configs(config: &Config) -> impl Iterator<Item = (usize, &CheckConfig, bool)> {
    config.regions.iter().enumerate().flat_map(|(r, region)| {
        region.checks.iter().map(move |c| (r, c, false)).chain(region.database.iter().map(move |c| (r, c, true)))
    })
}

/// The probe loop of one check: at once, then every interval (± jitter).
async fn run_check(index: usize, prober: Arc<Prober>, tx: mpsc::Sender<Report>, stop: CancellationToken) {
    let c = &prober.config;
    let mut n: u64 = 0;
    loop {
        let started = Instant::now();
        let outcome = tokio::select! {
            o = prober.probe() => o,
            _ = stop.cancelled() => return,
        };
        if tx.send((index, outcome, started.elapsed())).await.is_err() {
            return;
        }
        n += 1;
        let next = started + jittered(c.interval, c.jitter, index as u64, n);
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// A check that could not be set up reports its failure every interval.
async fn run_failing(
    index: usize,
    interval: Duration,
    failure: Failure,
    tx: mpsc::Sender<Report>,
    stop: CancellationToken,
) {
    loop {
        if tx.send((index, Err(failure.clone()), Duration::ZERO)).await.is_err() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// `interval` moved by up to ± `jitter`, spread by check and round.
fn jittered(interval: Duration, jitter: Duration, check: u64, round: u64) -> Duration {
    if jitter.is_zero() {
        return interval;
    }
    let span = jitter.as_nanos() as u64 * 2;
    let offset = hash64(check, round) % span.max(1);
    (interval + Duration::from_nanos(offset)).saturating_sub(jitter)
}

struct Supervisor {
    state: Arc<State>,
    metrics: Arc<Metrics>,
    recent: Arc<Recent>,
    /// The config probed, and the model compiled from it (the only one published into).
    config: Arc<Config>,
    model: Arc<Model>,
    checks: Vec<Check>,
    started: Instant,
    /// Restored from the state file, used for regions whose checks have no result yet.
    restored: Vec<Option<bool>>,
    memory: Memory,
}

impl Supervisor {
    fn new(
        state: Arc<State>,
        observers: Observers,
        config: Arc<Config>,
        model: Arc<Model>,
        checks: Vec<Check>,
        carry: Carry,
    ) -> Supervisor {
        let Observers { metrics, recent } = observers;
        let n = config.regions.len();
        let settings = &config.health;
        let mut s = Supervisor {
            state,
            metrics,
            recent,
            config: config.clone(),
            model: model.clone(),
            checks,
            started: Instant::now(),
            restored: vec![None; n],
            memory: Memory {
                ready: settings.cold_start == ColdStart::AssumeUp,
                up: vec![true; n],
                changed_at: vec![None; n],
                writer: None,
                last_writer: None,
                writer_changed_at: None,
                last_primary: None,
                split_brain: false,
            },
        };
        if s.checks.is_empty() || carry.ready {
            s.memory.ready = true;
        }
        if carry.ready {
            // A reload: start from what the previous engine knew, not from the file.
            let index = |name: &Option<String>| name.as_deref().and_then(|n| model.region_index(n));
            s.memory.writer = index(&carry.writer);
            s.memory.last_writer = index(&carry.last_writer);
            s.memory.writer_changed_at = carry.writer_changed_at;
            s.memory.last_primary = carry.last_primary;
            let snap = s.state.snapshot();
            for (i, region) in config.regions.iter().enumerate() {
                s.memory.changed_at[i] = carry.changed_at.get(&region.name).copied();
                // The view the reload carried over, so that nothing flips by itself.
                s.memory.up[i] = snap.health.up.get(i).copied().unwrap_or(true);
                s.restored[i] = Some(s.memory.up[i]);
            }
        } else if let Some(path) = &settings.state_file {
            match statefile::load(path) {
                Ok(Some(saved)) => {
                    for (i, region) in config.regions.iter().enumerate() {
                        s.restored[i] = saved.regions.get(&region.name).copied();
                    }
                    s.memory.writer = saved.writer.as_deref().and_then(|w| model.region_index(w));
                    s.memory.last_writer = s.memory.writer;
                    // The restored writer gets the usual grace to be confirmed.
                    s.memory.last_primary = s.memory.writer.map(|_| Instant::now());
                    s.memory.ready = true;
                    info!(path = %path.display(), "restored last known health from the state file");
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "ignoring unreadable state file")
                }
            }
        }
        if !s.memory.ready {
            info!(
                checks = s.checks.len(),
                grace = ?settings.cold_start_grace,
                "cold start: GSLB names answer SERVFAIL until the first round of health checks completes"
            );
        }
        s
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Report>, stop: CancellationToken) -> Carry {
        self.publish(Instant::now());
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some((index, outcome, took)) => self.observe(index, outcome, took),
                    None => return self.carry(),
                },
                _ = tick.tick() => {}
                _ = stop.cancelled() => return self.carry(),
            }
            self.publish(Instant::now());
        }
    }

    fn carry(self) -> Carry {
        let model = &self.model;
        let m = self.memory;
        let name = |r: Option<RegionId>| r.map(|r| model.region_name(r).to_owned());
        Carry {
            writer: name(m.writer),
            last_writer: name(m.last_writer),
            writer_changed_at: m.writer_changed_at,
            last_primary: m.last_primary,
            changed_at: self
                .config
                .regions
                .iter()
                .zip(&m.changed_at)
                .filter_map(|(r, t)| t.map(|t| (r.name.clone(), t)))
                .collect(),
            ready: m.ready,
            checks: self.checks.into_iter().map(|c| (c.id, (c.hysteresis, c.last, c.role))).collect(),
        }
    }

    fn observe(&mut self, index: usize, outcome: probe::Outcome, took: Duration) {
        let c = &mut self.checks[index];
        let id = &c.id;
        let region = &self.config.regions[c.region].name;
        self.metrics.check_duration.with_label_values(&[region, id]).observe(took.as_secs_f64());
        if let Err(f) = &outcome {
            self.metrics.check_failures.with_label_values(&[region, id, f.kind.as_str()]).inc();
        }
        let ok = outcome.is_ok();
        if let Ok(role) = &outcome {
            if c.role != *role && c.database {
                info!(check = %id, role = ?role, "database member role");
            }
            c.role = *role;
        }
        let reason = match &outcome {
            Ok(_) => "ok".to_owned(),
            Err(f) => f.to_string(),
        };
        if let Some(up) = c.hysteresis.observe(ok) {
            info!(check = %id, state = if up { "up" } else { "down" }, reason = %reason, "check state changed");
            self.metrics.check_up.with_label_values(&[region, id]).set(i64::from(up));
        }
        let role = c.role.map(|r| match r {
            Role::Primary { timeline } => format!("primary (timeline {timeline})"),
            Role::Replica { lag } => format!("replica (lag {lag:.1} s)"),
        });
        let status = crate::recent::CheckStatus {
            region: region.clone(),
            database: c.database,
            up: c.hysteresis.state(),
            last: reason.clone(),
            role,
            at: std::time::SystemTime::now(),
        };
        self.recent.set_check(id, status);
        c.last = Some(outcome.map(|_| ()));
    }

    /// Recomputes what routing sees (`verdict::step`), then the effects: logs and the
    /// status page's log for each change, metrics, the publish, the state file.
    fn publish(&mut self, now: Instant) {
        let config = self.config.clone();
        let model = self.model.clone();
        let inputs = Inputs { config: &config, checks: &self.checks, restored: &self.restored, started: self.started };
        let (next, view, changes) = verdict::step(&inputs, &self.memory, now);
        let name = |w: Option<RegionId>| w.map_or("none".to_owned(), |w| model.region_name(w).to_owned());
        for change in &changes {
            match change {
                Change::Ready { unknown: 0, elapsed } => {
                    info!(elapsed = ?elapsed, "first round of health checks complete: serving GSLB names")
                }
                Change::Ready { unknown, .. } => warn!(
                    unknown,
                    "cold start grace elapsed: serving GSLB names with checks still unknown counted as down"
                ),
                Change::Region { region, up: true, .. } => {
                    let region = &config.regions[*region].name;
                    info!(region = %region, "region up");
                    self.recent.event(format!("region {region} up"));
                }
                Change::Region { region, up: false, reasons } => {
                    let region = &config.regions[*region].name;
                    warn!(region = %region, reasons = %reasons.join("; "), "region down");
                    self.recent.event(format!("region {region} down: {}", reasons.join("; ")));
                }
                Change::Writer { from, to, why } => {
                    warn!(from = %name(*from), to = %name(*to), reason = why, "writer changed");
                    self.recent.event(format!("writer {} → {} ({why})", name(*from), name(*to)));
                }
                Change::SplitBrain { primaries } => {
                    let names: Vec<&str> = primaries.iter().map(|&p| model.region_name(p)).collect();
                    error!(primaries = %names.join(","), "split brain: more than one database member reports primary");
                    self.recent.event(format!("split brain: {} report primary", names.join(", ")));
                }
                Change::SplitBrainResolved => {
                    info!("split brain resolved: one primary");
                    self.recent.event("split brain resolved".to_owned());
                }
            }
        }

        let m = &self.metrics;
        // Database series exist only for regions with a database member, so that "no
        // writer" can be alerted on without false alarms where there are none.
        for (r, region) in config.regions.iter().enumerate().filter(|(_, r)| r.database.is_some()) {
            let label = [region.name.as_str()];
            m.writer.with_label_values(&label).set(i64::from(view.writer == Some(r as RegionId)));
            m.database_primary.with_label_values(&label).set(i64::from(view.primaries.contains(&(r as RegionId))));
            m.replica_lag.with_label_values(&label).set(view.db_lag[r].unwrap_or(f64::NAN));
        }
        m.split_brain.set(i64::from(view.primaries.len() > 1));
        m.health_ready.set(i64::from(view.ready));

        // Regions without checks keep whatever `up` they have (always up, unless a test
        // or an operator set it): the engine speaks only for what it probes.
        let probed: Vec<bool> = config.regions.iter().map(|r| !r.checks.is_empty()).collect();
        self.state.update_health(|current, h| {
            // Only ever publish into the model this engine probes.
            if !std::ptr::eq(current, &*model) {
                return true;
            }
            let up: Vec<bool> = (0..probed.len()).map(|r| if probed[r] { view.up[r] } else { h.up[r] }).collect();
            let next = (&up, &view.recent, view.writer, view.last_writer, view.writer_unsettled);
            let next = (next, &view.primaries, &view.db_lag, view.ready);
            let cur = (&h.up, &h.recent, h.writer, h.last_writer, h.writer_unsettled);
            let cur = (cur, &h.primaries, &h.db_lag, h.ready);
            if next != cur {
                h.up = up;
                h.recent = view.recent.clone();
                h.writer = view.writer;
                h.last_writer = view.last_writer;
                h.writer_unsettled = view.writer_unsettled;
                h.primaries = view.primaries.clone();
                h.db_lag = view.db_lag.clone();
                h.ready = view.ready;
            }
            true
        });

        let saved_changed = changes.iter().any(|c| matches!(c, Change::Region { .. } | Change::Writer { .. }));
        if saved_changed && let Some(path) = &config.health.state_file {
            let regions = config.regions.iter().zip(&next.up).map(|(r, up)| (r.name.clone(), *up)).collect();
            let saved = statefile::Saved { regions, writer: next.last_writer.map(|w| model.region_name(w).to_owned()) };
            if let Err(e) = statefile::save(path, &saved) {
                warn!(path = %path.display(), error = %e, "cannot write the state file");
            }
        }
        self.memory = next;
    }
}

/// The supervisor's timers on tokio's paused clock: no probes (reports are sent by the
/// test), no wall-clock waiting, exact boundaries.
#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::probe::{Failure, FailureKind};
    use super::writer::Role;
    use super::{HealthEngine, Observers, Report};
    use crate::metrics::Metrics;
    use crate::state::{HealthView, State};

    /// Two regions, each with a gateway check and a database member: check 0 and 1 are
    /// a's, 2 and 3 are b's.
    const CONFIG: &str = concat!(
        include_str!("../../tests/fixtures/configs/zone.toml"),
        r#"
[health]
interval = "1s"
rise = 1
fall = 1
hold_down = "2s"
writer_grace = "10s"
cold_start_grace = "5s"
[regions.a]
a = ["192.0.2.1"]
[[regions.a.checks]]
kind = "tcp"
target = "127.0.0.1:9"
[regions.a.database]
kind = "postgres"
dsn = "host=127.0.0.1 port=9"
[regions.b]
a = ["192.0.2.2"]
[[regions.b.checks]]
kind = "tcp"
target = "127.0.0.1:9"
[regions.b.database]
kind = "postgres"
dsn = "host=127.0.0.1 port=10"
[names.fo]
policy = "failover"
regions = ["a", "b"]
"#
    );

    const OK: Result<Option<Role>, Failure> = Ok(None);
    const PRIMARY: Result<Option<Role>, Failure> = Ok(Some(Role::Primary { timeline: 1 }));
    const REPLICA: Result<Option<Role>, Failure> = Ok(Some(Role::Replica { lag: 0.0 }));

    fn failed() -> Result<Option<Role>, Failure> {
        Err(Failure { kind: FailureKind::Refused, detail: "connection refused".into() })
    }

    fn start() -> (Arc<State>, mpsc::Sender<Report>, HealthEngine) {
        let config = crate::config::parse(CONFIG, std::path::Path::new(".")).expect("valid");
        let loaded = crate::app::open(config).expect("no GeoIP database to open");
        let state = Arc::new(State::new(loaded.model(None), false));
        let (tx, rx) = mpsc::channel(64);
        let observers = Observers { metrics: Metrics::new(), recent: Default::default() };
        let engine = HealthEngine::supervise(state.clone(), loaded.config, observers, None, rx);
        (state, tx, engine)
    }

    /// Sends reports, then lets the supervisor take them (no time passes).
    async fn report(tx: &mpsc::Sender<Report>, reports: Vec<(usize, Result<Option<Role>, Failure>)>) {
        for (index, outcome) in reports {
            tx.send((index, outcome, Duration::ZERO)).await.unwrap();
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }

    fn health(state: &State) -> HealthView {
        state.snapshot().health.clone()
    }

    #[tokio::test(start_paused = true)]
    async fn cold_start_waits_for_every_check_or_the_grace() {
        let (state, tx, engine) = start();
        report(&tx, vec![(0, OK), (1, PRIMARY), (2, OK)]).await;
        assert!(!health(&state).ready, "one check has no result yet");
        tokio::time::sleep(Duration::from_millis(4900)).await;
        assert!(!health(&state).ready, "4.9 s into a 5 s grace");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(health(&state).ready, "the grace is over");
        engine.stop().await;

        let (state, tx, engine) = start();
        report(&tx, vec![(0, OK), (1, PRIMARY), (2, OK), (3, REPLICA)]).await;
        assert!(health(&state).ready, "every check has a result: ready at once");
        engine.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn hold_down_keeps_a_change_recent_for_exactly_hold_down() {
        let (state, tx, engine) = start();
        report(&tx, vec![(0, OK), (1, PRIMARY), (2, OK), (3, REPLICA)]).await;
        assert_eq!((health(&state).up, health(&state).recent), (vec![true, true], vec![false, false]));
        report(&tx, vec![(0, failed())]).await;
        assert_eq!((health(&state).up, health(&state).recent), (vec![false, true], vec![true, false]));
        tokio::time::sleep(Duration::from_millis(500)).await;
        report(&tx, vec![(0, OK)]).await;
        assert_eq!((health(&state).up, health(&state).recent), (vec![true, true], vec![true, false]));
        tokio::time::sleep(Duration::from_millis(1900)).await;
        assert!(health(&state).recent[0], "1.9 s after it came back, within a 2 s hold-down");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!health(&state).recent[0], "2.2 s after: settled");
        engine.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_writer_is_kept_for_the_grace_then_dropped() {
        let (state, tx, engine) = start();
        report(&tx, vec![(0, OK), (1, PRIMARY), (2, OK), (3, REPLICA)]).await;
        let h = health(&state);
        assert_eq!((h.writer, h.writer_unsettled), (Some(0), true), "a new writer: unsettled for the hold-down");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert!(!health(&state).writer_unsettled, "settled after 2 s");
        // The primary's member stops answering: nobody reports primary.
        report(&tx, vec![(1, failed())]).await;
        let h = health(&state);
        assert_eq!((h.writer, h.writer_unsettled), (Some(0), true), "kept on grace");
        tokio::time::sleep(Duration::from_millis(9900)).await;
        assert_eq!(health(&state).writer, Some(0), "9.9 s into a 10 s grace");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let h = health(&state);
        assert_eq!((h.writer, h.last_writer), (None, Some(0)), "grace over: no writer, the last one remembered");
        // The standby is promoted: the writer follows at once.
        report(&tx, vec![(3, Ok(Some(Role::Primary { timeline: 2 })))]).await;
        assert_eq!(health(&state).writer, Some(1));
        engine.stop().await;
    }
}
