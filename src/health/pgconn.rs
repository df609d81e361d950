//! Connections to a PostgreSQL member, with TLS as libpq's `sslmode` asks (rustls).
//!
//! - `disable`: plain TCP.
//! - `prefer`: TLS without verification if the server offers it, else plain.
//! - `require`: TLS; without `sslrootcert` nothing is verified, with it the chain is
//!   verified as for `verify-ca` (libpq does the same).
//! - `verify-ca`: the chain is verified against the roots; the host name is not checked.
//! - `verify-full`: the chain and the host name: the DSN's `host`, even when `hostaddr`
//!   gives the address to connect to (with only `hostaddr`, that address).
//!
//! A failure caused by TLS (no TLS on the server when it is required, the handshake, the
//! certificate) is [`FailureKind::Tls`]. Nothing here prints the DSN.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::task::JoinHandle;
use tokio_postgres::config::{Host, SslMode as PgSslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::probe::{Failure, FailureKind};
use crate::config::dsn::{self, PgDsn, RootCerts, SslMode};

/// A DSN made ready to connect with: parsed once, its TLS configuration built once.
pub struct Connector {
    /// What to connect with, or why this check cannot connect at all (a CA file that
    /// went away since validation, an empty system trust store): then every probe fails
    /// with it.
    ready: Result<(tokio_postgres::Config, Option<MakeRustlsConnect>), Failure>,
}

impl Connector {
    pub fn new(dsn: &PgDsn) -> Connector {
        Connector { ready: prepare(dsn) }
    }

    /// Connects, and spawns the connection's task; the client works while it runs.
    /// With `source`, from that local address (to the first host of the DSN).
    pub async fn connect(
        &self,
        source: Option<std::net::IpAddr>,
    ) -> Result<(tokio_postgres::Client, JoinHandle<()>), Failure> {
        let (config, tls) = self.ready.as_ref().map_err(Clone::clone)?;
        if let Some(source) = source {
            return connect_from(config, tls.as_ref(), source).await;
        }
        match tls {
            None => {
                let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| classify(&e))?;
                Ok((client, tokio::spawn(async move { drop(connection.await) })))
            }
            Some(tls) => {
                let (client, connection) = config.connect(tls.clone()).await.map_err(|e| classify(&e))?;
                Ok((client, tokio::spawn(async move { drop(connection.await) })))
            }
        }
    }
}

/// Connects over a TCP stream opened from `source` to the DSN's first host (its
/// `hostaddr`, else its name resolved), then speaks PostgreSQL over it.
async fn connect_from(
    config: &tokio_postgres::Config,
    tls: Option<&MakeRustlsConnect>,
    source: std::net::IpAddr,
) -> Result<(tokio_postgres::Client, JoinHandle<()>), Failure> {
    use tokio_postgres::tls::MakeTlsConnect;
    let host = config.get_hosts().iter().find_map(|h| match h {
        Host::Tcp(name) => Some(name.clone()),
        _ => None,
    });
    let port = config.get_ports().first().copied().unwrap_or(5432);
    // The DSN's `hostaddr` if it gives one, else its host name (resolved there).
    let target = match (config.get_hostaddrs().first(), &host) {
        (Some(ip), _) => std::net::SocketAddr::new(*ip, port).to_string(),
        (None, Some(name)) => format!("{name}:{port}"),
        (None, None) => return Err(failure(FailureKind::Connect, "`source` needs a TCP host")),
    };
    let stream = super::probe::from_source(&target, source).await.map_err(|e| {
        let kind =
            if e.kind() == std::io::ErrorKind::ConnectionRefused { FailureKind::Refused } else { FailureKind::Connect };
        failure(kind, e.to_string())
    })?;
    match tls {
        None => {
            let (client, connection) =
                config.connect_raw(stream, tokio_postgres::NoTls).await.map_err(|e| classify(&e))?;
            Ok((client, tokio::spawn(async move { drop(connection.await) })))
        }
        Some(tls) => {
            // `prepare` names every TCP target by `host` (a `hostaddr` alone becomes one).
            let name = host.unwrap_or_default();
            let tls = MakeTlsConnect::<tokio::net::TcpStream>::make_tls_connect(&mut tls.clone(), &name)
                .map_err(|e| failure(FailureKind::Tls, e.to_string()))?;
            let (client, connection) = config.connect_raw(stream, tls).await.map_err(|e| classify(&e))?;
            Ok((client, tokio::spawn(async move { drop(connection.await) })))
        }
    }
}

fn failure(kind: FailureKind, detail: impl Into<String>) -> Failure {
    Failure { kind, detail: detail.into() }
}

fn prepare(dsn: &PgDsn) -> Result<(tokio_postgres::Config, Option<MakeRustlsConnect>), Failure> {
    // Validation parsed this string already; the text of the error would not show it.
    let mut config: tokio_postgres::Config = dsn
        .conn
        .expose()
        .parse()
        .map_err(|_| failure(FailureKind::Connect, "the dsn is not a valid PostgreSQL connection string"))?;
    // libpq uses no TLS on Unix sockets, whatever the sslmode.
    let unix_only = config.get_hostaddrs().is_empty() && config.get_hosts().iter().all(|h| !matches!(h, Host::Tcp(_)));
    if dsn.sslmode == SslMode::Disable || unix_only {
        config.ssl_mode(PgSslMode::Disable);
        return Ok((config, None));
    }
    // tokio-postgres names the server to TLS by `host` only, and refuses TLS without
    // one; libpq checks a certificate against `hostaddr` when there is no `host`.
    if config.get_hosts().is_empty() {
        for addr in config.get_hostaddrs().to_vec() {
            config.host(addr.to_string());
        }
    }
    config.ssl_mode(if dsn.sslmode == SslMode::Prefer { PgSslMode::Prefer } else { PgSslMode::Require });
    let tls = client_config(dsn).map_err(|e| failure(FailureKind::Tls, e))?;
    Ok((config, Some(MakeRustlsConnect::new(tls))))
}

/// The rustls configuration for a TLS `sslmode`.
fn client_config(dsn: &PgDsn) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (dsn.sslmode, &dsn.root_certs) {
        (SslMode::Prefer, _) | (SslMode::Require, RootCerts::None) => Arc::new(NoVerification(provider.clone())),
        (SslMode::VerifyFull, roots) => webpki(roots, &provider, dsn.sslmode)?,
        (_, roots) => Arc::new(ChainOnly(webpki(roots, &provider, dsn.sslmode)?)),
    };
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn webpki(
    roots: &RootCerts,
    provider: &Arc<CryptoProvider>,
    mode: SslMode,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCerts::File(path) => {
            let (_, ignored) = store.add_parsable_certificates(dsn::read_root_certs(path)?);
            if store.is_empty() {
                return Err(format!(
                    "sslrootcert file `{}`: no usable CA certificate ({ignored} ignored)",
                    path.display()
                ));
            }
        }
        RootCerts::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                return Err(format!("no CA certificate in the system's trust store ({})", errors.join("; ")));
            }
        }
        RootCerts::None => return Err(format!("sslmode={} needs sslrootcert", mode.as_str())),
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
        .build()
        .map_err(|e| format!("TLS setup: {e}"))
}

/// `verify-ca`: the chain as `WebPkiServerVerifier` verifies it, whatever the name.
/// That verifier checks the chain first and the name last, so a name error means the
/// chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer`, and `require` without roots: any certificate, as libpq. The handshake's
/// signatures are still checked against the certificate presented.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// tokio-postgres says "error performing TLS handshake" for every TLS failure (the
/// server refusing TLS included), with the cause as the source.
const TLS_ERROR: &str = "error performing TLS handshake";

fn classify(e: &tokio_postgres::Error) -> Failure {
    let mut detail = e.to_string();
    let mut tls = detail.starts_with(TLS_ERROR);
    let mut refused = false;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
            tls |= io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>());
        }
        tls |= s.is::<rustls::Error>();
        source = s.source();
    }
    let kind = if tls {
        FailureKind::Tls
    } else if refused {
        FailureKind::Refused
    } else {
        FailureKind::Connect
    };
    failure(kind, detail)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn connector(dsn: &str) -> Connector {
        Connector::new(&dsn::parse(dsn, Path::new(".")).unwrap())
    }

    #[test]
    fn modes_map_to_tokio_postgres() {
        let (config, tls) = connector("host=db sslmode=disable").ready.unwrap();
        assert!(tls.is_none() && config.get_ssl_mode() == PgSslMode::Disable);
        let (config, tls) = connector("host=db").ready.unwrap();
        assert!(tls.is_some() && config.get_ssl_mode() == PgSslMode::Prefer);
        let (config, tls) = connector("host=db sslmode=require").ready.unwrap();
        assert!(tls.is_some() && config.get_ssl_mode() == PgSslMode::Require);
        // No TLS over a Unix socket, as libpq.
        let (config, tls) = connector("host=/run/postgresql sslmode=require").ready.unwrap();
        assert!(tls.is_none() && config.get_ssl_mode() == PgSslMode::Disable);
    }

    #[test]
    fn hostaddr_alone_names_the_server_by_its_address() {
        let (config, _) = connector("hostaddr=127.0.0.1 sslmode=require").ready.unwrap();
        assert_eq!(config.get_hosts(), [Host::Tcp("127.0.0.1".into())]);
        let (config, _) = connector("host=pg.test hostaddr=127.0.0.1 sslmode=require").ready.unwrap();
        assert_eq!(config.get_hosts(), [Host::Tcp("pg.test".into())]);
    }

    #[tokio::test]
    async fn refused_is_refused() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        for mode in ["disable", "prefer", "require"] {
            let dsn = format!("host=127.0.0.1 port={port} user=x password=hunter2 sslmode={mode}");
            let Err(e) = connector(&dsn).connect(None).await else { panic!("{mode}: nothing listens") };
            assert_eq!(e.kind, FailureKind::Refused, "{mode}: {e}");
            assert!(!e.detail.contains("hunter2"), "{e}");
        }
    }
}
