//! Binds the DNS listeners and runs hickory-server on them.
//!
//! Each configured address gets a UDP socket and a TCP listener on the same port; port
//! 0 picks a free port that both protocols can share (tests rely on this).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use tokio::net::TcpListener;
use tracing::info;

use super::handler::Handler;
use super::udp::{self, UdpWorkers};
use crate::metrics::Metrics;
use crate::state::State;

/// Responses queued per TCP connection before the writer waits.
const TCP_RESPONSE_BUFFER: usize = 32;

/// A running DNS server.
pub struct DnsServer {
    server: Server<Handler>,
    /// The bound addresses (UDP and TCP share each one).
    pub addrs: Vec<SocketAddr>,
    udp: Vec<UdpWorkers>,
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
    /// Binds every address: UDP workers of our own (`udp_workers` sockets sharing the
    /// port) and a TCP listener served by hickory-server.
    pub async fn start(
        state: Arc<State>,
        metrics: Arc<Metrics>,
        listen: &[SocketAddr],
        tcp_idle: Duration,
        udp_workers: usize,
    ) -> io::Result<DnsServer> {
        let mut server = Server::new(Handler::new(state.clone(), metrics.clone()));
        let handler = Arc::new(Handler::new(state.clone(), metrics.clone()));
        let mut addrs = Vec::new();
        let mut udp = Vec::new();
        for &addr in listen {
            let (socket, tcp) =
                bind_pair(addr).map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            let bound = socket.local_addr()?;
            let workers = UdpWorkers::start(
                socket,
                udp_workers,
                handler.clone(),
                state.clone(),
                metrics.clone(),
                tokio::runtime::Handle::current(),
            )?;
            udp.push(workers);
            info!(addr = %bound, workers = udp_workers, "listening for UDP on {bound}");
            info!(addr = %bound, "listening for TCP on {bound}");
            server.register_listener(TcpListener::from_std(tcp)?, tcp_idle, TCP_RESPONSE_BUFFER);
            addrs.push(bound);
        }
        Ok(DnsServer { server, addrs, udp })
    }

    /// Stops accepting and waits for the listeners to finish.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        let workers = std::mem::take(&mut self.udp);
        let _ = tokio::task::spawn_blocking(move || workers.into_iter().for_each(UdpWorkers::stop)).await;
        self.server.shutdown_gracefully().await.map_err(io::Error::other)
    }

    /// Runs until the listeners stop on their own (an unrecoverable socket error).
    pub async fn wait(&mut self) -> io::Result<()> {
        self.server.block_until_done().await.map_err(io::Error::other)
    }
}
