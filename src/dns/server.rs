//! Binds the DNS listeners and runs hickory-server on them.
//!
//! Each configured address gets a UDP socket and a TCP listener on the same port; port
//! 0 picks a free port that both protocols can share (tests rely on this).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};
use tracing::info;

use super::handler::Handler;
use crate::metrics::Metrics;
use crate::state::State;

/// Responses queued per TCP connection before the writer waits.
const TCP_RESPONSE_BUFFER: usize = 32;

/// A running DNS server.
pub struct DnsServer {
    server: Server<Handler>,
    /// The bound addresses (UDP and TCP share each one).
    pub addrs: Vec<SocketAddr>,
}

async fn bind_pair(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    if addr.port() != 0 {
        return Ok((UdpSocket::bind(addr).await?, TcpListener::bind(addr).await?));
    }
    let mut last = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port")))
}

impl DnsServer {
    pub async fn start(
        state: Arc<State>,
        metrics: Arc<Metrics>,
        listen: &[SocketAddr],
        tcp_idle: Duration,
    ) -> io::Result<DnsServer> {
        let mut server = Server::new(Handler::new(state, metrics));
        let mut addrs = Vec::new();
        for &addr in listen {
            let (udp, tcp) =
                bind_pair(addr).await.map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            let bound = udp.local_addr()?;
            info!(addr = %bound, "listening for UDP on {bound}");
            info!(addr = %bound, "listening for TCP on {bound}");
            server.register_socket(udp);
            server.register_listener(tcp, tcp_idle, TCP_RESPONSE_BUFFER);
            addrs.push(bound);
        }
        Ok(DnsServer { server, addrs })
    }

    /// Stops accepting and waits for the listeners to finish.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.server.shutdown_gracefully().await.map_err(io::Error::other)
    }

    /// Runs until the listeners stop on their own (an unrecoverable socket error).
    pub async fn wait(&mut self) -> io::Result<()> {
        self.server.block_until_done().await.map_err(io::Error::other)
    }
}
