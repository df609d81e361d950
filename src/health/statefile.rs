//! The last known health, kept across restarts so that a restarted server answers
//! honestly at once: region states with when and why they changed, and per database
//! cluster its identity, writer and last observed primary, with times. Written
//! atomically (temp file, fsync, rename); a missing file is normal, a corrupt one is
//! ignored. Times are Unix seconds (the wall clock survives a restart; `Instant`s do not).
//! Version 1 files (region → up, one writer) are still read.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::state::Drain;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Saved {
    pub regions: HashMap<String, SavedRegion>,
    pub clusters: HashMap<String, SavedCluster>,
    /// Operators' drains and undrains by region.
    pub drains: BTreeMap<String, Drain>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SavedRegion {
    pub up: bool,
    /// When it last changed.
    pub changed_at: Option<f64>,
    /// Why it is down (its failing checks' last failures).
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SavedCluster {
    pub identity: Option<u64>,
    /// Member names.
    pub writer: Option<String>,
    pub writer_changed_at: Option<f64>,
    pub last_primary: Option<String>,
    /// When `last_primary` was last seen as primary.
    pub last_primary_at: Option<f64>,
}

/// The cluster a version 1 file's writer belongs to (the one `[regions.*.database]` makes).
const V1_CLUSTER: &str = "default";

/// Reads the state file; `Ok(None)` if there is none.
pub fn load(path: &Path) -> Result<Option<Saved>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))?;
    let regions = v.get("regions").and_then(Value::as_object).ok_or("no `regions` object")?;
    match v.get("version").and_then(Value::as_u64) {
        Some(1) => {
            let regions = regions
                .iter()
                .map(|(k, up)| {
                    let up = up.as_bool().ok_or(format!("region `{k}` is not true/false"))?;
                    Ok((k.clone(), SavedRegion { up, ..SavedRegion::default() }))
                })
                .collect::<Result<_, String>>()?;
            let writer = v.get("writer").and_then(Value::as_str).map(str::to_owned);
            let clusters = writer
                .map(|w| {
                    let c = SavedCluster { writer: Some(w.clone()), last_primary: Some(w), ..SavedCluster::default() };
                    (V1_CLUSTER.to_owned(), c)
                })
                .into_iter()
                .collect();
            Ok(Some(Saved { regions, clusters, drains: BTreeMap::new() }))
        }
        Some(2) => {
            let regions = regions
                .iter()
                .map(|(k, r)| {
                    let up = r.get("up").and_then(Value::as_bool).ok_or(format!("region `{k}` has no `up`"))?;
                    let reasons = r
                        .get("reasons")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                        .unwrap_or_default();
                    Ok((
                        k.clone(),
                        SavedRegion { up, changed_at: r.get("changed_at").and_then(Value::as_f64), reasons },
                    ))
                })
                .collect::<Result<_, String>>()?;
            let text = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
            let clusters = v
                .get("clusters")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, c)| {
                    let saved = SavedCluster {
                        identity: text(c, "identity").and_then(|i| i.parse().ok()),
                        writer: text(c, "writer"),
                        writer_changed_at: c.get("writer_changed_at").and_then(Value::as_f64),
                        last_primary: text(c, "last_primary"),
                        last_primary_at: c.get("last_primary_at").and_then(Value::as_f64),
                    };
                    (k.clone(), saved)
                })
                .collect();
            let drains = v
                .get("drains")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, d)| crate::fleet::override_from_value(d).map(|d| (k.clone(), d)))
                .collect();
            Ok(Some(Saved { regions, clusters, drains }))
        }
        _ => Err("unknown state file version".into()),
    }
}

pub fn save(path: &Path, saved: &Saved) -> std::io::Result<()> {
    let mut regions: Vec<(&String, &SavedRegion)> = saved.regions.iter().collect();
    regions.sort_by(|a, b| a.0.cmp(b.0));
    let mut clusters: Vec<(&String, &SavedCluster)> = saved.clusters.iter().collect();
    clusters.sort_by(|a, b| a.0.cmp(b.0));
    let v = json!({
        "version": 2,
        "regions": regions.into_iter().map(|(k, r)| (k.clone(), json!({
            "up": r.up,
            "changed_at": r.changed_at,
            "reasons": r.reasons,
        }))).collect::<serde_json::Map<_, _>>(),
        "clusters": clusters.into_iter().map(|(k, c)| (k.clone(), json!({
            // A string: a u64 does not survive every JSON reader.
            "identity": c.identity.map(|i| i.to_string()),
            "writer": c.writer,
            "writer_changed_at": c.writer_changed_at,
            "last_primary": c.last_primary,
            "last_primary_at": c.last_primary_at,
        }))).collect::<serde_json::Map<_, _>>(),
        "drains": saved.drains.iter().map(|(k, d)| (k.clone(), crate::fleet::override_to_value(d)))
            .collect::<serde_json::Map<_, _>>(),
    });
    write_atomically(path, serde_json::to_string_pretty(&v).unwrap_or_default().as_bytes())
}

/// Replaces `path` with `body` so that a crash leaves the old file or the new one, never
/// a part: a temporary file beside it, fsync, rename, and the directory synced.
pub fn write_atomically(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(body)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    // The rename itself survives a power cut once the directory is synced too.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path), Ok(None));
        let down = SavedRegion { up: false, changed_at: Some(1_790_000_000.5), reasons: vec!["timeout: 2s".into()] };
        let saved = Saved {
            regions: [
                ("us-east".to_owned(), down),
                ("eu-west".to_owned(), SavedRegion { up: true, ..Default::default() }),
            ]
            .into_iter()
            .collect(),
            clusters: [(
                "orders".to_owned(),
                SavedCluster {
                    identity: Some(u64::MAX - 7),
                    writer: Some("pg-eu".into()),
                    writer_changed_at: Some(1_790_000_001.0),
                    last_primary: Some("pg-eu".into()),
                    last_primary_at: Some(1_790_000_009.0),
                },
            )]
            .into_iter()
            .collect(),
            drains: [(
                "us-east".to_owned(),
                Drain { drained: true, by: "alice".into(), at: 3.5, why: "upgrade".into(), ..Drain::default() },
            )]
            .into_iter()
            .collect(),
        };
        save(&path, &saved).unwrap();
        assert_eq!(load(&path), Ok(Some(saved)));
        std::fs::write(&path, "{\"version\": 2, \"regions\": {\"us-east\": tru").unwrap();
        assert!(load(&path).unwrap_err().contains("not valid JSON"));
        std::fs::write(&path, "").unwrap();
        assert!(load(&path).is_err());
    }

    #[test]
    fn version_1_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, r#"{"version": 1, "regions": {"us-east": false}, "writer": "eu-west"}"#).unwrap();
        let saved = load(&path).unwrap().unwrap();
        assert!(!saved.regions["us-east"].up);
        let c = &saved.clusters["default"];
        assert_eq!((c.writer.as_deref(), c.last_primary_at), (Some("eu-west"), None));
    }
}
