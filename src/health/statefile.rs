//! The last known health, kept across restarts so that a restarted server answers
//! honestly at once. Written atomically (temp file, fsync, rename) whenever a region
//! or the writer changes; a missing file is normal, a corrupt one is ignored.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Saved {
    /// Region name → up.
    pub regions: HashMap<String, bool>,
    pub writer: Option<String>,
}

/// Reads the state file; `Ok(None)` if there is none.
pub fn load(path: &Path) -> Result<Option<Saved>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))?;
    if v.get("version").and_then(Value::as_u64) != Some(1) {
        return Err("unknown state file version".into());
    }
    let regions = v
        .get("regions")
        .and_then(Value::as_object)
        .ok_or("no `regions` object")?
        .iter()
        .map(|(k, up)| up.as_bool().map(|b| (k.clone(), b)).ok_or(format!("region `{k}` is not true/false")))
        .collect::<Result<_, _>>()?;
    let writer = v.get("writer").and_then(Value::as_str).map(str::to_owned);
    Ok(Some(Saved { regions, writer }))
}

pub fn save(path: &Path, saved: &Saved) -> std::io::Result<()> {
    let mut regions: Vec<(&String, &bool)> = saved.regions.iter().collect();
    regions.sort();
    let v = json!({
        "version": 1,
        "regions": regions.into_iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "writer": saved.writer,
    });
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(serde_json::to_string_pretty(&v).unwrap_or_default().as_bytes())?;
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
        let saved = Saved {
            regions: [("us-east".to_owned(), false), ("eu-west".to_owned(), true)].into_iter().collect(),
            writer: Some("eu-west".into()),
        };
        save(&path, &saved).unwrap();
        assert_eq!(load(&path), Ok(Some(saved)));
        std::fs::write(&path, "{\"version\": 1, \"regions\": {\"us-east\": tru").unwrap();
        assert!(load(&path).unwrap_err().contains("not valid JSON"));
        std::fs::write(&path, "").unwrap();
        assert!(load(&path).is_err());
    }
}
