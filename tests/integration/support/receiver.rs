//! A webhook receiver for tests: a real HTTP server on an address of its own, that a test
//! turns down (port free but not listened on), slow, up, redirecting or hung, and that
//! records every request and how it answered it.
//!
//! Receivers listen on 127.0.0.81, an address of their own: a "down" receiver is a port
//! picked free and left unbound for a while, which on the busy 127.0.0.1 another test's
//! socket could take meanwhile.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Notify;

pub const IP: &str = "127.0.0.81";

/// What the receiver does with a request, chosen when it arrives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Answers 200.
    Up,
    /// Waits this long, then answers 503.
    Slow(Duration),
    /// Answers 302 to `/elsewhere` (which it would answer 200).
    Redirect,
    /// Never answers.
    Hang,
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The status it was answered with, once it was.
    pub answered: Option<u16>,
}

impl Seen {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or_default()
    }
}

#[derive(Clone)]
struct Shared {
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Signalled on every arrival and every answer.
    changed: Arc<Notify>,
}

/// A webhook receiver on a fixed address; it can start listening later than its
/// address is known.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    /// A receiver whose port is free but not listened on: connections are refused
    /// until [`Receiver::listen`].
    pub fn down() -> Receiver {
        let addr = {
            let l = std::net::TcpListener::bind(format!("{IP}:0")).expect("bind a free port");
            l.local_addr().unwrap()
        };
        let shared =
            Shared { mode: Arc::new(Mutex::new(Mode::Up)), seen: Arc::default(), changed: Arc::new(Notify::new()) };
        Receiver { addr, shared, task: None }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Starts listening on its address, in `mode`.
    pub fn listen(&mut self, mode: Mode) {
        self.set(mode);
        let listener = bind(self.addr);
        let router = Router::new().fallback(handle).with_state(self.shared.clone());
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        }));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Waits (on the receiver's own signal, up to 10 s) until `what` holds for what it
    /// has seen.
    pub async fn until(&self, why: &str, what: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let seen = self.seen();
            if what(&seen) {
                return seen;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, changed).await.is_err() {
                panic!("the receiver did not see {why} within 10 s; it saw {seen:#?}");
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn bind(addr: SocketAddr) -> TcpListener {
    let s = TcpSocket::new_v4().unwrap();
    s.set_reuseaddr(true).unwrap();
    s.bind(addr).unwrap_or_else(|e| panic!("cannot bind the receiver's {addr}: {e}"));
    s.listen(128).unwrap()
}

async fn handle(State(s): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mode = *s.mode.lock().unwrap();
    let index = {
        let mut seen = s.seen.lock().unwrap();
        seen.push(Seen { path: uri.path().to_owned(), headers, body, answered: None });
        seen.len() - 1
    };
    s.changed.notify_waiters();
    let status = match mode {
        _ if uri.path() == "/elsewhere" => StatusCode::OK,
        Mode::Up => StatusCode::OK,
        Mode::Slow(wait) => {
            tokio::time::sleep(wait).await;
            StatusCode::SERVICE_UNAVAILABLE
        }
        Mode::Redirect => StatusCode::FOUND,
        Mode::Hang => std::future::pending().await,
    };
    s.seen.lock().unwrap()[index].answered = Some(status.as_u16());
    s.changed.notify_waiters();
    status
}

/// Checks the request's signature as a receiver would: HMAC-SHA256 of
/// `<timestamp>.<body>` under the secret, compared in constant time, and a recent timestamp.
pub fn signed(s: &Seen, secret: &str) -> bool {
    let Some(hex) = s.header("x-switchyard-signature").strip_prefix("sha256=") else { return false };
    let Ok(tag) = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()).ok_or(()))
        .collect::<Result<Vec<u8>, ()>>()
    else {
        return false;
    };
    let timestamp = s.header("x-switchyard-timestamp");
    let Ok(at) = timestamp.parse::<u64>() else { return false };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&s.body);
    hex == hex.to_ascii_lowercase() && now.abs_diff(at) <= 60 && mac.verify_slice(&tag).is_ok()
}
