//! Every fuzz input kept in the repository, replayed through the fuzz targets' own
//! code: the seeds (`fuzz/seeds/TARGET`) and every crash or hostile input found
//! (`fuzz/regressions/TARGET`). A panic here is a regression.

use std::path::PathBuf;

use switchyard::fuzzing::{Harness, config_target, packet_target, tcp_stream_target};

use crate::support::repo;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in ["seeds", "regressions"] {
        let dir = repo().join("fuzz").join(kind).join(target);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n != "README.md") {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "inputs for {target}");
    out
}

/// Runs each input on its own thread, so that a panic names the input.
fn replay(target: &str, run: fn(&[u8])) {
    for (path, data) in inputs(target) {
        let outcome = std::thread::spawn(move || run(&data)).join();
        assert!(outcome.is_ok(), "{target} panics on {}", path.display());
    }
}

thread_local! {
    static HARNESS: Harness = Harness::new();
}

#[test]
fn packet_inputs() {
    replay("packet", |d| HARNESS.with(|h| packet_target(h, d)));
}

#[test]
fn tcp_stream_inputs() {
    replay("tcp_stream", |d| HARNESS.with(|h| tcp_stream_target(h, d)));
}

#[test]
fn config_inputs() {
    replay("config", config_target);
}
