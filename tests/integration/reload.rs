//! SIGHUP reloads under load: the spawned binary keeps answering over UDP and TCP
//! while it is sent twenty SIGHUPs, alternating good and broken configs.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::dns::{first, query};
use crate::support::{POLICIES, Spawned, bin, geoip};

/// The policies zone, its static record's address numbered by `generation`; the
/// server listens on a free port (the same one across reloads).
fn config(generation: u32) -> String {
    POLICIES.replace("values = [\"192.0.2.10\"]", &format!("values = [\"198.51.100.{generation}\"]"))
}

fn write_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// One query over UDP or TCP; `None` if it got no well-formed answer within 2 s.
async fn ask(addr: std::net::SocketAddr, tcp: bool) -> Option<Message> {
    let m = query("static.gslb.example.org.", RecordType::A);
    let bytes = m.to_vec().unwrap();
    let attempt = async {
        if tcp {
            let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
            let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            s.write_all(&framed).await.ok()?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len).await.ok()?;
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut buf).await.ok()?;
            Message::from_vec(&buf).ok()
        } else {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
            sock.send_to(&bytes, addr).await.ok()?;
            let mut buf = vec![0u8; 4096];
            let (n, _) = sock.recv_from(&mut buf).await.ok()?;
            Message::from_vec(&buf[..n]).ok()
        }
    };
    tokio::time::timeout(Duration::from_secs(2), attempt).await.ok().flatten()
}

async fn scrape(admin: std::net::SocketAddr, metric: &str) -> f64 {
    let text = reqwest::get(format!("http://{admin}/metrics")).await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(metric).and_then(|v| v.trim().parse().ok())).unwrap_or(-1.0)
}

/// `switchyard serve` on generation 1 of the config, written into `dir`.
fn serve(dir: &std::path::Path) -> (Spawned, std::path::PathBuf) {
    std::fs::write(dir.join("test-city.mmdb"), geoip::city_db()).unwrap();
    let path = dir.join("switchyard.toml");
    write_atomically(&path, &config(1).replace("@GEOIP@", "test-city.mmdb"));
    let server = Spawned::start(Command::new(bin()).args(["serve", "--admin", "127.0.0.1:0", "--config"]).arg(&path));
    (server, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sighups_under_load_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, path) = serve(dir.path());
    let addr = server.dns_addr(Duration::from_secs(20));
    let admin: Option<std::net::SocketAddr> = server
        .until(Duration::ZERO, |l| l.contains("admin HTTP listening on "))
        .split("admin HTTP listening on ")
        .nth(1)
        .and_then(|a| a.split_whitespace().next())
        .and_then(|a| a.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok());
    let admin: std::net::SocketAddr = admin.expect("admin address logged");

    // Load: UDP and TCP queries back to back until told to stop (at most 60 s).
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, lost, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for tcp in [false, true] {
        let (stop, sent, lost, failed) = (stop.clone(), sent.clone(), lost.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let until = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                sent.fetch_add(1, Ordering::Relaxed);
                match ask(addr, tcp).await {
                    None => {
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(m) if m.metadata.response_code != ResponseCode::NoError || m.answers.len() != 1 => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(_) => {}
                }
            }
        }));
    }

    let pid = server.child.0.id().to_string();
    let mut current = "198.51.100.1".to_owned();
    let mut broken = 0.0;
    for i in 2..22u32 {
        if i % 2 == 0 {
            write_atomically(&path, &config(i).replace("@GEOIP@", "test-city.mmdb"));
            current = format!("198.51.100.{i}");
        } else {
            // Broken: a bad address and an unknown key.
            write_atomically(
                &path,
                &config(i)
                    .replace("@GEOIP@", "test-city.mmdb")
                    .replace("\"192.0.2.1\"", "\"192.0.2.999\"")
                    .replace("weight = 3", "wieght = 3"),
            );
            broken += 1.0;
        }
        assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
        let start = Instant::now();
        loop {
            let seen = if i % 2 == 0 {
                ask(addr, false).await.map(|m| first(&m)) == Some(current.clone())
            } else {
                scrape(admin, "switchyard_config_reloads_total{result=\"failure\"}").await == broken
            };
            if seen {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "reload {i} not seen within 10 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Whatever happened, the answer is the last good config's.
        assert_eq!(ask(addr, true).await.map(|m| first(&m)), Some(current.clone()), "after reload {i}");
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let (sent, lost, failed) =
        (sent.load(Ordering::Relaxed), lost.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("reload test: {sent} queries during 20 reloads, {lost} lost, {failed} failed");
    assert!(sent > 100, "the load ran: {sent}");
    assert_eq!((lost, failed), (0, 0), "of {sent} queries");
    assert_eq!(scrape(admin, "switchyard_config_reloads_total{result=\"failure\"}").await, 10.0);
    assert_eq!(scrape(admin, "switchyard_config_reloads_total{result=\"success\"}").await, 10.0);
    // The last of the twenty was a broken one.
    assert_eq!(scrape(admin, "switchyard_config_last_reload_successful").await, 0.0);
    assert_eq!(scrape(admin, "switchyard_config_generation").await, 11.0);
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = server.child.0.wait();
}

/// A SIGHUP that arrives while the server is still starting (here: as soon as it has
/// read its config) is held until it serves and then reloads; it never ends the
/// process, as SIGHUP's default action would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_during_start_up_reloads_once_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, path) = serve(dir.path());
    server.until(Duration::from_secs(20), |l| l.contains("config loaded"));
    write_atomically(&path, &config(2).replace("@GEOIP@", "test-city.mmdb"));
    let pid = server.child.0.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    server.until(Duration::from_secs(20), |l| l.contains("config reloaded"));
    let addr = server.dns_addr(Duration::ZERO);
    assert_eq!(ask(addr, true).await.map(|m| first(&m)).as_deref(), Some("198.51.100.2"));
    assert!(server.child.0.try_wait().unwrap().is_none(), "still running:\n{}", server.log);
}
