//! A stand-in gateway: an HTTP (or HTTPS) server that a test turns sick in every way a
//! real one fails. Each accepted connection takes the mode in force when it was
//! accepted, and is counted, so a test can tell exactly how many probes a verdict took.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Healthy,
    /// Answer with this status.
    Status(u16),
    /// 200, but the body lacks what the check looks for.
    WrongBody,
    /// Answer healthy after this long.
    Slow(Duration),
    /// Accept and never answer.
    Hang,
    /// Send one byte per second, forever.
    Drip,
    /// 200 with a 1 GiB body (that lacks what the check looks for), streamed.
    HugeBody,
    /// 302 to the same URL, forever.
    RedirectLoop,
}

pub struct Gateway {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    accepted: Arc<AtomicU64>,
    /// Body bytes written in `HugeBody` mode.
    sent: Arc<AtomicU64>,
    tls: Arc<Mutex<Option<tokio_rustls::TlsAcceptor>>>,
    /// Connections from these source addresses are closed at once, whatever the mode:
    /// one vantage's view, not everyone's.
    refused: Arc<Mutex<Vec<std::net::IpAddr>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Gateway {
    /// An HTTP gateway on `ip` (a free port).
    pub async fn http(ip: &str) -> Gateway {
        Self::start(ip, None).await
    }

    /// An HTTPS gateway on `ip` presenting `acceptor`'s certificate.
    pub async fn https(ip: &str, acceptor: tokio_rustls::TlsAcceptor) -> Gateway {
        Self::start(ip, Some(acceptor)).await
    }

    async fn start(ip: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> Gateway {
        let listener = bind(format!("{ip}:0").parse().unwrap()).expect("bind gateway");
        let g = Gateway {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(Mutex::new(Mode::Healthy)),
            accepted: Arc::new(AtomicU64::new(0)),
            sent: Arc::new(AtomicU64::new(0)),
            tls: Arc::new(Mutex::new(tls)),
            refused: Arc::default(),
            task: Mutex::new(None),
        };
        g.serve(listener);
        g
    }

    fn serve(&self, listener: TcpListener) {
        let (mode, accepted, tls, sent, refused) =
            (self.mode.clone(), self.accepted.clone(), self.tls.clone(), self.sent.clone(), self.refused.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                if refused.lock().unwrap().contains(&peer.ip()) {
                    drop(stream);
                    continue;
                }
                let m = *mode.lock().unwrap();
                let tls = tls.lock().unwrap().clone();
                let sent = sent.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                respond(s, m, &sent).await;
                            }
                        }
                        None => respond(stream, m, &sent).await,
                    }
                });
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Presents another certificate from now on.
    pub fn set_tls(&self, acceptor: tokio_rustls::TlsAcceptor) {
        *self.tls.lock().unwrap() = Some(acceptor);
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Connections from these source addresses are closed from now on (as a network
    /// between them and the gateway would).
    pub fn refuse(&self, sources: &[&str]) {
        *self.refused.lock().unwrap() = sources.iter().map(|s| s.parse().unwrap()).collect();
    }

    /// Body bytes the client took in `HugeBody` mode, so far.
    pub fn body_bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes the listening socket: connections are refused.
    pub fn stop(&self) {
        if let Some(t) = self.task.lock().unwrap().take() {
            t.abort();
        }
    }

    /// Listens again on the same address.
    pub async fn restart(&self) {
        self.stop();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match bind(self.addr) {
                Ok(l) => return self.serve(l),
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::task::yield_now().await;
                }
                Err(e) => panic!("cannot rebind {}: {e}", self.addr),
            }
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = TcpSocket::new_v4()?;
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    s.listen(128)
}

async fn respond<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, mode: Mode, sent: &AtomicU64) {
    // Read the request head (bounded).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let (status, body) = match mode {
        Mode::Healthy => (200, "ok: gateway healthy"),
        Mode::Status(code) => (code, "ok: but the status says otherwise"),
        Mode::WrongBody => (200, "maintenance"),
        Mode::Slow(d) => {
            tokio::time::sleep(d).await;
            (200, "ok: gateway healthy")
        }
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        Mode::Drip => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n").await;
            for _ in 0..3600 {
                if s.write_all(b"X").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            return;
        }
        Mode::HugeBody => {
            const GIB: u64 = 1 << 30;
            let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {GIB}\r\n\r\n");
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = GIB;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                if s.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                sent.fetch_add(n as u64, Ordering::SeqCst);
                left -= n as u64;
            }
            return;
        }
        Mode::RedirectLoop => {
            let path = String::from_utf8_lossy(&buf).split_whitespace().nth(1).unwrap_or("/").to_owned();
            let reply =
                format!("HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = s.write_all(reply.as_bytes()).await;
            return;
        }
    };
    let reply = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(reply.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// Test PKI: a CA, and server certificates for names.
pub struct Pki {
    pub ca_pem: String,
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        Pki { ca_pem: cert.pem(), ca: rcgen::Issuer::new(params, key) }
    }

    /// A certificate for `dns_name` (its SAN) signed by this CA, and its key: both PEM.
    pub fn server_cert(&self, dns_name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![dns_name.to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A TLS acceptor with a certificate for `dns_name`, signed by this CA.
    pub fn acceptor(&self, dns_name: &str) -> tokio_rustls::TlsAcceptor {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![dns_name.to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let der = rustls::pki_types::CertificateDer::from(cert.der().to_vec());
        let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der], key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}
