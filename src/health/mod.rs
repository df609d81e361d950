//! The health engine: probes every check on its own schedule, smooths results with
//! rise/fall hysteresis, combines gateway checks per region, and per database cluster
//! settles its identity, elects its writer and measures its members' lag; it publishes
//! a new `HealthView` whenever anything routing can see has changed.
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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
// Tokio's clock, not the wall clock: hold-down, grace and hysteresis run on paused time
// in tests.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{CheckConfig, ColdStart, Config, FleetConfig, Policy};
use crate::fleet::{Fleet, MemberSeen, Observation};
use crate::hash::hash64;
use crate::metrics::Metrics;
use crate::model::{MemberId, Model};
use crate::recent::Recent;
use crate::state::State;
use hysteresis::Hysteresis;
use probe::{Failure, Prober};
use verdict::{Change, ClusterMemory, Inputs, MemberInput, Memory, ReaderMemory};
use writer::{DbStatus, Role};

/// What the engine knows of one check.
struct Check {
    /// The check's stable id (never contains a secret).
    id: String,
    region: usize,
    /// A database member's (cluster, member); `None` for a gateway check.
    member: Option<(usize, usize)>,
    hysteresis: Hysteresis,
    /// The last result: `Ok` or why it failed.
    last: Option<Result<(), Failure>>,
    /// A member: what its last successful probe reported, and when (wall clock).
    status: Option<DbStatus>,
    status_at: Option<SystemTime>,
    /// A replica's lag as of its last probe: the worse of its own and its upstream's
    /// view; `None` when it cannot be known.
    lag: Option<f64>,
    /// WAL bytes behind, as its upstream last saw it.
    bytes: Option<u64>,
    /// Its lag the last time it was seen as a replica (what a promotion may lose).
    replica_lag: Option<f64>,
    /// Per reader slot of its cluster: within that name's `max_lag`, with rise/fall.
    fresh: Vec<(usize, Hysteresis)>,
    /// Wall-clock sightings, for the failover record.
    seen: Sightings,
}

/// When a check's probes said what (wall clock), for the failover record's timelines.
#[derive(Debug, Clone, Default)]
struct Sightings {
    /// The current streak of results: passing or failing, since the first of them.
    streak: Option<(bool, SystemTime)>,
    /// A member: the first probe of its current run as primary.
    primary_since: Option<SystemTime>,
    /// A member: the last probe that found it primary.
    primary_at: Option<SystemTime>,
}

impl Sightings {
    fn observe(&mut self, ok: bool, primary: Option<bool>, now: SystemTime) {
        if self.streak.is_none_or(|(was, _)| was != ok) {
            self.streak = Some((ok, now));
        }
        match primary {
            Some(true) => {
                self.primary_since.get_or_insert(now);
                self.primary_at = Some(now);
            }
            Some(false) => self.primary_since = None,
            // Unreachable: it may still be primary; the run is not known to have ended.
            None => {}
        }
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// A running engine; dropping it does not stop it, `stop` does.
pub struct HealthEngine {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Carry>,
}

/// What a stopped engine knew, for the next one (after a reload) to start from, by
/// name: checks by id, regions, clusters and members, reader names.
#[derive(Default)]
pub struct Carry {
    checks: HashMap<String, CheckState>,
    changed_at: HashMap<String, Instant>,
    clusters: HashMap<String, CarriedCluster>,
    /// Reader name → (member name → fresh), when it last changed.
    readers: HashMap<String, (HashMap<String, bool>, Option<Instant>)>,
    ready: bool,
}

impl Carry {
    /// Nothing known, but the server is already serving: no cold start.
    pub fn warm(ready: bool) -> Carry {
        Carry { ready, ..Carry::default() }
    }
}

/// What carries over for one check.
struct CheckState {
    hysteresis: Hysteresis,
    last: Option<Result<(), Failure>>,
    status: Option<DbStatus>,
    status_at: Option<SystemTime>,
    lag: Option<f64>,
    bytes: Option<u64>,
    replica_lag: Option<f64>,
    /// By reader name.
    fresh: Vec<(String, Hysteresis)>,
    seen: Sightings,
}

/// A cluster's memory with members by name.
struct CarriedCluster {
    identity: Option<u64>,
    writer: Option<String>,
    writer_changed_at: Option<Instant>,
    primary_seen_at: Option<Instant>,
    last_primary: Option<(String, Instant)>,
    last_writer: Option<String>,
    split_brain: bool,
    foreign: Vec<String>,
}

/// Where the engine reports what it sees: the metrics, the status page's log, and the
/// fleet (which also brings the other instances' observations back).
#[derive(Clone)]
pub struct Observers {
    pub metrics: Arc<Metrics>,
    pub recent: Arc<Recent>,
    pub fleet: Option<Arc<Fleet>>,
    /// The failover record (and, through it, the application's notifications).
    pub events: Arc<crate::events::Events>,
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
        let carried = carry.is_some();
        let mut carry = carry.unwrap_or_default();
        let model = state.snapshot().model.clone();
        assert_eq!(model.regions.len(), config.regions.len(), "the model of this config");
        let readers = reader_slots(&config);
        let checks = check_configs(&config)
            .map(|(region, check, member)| {
                // The reader names this member's freshness is kept for.
                let slots: Vec<(usize, &str)> = readers
                    .iter()
                    .enumerate()
                    .filter(|(_, (c, _))| member.is_some_and(|(mc, _)| mc == *c))
                    .map(|(slot, (_, name))| (slot, config.names[*name].key.as_str()))
                    .collect();
                let fresh_new = || slots.iter().map(|(s, _)| (*s, Hysteresis::new(check.rise, check.fall))).collect();
                match carry.checks.remove(&check.id) {
                    Some(mut c) => {
                        c.hysteresis.set_thresholds(check.rise, check.fall);
                        let fresh = slots
                            .iter()
                            .map(|(slot, name)| {
                                let mut h = c
                                    .fresh
                                    .iter()
                                    .find(|(n, _)| n == name)
                                    .map_or_else(|| Hysteresis::new(check.rise, check.fall), |(_, h)| h.clone());
                                h.set_thresholds(check.rise, check.fall);
                                (*slot, h)
                            })
                            .collect();
                        Check {
                            id: check.id.clone(),
                            region,
                            member,
                            hysteresis: c.hysteresis,
                            last: c.last,
                            status: c.status,
                            status_at: c.status_at,
                            lag: c.lag,
                            bytes: c.bytes,
                            replica_lag: c.replica_lag,
                            fresh,
                            seen: c.seen,
                        }
                    }
                    None => Check {
                        id: check.id.clone(),
                        region,
                        member,
                        hysteresis: Hysteresis::new(check.rise, check.fall),
                        last: None,
                        status: None,
                        status_at: None,
                        lag: None,
                        bytes: None,
                        replica_lag: None,
                        fresh: fresh_new(),
                        seen: Sightings::default(),
                    },
                }
            })
            .collect();
        let supervisor = Supervisor::new(state, observers, config, model, checks, readers, carried.then_some(carry));
        let task = tokio::spawn(supervisor.run(reports, stop.clone()));
        HealthEngine { stop, task }
    }

    /// Stops every probe and returns what the engine knew.
    pub async fn stop(self) -> Carry {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// Every check of a config, in the order the engine indexes them: each region's gateway
/// checks, then each cluster's members. (region, check, (cluster, member) of a member)
fn check_configs(config: &Config) -> impl Iterator<Item = (usize, &CheckConfig, Option<(usize, usize)>)> {
    let gateways =
        config.regions.iter().enumerate().flat_map(|(r, region)| region.checks.iter().map(move |c| (r, c, None)));
    let members = config.clusters.iter().enumerate().flat_map(|(c, cluster)| {
        cluster.members.iter().enumerate().map(move |(m, member)| (member.region, &member.check, Some((c, m))))
    });
    gateways.chain(members)
}

/// The `reader` names in slot order (as `Model` numbers them): (cluster, name index).
fn reader_slots(config: &Config) -> Vec<(usize, usize)> {
    config
        .names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match &n.policy {
            Policy::Reader { cluster, .. } => Some((*cluster, i)),
            _ => None,
        })
        .collect()
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

/// The wall-clock time of `at` (an `Instant` in the past), for the state file.
fn unix_of(at: Instant, now: Instant) -> f64 {
    let wall = SystemTime::now() - now.saturating_duration_since(at);
    wall.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The `Instant` of a wall-clock time from the state file; `None` if it lies further
/// back than the clock can go.
fn instant_of(unix: f64, now: Instant) -> Option<Instant> {
    let then = SystemTime::UNIX_EPOCH + Duration::try_from_secs_f64(unix.max(0.0)).ok()?;
    let ago = SystemTime::now().duration_since(then).unwrap_or(Duration::ZERO);
    now.checked_sub(ago)
}

/// How often the state file is refreshed while nothing changes, so that the last
/// primary's "seen at" stays current for a restart.
const STATE_REFRESH: Duration = Duration::from_secs(5);

struct Supervisor {
    state: Arc<State>,
    metrics: Arc<Metrics>,
    recent: Arc<Recent>,
    events: Arc<crate::events::Events>,
    /// The config probed, and the model compiled from it (the only one published into).
    config: Arc<Config>,
    model: Arc<Model>,
    checks: Vec<Check>,
    /// By cluster, by member: its check's index.
    members: Vec<Vec<usize>>,
    /// By reader slot: (cluster, name index).
    readers: Vec<(usize, usize)>,
    started: Instant,
    /// Restored from the state file, used for regions whose checks have no result yet.
    restored: Vec<Option<bool>>,
    memory: Memory,
    saved_at: Option<Instant>,
    /// The fleet, when `[fleet]` is configured and connected to.
    fleet: Option<FleetLink>,
    /// By cluster, by member: its last lag while the vantages saw it as a replica.
    replica_lags: Vec<Vec<Option<f64>>>,
    /// The (vantage, region, check) series of `switchyard_fleet_check_up` last set.
    vantage_series: std::collections::BTreeSet<[String; 3]>,
    /// The drains the state file last got.
    saved_drains: std::collections::BTreeMap<String, crate::state::Drain>,
    /// State file saves: the newest started, the newest written, the last in flight.
    save_generation: u64,
    written: Arc<std::sync::Mutex<u64>>,
    pending_save: Option<tokio::task::JoinHandle<()>>,
}

impl Supervisor {
    fn new(
        state: Arc<State>,
        observers: Observers,
        config: Arc<Config>,
        model: Arc<Model>,
        checks: Vec<Check>,
        readers: Vec<(usize, usize)>,
        carry: Option<Carry>,
    ) -> Supervisor {
        let Observers { metrics, recent, fleet, events } = observers;
        let fleet = fleet.zip(config.fleet.clone()).map(|(fleet, settings)| FleetLink {
            fleet,
            settings,
            held: None,
            mode: FleetMode::Alone,
        });
        forget_old_members(&metrics, &config);
        let n = config.regions.len();
        let settings = &config.health;
        let mut members: Vec<Vec<usize>> = config.clusters.iter().map(|c| vec![0; c.members.len()]).collect();
        for (i, c) in checks.iter().enumerate() {
            if let Some((cluster, member)) = c.member {
                members[cluster][member] = i;
            }
        }
        let now = Instant::now();
        let mut s = Supervisor {
            state,
            metrics,
            recent,
            events,
            config: config.clone(),
            model: model.clone(),
            checks,
            members,
            started: now,
            restored: vec![None; n],
            memory: Memory {
                ready: settings.cold_start == ColdStart::AssumeUp,
                up: vec![true; n],
                changed_at: vec![None; n],
                clusters: config
                    .clusters
                    .iter()
                    .map(|c| ClusterMemory { identity: c.system_identifier, ..ClusterMemory::default() })
                    .collect(),
                readers: readers
                    .iter()
                    .map(|(c, _)| ReaderMemory {
                        fresh: vec![false; config.clusters[*c].members.len()],
                        changed_at: None,
                    })
                    .collect(),
            },
            readers,
            saved_at: None,
            fleet,
            replica_lags: config.clusters.iter().map(|c| vec![None; c.members.len()]).collect(),
            vantage_series: Default::default(),
            saved_drains: Default::default(),
            save_generation: 0,
            written: Arc::default(),
            pending_save: None,
        };
        if s.checks.is_empty() || carry.as_ref().is_some_and(|c| c.ready) {
            s.memory.ready = true;
        }
        let member_index = |c: usize, name: &str| config.clusters[c].members.iter().position(|m| m.name == name);
        if let Some(mut carry) = carry {
            // A reload: start from what the previous engine knew, not from the file.
            let snap = s.state.snapshot();
            for (i, region) in config.regions.iter().enumerate() {
                s.memory.changed_at[i] = carry.changed_at.get(&region.name).copied();
                // The view the reload carried over, so that nothing flips by itself.
                s.memory.up[i] = snap.health.up.get(i).copied().unwrap_or(true);
                s.restored[i] = Some(s.memory.up[i]);
            }
            for (c, cluster) in config.clusters.iter().enumerate() {
                let Some(k) = carry.clusters.remove(&cluster.name) else { continue };
                let by_name = |n: &Option<String>| n.as_deref().and_then(|n| member_index(c, n)).map(|m| m as MemberId);
                let mem = &mut s.memory.clusters[c];
                mem.identity = cluster.system_identifier.or(k.identity);
                mem.writer = by_name(&k.writer);
                mem.writer_changed_at = k.writer_changed_at;
                mem.primary_seen_at = k.primary_seen_at;
                mem.last_primary = k.last_primary.and_then(|(n, t)| member_index(c, &n).map(|m| (m as MemberId, t)));
                mem.last_writer = by_name(&k.last_writer);
                mem.split_brain = k.split_brain;
                mem.foreign = k.foreign.iter().filter_map(|n| member_index(c, n)).map(|m| m as MemberId).collect();
            }
            for (slot, (c, name)) in s.readers.iter().enumerate() {
                let Some((fresh, changed_at)) = carry.readers.remove(&config.names[*name].key) else { continue };
                let mem = &mut s.memory.readers[slot];
                for (m, member) in config.clusters[*c].members.iter().enumerate() {
                    mem.fresh[m] = fresh.get(&member.name).copied().unwrap_or(false);
                }
                mem.changed_at = changed_at;
            }
        } else if let Some(path) = &settings.state_file {
            match statefile::load(path) {
                Ok(Some(saved)) => {
                    s.restore(&saved, now);
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

    /// Starts from the state file: region states with their change times (a change
    /// within `hold_down` still answers with `failover_ttl`), and each cluster's
    /// identity, writer and last observed primary.
    fn restore(&mut self, saved: &statefile::Saved, now: Instant) {
        let config = self.config.clone();
        let hold_down = config.health.hold_down;
        let recent = |t: Option<f64>| t.and_then(|t| instant_of(t, now)).filter(|t| now.duration_since(*t) < hold_down);
        for (i, region) in config.regions.iter().enumerate() {
            let Some(r) = saved.regions.get(&region.name) else { continue };
            self.restored[i] = Some(r.up);
            if region.checks.is_empty() {
                continue;
            }
            self.memory.up[i] = r.up;
            self.memory.changed_at[i] = recent(r.changed_at);
            if r.up {
                info!(region = %region.name, "restored region up");
            } else {
                let reasons = if r.reasons.is_empty() { "unknown".to_owned() } else { r.reasons.join("; ") };
                warn!(region = %region.name, reasons = %reasons, "restored region down");
            }
        }
        for (c, cluster) in config.clusters.iter().enumerate() {
            let Some(k) = saved.clusters.get(&cluster.name) else { continue };
            let member = |n: &Option<String>| {
                n.as_deref().and_then(|n| cluster.members.iter().position(|m| m.name == n)).map(|m| m as MemberId)
            };
            let mem = &mut self.memory.clusters[c];
            mem.identity = cluster.system_identifier.or(k.identity);
            mem.writer = member(&k.writer);
            mem.writer_changed_at = recent(k.writer_changed_at);
            // The restored writer keeps the grace that was left when the file was
            // written; a file with no time gets a grace from now.
            let seen = k.last_primary_at.map_or(Some(now), |t| instant_of(t, now));
            mem.primary_seen_at = mem.writer.and(seen);
            mem.last_primary = member(&k.last_primary).zip(k.last_primary_at.and_then(|t| instant_of(t, now)));
            mem.last_writer = mem.writer.or(member(&k.last_primary));
            let name = |m: Option<MemberId>| m.map_or("none", |m| cluster.members[m as usize].name.as_str());
            info!(cluster = %cluster.name, writer = name(mem.writer), last_primary = name(mem.last_primary.map(|l| l.0)), "restored cluster");
        }
        for (region, drain) in &saved.drains {
            if self.state.set_drain(region, drain.clone()) {
                let what = if drain.drained { "drained" } else { "undrained" };
                info!(region = %region, by = %drain.by, reason = %drain.why, "restored: region {what} by an operator");
            }
        }
        self.saved_drains = saved.drains.clone();
        self.memory.ready = true;
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Report>, stop: CancellationToken) -> Carry {
        self.publish(Instant::now());
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // No probe left to report (or none at all: an engine that only keeps the state
        // file and talks to the fleet): it keeps publishing on its tick until stopped.
        let mut probes = true;
        loop {
            tokio::select! {
                msg = rx.recv(), if probes => match msg {
                    Some((index, outcome, took)) => self.observe(index, outcome, took),
                    None => probes = false,
                },
                _ = tick.tick() => {}
                _ = stop.cancelled() => return self.finish().await,
            }
            self.publish(Instant::now());
        }
    }

    /// Waits for the state file to be written, then hands over what the engine knew.
    async fn finish(mut self) -> Carry {
        if let Some(save) = self.pending_save.take() {
            let _ = save.await;
        }
        self.carry()
    }

    fn carry(self) -> Carry {
        let config = &self.config;
        let m = self.memory;
        let reader_names: Vec<String> = self.readers.iter().map(|(_, n)| config.names[*n].key.clone()).collect();
        let clusters = config
            .clusters
            .iter()
            .zip(m.clusters)
            .map(|(c, k)| {
                let name = |m: MemberId| c.members[m as usize].name.clone();
                let carried = CarriedCluster {
                    identity: k.identity,
                    writer: k.writer.map(name),
                    writer_changed_at: k.writer_changed_at,
                    primary_seen_at: k.primary_seen_at,
                    last_primary: k.last_primary.map(|(m, t)| (name(m), t)),
                    last_writer: k.last_writer.map(name),
                    split_brain: k.split_brain,
                    foreign: k.foreign.into_iter().map(name).collect(),
                };
                (c.name.clone(), carried)
            })
            .collect();
        let readers = self
            .readers
            .iter()
            .zip(m.readers)
            .map(|((c, name), r)| {
                let fresh = config.clusters[*c].members.iter().map(|k| k.name.clone()).zip(r.fresh).collect();
                (config.names[*name].key.clone(), (fresh, r.changed_at))
            })
            .collect();
        Carry {
            changed_at: config
                .regions
                .iter()
                .zip(&m.changed_at)
                .filter_map(|(r, t)| t.map(|t| (r.name.clone(), t)))
                .collect(),
            clusters,
            readers,
            ready: m.ready,
            checks: self
                .checks
                .into_iter()
                .map(|c| {
                    let fresh = c.fresh.into_iter().map(|(slot, h)| (reader_names[slot].clone(), h)).collect();
                    let state = CheckState {
                        hysteresis: c.hysteresis,
                        last: c.last,
                        status: c.status,
                        status_at: c.status_at,
                        lag: c.lag,
                        bytes: c.bytes,
                        replica_lag: c.replica_lag,
                        fresh,
                        seen: c.seen,
                    };
                    (c.id, state)
                })
                .collect(),
        }
    }

    fn observe(&mut self, index: usize, outcome: probe::Outcome, took: Duration) {
        let region = &self.config.regions[self.checks[index].region].name;
        let id = self.checks[index].id.clone();
        self.metrics.check_duration.with_label_values(&[region, &id]).observe(took.as_secs_f64());
        if let Err(f) = &outcome {
            self.metrics.check_failures.with_label_values(&[region, &id, f.kind.as_str()]).inc();
        }
        let ok = outcome.is_ok();
        let (reason, short) = match &outcome {
            Ok(_) => ("ok".to_owned(), "ok".to_owned()),
            Err(f) => (f.to_string(), f.short()),
        };
        if let Ok(Some(status)) = &outcome {
            // The worse of the member's own lag and what its upstream sees of it.
            let (lag, bytes) = match status.role {
                Role::Primary { .. } => (Some(0.0), Some(0)),
                Role::Replica { lag } => {
                    let upstream = self.upstream_view(index, status);
                    let lag = match (lag, upstream.and_then(|(_, u)| u.lag)) {
                        (Some(own), Some(theirs)) => Some(own.max(theirs)),
                        (own, _) => own,
                    };
                    // A cascading standby is at least as far behind as the standby it
                    // streams from: lags add up along the chain (unknown stays unknown).
                    let lag = match upstream.map(|(i, _)| &self.checks[i]) {
                        Some(up) if matches!(up.status.as_ref().map(|s| s.role), Some(Role::Replica { .. })) => {
                            lag.zip(up.lag).map(|(own, theirs)| own.max(theirs))
                        }
                        _ => lag,
                    };
                    (lag, upstream.and_then(|(_, u)| u.bytes))
                }
            };
            let c = &mut self.checks[index];
            let same_role = matches!(
                (c.status.as_ref().map(|s| s.role), status.role),
                (Some(Role::Primary { .. }), Role::Primary { .. }) | (Some(Role::Replica { .. }), Role::Replica { .. })
            );
            if !same_role {
                info!(check = %id, role = %role_text(status.role, lag), "database member role");
            }
            if matches!(status.role, Role::Replica { .. }) {
                c.replica_lag = lag;
            }
            c.lag = lag;
            c.bytes = bytes;
            c.status = Some(status.clone());
            c.status_at = Some(SystemTime::now());
            // Freshness for each reader name of the cluster: a primary is fresh by
            // definition; lag that cannot be known is over any `max_lag`.
            let primary = matches!(status.role, Role::Primary { .. });
            for (slot, h) in &mut c.fresh {
                let (_, name) = self.readers[*slot];
                let max_lag = match &self.config.names[name].policy {
                    Policy::Reader { max_lag, .. } => max_lag.as_secs_f64(),
                    _ => f64::INFINITY,
                };
                h.observe(primary || lag.is_some_and(|l| l <= max_lag));
            }
        } else if !ok {
            // A member that does not answer is fresh for nobody.
            for (_, h) in &mut self.checks[index].fresh {
                h.observe(false);
            }
        }
        let primary = match &outcome {
            Ok(Some(status)) => Some(matches!(status.role, Role::Primary { .. })),
            _ => None,
        };
        let c = &mut self.checks[index];
        c.seen.observe(ok, primary, SystemTime::now());
        if let Some(up) = c.hysteresis.observe(ok) {
            info!(check = %id, state = if up { "up" } else { "down" }, reason = %reason, "check state changed");
            self.metrics.check_up.with_label_values(&[region, &id]).set(i64::from(up));
        }
        let role = c.status.as_ref().zip(c.status_at).map(|(s, at)| (role_text(s.role, c.lag), at));
        let status = crate::recent::CheckStatus {
            region: region.clone(),
            database: c.member.is_some(),
            up: c.hysteresis.state(),
            last: reason,
            short,
            role,
            at: SystemTime::now(),
        };
        self.recent.set_check(&id, status);
        c.last = Some(outcome.map(|_| ()));
    }

    /// What the member's upstream (any other member of its cluster that lists it in
    /// `pg_stat_replication` under one unique name) last saw of it, and the upstream's
    /// check.
    fn upstream_view(&self, index: usize, status: &DbStatus) -> Option<(usize, &writer::Standby)> {
        let (cluster, member) = self.checks[index].member?;
        let name =
            self.config.clusters[cluster].members[member].application_name.as_deref().or(status.name.as_deref())?;
        let mut seen = self.members[cluster]
            .iter()
            .filter(|&&i| i != index && self.checks[i].hysteresis.state() == Some(true))
            .filter_map(|&i| self.checks[i].status.as_ref().map(|s| (i, s)))
            .flat_map(|(i, s)| s.standbys.iter().filter(|sb| sb.name == name).map(move |sb| (i, sb)));
        match (seen.next(), seen.next()) {
            (Some(one), None) => Some(one),
            // Nobody, or a name several standbys share: no upstream view.
            _ => None,
        }
    }

    /// Recomputes what routing sees (`verdict::step`), then the effects: logs and the
    /// status page's log for each change, metrics, the publish, the state file.
    fn publish(&mut self, now: Instant) {
        let config = self.config.clone();
        let model = self.model.clone();
        let others = self.fleet_others(now);
        // With a fleet, one instance tells the application about a writer change: the
        // one whose name sorts first among the vantages it decides with (every
        // instance computes the same from the same shared view; alone, it tells).
        let tells = self.fleet.as_ref().is_none_or(|l| others.iter().all(|(n, _)| l.settings.name < *n));
        self.report_vantages(&others);
        let members = self.member_inputs(&others);
        let others: Vec<(&str, &Observation)> = others.iter().map(|(n, o)| (n.as_str(), o)).collect();
        let quorum = config.fleet.as_ref().map_or(crate::config::Quorum::Majority, |f| f.quorum);
        let inputs = Inputs {
            config: &config,
            checks: &self.checks,
            members: &members,
            others: &others,
            quorum,
            readers: &self.readers,
            restored: &self.restored,
            started: self.started,
        };
        let (next, view, changes) = verdict::step(&inputs, &self.memory, now);
        let member = |c: usize, m: Option<MemberId>| {
            m.map_or("none".to_owned(), |m| config.clusters[c].members[m as usize].name.clone())
        };
        // The failover record's entries, recorded once the change is published (so that
        // the first answer on the new state is counted from then).
        let mut recorded = Vec::new();
        for change in &changes {
            match change {
                Change::Ready { unknown: 0, elapsed } => {
                    info!(elapsed = ?elapsed, "first round of health checks complete: serving GSLB names")
                }
                Change::Ready { unknown, .. } => warn!(
                    unknown,
                    "cold start grace elapsed: serving GSLB names with checks still unknown counted as down"
                ),
                Change::Region { region: r, up, reasons } => {
                    let region = &config.regions[*r].name;
                    if *up {
                        info!(region = %region, "region up");
                        self.recent.event(format!("region {region} up"));
                    } else {
                        warn!(region = %region, reasons = %reasons.join("; "), "region down");
                        self.recent.event(format!("region {region} down: {}", reasons.join("; ")));
                    }
                    // The first probe of the streak that turned it, among this
                    // instance's checks of the region that say so now.
                    let first_probe = self
                        .checks
                        .iter()
                        .filter(|c| c.region == *r && c.member.is_none())
                        .filter_map(|c| c.seen.streak.filter(|(ok, _)| ok == up).map(|(_, at)| at))
                        .min();
                    recorded.push(Recorded::Region(crate::events::RegionChange {
                        region: region.clone(),
                        up: *up,
                        reasons: reasons.clone(),
                        first_probe: first_probe.map(unix),
                        verdict: unix(SystemTime::now()),
                        hold_down: config.health.hold_down,
                        slot: model.metric_slots[*r],
                    }));
                }
                Change::Writer { cluster, from: was, last, to, why, promotion, rpo } => {
                    let name = &config.clusters[*cluster].name;
                    let (from, to_name) = (member(*cluster, *was), member(*cluster, *to));
                    let lag = match (promotion, rpo) {
                        (false, _) => "not a promotion".to_owned(),
                        (true, None) => "never seen as a replica".to_owned(),
                        (true, Some(l)) => format!("{l:.1} s"),
                    };
                    warn!(cluster = %name, from = %from, to = %to_name, reason = why, last_lag_as_replica = %lag, "writer changed");
                    self.recent.event(format!(
                        "cluster {name}: writer {from} → {to_name} ({why}; its last lag as a replica: {lag})"
                    ));
                    if *promotion {
                        // The last promotion's figure stays until the next one.
                        self.metrics.writer_rpo.with_label_values(&[name]).set(rpo.unwrap_or(f64::NAN));
                    }
                    let seen = |m: Option<MemberId>| m.map(|m| &self.checks[self.members[*cluster][m as usize]].seen);
                    let now = SystemTime::now();
                    // The first election after a start is no change to tell anyone about.
                    if last.is_none() {
                        continue;
                    }
                    recorded.push(Recorded::Writer(crate::events::WriterChange {
                        cluster: name.clone(),
                        from: was.map(|_| from.clone()),
                        to: to.map(|_| to_name.clone()),
                        why: why.to_string(),
                        promotion: *promotion,
                        lag: *rpo,
                        last_seen_primary: seen(*last).and_then(|s| s.primary_at).map(unix),
                        // Seen here, or (with a fleet) by another vantage: then now.
                        promotion_seen: unix(seen(*to).and_then(|s| s.primary_since).unwrap_or(now)),
                        verdict: unix(now),
                        hold_down: config.health.hold_down,
                        slot: to.map(|m| model.metric_slots[config.clusters[*cluster].members[m as usize].region]),
                        tell: tells,
                    }));
                }
                Change::SplitBrain { cluster, primaries } => {
                    let name = &config.clusters[*cluster].name;
                    let names: Vec<String> = primaries.iter().map(|&p| member(*cluster, Some(p))).collect();
                    error!(cluster = %name, primaries = %names.join(","), "split brain: more than one member reports primary");
                    self.recent.event(format!("cluster {name}: split brain: {} report primary", names.join(", ")));
                }
                Change::SplitBrainResolved { cluster } => {
                    let name = &config.clusters[*cluster].name;
                    info!(cluster = %name, "split brain resolved: one primary");
                    self.recent.event(format!("cluster {name}: split brain resolved"));
                }
                Change::Identity { cluster, id, agree, of } => {
                    let name = &config.clusters[*cluster].name;
                    info!(cluster = %name, system_identifier = id, agree, of, "cluster identity learned from a majority of its members");
                    self.recent
                        .event(format!("cluster {name}: system identifier {id} ({agree} of {of} members agree)"));
                }
                Change::Foreign { cluster, member: m, theirs, ours } => {
                    let name = &config.clusters[*cluster].name;
                    let m = member(*cluster, Some(*m));
                    error!(
                        cluster = %name, member = %m, member_system_identifier = theirs, cluster_system_identifier = ours,
                        "database member belongs to another cluster: never the writer, never read from"
                    );
                    self.recent.event(format!(
                        "cluster {name}: member {m} reports system identifier {theirs}, not the cluster's {ours}: ignored"
                    ));
                }
                Change::ForeignGone { cluster, member: m } => {
                    let name = &config.clusters[*cluster].name;
                    let m = member(*cluster, Some(*m));
                    info!(cluster = %name, member = %m, "database member no longer reports another system identifier");
                    self.recent.event(format!("cluster {name}: member {m} no longer foreign"));
                }
                Change::Fresh { slot, member: m, fresh, lag } => {
                    let (c, name) = self.readers[*slot];
                    let key = &config.names[name].key;
                    let m = member(c, Some(*m));
                    let lag = lag.map_or("unknown".to_owned(), |l| format!("{l:.1} s"));
                    if *fresh {
                        info!(name = %key, member = %m, lag = %lag, "replica back within max_lag");
                        self.recent.event(format!("{key}: {m} readable again (lag {lag})"));
                    } else {
                        warn!(name = %key, member = %m, lag = %lag, "replica out: over max_lag or unknown");
                        self.recent.event(format!("{key}: {m} not readable (lag {lag})"));
                    }
                }
            }
        }

        let m = &self.metrics;
        // Database series exist only for configured members, so that "no writer" can be
        // alerted on without false alarms where there are none.
        for (c, cluster) in config.clusters.iter().enumerate() {
            let v = &view.clusters[c];
            m.split_brain.with_label_values(&[&cluster.name]).set(i64::from(v.primaries.len() > 1));
            for (i, mem) in cluster.members.iter().enumerate() {
                let region = &config.regions[mem.region].name;
                let label = [cluster.name.as_str(), mem.name.as_str(), region.as_str()];
                let id = i as MemberId;
                m.writer.with_label_values(&label).set(i64::from(v.writer == Some(id)));
                m.database_primary.with_label_values(&label).set(i64::from(v.primaries.contains(&id)));
                m.replica_lag.with_label_values(&label).set(v.lag[i].unwrap_or(f64::NAN));
                let bytes = self.checks[self.members[c][i]].bytes.filter(|_| v.lag[i].is_some());
                m.replica_bytes.with_label_values(&label).set(bytes.map_or(f64::NAN, |b| b as f64));
                let foreign = next.clusters[c].foreign.contains(&id);
                m.identity_mismatch.with_label_values(&[&cluster.name, &mem.name]).set(i64::from(foreign));
            }
        }
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
            let next = (&up, &view.recent, &view.clusters, &view.readers, view.ready);
            if next != (&h.up, &h.recent, &h.clusters, &h.readers, h.ready) {
                h.up = up;
                h.recent = view.recent.clone();
                h.clusters = view.clusters.clone();
                h.readers = view.readers.clone();
                h.ready = view.ready;
            }
            true
        });

        for r in recorded {
            match r {
                Recorded::Region(c) => self.events.region(c),
                Recorded::Writer(c) => self.events.writer(c),
            }
        }

        let drains = self.state.drains();
        let changed = changes
            .iter()
            .any(|c| matches!(c, Change::Region { .. } | Change::Writer { .. } | Change::Identity { .. }))
            || drains != self.saved_drains;
        let stale = self.saved_at.is_none_or(|t| now.duration_since(t) >= STATE_REFRESH)
            && next.clusters.iter().any(|c| c.last_primary.is_some());
        if (changed || stale)
            && let Some(path) = &config.health.state_file
        {
            // Off the supervisor (two fsyncs); a save that finds a newer one written
            // stands down, so the file never goes back in time.
            self.save_generation += 1;
            let (generation, written, path) = (self.save_generation, self.written.clone(), path.clone());
            let mut saved = self.saved(&next, now);
            saved.drains = drains.clone();
            self.saved_drains = drains;
            self.pending_save = Some(tokio::task::spawn_blocking(move || {
                let mut last = written.lock().expect("not poisoned");
                if *last < generation {
                    if let Err(e) = statefile::save(&path, &saved) {
                        warn!(path = %path.display(), error = %e, "cannot write the state file");
                    }
                    *last = generation;
                }
            }));
            self.saved_at = Some(now);
        }
        self.memory = next;
        self.share_own();
    }

    /// The other vantages to decide with: those the fleet heard from within the TTL;
    /// while NATS is lost, the last such set for `shared_grace`; then none (this
    /// instance decides alone). Each change of mode is logged once.
    fn fleet_others(&mut self, now: Instant) -> Vantages {
        let Some(link) = &mut self.fleet else { return Vec::new() };
        let shared = link.fleet.shared.borrow().clone();
        let ttl = link.settings.observation_ttl;
        let (mode, others) = if shared.connected {
            let fresh: Vantages = shared
                .vantages
                .into_iter()
                .filter(|(_, (_, at))| now.saturating_duration_since(*at) <= ttl)
                .map(|(name, (o, _))| (name, o))
                .collect();
            link.held = Some((fresh.clone(), None));
            (FleetMode::Shared, fresh)
        } else {
            // The grace runs from when this engine first found the fleet gone.
            if let Some((_, lost)) = &mut link.held {
                lost.get_or_insert(now);
            }
            match &link.held {
                Some((held, Some(lost))) if now.saturating_duration_since(*lost) <= link.settings.shared_grace => {
                    (FleetMode::Held, held.clone())
                }
                _ => (FleetMode::Alone, Vec::new()),
            }
        };
        if mode != link.mode {
            match mode {
                FleetMode::Shared => info!(vantages = others.len() + 1, "fleet: deciding with the shared observations"),
                FleetMode::Held => warn!(
                    grace = ?link.settings.shared_grace,
                    "fleet: NATS lost; holding the last shared observations"
                ),
                FleetMode::Alone => warn!("fleet: no shared observations; deciding on this instance's own"),
            }
            self.recent.event(format!("fleet: {}", mode.as_str()));
            link.mode = mode;
        }
        self.metrics.fleet_connected.set(i64::from(shared.connected));
        // Operators' drains, sent to any instance: applied here too, once each.
        let current = self.state.drains();
        for (region, o) in &shared.overrides {
            // The bucket's revisions order actions, whatever the senders' clocks: an older
            // one (a replay after NATS restarts) does not undo a newer one.
            let newer = current.get(region).is_none_or(|c| o.revision > c.revision);
            if newer && self.state.set_drain(region, o.clone()) {
                let what = if o.drained { "drained" } else { "undrained" };
                let why = if o.why.is_empty() { String::new() } else { format!(": {}", o.why) };
                info!(region = %region, by = %o.by, reason = %o.why, "region {what} by an operator (shared)");
                self.recent.event(format!("region {region} {what} by {}{why} (shared)", o.by));
            }
        }
        let deciding = if link.mode == FleetMode::Alone { 1 } else { others.len() as i64 + 1 };
        self.metrics.fleet_vantages.set(deciding);
        others
    }

    /// Who sees what, on the metrics: this instance (by its fleet name, or `self`) and
    /// each vantage it decides with, per check.
    fn report_vantages(&mut self, others: &Vantages) {
        let own_name = self.config.fleet.as_ref().map_or("self".to_owned(), |f| f.name.clone());
        let local: Vec<(String, bool)> =
            self.checks.iter().filter_map(|c| c.hysteresis.state().map(|up| (c.id.clone(), up))).collect();
        let views = std::iter::once((own_name, local)).chain(others.iter().map(|(name, o)| {
            (name.clone(), o.checks.iter().filter_map(|(id, c)| c.up.map(|up| (id.clone(), up))).collect())
        }));
        let mut before = std::mem::take(&mut self.vantage_series);
        for (vantage, states) in views {
            for (id, up) in states {
                let Some(region) = self.config.regions.iter().find(|r| r.checks.iter().any(|c| c.id == id)) else {
                    continue;
                };
                let labels = [vantage.clone(), region.name.clone(), id];
                self.metrics.fleet_check_up.with_label_values(&labels).set(i64::from(up));
                before.remove(&labels);
                self.vantage_series.insert(labels);
            }
        }
        for gone in before {
            let _ = self.metrics.fleet_check_up.remove_label_values(&[&gone[0], &gone[1], &gone[2]]);
        }
    }

    /// Each database member as this instance and the other vantages see it, merged.
    fn member_inputs(&mut self, others: &Vantages) -> Vec<Vec<MemberInput>> {
        let config = self.config.clone();
        let mut out = Vec::new();
        for (c, cluster) in config.clusters.iter().enumerate() {
            let mut inputs = Vec::new();
            for (m, member) in cluster.members.iter().enumerate() {
                let k = &self.checks[self.members[c][m]];
                let local = k.status.as_ref().filter(|_| k.hysteresis.state() == Some(true));
                let key = format!("{}/{}", cluster.name, member.name);
                let seen: Vec<&MemberSeen> = others.iter().filter_map(|(_, o)| o.members.get(&key)).collect();
                let lag = local
                    .map(|_| k.lag)
                    .into_iter()
                    .chain(seen.iter().map(|s| s.lag))
                    .reduce(|a, b| a.zip(b).map(|(a, b)| a.max(b)).or(a.or(b)));
                let lag = lag.flatten();
                let primary = local
                    .and_then(|s| match s.role {
                        Role::Primary { timeline } => Some(timeline),
                        Role::Replica { .. } => None,
                    })
                    .into_iter()
                    .chain(seen.iter().filter(|s| s.primary).map(|s| s.timeline))
                    .max();
                let status = match local {
                    None if seen.is_empty() => None,
                    local => {
                        let role = match primary {
                            Some(timeline) => Role::Primary { timeline },
                            None => Role::Replica { lag },
                        };
                        // The identifier most vantages report (ties: the smallest), so that every
                        // instance merges the same way.
                        let ids =
                            local.and_then(|s| s.system_id).into_iter().chain(seen.iter().filter_map(|s| s.system_id));
                        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
                        for id in ids {
                            *counts.entry(id).or_default() += 1;
                        }
                        let top = counts.values().copied().max().unwrap_or(0);
                        let system_id = counts.iter().find(|(_, n)| **n == top).map(|(id, _)| *id);
                        let (name, standbys) = local.map(|s| (s.name.clone(), s.standbys.clone())).unwrap_or_default();
                        Some(DbStatus { role, system_id, name, standbys })
                    }
                };
                if matches!(status.as_ref().map(|s| s.role), Some(Role::Replica { .. })) {
                    self.replica_lags[c][m] = lag;
                }
                // Fresh for a reader name when most of the vantages that reach it say so.
                let fresh = k
                    .fresh
                    .iter()
                    .map(|(slot, h)| {
                        let reader = &config.names[self.readers[*slot].1].key;
                        let votes: Vec<bool> = local
                            .map(|_| h.state() == Some(true))
                            .into_iter()
                            .chain(seen.iter().filter_map(|s| s.fresh.get(reader).copied()))
                            .collect();
                        let yes = votes.iter().filter(|v| **v).count();
                        (*slot, !votes.is_empty() && yes * 2 > votes.len())
                    })
                    .collect();
                let replica_lag = self.replica_lags[c][m].or(k.replica_lag);
                inputs.push(MemberInput { status, lag, replica_lag, fresh });
            }
            out.push(inputs);
        }
        out
    }

    /// Hands this instance's observation to the fleet (which publishes it when it
    /// changes, and as a heartbeat).
    fn share_own(&self) {
        let Some(link) = &self.fleet else { return };
        let config = &self.config;
        let mut o = Observation::default();
        for c in &self.checks {
            let reason = match &c.last {
                Some(Ok(())) => "ok".to_owned(),
                Some(Err(f)) => f.to_string(),
                None => String::new(),
            };
            o.checks.insert(c.id.clone(), crate::fleet::CheckSeen { up: c.hysteresis.state(), reason });
            let Some((cluster, member)) = c.member else { continue };
            let Some(status) = c.status.as_ref().filter(|_| c.hysteresis.state() == Some(true)) else { continue };
            let (primary, timeline) = match status.role {
                Role::Primary { timeline } => (true, timeline),
                Role::Replica { .. } => (false, 0),
            };
            let fresh = c
                .fresh
                .iter()
                .map(|(slot, h)| (config.names[self.readers[*slot].1].key.clone(), h.state() == Some(true)))
                .collect();
            let cluster = &config.clusters[cluster];
            let key = format!("{}/{}", cluster.name, cluster.members[member].name);
            // To a tenth of a second: a lag that moves by milliseconds each probe is no news.
            let lag = c.lag.map(|l| (l * 10.0).round() / 10.0);
            o.members.insert(key, MemberSeen { primary, timeline, system_id: status.system_id, lag, fresh });
        }
        // Stamped each time: the fleet keeps publishing only what is recent.
        link.fleet.own.send_replace(Some(crate::fleet::Own { observation: o, at: Instant::now() }));
    }

    /// What the state file keeps of `memory`.
    fn saved(&self, memory: &Memory, now: Instant) -> statefile::Saved {
        let config = &self.config;
        let regions = config
            .regions
            .iter()
            .enumerate()
            .map(|(r, region)| {
                let reasons = verdict::down_reasons(&self.checks, r);
                let saved = statefile::SavedRegion {
                    up: memory.up[r],
                    changed_at: memory.changed_at[r].map(|t| unix_of(t, now)),
                    reasons: if memory.up[r] { Vec::new() } else { reasons },
                };
                (region.name.clone(), saved)
            })
            .collect();
        let clusters = config
            .clusters
            .iter()
            .zip(&memory.clusters)
            .map(|(c, k)| {
                let name = |m: MemberId| c.members[m as usize].name.clone();
                let saved = statefile::SavedCluster {
                    identity: k.identity,
                    writer: k.writer.map(name),
                    writer_changed_at: k.writer_changed_at.map(|t| unix_of(t, now)),
                    last_primary: k.last_primary.map(|(m, _)| name(m)),
                    last_primary_at: k.last_primary.map(|(_, t)| unix_of(t, now)),
                };
                (c.name.clone(), saved)
            })
            .collect();
        statefile::Saved { regions, clusters, drains: Default::default() }
    }
}

/// Drops the database series of a previous config (the first publish sets this one's):
/// a removed or renamed member must not keep reporting "writer" and mask an alert. The
/// last promotion's lag stays for the clusters that remain; a new cluster's is NaN.
fn forget_old_members(m: &Metrics, config: &Config) {
    use prometheus::core::Collector;
    m.writer.reset();
    m.database_primary.reset();
    m.identity_mismatch.reset();
    m.replica_lag.reset();
    m.replica_bytes.reset();
    m.split_brain.reset();
    m.fleet_check_up.reset();
    let gone: Vec<String> = m
        .writer_rpo
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .flat_map(|metric| metric.get_label())
        .filter(|l| l.name() == "cluster" && !config.clusters.iter().any(|c| c.name == l.value()))
        .map(|l| l.value().to_owned())
        .collect();
    for cluster in gone {
        let _ = m.writer_rpo.remove_label_values(&[&cluster]);
    }
    // NaN until a promotion is seen.
    let have: Vec<String> = m
        .writer_rpo
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .flat_map(|metric| metric.get_label())
        .map(|l| l.value().to_owned())
        .collect();
    for c in config.clusters.iter().filter(|c| !have.contains(&c.name)) {
        m.writer_rpo.with_label_values(&[&c.name]).set(f64::NAN);
    }
    // The writer-gap histogram exists (empty) for every cluster from the start, so that
    // "no writer change yet" reads as 0, not as no data. Its counts are kept on reload.
    for c in &config.clusters {
        m.writer_gap.with_label_values(&[&c.name]);
    }
}

/// A failover record entry waiting for its change to be published.
enum Recorded {
    Region(crate::events::RegionChange),
    Writer(crate::events::WriterChange),
}

/// Other vantages by name, with what each sees.
type Vantages = Vec<(String, Observation)>;

/// The health engine's end of the fleet.
struct FleetLink {
    fleet: Arc<Fleet>,
    settings: FleetConfig,
    /// The other vantages' observations as of when the fleet was last connected, and
    /// when it was found gone.
    held: Option<(Vantages, Option<Instant>)>,
    mode: FleetMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FleetMode {
    /// Deciding with the other vantages' fresh observations.
    Shared,
    /// NATS is lost: the last shared observations, for `shared_grace`.
    Held,
    /// This instance's own observations only.
    Alone,
}

impl FleetMode {
    fn as_str(self) -> &'static str {
        match self {
            FleetMode::Shared => "deciding with the shared observations",
            FleetMode::Held => "NATS lost: holding the last shared observations",
            FleetMode::Alone => "deciding on this instance's own observations",
        }
    }
}

/// A member's role as the status page and logs show it.
fn role_text(role: Role, lag: Option<f64>) -> String {
    match role {
        Role::Primary { timeline } => format!("primary (timeline {timeline})"),
        Role::Replica { .. } => match lag {
            Some(l) => format!("replica (lag {l:.1} s)"),
            None => "replica (lag unknown)".to_owned(),
        },
    }
}

/// The supervisor's timers on tokio's paused clock: no probes (reports are sent by the
/// test), no wall-clock waiting, exact boundaries.
#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::probe::{Failure, FailureKind, Outcome};
    use super::writer::{DbStatus, Role};
    use super::{Carry, HealthEngine, Observers, Report};
    use crate::metrics::Metrics;
    use crate::state::{ClusterView, HealthView, State};

    /// Two regions with a gateway check each (checks 0 and 1), and one cluster of three
    /// members: pg-a in a (check 2), pg-b and pg-c in b (checks 3 and 4).
    const CONFIG: &str = concat!(
        include_str!("../../tests/fixtures/configs/zone.toml"),
        r#"
[health]
interval = "1s"
rise = 1
fall = 1
hold_down = "2s"
cold_start_grace = "5s"
[regions.a]
a = ["192.0.2.1"]
[[regions.a.checks]]
kind = "tcp"
target = "127.0.0.1:9"
[regions.b]
a = ["192.0.2.2"]
[[regions.b.checks]]
kind = "tcp"
target = "127.0.0.1:9"
[clusters.main]
writer_grace = "10s"
fail_open_max_age = "60s"
[clusters.main.members.pg-a]
region = "a"
kind = "postgres"
dsn = "host=127.0.0.1 port=9"
[clusters.main.members.pg-b]
region = "b"
kind = "postgres"
dsn = "host=127.0.0.1 port=10"
rise = 2
fall = 2
[clusters.main.members.pg-c]
region = "b"
kind = "postgres"
dsn = "host=127.0.0.1 port=11"
[names.fo]
policy = "failover"
regions = ["a", "b"]
[names.read]
policy = "reader"
order = "latency"
max_lag = "5s"
[latency]
default = { a = 10, b = 20 }
"#
    );

    const ID: u64 = 7_000_000_000_000_000_001;
    const OK: Outcome = Ok(None);

    fn primary(timeline: u32) -> Outcome {
        Ok(Some(DbStatus { system_id: Some(ID), ..DbStatus::of(Role::Primary { timeline }) }))
    }

    fn replica(lag: f64) -> Outcome {
        Ok(Some(DbStatus { system_id: Some(ID), ..DbStatus::of(Role::Replica { lag: Some(lag) }) }))
    }

    fn foreign_primary() -> Outcome {
        Ok(Some(DbStatus { system_id: Some(ID + 1), ..DbStatus::of(Role::Primary { timeline: 1 }) }))
    }

    fn failed() -> Outcome {
        Err(Failure { kind: FailureKind::Refused, detail: "connection refused".into() })
    }

    struct Engine {
        state: Arc<State>,
        metrics: Arc<Metrics>,
        tx: mpsc::Sender<Report>,
        engine: HealthEngine,
    }

    fn start_with(text: &str, carry: Option<Carry>) -> Engine {
        let config = crate::config::parse(text, std::path::Path::new(".")).expect("valid");
        let loaded = crate::app::open(config).expect("no GeoIP database to open");
        let state = Arc::new(State::new(loaded.model(None), false));
        let (tx, rx) = mpsc::channel(64);
        let metrics = Metrics::new();
        let observers = Observers {
            metrics: metrics.clone(),
            recent: Default::default(),
            fleet: None,
            events: Arc::new(crate::events::Events::new(metrics.clone())),
        };
        let engine = HealthEngine::supervise(state.clone(), loaded.config, observers, carry, rx);
        Engine { state, metrics, tx, engine }
    }

    fn start() -> Engine {
        start_with(CONFIG, None)
    }

    impl Engine {
        /// Sends reports, then lets the supervisor take them (no time passes).
        async fn report(&self, reports: Vec<(usize, Outcome)>) {
            for (index, outcome) in reports {
                self.tx.send((index, outcome, Duration::ZERO)).await.unwrap();
            }
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
        }

        fn health(&self) -> HealthView {
            self.state.snapshot().health.clone()
        }

        fn cluster(&self) -> ClusterView {
            self.health().clusters[0].clone()
        }

        /// Reader `read`'s fresh members, and whether it changed recently.
        fn fresh(&self) -> (Vec<bool>, bool) {
            let r = &self.health().readers[0];
            (r.fresh.clone(), r.recent)
        }
    }

    fn all_up() -> Vec<(usize, Outcome)> {
        vec![(0, OK), (1, OK), (2, primary(1)), (3, replica(0.5)), (4, replica(0.5))]
    }

    #[tokio::test(start_paused = true)]
    async fn cold_start_waits_for_every_check_or_the_grace() {
        let e = start();
        e.report(vec![(0, OK), (1, OK), (2, primary(1)), (3, replica(0.0))]).await;
        assert!(!e.health().ready, "one check has no result yet");
        tokio::time::sleep(Duration::from_millis(4900)).await;
        assert!(!e.health().ready, "4.9 s into a 5 s grace");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(e.health().ready, "the grace is over");
        e.engine.stop().await;

        let e = start();
        e.report(all_up()).await;
        assert!(e.health().ready, "every check has a result: ready at once");
        e.engine.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn hold_down_keeps_a_change_recent_for_exactly_hold_down() {
        let e = start();
        e.report(all_up()).await;
        assert_eq!((e.health().up, e.health().recent), (vec![true, true], vec![false, false]));
        e.report(vec![(0, failed())]).await;
        assert_eq!((e.health().up, e.health().recent), (vec![false, true], vec![true, false]));
        tokio::time::sleep(Duration::from_millis(500)).await;
        e.report(vec![(0, OK)]).await;
        assert_eq!((e.health().up, e.health().recent), (vec![true, true], vec![true, false]));
        tokio::time::sleep(Duration::from_millis(1900)).await;
        assert!(e.health().recent[0], "1.9 s after it came back, within a 2 s hold-down");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!e.health().recent[0], "2.2 s after: settled");
        e.engine.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_writer_is_kept_for_the_grace_then_fail_open_only_to_the_last_primary() {
        let e = start();
        e.report(all_up()).await;
        let c = e.cluster();
        assert_eq!((c.writer, c.writer_unsettled), (Some(0), true), "a new writer: unsettled for the hold-down");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert!(!e.cluster().writer_unsettled, "settled after 2 s");
        // The primary stops answering: nobody reports primary.
        e.report(vec![(2, failed())]).await;
        let c = e.cluster();
        assert_eq!((c.writer, c.writer_unsettled), (Some(0), true), "kept on grace");
        tokio::time::sleep(Duration::from_millis(9900)).await;
        assert_eq!(e.cluster().writer, Some(0), "9.9 s into a 10 s grace");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let c = e.cluster();
        assert_eq!((c.writer, c.last_primary), (None, Some(0)), "grace over: no writer; fail_open may answer pg-a");
        // fail_open_max_age (60 s) after pg-a was last seen as primary, not even that.
        tokio::time::sleep(Duration::from_secs(50)).await;
        assert_eq!(e.cluster().last_primary, None, "the last primary is too old to fail open to");
        // A standby is promoted: the writer follows at once.
        e.report(vec![(4, primary(2))]).await;
        assert_eq!(e.cluster().writer, Some(2));
        e.engine.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_primary_ever_seen_there_is_nothing_to_fail_open_to() {
        let e = start();
        e.report(vec![(0, OK), (1, OK), (2, failed()), (3, replica(0.0)), (4, replica(0.0))]).await;
        let c = e.cluster();
        assert_eq!((c.writer, c.last_primary), (None, None), "replicas are never the writer");
        e.engine.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_of_another_identity_is_never_the_writer() {
        let e = start();
        // pg-a is a primary of another cluster (a subscriber, a wrong DSN); the other two
        // agree on ID, a majority of three: that is the cluster.
        e.report(vec![(0, OK), (1, OK), (2, foreign_primary()), (3, replica(0.0)), (4, replica(0.0))]).await;
        let c = e.cluster();
        assert_eq!((c.writer, c.primaries.clone(), c.lag[0]), (None, vec![], None));
        let mismatch = e.metrics.identity_mismatch.with_label_values(&["main", "pg-a"]).get();
        assert_eq!(mismatch, 1, "the identity alarm is raised");
        assert!(!e.fresh().0[0], "nor is it read from");
        // A real promotion in the cluster is followed.
        e.report(vec![(4, primary(2))]).await;
        assert_eq!(e.cluster().writer, Some(2));
        e.engine.stop().await;

        // Only the foreign primary and one replica answer: no majority, no identity, no
        // writer.
        let e = start();
        e.report(vec![(0, OK), (1, OK), (2, foreign_primary()), (3, replica(0.0)), (4, failed())]).await;
        assert_eq!(e.cluster().writer, None);
        e.engine.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn max_lag_has_hysteresis_and_a_hold_down() {
        let e = start();
        e.report(all_up()).await;
        assert_eq!(e.fresh(), (vec![true, true, true], true));
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(e.fresh(), (vec![true, true, true], false), "settled");
        // pg-b (rise 2, fall 2) goes over max_lag (5 s) once: still in.
        e.report(vec![(3, replica(9.0))]).await;
        assert!(e.fresh().0[1], "one probe over max_lag is not enough");
        e.report(vec![(3, replica(9.5))]).await;
        assert_eq!(e.fresh(), (vec![true, false, true], true), "two in a row: out, and recent");
        // Lag that cannot be known counts as over.
        e.report(vec![(3, Ok(Some(DbStatus { system_id: Some(ID), ..DbStatus::of(Role::Replica { lag: None }) })))])
            .await;
        e.report(vec![(3, replica(1.0))]).await;
        assert!(!e.fresh().0[1], "one probe back under is not enough");
        e.report(vec![(3, replica(1.0))]).await;
        assert!(e.fresh().0[1], "two in a row: back");
        tokio::time::sleep(Duration::from_millis(1900)).await;
        assert!(e.fresh().1, "within the hold-down: the reader answers with failover_ttl");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!e.fresh().1, "2.2 s after: settled");
        e.engine.stop().await;
    }

    /// A status with downstream standbys, as `pg_stat_replication` lists them.
    fn with_standbys(outcome: Outcome, name: Option<&str>, standbys: &[(&str, f64)]) -> Outcome {
        let mut status = outcome.unwrap().unwrap();
        status.name = name.map(str::to_owned);
        status.standbys = standbys
            .iter()
            .map(|(n, lag)| super::writer::Standby { name: (*n).to_owned(), lag: Some(*lag), bytes: Some(4096) })
            .collect();
        Ok(Some(status))
    }

    #[tokio::test(start_paused = true)]
    async fn the_upstreams_view_and_the_chain_make_lag_worse_never_better() {
        let e = start();
        // pg-b says it is current; its primary sees it 8 s behind: 8 s it is.
        let b = with_standbys(replica(0.0), Some("b"), &[("c", 0.0)]);
        e.report(vec![(0, OK), (1, OK), (2, with_standbys(primary(1), None, &[("b", 8.0)])), (3, b)]).await;
        // pg-c streams from pg-b and is current with it: as far behind as pg-b.
        e.report(vec![(4, with_standbys(replica(0.0), Some("c"), &[]))]).await;
        assert_eq!(e.cluster().lag, vec![Some(0.0), Some(8.0), Some(8.0)]);
        let bytes = e.metrics.replica_bytes.with_label_values(&["main", "pg-b", "b"]).get();
        assert_eq!(bytes, 4096.0, "the upstream's bytes behind are exported");
        e.engine.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_reload_carries_each_clusters_truth_by_name() {
        let e = start();
        e.report(all_up()).await;
        e.report(vec![(3, replica(9.0)), (3, replica(9.0))]).await;
        let (cluster, fresh) = (e.cluster(), e.fresh().0);
        assert_eq!((cluster.writer, fresh.clone()), (Some(0), vec![true, false, true]));
        let carry = e.engine.stop().await;
        // The same config again, with pg-a listed last: state follows names, not places.
        let a = "[clusters.main.members.pg-a]\nregion = \"a\"\nkind = \"postgres\"\ndsn = \"host=127.0.0.1 port=9\"\n";
        assert!(CONFIG.contains(a));
        let moved = CONFIG.replace(a, "").replace("[names.fo]", &format!("{a}[names.fo]"));
        let e = start_with(&moved, Some(carry));
        e.report(vec![]).await;
        let h = e.health();
        assert_eq!(h.clusters[0].writer, Some(2), "pg-a, now third, is still the writer");
        assert_eq!(h.readers[0].fresh, vec![fresh[1], fresh[2], fresh[0]], "nothing flips by itself");
        e.engine.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_writer_that_turns_replica_or_foreign_is_dropped_at_once() {
        // A switchover that demotes first (CloudNativePG, Patroni): no grace for a
        // replica, nothing to fail open to.
        let e = start();
        e.report(all_up()).await;
        e.report(vec![(2, replica(0.0))]).await;
        let c = e.cluster();
        assert_eq!((c.writer, c.last_primary), (None, None));
        e.report(vec![(3, primary(2))]).await;
        assert_eq!(e.cluster().writer, Some(1));
        e.engine.stop().await;

        // The writer's address now leads to another cluster's primary.
        let e = start();
        e.report(all_up()).await;
        e.report(vec![(2, foreign_primary())]).await;
        let c = e.cluster();
        assert_eq!((c.writer, c.last_primary, c.lag[0]), (None, None, None));
        e.engine.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_split_brains_loser_is_read_from_by_nobody() {
        let e = start();
        e.report(all_up()).await;
        // pg-c is promoted while pg-a still runs: pg-c (timeline 2) wins.
        e.report(vec![(4, primary(2))]).await;
        let c = e.cluster();
        assert_eq!((c.writer, c.primaries.clone()), (Some(2), vec![0, 2]));
        assert_eq!(c.lag, vec![None, Some(0.5), Some(0.0)], "the loser has diverged: no lag to speak of");
        assert!(!e.fresh().0[0], "and it is not read from");
        e.engine.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_promotion_records_the_new_writers_last_lag_as_a_replica() {
        let e = start();
        e.report(vec![(0, OK), (1, OK), (2, primary(1)), (3, replica(0.0)), (4, replica(1.5))]).await;
        let rpo = e.metrics.writer_rpo.with_label_values(&["main"]).get();
        assert!(rpo.is_nan(), "the first writer is no promotion: nothing to report");
        e.report(vec![(2, failed()), (4, primary(2))]).await;
        assert_eq!(e.cluster().writer, Some(2));
        assert_eq!(e.metrics.writer_rpo.with_label_values(&["main"]).get(), 1.5);
        e.engine.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_within_the_hold_down_still_answers_with_failover_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let text = CONFIG.replace("[health]\n", &format!("[health]\nstate_file = \"{}\"\n", path.display()));
        let e = start_with(&text, None);
        e.report(all_up()).await;
        tokio::time::sleep(Duration::from_millis(2100)).await;
        e.report(vec![(1, failed()), (2, failed()), (4, primary(2))]).await;
        assert_eq!(e.cluster().writer, Some(2));
        e.engine.stop().await;
        tokio::time::sleep(Duration::from_millis(600)).await;

        // A new process: no carry, only the file. Nothing probed yet.
        let e = start_with(&text, None);
        e.report(vec![]).await;
        let h = e.health();
        assert!(h.ready, "restored: answering at once");
        assert_eq!((h.up.clone(), h.recent.clone()), (vec![true, false], vec![false, true]), "b is down, recently");
        let c = &h.clusters[0];
        assert_eq!((c.writer, c.writer_unsettled), (Some(2), true), "the writer changed 0.6 s ago: short TTL");
        e.engine.stop().await;
    }
}
