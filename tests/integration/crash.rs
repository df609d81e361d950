//! The binary killed with SIGKILL and started again: it answers from the last known
//! health within a second (the state file), and a truncated state file is ignored with
//! a log line, not a crash.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::dns::{first, query};
use crate::support::gateway::{Gateway, Mode};
use crate::support::{Spawned, ZONE, bin};

/// Starts `switchyard serve`.
fn serve(config: &Path) -> Spawned {
    Spawned::start(Command::new(bin()).args(["serve", "--admin", "127.0.0.1:0", "--config"]).arg(config))
}

/// One UDP query for `fo`: the answer's first address, or the rcode.
async fn ask(addr: SocketAddr) -> Option<String> {
    let m = query("fo.gslb.example.org.", RecordType::A);
    let reply = crate::support::dns::udp_raw(addr, &m.to_vec().unwrap(), Duration::from_millis(200)).await?;
    let r = hickory_proto::op::Message::from_vec(&reply).ok()?;
    Some(if r.metadata.response_code == ResponseCode::NoError {
        first(&r)
    } else {
        format!("{:?}", r.metadata.response_code)
    })
}

/// Asks until an answer comes; returns it and when it came.
async fn first_answer(addr: SocketAddr, within: Duration) -> (String, Instant) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(a) = ask(addr).await {
            return (a, Instant::now());
        }
        assert!(Instant::now() < deadline, "no answer within {within:?}");
    }
}

async fn until(addr: SocketAddr, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while ask(addr).await.as_deref() != Some(want) {
        assert!(Instant::now() < deadline, "never answered {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_answers_from_the_last_known_health_within_a_second() {
    let g = Gateway::http("127.0.0.31").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    // A 3 s probe timeout: without the state file, a hung gateway keeps the first
    // round (and so any honest answer) 3 s away.
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[health]\ninterval = \"300ms\"\ntimeout = \"3s\"\njitter = 0\n\
         rise = 1\nfall = 1\ncold_start_grace = \"10s\"\nstate_file = \"{}\"\n{ZONE}\n\
         [regions.primary]\na = [\"192.0.2.1\"]\n[[regions.primary.checks]]\nkind = \"http\"\nurl = \"http://{}/\"\n\
         [regions.backup]\na = [\"192.0.2.2\"]\n[names.fo]\npolicy = \"failover\"\nregions = [\"primary\", \"backup\"]\n",
        state.display(),
        g.addr
    );
    let path = dir.path().join("switchyard.toml");
    std::fs::write(&path, &config).unwrap();

    // The first run picks a free port; the restarts take the same one.
    let mut first_run = serve(&path);
    let addr = first_run.dns_addr(Duration::from_secs(20));
    std::fs::write(&path, config.replace("127.0.0.1:0", &addr.to_string())).unwrap();
    until(addr, "192.0.2.1").await;
    g.set(Mode::Status(503));
    until(addr, "192.0.2.2").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let primary_down = |text: &str| {
        serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v["regions"]["primary"]["up"] == false)
    };
    while !std::fs::read_to_string(&state).is_ok_and(|s| primary_down(&s)) {
        assert!(Instant::now() < deadline, "the state file never recorded primary down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first_run.kill(); // SIGKILL: no chance to write anything more

    // The gateway now hangs: only the state file can tell the new process it is down.
    g.set(Mode::Hang);
    let started = Instant::now();
    let mut second_run = serve(&path);
    let (answer, at) = first_answer(addr, Duration::from_secs(5)).await;
    let took = at - started;
    eprintln!("kill -9, restart: first answer {answer} {took:?} after exec (state file restored)");
    assert_eq!(answer, "192.0.2.2", "the first answer after the restart is the last known health");
    assert!(took < Duration::from_secs(1), "answered {took:?} after the restart");
    // The restored state says why, not only what.
    let line = second_run.until(Duration::from_secs(5), |l| l.contains("restored region down"));
    assert!(line.contains("region=primary") && line.contains("status 503"), "{line}");
    second_run.kill();

    // A state file cut short (a crash mid-copy on another filesystem, a full disk): a
    // log line, a cold start, then the truth from the probes.
    let text = std::fs::read(&state).unwrap();
    std::fs::write(&state, &text[..text.len() / 2]).unwrap();
    let mut third_run = serve(&path);
    third_run.until(Duration::from_secs(10), |l| l.contains("ignoring unreadable state file"));
    let (answer, _) = first_answer(addr, Duration::from_secs(5)).await;
    assert_eq!(answer, "ServFail", "cold start: no honest answer before the first round");
    g.set(Mode::Status(503));
    until(addr, "192.0.2.2").await;
    assert!(third_run.child.0.try_wait().unwrap().is_none(), "still running");
}
