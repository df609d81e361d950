//! Binds the DNS listeners: UDP worker threads and a TCP accept loop per address.
//!
//! Each configured address gets a UDP socket and a TCP listener on the same port; port
//! 0 picks a free port that both protocols can share (tests rely on this).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::info;

use super::rrl;
use super::tcp::{TcpLimits, TcpServer};
use super::udp::{self, UdpWorkers};
use crate::metrics::Metrics;
use crate::query::handler::Handler;
use crate::state::State;

/// A running DNS server.
pub struct DnsServer {
    /// The bound addresses (UDP and TCP share each one).
    pub addrs: Vec<SocketAddr>,
    udp: Vec<UdpWorkers>,
    tcp: Vec<TcpServer>,
}

fn bind_pair(addr: SocketAddr) -> io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    let tcp_on = |port| {
        let l = std::net::TcpListener::bind(SocketAddr::new(addr.ip(), port))?;
        l.set_nonblocking(true)?;
        Ok::<_, io::Error>(l)
    };
    if addr.port() != 0 {
        return Ok((udp::bind_first(addr)?, tcp_on(addr.port())?));
    }
    let mut last = None;
    for _ in 0..20 {
        let udp = udp::bind_first(addr)?;
        match tcp_on(udp.local_addr()?.port()) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port")))
}

impl DnsServer {
    /// Binds every address: UDP workers (`udp_workers` sockets sharing the port, each
    /// answer limited by the RRL in `rrl` if there is one) and a TCP listener with `limits`.
    pub async fn start(
        state: Arc<State>,
        metrics: Arc<Metrics>,
        rrl: Arc<rrl::Slot>,
        listen: &[SocketAddr],
        limits: TcpLimits,
        udp_workers: usize,
    ) -> io::Result<DnsServer> {
        let handler = Arc::new(Handler::new(state.clone(), metrics.clone()));
        let mut addrs = Vec::new();
        let mut udp = Vec::new();
        let mut tcp_servers = Vec::new();
        for &addr in listen {
            let (socket, tcp) =
                bind_pair(addr).map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            let bound = socket.local_addr()?;
            let shared = udp::Shared {
                handler: handler.clone(),
                state: state.clone(),
                metrics: metrics.clone(),
                rrl: rrl.clone(),
                runtime: tokio::runtime::Handle::current(),
            };
            let workers = UdpWorkers::start(socket, udp_workers, shared)?;
            udp.push(workers);
            info!(addr = %bound, workers = udp_workers, "listening for UDP on {bound}");
            info!(addr = %bound, "listening for TCP on {bound}");
            tcp_servers.push(TcpServer::start(TcpListener::from_std(tcp)?, handler.clone(), metrics.clone(), limits));
            addrs.push(bound);
        }
        Ok(DnsServer { addrs, udp, tcp: tcp_servers })
    }

    /// Drains: stops accepting TCP connections, lets each finish the query it is on,
    /// and stops the UDP workers once their current batch is answered.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        let tcp = std::mem::take(&mut self.tcp);
        // Every listener stops accepting first, so the waits overlap.
        tcp.iter().for_each(TcpServer::stop_accepting);
        for server in tcp {
            server.shutdown().await;
        }
        let workers = std::mem::take(&mut self.udp);
        let _ = tokio::task::spawn_blocking(move || workers.into_iter().for_each(UdpWorkers::stop)).await;
        Ok(())
    }
}
