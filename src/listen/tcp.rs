//! The TCP listener: our own accept loop, so that connections are limited and timed.
//!
//! hickory-server's TCP listener has no connection limits, so a slowloris client could
//! hold any number of sockets. Here:
//! - at most `tcp_max_connections` connections in all and `tcp_max_per_client` from one
//!   client (an IPv4 address, or an IPv6 /64); over the per-client limit a new
//!   connection is closed at once; when every slot is taken, the connection that has
//!   gone longest without activity (a query begun or answered) is closed to make room;
//! - a connection may sit idle `tcp_idle_timeout` between queries; once a query's first
//!   byte has arrived, the rest of it must arrive, and its answer be written, within
//!   `tcp_io_timeout`; so a client dripping one byte a second is cut off;
//! - queries on one connection are answered in order, one at a time (RFC 7766 7:
//!   concurrent processing is a SHOULD): a connection holds at most one query and one answer, and
//!   what a client pipelines beyond that waits in the kernel's socket buffer.
//!
//! Each query goes through the same hickory request handler as the UDP general path.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::metrics::Metrics;
use crate::query::handler::{Handler, general};

/// The limits of the TCP listener (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub max_connections: usize,
    pub max_per_client: usize,
    pub idle: Duration,
    pub io: Duration,
}

/// The key per-client limits count by: the address, or an IPv6 address's /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

/// A logical clock for "last active": only the order matters.
static CLOCK: AtomicU64 = AtomicU64::new(1);

/// Records activity now.
fn mark(active: &AtomicU64) {
    active.store(CLOCK.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
}

struct Slot {
    client: IpAddr,
    /// When the connection opened, last began a query, or last completed one (on the
    /// [`mark`] clock); the connection itself stores it, without the table's lock.
    active: Arc<AtomicU64>,
    evict: CancellationToken,
}

/// The open connections: what admission and eviction decide on.
#[derive(Default)]
struct Table {
    next: u64,
    slots: HashMap<u64, Slot>,
    per_client: HashMap<IpAddr, usize>,
}

enum Admission {
    Admitted(u64, CancellationToken, Arc<AtomicU64>),
    /// Over the per-client limit.
    Refused,
}

impl Table {
    fn admit(&mut self, ip: IpAddr, limits: &TcpLimits, metrics: &Metrics) -> Admission {
        let client = client_key(ip);
        if self.per_client.get(&client).copied().unwrap_or(0) >= limits.max_per_client {
            return Admission::Refused;
        }
        if self.slots.len() >= limits.max_connections {
            // Full: close the connection that has gone longest without activity. (A scan,
            // but only when full, and the table is at most tcp_max_connections long.)
            if let Some((&id, _)) = self.slots.iter().min_by_key(|(_, s)| s.active.load(Ordering::Relaxed)) {
                self.release(id);
                metrics.tcp_evicted.inc();
            }
        }
        self.next += 1;
        let evict = CancellationToken::new();
        let active = Arc::new(AtomicU64::new(0));
        mark(&active);
        self.slots.insert(self.next, Slot { client, active: active.clone(), evict: evict.clone() });
        *self.per_client.entry(client).or_default() += 1;
        Admission::Admitted(self.next, evict, active)
    }

    /// Frees a connection's slot (and tells it to close, if it still runs).
    fn release(&mut self, id: u64) {
        if let Some(slot) = self.slots.remove(&id) {
            slot.evict.cancel();
            if let Some(n) = self.per_client.get_mut(&slot.client) {
                *n -= 1;
                if *n == 0 {
                    self.per_client.remove(&slot.client);
                }
            }
        }
    }
}

/// Frees a connection's slot when its task ends, however it ends.
struct SlotGuard<'a> {
    table: &'a Mutex<Table>,
    id: u64,
    metrics: &'a Metrics,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).release(self.id);
        self.metrics.tcp_open.dec();
    }
}

/// Why a connection ended (for the log and the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The client closed it, or sent a zero-length message.
    Client,
    /// Idle for `tcp_idle_timeout` between queries.
    Idle,
    /// A query not received, or an answer not written, within `tcp_io_timeout`.
    Slow,
    /// Closed to make room, or because the server is shutting down.
    Evicted,
    Drained,
    Error,
}

/// Serves DNS over one byte stream (RFC 1035 4.2.2 framing) until it closes: read a
/// two-byte length and a message, answer it, repeat. `drain` ends the connection
/// between queries; `evict` ends it at any point. `active` is called when a query
/// begins and when its answer is written (for eviction's "longest inactive").
pub async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    handler: &Handler,
    limits: TcpLimits,
    drain: &CancellationToken,
    evict: &CancellationToken,
    mut active: impl FnMut(),
) -> Closed {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        // Between queries: the idle timeout, and shutdown, apply.
        let mut len = [0u8; 2];
        let first = tokio::select! {
            // Shutdown and eviction first, so that a pipelining client cannot delay them.
            biased;
            _ = drain.cancelled() => return Closed::Drained,
            _ = evict.cancelled() => return Closed::Evicted,
            r = tokio::time::timeout(limits.idle, rd.read(&mut len[..1])) => r,
        };
        match first {
            Err(_) => return Closed::Idle,
            Ok(Ok(0)) => return Closed::Client,
            Ok(Ok(_)) => active(),
            Ok(Err(_)) => return Closed::Error,
        }
        // A query has begun: the rest of it, and its answer, within the I/O timeout.
        let exchange = async {
            rd.read_exact(&mut len[1..]).await?;
            let n = u16::from_be_bytes(len) as usize;
            if n == 0 {
                return Ok::<_, io::Error>(false);
            }
            buf.resize(n, 0);
            rd.read_exact(&mut buf).await?;
            if let Some(answer) = general(handler, &buf, peer, hickory_server::net::xfer::Protocol::Tcp).await {
                out.clear();
                out.extend_from_slice(&(answer.len() as u16).to_be_bytes());
                out.extend_from_slice(&answer);
                wr.write_all(&out).await?;
            }
            Ok(true)
        };
        let done = tokio::select! {
            biased;
            _ = evict.cancelled() => return Closed::Evicted,
            r = tokio::time::timeout(limits.io, exchange) => r,
        };
        match done {
            Err(_) => return Closed::Slow,
            Ok(Ok(true)) => active(),
            Ok(Ok(false)) => return Closed::Client,
            Ok(Err(_)) => return Closed::Error,
        }
    }
}

/// A running TCP listener and its connections.
pub struct TcpServer {
    drain: CancellationToken,
    tracker: TaskTracker,
    accept: tokio::task::JoinHandle<()>,
    limits: TcpLimits,
}

impl TcpServer {
    pub fn start(listener: TcpListener, handler: Arc<Handler>, metrics: Arc<Metrics>, limits: TcpLimits) -> TcpServer {
        let drain = CancellationToken::new();
        let tracker = TaskTracker::new();
        let table = Arc::new(Mutex::new(Table::default()));
        let accept =
            tokio::spawn(accept_loop(listener, handler, metrics, limits, table, drain.clone(), tracker.clone()));
        TcpServer { drain, tracker, accept, limits }
    }

    /// Stops accepting; idle connections close, busy ones after the query they are on.
    pub fn stop_accepting(&self) {
        self.drain.cancel();
    }

    /// Stops accepting, lets each connection finish the query it is on (at most the
    /// I/O timeout), and waits for them.
    pub async fn shutdown(self) {
        self.drain.cancel();
        let _ = self.accept.await;
        self.tracker.close();
        let _ = tokio::time::timeout(self.limits.io + Duration::from_secs(1), self.tracker.wait()).await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    handler: Arc<Handler>,
    metrics: Arc<Metrics>,
    limits: TcpLimits,
    table: Arc<Mutex<Table>>,
    drain: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = drain.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off a little, keep going.
                debug!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let admitted = table.lock().unwrap_or_else(|p| p.into_inner()).admit(peer.ip(), &limits, &metrics);
        let (id, evict, active) = match admitted {
            Admission::Admitted(id, evict, active) => (id, evict, active),
            Admission::Refused => {
                metrics.tcp_refused.inc();
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        metrics.tcp_open.inc();
        let (handler, metrics, table, drain) = (handler.clone(), metrics.clone(), table.clone(), drain.clone());
        tracker.spawn(async move {
            // Released however the task ends, a panic included (tokio contains a
            // panic to its task; the other connections and the listener go on).
            let _slot = SlotGuard { table: &table, id, metrics: &metrics };
            let closed = serve_stream(stream, peer, &handler, limits, &drain, &evict, || mark(&active)).await;
            match closed {
                Closed::Idle => metrics.tcp_timeouts[0].inc(),
                Closed::Slow => metrics.tcp_timeouts[1].inc(),
                _ => {}
            }
            debug!(%peer, ?closed, "tcp connection closed");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key("2001:db8:1:3::1".parse().unwrap()));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn admission_limits_per_client_and_evicts_the_longest_inactive_when_full() {
        let metrics = Metrics::new();
        let limits = TcpLimits {
            max_connections: 3,
            max_per_client: 2,
            idle: Duration::from_secs(1),
            io: Duration::from_secs(1),
        };
        let mut t = Table::default();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let Admission::Admitted(first, first_evict, _) = t.admit(ip("192.0.2.1"), &limits, &metrics) else { panic!() };
        assert!(matches!(t.admit(ip("192.0.2.1"), &limits, &metrics), Admission::Admitted(..)));
        assert!(matches!(t.admit(ip("192.0.2.1"), &limits, &metrics), Admission::Refused));
        let Admission::Admitted(_, _, third) = t.admit(ip("192.0.2.2"), &limits, &metrics) else { panic!() };
        // The table is full; the oldest (never active since) is evicted for a newcomer.
        mark(&third);
        assert!(matches!(t.admit(ip("192.0.2.3"), &limits, &metrics), Admission::Admitted(..)));
        assert!(first_evict.is_cancelled());
        assert!(!t.slots.contains_key(&first));
        assert_eq!(t.slots.len(), 3);
        assert_eq!(t.per_client[&ip("192.0.2.1")], 1);
        assert_eq!(metrics.tcp_evicted.get(), 1);
    }
}
