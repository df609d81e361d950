//! The failover record: one event per region transition and per writer change, with
//! its timeline, for the postmortem, the status page and the application.
//!
//! The health engine records each change as it decides it ([`Events::region`],
//! [`Events::writer`]): the timeline it knows then (the first failed probe, the verdict,
//! the end of the hold-down; for a writer: when the old one was last seen primary, when
//! the promotion was seen, the promoted member's lag before it). One field comes later:
//! `first_answer_changed`, the first DNS answer given on the new state after it was
//! published (going down: an answer from another region; coming back or a new writer:
//! one from that region), which a small task reads off the per-region query counters
//! (every 20 ms, until the hold-down ends), so the DNS path itself does nothing for it.
//!
//! The last [`KEEP`] events are kept in memory and, with a state file, beside it
//! (`<state file stem>.events.json`, written atomically), so a restart keeps them. A
//! writer change is also handed to the webhooks and, with a fleet, to a NATS subject: by
//! one instance of the fleet (the first by name among those it decides with), so the
//! application hears each change once, not once per instance.
//! Nothing here ever blocks the health engine.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tracing::warn;

use crate::metrics::Metrics;

/// How many events are kept.
pub const KEEP: usize = 500;

/// How often the counters are read for an event's first changed answer.
const ANSWER_POLL: Duration = Duration::from_millis(20);

/// At most this many events wait for their first changed answer at once.
const MAX_WATCHERS: usize = 16;

/// The region transition the engine decided, with what it knows of its timeline.
#[derive(Debug, Clone)]
pub struct RegionChange {
    pub region: String,
    pub up: bool,
    pub reasons: Vec<String>,
    /// Unix seconds: the first probe of the streak that turned the region (the first
    /// failure going down, the first success coming back), if this instance saw one.
    pub first_probe: Option<f64>,
    /// Unix seconds of the verdict.
    pub verdict: f64,
    pub hold_down: Duration,
    /// The region's query-counter slot.
    pub slot: u16,
}

/// A writer change, with its timeline.
#[derive(Debug, Clone)]
pub struct WriterChange {
    pub cluster: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub why: String,
    pub promotion: bool,
    /// The promoted member's last lag as a replica (the RPO).
    pub lag: Option<f64>,
    /// Unix seconds: when the old writer was last seen as primary.
    pub last_seen_primary: Option<f64>,
    /// Unix seconds: when the new writer was first seen as primary (the verdict time if
    /// it is not known better).
    pub promotion_seen: f64,
    pub verdict: f64,
    pub hold_down: Duration,
    /// The new writer's region's query-counter slot.
    pub slot: Option<u16>,
    /// Whether this instance tells the application (webhooks, NATS): with a fleet, one
    /// instance does.
    pub tell: bool,
}

struct Log {
    events: VecDeque<Value>,
    file: Option<PathBuf>,
    /// Bumped on every change; the writer task writes the newest.
    generation: u64,
}

/// The record, shared by the health engine (which writes it), the admin server and the
/// notifications; it outlives reloads.
pub struct Events {
    log: Mutex<Log>,
    metrics: Arc<Metrics>,
    /// Whom to tell about writer changes: set from each config.
    notifier: Mutex<Option<(crate::config::NotifyConfig, Fingerprint, crate::notify::Notifier)>>,
    /// With a fleet and `nats_subject`: where writer changes are published too.
    nats: Mutex<Option<(String, Arc<crate::fleet::Fleet>)>>,
    written: Arc<Mutex<u64>>,
    /// Events waiting for their first changed answer.
    watching: std::sync::atomic::AtomicUsize,
}

/// What a notifier was started with: each webhook's URL and secret (to notice a
/// rotated secret).
type Fingerprint = Vec<(String, Option<String>)>;

/// The events file that goes with a state file.
pub fn file_for(state_file: &Path) -> PathBuf {
    let stem = state_file.file_stem().map_or("switchyard".into(), |s| s.to_string_lossy().into_owned());
    state_file.with_file_name(format!("{stem}.events.json"))
}

/// Rounds to the millisecond: the record is for people.
fn ms(t: f64) -> f64 {
    (t * 1000.0).round() / 1000.0
}

impl Events {
    pub fn new(metrics: Arc<Metrics>) -> Events {
        Events {
            log: Mutex::new(Log { events: VecDeque::new(), file: None, generation: 0 }),
            metrics,
            notifier: Mutex::new(None),
            nats: Mutex::new(None),
            written: Arc::new(Mutex::new(0)),
            watching: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Keeps the record in `file` (none: memory only). Events already in the file come
    /// first; a file that cannot be read or parsed is logged and started afresh.
    pub fn set_file(&self, file: Option<PathBuf>) {
        let mut log = self.log.lock().expect("not poisoned");
        if log.file == file {
            return;
        }
        if let Some(path) = &file {
            match std::fs::read(path) {
                Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                    Ok(Value::Array(old)) => {
                        let mut events: VecDeque<Value> = old.into_iter().filter(Value::is_object).collect();
                        let known: std::collections::HashSet<String> =
                            events.iter().filter_map(|e| e["id"].as_str().map(str::to_owned)).collect();
                        events.extend(
                            log.events.drain(..).filter(|e| !e["id"].as_str().is_some_and(|id| known.contains(id))),
                        );
                        while events.len() > KEEP {
                            events.pop_front();
                        }
                        log.events = events;
                    }
                    _ => warn!(path = %path.display(), "the events file is not a JSON list: starting afresh"),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => warn!(path = %path.display(), error = %e, "cannot read the events file"),
            }
        }
        log.file = file;
    }

    /// Who to tell about writer changes, from the config now serving. The secrets are
    /// read again each time (a rotated secret file takes effect on reload); a notifier is
    /// started afresh only when `[notify]` or a secret changed. A webhook whose secret
    /// cannot be read, or is empty, is left out (and said so): it is never sent unsigned.
    pub fn set_notify(&self, config: &crate::config::NotifyConfig, fleet: Option<Arc<crate::fleet::Fleet>>) {
        *self.nats.lock().expect("not poisoned") = config.nats_subject.clone().zip(fleet);
        let mut hooks = Vec::new();
        for w in &config.webhooks {
            let secret = match &w.secret_file {
                None => None,
                Some(p) => match std::fs::read_to_string(p).map(|s| s.trim().to_owned()) {
                    Ok(s) if !s.is_empty() => Some(crate::config::Secret::new(s)),
                    Ok(_) => {
                        tracing::error!(path = %p.display(), "a webhook's secret file is empty: the webhook is left out");
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(path = %p.display(), error = %e, "cannot read a webhook's secret file: the webhook is left out");
                        continue;
                    }
                },
            };
            hooks.push(crate::notify::Webhook { url: w.url.clone(), secret, timeout: w.timeout });
        }
        let fingerprint: Vec<(String, Option<String>)> =
            hooks.iter().map(|h| (h.url.clone(), h.secret.as_ref().map(|s| s.expose().to_owned()))).collect();
        let mut current = self.notifier.lock().expect("not poisoned");
        if current.as_ref().is_some_and(|(c, f, _)| c == config && *f == fingerprint) {
            return;
        }
        if let Some((_, _, old)) = current.take() {
            old.stop();
        }
        if hooks.is_empty() {
            return;
        }
        let policy = crate::notify::Policy {
            queue: config.queue,
            give_up_after: config.give_up_after,
            first_backoff: config.backoff,
            ..crate::notify::Policy::default()
        };
        let m = &self.metrics;
        let counters = crate::notify::Counters {
            delivered: m.notifications.with_label_values(&["delivered"]),
            failed_attempts: m.notifications.with_label_values(&["failed_attempt"]),
            dropped: m.notifications.with_label_values(&["dropped"]),
        };
        *current = Some((config.clone(), fingerprint, crate::notify::Notifier::start(hooks, policy, counters)));
    }

    /// Stops the webhooks' delivery (shutdown).
    pub fn stop(&self) {
        if let Some((_, _, n)) = self.notifier.lock().expect("not poisoned").take() {
            n.stop();
        }
    }

    /// The events at or after `since` (Unix seconds), oldest first.
    pub fn since(&self, since: f64) -> Vec<Value> {
        let log = self.log.lock().expect("not poisoned");
        log.events.iter().filter(|e| e["at"].as_f64().is_some_and(|t| t >= since)).cloned().collect()
    }

    /// Records a region transition.
    pub fn region(self: &Arc<Self>, c: RegionChange) {
        let kind = if c.up { "region_up" } else { "region_down" };
        let id = format!("{}-{kind}-{}", (c.verdict * 1000.0) as u64, c.region);
        let detection = c.first_probe.map(|t| (c.verdict - t).max(0.0));
        if !c.up
            && let Some(d) = detection
        {
            self.metrics.failover_detection.observe(d);
        }
        let event = json!({
            "id": id,
            "kind": kind,
            "at": ms(c.verdict),
            "region": c.region,
            "reasons": c.reasons,
            "timeline": {
                if c.up { "first_passed_probe" } else { "first_failed_probe" }: c.first_probe.map(ms),
                "verdict": ms(c.verdict),
                "first_answer_changed": Value::Null,
                "hold_down_end": ms(c.verdict + c.hold_down.as_secs_f64()),
            },
            "detection_seconds": detection.map(ms),
        });
        self.push(event);
        // Going down, an answer that changed names another region; coming back, it
        // names this one. (Slot 0 is no region: static data, NXDOMAIN, SERVFAIL.)
        let (slot, up) = (c.slot, c.up);
        self.watch_answers(id, c.hold_down, move |s| if up { s == slot } else { s != slot && s != 0 });
    }

    /// Records a writer change, and tells the application.
    pub fn writer(self: &Arc<Self>, c: WriterChange) {
        let id = format!("{}-writer-{}", (c.verdict * 1000.0) as u64, c.cluster);
        let gap = c.last_seen_primary.map(|t| (c.promotion_seen - t).max(0.0));
        if c.to.is_some()
            && let Some(g) = gap
        {
            self.metrics.writer_gap.with_label_values(&[&c.cluster]).observe(g);
        }
        let event = json!({
            "id": id,
            "kind": "writer_changed",
            "at": ms(c.verdict),
            "cluster": c.cluster,
            "from": c.from,
            "to": c.to,
            "reason": c.why,
            "promotion": c.promotion,
            "promoted_lag_seconds": c.lag.map(ms),
            "without_writer_seconds": gap.map(ms),
            "timeline": {
                "last_seen_primary": c.last_seen_primary.map(ms),
                "promotion_seen": ms(c.promotion_seen),
                "verdict": ms(c.verdict),
                "first_answer_changed": Value::Null,
                "hold_down_end": ms(c.verdict + c.hold_down.as_secs_f64()),
            },
        });
        self.push(event.clone());
        if c.tell
            && let Some((_, _, n)) = self.notifier.lock().expect("not poisoned").as_ref()
        {
            n.notify(&id, "writer.changed", event.clone());
        }
        if c.tell
            && let Some((subject, fleet)) = self.nats.lock().expect("not poisoned").as_ref()
        {
            fleet.publish(subject, serde_json::to_vec(&event).unwrap_or_default());
        }
        // The first answer from the new writer's region; no writer, nothing to watch.
        if let Some(slot) = c.slot.filter(|&s| s != 0) {
            self.watch_answers(id, c.hold_down, move |s| s == slot);
        }
    }

    fn push(&self, event: Value) {
        let mut log = self.log.lock().expect("not poisoned");
        log.events.push_back(event);
        while log.events.len() > KEEP {
            log.events.pop_front();
        }
        self.save(&mut log);
    }

    /// Fills in an event's field inside its timeline.
    fn set_timeline(&self, id: &str, field: &str, value: f64) {
        let mut log = self.log.lock().expect("not poisoned");
        let Some(e) = log.events.iter_mut().rev().find(|e| e["id"] == id) else { return };
        e["timeline"][field] = json!(ms(value));
        self.save(&mut log);
    }

    /// Writes the record off the caller's thread; an older write that finds a newer one
    /// done stands down, so the file never goes back in time.
    fn save(&self, log: &mut Log) {
        let Some(path) = log.file.clone() else { return };
        log.generation += 1;
        let (generation, written) = (log.generation, self.written.clone());
        let body = serde_json::to_vec_pretty(&Value::Array(log.events.iter().cloned().collect())).unwrap_or_default();
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        rt.spawn_blocking(move || {
            let mut last = written.lock().expect("not poisoned");
            if *last >= generation {
                return;
            }
            if let Err(e) = crate::health::statefile::write_atomically(&path, &body) {
                warn!(path = %path.display(), error = %e, "cannot write the events file");
            }
            *last = generation;
        });
    }

    /// Waits (until `within` has passed) for the first answer counted in a slot that
    /// `changed` accepts, and records its time as the event's first changed answer.
    fn watch_answers(self: &Arc<Self>, id: String, within: Duration, changed: impl Fn(u16) -> bool + Send + 'static) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        // A flapping region must not pile watchers up: past a few, the field stays empty.
        if self.watching.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= MAX_WATCHERS {
            self.watching.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        let events = self.clone();
        let baseline = self.metrics.queries.answered(&changed);
        let deadline = std::time::Instant::now() + within.max(Duration::from_secs(1));
        rt.spawn(async move {
            while std::time::Instant::now() < deadline {
                tokio::time::sleep(ANSWER_POLL).await;
                if events.metrics.queries.answered(&changed) > baseline {
                    events.set_timeline(&id, "first_answer_changed", crate::reload::unix_now());
                    break;
                }
            }
            events.watching.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        });
    }
}

/// One event as a line of a postmortem timeline.
pub fn describe(e: &Value) -> String {
    let t = |v: &Value| v.as_f64().map_or("-".to_owned(), time_of_day);
    let secs = |v: &Value| v.as_f64().map_or("-".to_owned(), |s| format!("{s:.1}s"));
    let tl = &e["timeline"];
    match e["kind"].as_str() {
        Some("writer_changed") => format!(
            "{} cluster {}: writer {} → {} ({}); last seen primary {}, promotion seen {}, first changed answer {}, hold-down until {}; promoted member's lag {}, without a writer {}",
            t(&e["at"]),
            e["cluster"].as_str().unwrap_or("?"),
            e["from"].as_str().unwrap_or("none"),
            e["to"].as_str().unwrap_or("none"),
            e["reason"].as_str().unwrap_or(""),
            t(&tl["last_seen_primary"]),
            t(&tl["promotion_seen"]),
            t(&tl["first_answer_changed"]),
            t(&tl["hold_down_end"]),
            secs(&e["promoted_lag_seconds"]),
            secs(&e["without_writer_seconds"]),
        ),
        Some(kind) => {
            let up = kind == "region_up";
            let first = if up { &tl["first_passed_probe"] } else { &tl["first_failed_probe"] };
            let reasons: Vec<&str> = e["reasons"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            format!(
                "{} region {} {}{}; first {} probe {}, verdict {}, first changed answer {}, hold-down until {}; detection {}",
                t(&e["at"]),
                e["region"].as_str().unwrap_or("?"),
                if up { "up" } else { "down" },
                if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join("; ")) },
                if up { "passed" } else { "failed" },
                t(first),
                t(&tl["verdict"]),
                t(&tl["first_answer_changed"]),
                t(&tl["hold_down_end"]),
                secs(&e["detection_seconds"]),
            )
        }
        None => e.to_string(),
    }
}

/// `2026-11-30T16:20:01.123Z` for Unix seconds.
pub fn time_of_day(unix: f64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::try_from_secs_f64(unix.max(0.0)).unwrap_or_default();
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(time_of_day(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(time_of_day(1_796_054_401.5), "2026-11-30T16:00:01.500Z");
        assert_eq!(time_of_day(951_782_400.0), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn the_file_sits_beside_the_state_file() {
        assert_eq!(
            file_for(Path::new("/var/lib/switchyard/state.json")),
            Path::new("/var/lib/switchyard/state.events.json")
        );
    }
}
