//! What one vantage point publishes, and operator actions: the bucket's wire format.
//! JSON read as untyped values (as the state file is), so that an instance of another
//! version, or a hand-edited key, is read as far as it can be and never panics.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// One vantage's view: every check's state, and every database member's status.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    /// Check id → what this vantage sees.
    pub checks: BTreeMap<String, CheckSeen>,
    /// `cluster/member` → what this vantage sees of it.
    pub members: BTreeMap<String, MemberSeen>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckSeen {
    /// `None`: no result yet.
    pub up: Option<bool>,
    /// `ok`, or the failure.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MemberSeen {
    /// Reached (its check is up) and said what it is.
    pub primary: bool,
    pub timeline: u32,
    pub system_id: Option<u64>,
    /// Lag in seconds as this vantage measures it; `None`: unknown.
    pub lag: Option<f64>,
    /// Reader name → within its `max_lag` (with this vantage's rise/fall).
    pub fresh: BTreeMap<String, bool>,
}

impl Observation {
    pub fn to_json(&self) -> Vec<u8> {
        let checks: serde_json::Map<String, Value> =
            self.checks.iter().map(|(k, c)| (k.clone(), json!({"up": c.up, "reason": c.reason}))).collect();
        let members: serde_json::Map<String, Value> = self
            .members
            .iter()
            .map(|(k, m)| {
                let v = json!({
                    "primary": m.primary,
                    "timeline": m.timeline,
                    "system_id": m.system_id.map(|i| i.to_string()),
                    "lag": m.lag,
                    "fresh": m.fresh,
                });
                (k.clone(), v)
            })
            .collect();
        serde_json::to_vec(&json!({"version": 1, "checks": checks, "members": members})).unwrap_or_default()
    }

    /// Reads what `to_json` wrote; `None` if it is not an observation at all.
    pub fn from_json(bytes: &[u8]) -> Option<Observation> {
        let v: Value = serde_json::from_slice(bytes).ok()?;
        if v.get("version").and_then(Value::as_u64) != Some(1) {
            return None;
        }
        let checks = v
            .get("checks")?
            .as_object()?
            .iter()
            .map(|(k, c)| {
                let seen = CheckSeen {
                    up: c.get("up").and_then(Value::as_bool),
                    reason: c.get("reason").and_then(Value::as_str).unwrap_or("").to_owned(),
                };
                (k.clone(), seen)
            })
            .collect();
        let members = v
            .get("members")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, m)| {
                let seen = MemberSeen {
                    primary: m.get("primary").and_then(Value::as_bool).unwrap_or(false),
                    timeline: m.get("timeline").and_then(Value::as_u64).unwrap_or(0) as u32,
                    system_id: m.get("system_id").and_then(Value::as_str).and_then(|s| s.parse().ok()),
                    lag: m.get("lag").and_then(Value::as_f64),
                    fresh: m
                        .get("fresh")
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                        .filter_map(|(n, f)| f.as_bool().map(|f| (n.clone(), f)))
                        .collect(),
                };
                (k.clone(), seen)
            })
            .collect();
        Some(Observation { checks, members })
    }
}

/// An operator's override of one region, shared by every instance.
pub type Override = crate::state::Drain;

/// An override as the operators' bucket (and the state file) keep it.
pub fn override_to_value(o: &Override) -> Value {
    json!({"drained": o.drained, "by": o.by, "at": o.at, "why": o.why, "effective_at": o.effective_at, "short_until": o.short_until})
}

pub fn override_from_value(v: &Value) -> Option<Override> {
    Some(Override {
        drained: v.get("drained")?.as_bool()?,
        by: v.get("by").and_then(Value::as_str).unwrap_or("").to_owned(),
        at: v.get("at").and_then(Value::as_f64).unwrap_or(0.0),
        why: v.get("why").and_then(Value::as_str).unwrap_or("").to_owned(),
        revision: 0,
        // Older writers knew no notice: at once, no short TTL.
        effective_at: v.get("effective_at").and_then(Value::as_f64).unwrap_or(0.0),
        short_until: v.get("short_until").and_then(Value::as_f64).unwrap_or(0.0),
    })
}

pub fn override_to_json(o: &Override) -> Vec<u8> {
    serde_json::to_vec(&override_to_value(o)).unwrap_or_default()
}

pub fn override_from_json(bytes: &[u8]) -> Option<Override> {
    override_from_value(&serde_json::from_slice(bytes).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_garbage() {
        let mut o = Observation::default();
        o.checks.insert("us-east/http:http://x/".into(), CheckSeen { up: Some(false), reason: "timeout: 2s".into() });
        o.checks.insert("eu-west/tcp:y:1".into(), CheckSeen { up: None, reason: String::new() });
        let fresh = [("read".to_owned(), true)].into_iter().collect();
        let m = MemberSeen { primary: false, timeline: 0, system_id: Some(u64::MAX - 1), lag: Some(1.5), fresh };
        o.members.insert("main/pg-a".into(), m);
        assert_eq!(Observation::from_json(&o.to_json()), Some(o));
        assert_eq!(Observation::from_json(b"{\"version\": 9}"), None);
        assert_eq!(Observation::from_json(b"\xff"), None);
        let d = Override {
            drained: true,
            by: "admin".into(),
            at: 1.5,
            why: "maintenance".into(),
            revision: 0,
            effective_at: 61.5,
            short_until: 61.5,
        };
        assert_eq!(override_from_json(&override_to_json(&d)), Some(d));
        assert_eq!(override_from_json(b"{}"), None);
    }
}
