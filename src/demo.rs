//! `switchyard demo`: the example config with local stand-in gateways, so that a
//! newcomer can watch an answer move when a region's gateway stops.
//!
//! For every region's `http` check whose URL points at a loopback address, the demo
//! runs a tiny gateway on that address that answers `200 ok`. A control endpoint stops
//! and starts them: `curl -X POST http://127.0.0.1:18080/eu-west/stop`. Stopping closes
//! the listening socket (probes are refused), as a dead gateway would.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tracing::info;

use crate::config::{CheckKind, Config};

/// One stand-in gateway.
struct Gateway {
    addr: SocketAddr,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Gateway {
    fn start(&self) -> Result<()> {
        let mut task = self.task.lock().expect("not poisoned");
        if task.is_some() {
            return Ok(());
        }
        let socket = if self.addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        socket.bind(self.addr).with_context(|| format!("demo gateway cannot listen on {}", self.addr))?;
        let listener = socket.listen(64)?;
        *task = Some(tokio::spawn(serve_ok(listener)));
        Ok(())
    }

    fn stop(&self) {
        if let Some(t) = self.task.lock().expect("not poisoned").take() {
            t.abort();
        }
    }

    fn running(&self) -> bool {
        self.task.lock().expect("not poisoned").is_some()
    }
}

async fn serve_ok(listener: TcpListener) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n").await;
        });
    }
}

/// The demo's gateways by region name.
pub struct Gateways {
    by_region: BTreeMap<String, Vec<Gateway>>,
}

impl Gateways {
    /// Starts a gateway for every loopback HTTP check in the config.
    pub fn start(config: &Config) -> Result<Gateways> {
        let mut by_region: BTreeMap<String, Vec<Gateway>> = BTreeMap::new();
        for region in &config.regions {
            for check in &region.checks {
                let CheckKind::Http(h) = &check.kind else { continue };
                let Ok(url) = reqwest::Url::parse(&h.url) else { continue };
                let Some(port) = url.port_or_known_default() else { continue };
                let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
                let Ok(ip) = host.parse::<std::net::IpAddr>() else { continue };
                if !ip.is_loopback() {
                    continue;
                }
                let g = Gateway { addr: SocketAddr::new(ip, port), task: Mutex::new(None) };
                g.start()?;
                info!(region = %region.name, addr = %g.addr, "demo gateway up");
                by_region.entry(region.name.clone()).or_default().push(g);
            }
        }
        Ok(Gateways { by_region })
    }

    fn set(&self, region: &str, up: bool) -> Result<bool> {
        let Some(gs) = self.by_region.get(region) else { return Ok(false) };
        for g in gs {
            if up {
                g.start()?;
            } else {
                g.stop();
            }
        }
        info!(region, state = if up { "up" } else { "stopped" }, "demo gateway");
        Ok(true)
    }

    fn listing(&self) -> String {
        self.by_region
            .iter()
            .map(|(r, gs)| {
                let state = if gs.iter().all(Gateway::running) { "up" } else { "stopped" };
                format!("{r}: {state}\n")
            })
            .collect()
    }
}

/// Serves the control endpoint: `GET /` lists, `POST /REGION/stop|start` acts.
pub async fn control(listener: TcpListener, gateways: Arc<Gateways>) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else { continue };
        let gateways = gateways.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let mut parts = head.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
            let (status, body) = match (method, segs.as_slice()) {
                ("GET", [""]) => ("200 OK", gateways.listing()),
                ("POST", [region, action @ ("stop" | "start")]) => match gateways.set(region, *action == "start") {
                    Ok(true) => ("200 OK", gateways.listing()),
                    Ok(false) => ("404 Not Found", format!("no demo gateway for region `{region}`\n")),
                    Err(e) => ("500 Internal Server Error", format!("{e:#}\n")),
                },
                _ => ("400 Bad Request", "GET / or POST /REGION/stop or POST /REGION/start\n".to_owned()),
            };
            let reply =
                format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = s.write_all(reply.as_bytes()).await;
        });
    }
}
