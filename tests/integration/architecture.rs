//! The invariants of ARCHITECTURE.md that a reading of the source can check: which
//! module may import which (arrows point one way), and where serde's derives may appear.
//! Test code (`#[cfg(test)]` modules and `tests.rs` files) is not held to the rules.

use std::path::{Path, PathBuf};

use crate::support::repo;

/// The non-test source of every `.rs` file under `src/DIR` (or the file `src/DIR.rs`).
fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    let root = repo().join("src");
    let mut out = Vec::new();
    let mut stack = vec![root.join(dir)];
    if root.join(format!("{dir}.rs")).is_file() {
        stack = vec![root.join(format!("{dir}.rs"))];
    }
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if p.extension().is_some_and(|e| e == "rs") && p.file_name().is_some_and(|n| n != "tests.rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_owned();
            out.push((p, code));
        }
    }
    assert!(!out.is_empty(), "no source under src/{dir}");
    out
}

fn relative(p: &Path) -> String {
    p.strip_prefix(repo()).unwrap_or(p).display().to_string()
}

/// Every `crate::MODULE` or `super::…` path a file names, with the line.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let line = line.split("//").next().unwrap_or_default();
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let module: String =
                rest[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            out.push((n + 1, module));
            rest = &rest[at + 7..];
        }
    }
    out
}

#[test]
fn arrows_point_one_way() {
    // (modules, what they must not import, why)
    let rules: &[(&[&str], &[&str], &str)] = &[
        (
            &["query", "listen"],
            &["config", "health", "fleet", "admin", "app", "reload", "cli", "demo", "fuzzing"],
            "the DNS path reads the model, never the control plane",
        ),
        (
            &["routing", "model", "geo", "state"],
            &["health", "fleet", "admin", "app", "reload", "cli", "demo", "fuzzing", "listen", "query"],
            "decision code and data types know nothing of sockets or the control plane",
        ),
        (&["routing"], &["config"], "routing reads the compiled model"),
        (
            &["config"],
            &[
                "model", "routing", "state", "query", "listen", "health", "fleet", "admin", "app", "reload", "cli",
                "metrics",
            ],
            "config is the bottom of the control plane",
        ),
        (
            &["fleet"],
            &["health", "admin", "app", "reload", "cli", "listen", "query", "routing", "model"],
            "the fleet carries observations; deciding is the health engine's",
        ),
        (&["hash"], &["*"], "a leaf"),
    ];
    let mut violations = Vec::new();
    for (modules, forbidden, why) in rules {
        for module in *modules {
            for (path, code) in sources(module) {
                for (line, imported) in crate_paths(&code) {
                    if forbidden.contains(&"*") || forbidden.contains(&imported.as_str()) {
                        violations.push(format!("{}:{line}: imports crate::{imported} ({why})", relative(&path)));
                    }
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn deserialize_only_in_the_config_reader_and_the_geoip_records() {
    let allowed = ["src/config/raw.rs", "src/config/validate/mod.rs", "src/geo/mod.rs"];
    let mut violations = Vec::new();
    for module in
        ["query", "listen", "routing", "model", "config", "health", "fleet", "admin", "app", "reload", "cli", "state"]
    {
        for (path, code) in sources(module) {
            let rel = relative(&path);
            if allowed.iter().any(|a| rel.ends_with(a)) {
                continue;
            }
            for (n, line) in code.lines().enumerate() {
                if line.contains("Deserialize") {
                    violations.push(format!("{rel}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(violations.is_empty(), "Deserialize outside the config reader:\n{}", violations.join("\n"));
}
