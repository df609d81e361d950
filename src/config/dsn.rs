//! libpq connection strings for the `postgres` database member.
//!
//! tokio-postgres reads most of a libpq connection string, but knows only three of
//! libpq's `sslmode`s and no `sslrootcert`. [`parse`] takes those two keys out of the
//! string (in both the `key=value` and the URL form), checks them, and leaves a string
//! that tokio-postgres reads. No message from here contains the DSN or its password.

use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::Secret;

/// libpq's `sslmode`. `allow` is read as [`SslMode::Prefer`]: a probe that could use
/// TLS has no reason to try without it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS without verification if the server offers it, else plain (libpq's default).
    Prefer,
    /// TLS; the certificate is verified only if `sslrootcert` is given (as libpq does).
    Require,
    /// TLS, the chain verified against the roots, the host name not checked.
    VerifyCa,
    /// TLS, the chain and the host name verified.
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the certificates that verify the server come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// No `sslrootcert`.
    None,
    /// A PEM file of CA certificates (absolute: resolved against the config's directory).
    File(PathBuf),
    /// `sslrootcert=system`: the operating system's trust store.
    System,
}

/// A checked DSN for the `postgres` probe.
#[derive(Clone, PartialEq, Debug)]
pub struct PgDsn {
    /// The DSN without `sslmode` and `sslrootcert`, parseable by `tokio_postgres::Config`.
    pub conn: Secret,
    pub sslmode: SslMode,
    pub root_certs: RootCerts,
}

/// Parses a libpq connection string, `key=value` pairs (values may be single-quoted) or
/// a `postgres://` URL. A relative `sslrootcert` is taken from `base`, the config
/// file's directory. Errors are one line and never contain the password.
pub fn parse(dsn: &str, base: &Path) -> Result<PgDsn, String> {
    let dsn = dsn.trim();
    let parsed = if let Some(rest) = dsn.strip_prefix("postgres://").or_else(|| dsn.strip_prefix("postgresql://")) {
        url_form(dsn, rest)
    } else {
        key_value_form(dsn)?
    };
    let mut sslmode = None;
    let mut sslrootcert = None;
    for (key, value) in &parsed.taken {
        match key.as_str() {
            "sslmode" => sslmode = Some(value.as_str()),
            "sslrootcert" => sslrootcert = Some(value.as_str()).filter(|v| !v.is_empty()),
            client => {
                return Err(format!(
                    "`{client}`: client certificates are not supported yet (remove sslcert, sslkey and sslpassword)"
                ));
            }
        }
    }
    let root_certs = match sslrootcert {
        None => RootCerts::None,
        Some("system") => RootCerts::System,
        Some(path) => {
            let path = base.join(path);
            if !path.is_file() {
                return Err(format!(
                    "sslrootcert file `{}` not found (a relative path is taken from the config file's directory)",
                    path.display()
                ));
            }
            read_root_certs(&path)?;
            RootCerts::File(path)
        }
    };
    let sslmode = match sslmode {
        // As libpq: `sslrootcert=system` makes verify-full the default, and only that.
        None if root_certs == RootCerts::System => SslMode::VerifyFull,
        None => SslMode::Prefer,
        Some("disable") => SslMode::Disable,
        Some("allow" | "prefer") => SslMode::Prefer,
        Some("require") => SslMode::Require,
        Some("verify-ca") => SslMode::VerifyCa,
        Some("verify-full") => SslMode::VerifyFull,
        Some(other) => {
            return Err(format!(
                "unknown sslmode `{other}` (disable, allow, prefer, require, verify-ca or verify-full)"
            ));
        }
    };
    match (sslmode, &root_certs) {
        (SslMode::Disable, RootCerts::File(_) | RootCerts::System) => {
            return Err("sslrootcert has no use with sslmode=disable (remove one of them)".into());
        }
        (SslMode::VerifyCa | SslMode::VerifyFull, RootCerts::None) => {
            return Err(format!(
                "sslmode={} needs the CA certificates to verify the server with: add \
                 sslrootcert=/path/ca.pem, or sslrootcert=system for the system's trust store",
                sslmode.as_str()
            ));
        }
        (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, RootCerts::System) => {
            return Err(format!(
                "sslrootcert=system needs sslmode=verify-full, not {} (any public CA could vouch for \
                 a certificate whose name is not checked)",
                sslmode.as_str()
            ));
        }
        _ => {}
    }
    if let Err(e) = parsed.conn.parse::<tokio_postgres::Config>() {
        let detail = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
        let shown = match &parsed.password {
            Some(p) if !p.is_empty() && detail.contains(p.as_str()) => String::new(),
            _ if detail.is_empty() => String::new(),
            _ => format!(": {detail}"),
        };
        return Err(format!("the dsn is not a valid PostgreSQL connection string{shown}"));
    }
    Ok(PgDsn { conn: Secret::new(parsed.conn), sslmode, root_certs })
}

/// The certificates of a PEM file: at least one, or an error.
pub fn read_root_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let what = || format!("sslrootcert file `{}`", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{} cannot be read: {e}", what()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", what()));
    }
    Ok(certs)
}

/// A DSN taken apart: the string for tokio-postgres, the TLS keys taken out of it, and
/// the password (only to keep it out of messages).
struct Parsed {
    conn: String,
    taken: Vec<(String, String)>,
    password: Option<String>,
}

/// Keys this module handles: taken out of the string whatever their value.
fn is_taken(key: &str) -> bool {
    matches!(key, "sslmode" | "sslrootcert" | "sslcert" | "sslkey" | "sslpassword")
}

/// `key=value` pairs as libpq reads them: whitespace around `=` allowed, values plain
/// (up to whitespace) or single-quoted, `\` escaping the next character in both.
fn key_value_form(dsn: &str) -> Result<Parsed, String> {
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    let mut password = None;
    let mut it = dsn.chars().peekable();
    let skip_ws = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while it.next_if(|c| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut it);
        if it.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = it.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        skip_ws(&mut it);
        // The word is not named: it could be a password written without its key.
        if it.next() != Some('=') {
            return Err("the dsn is not a valid PostgreSQL connection string: a word without `=` \
                        (write key=value pairs separated by spaces)"
                .into());
        }
        if key.is_empty() {
            return Err("the dsn is not a valid PostgreSQL connection string: `=` without a key before it".into());
        }
        skip_ws(&mut it);
        let mut value = String::new();
        if it.next_if_eq(&'\'').is_some() {
            loop {
                match it.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(it.next()),
                    Some(c) => value.push(c),
                    None => {
                        return Err(format!(
                            "the dsn is not a valid PostgreSQL connection string: the quoted value of \
                             `{key}` has no closing quote"
                        ));
                    }
                }
            }
        } else {
            while let Some(c) = it.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(it.next());
                } else {
                    value.push(c);
                }
            }
        }
        if key == "password" {
            password = Some(value.clone());
        }
        if is_taken(&key) {
            taken.push((key, value));
        } else {
            kept.push(format!("{key}='{}'", value.replace('\\', "\\\\").replace('\'', "\\'")));
        }
    }
    Ok(Parsed { conn: kept.join(" "), taken, password })
}

/// `postgres://user:password@host:port/dbname?key=value&...`: the TLS keys are taken out
/// of the query; everything else is left as written.
fn url_form(dsn: &str, rest: &str) -> Parsed {
    let scheme = &dsn[..dsn.len() - rest.len()];
    let (front, query) = rest.split_once('?').unwrap_or((rest, ""));
    let password = front.split_once('@').and_then(|(creds, _)| creds.split_once(':')).map(|(_, p)| percent_decode(p));
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let key = percent_decode(key);
        if is_taken(&key) {
            taken.push((key, percent_decode(value)));
        } else {
            kept.push(param);
        }
    }
    let conn = if kept.is_empty() { format!("{scheme}{front}") } else { format!("{scheme}{front}?{}", kept.join("&")) };
    Parsed { conn, taken, password }
}

/// `%XX` decoded; anything else (a stray `%`) kept as it is.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory holding `ca.pem`, a real (self-signed) certificate.
    fn dir_with_ca() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()]).unwrap();
        std::fs::write(dir.path().join("ca.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
        dir
    }

    fn config(conn: &Secret) -> tokio_postgres::Config {
        conn.expose().parse().expect("the cleaned string parses")
    }

    #[test]
    fn key_value_form() {
        let dir = dir_with_ca();
        let ca = dir.path().join("ca.pem");
        let dsn = "host=pg.test hostaddr=127.0.0.1 port=5433 user=sy password='hunter 2\\'s' \
                   sslmode = verify-full sslrootcert=ca.pem dbname=postgres";
        let parsed = parse(dsn, dir.path()).unwrap();
        assert_eq!(parsed.sslmode, SslMode::VerifyFull);
        assert_eq!(parsed.root_certs, RootCerts::File(ca.clone()));
        assert!(!parsed.conn.expose().contains("ssl"), "{}", parsed.conn.expose());
        let c = config(&parsed.conn);
        assert_eq!(c.get_password(), Some(&b"hunter 2's"[..]));
        assert_eq!(c.get_hosts(), [tokio_postgres::config::Host::Tcp("pg.test".into())]);
        assert_eq!(c.get_hostaddrs(), ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
        assert_eq!(c.get_ports(), [5433]);
        assert_eq!(c.get_dbname(), Some("postgres"));
        // An absolute path is kept; a quoted one may hold spaces.
        let abs = format!("host=db sslmode=verify-ca sslrootcert='{}'", ca.display());
        assert_eq!(parse(&abs, Path::new("/elsewhere")).unwrap().root_certs, RootCerts::File(ca));
    }

    #[test]
    fn url_form() {
        let dir = dir_with_ca();
        let dsn = "postgres://sy:p%40ss@pg.test:5433/app?connect_timeout=2&sslmode=verify-full&sslrootcert=ca%2Epem";
        let parsed = parse(dsn, dir.path()).unwrap();
        assert_eq!(parsed.sslmode, SslMode::VerifyFull);
        assert_eq!(parsed.root_certs, RootCerts::File(dir.path().join("ca.pem")));
        assert_eq!(parsed.conn.expose(), "postgres://sy:p%40ss@pg.test:5433/app?connect_timeout=2");
        let c = config(&parsed.conn);
        assert_eq!(c.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(c.get_dbname(), Some("app"));
        let plain = parse("postgresql://pg.test/app?sslmode=require", dir.path()).unwrap();
        assert_eq!((plain.conn.expose(), plain.sslmode), ("postgresql://pg.test/app", SslMode::Require));
    }

    #[test]
    fn modes_and_their_defaults() {
        let dir = dir_with_ca();
        let mode = |dsn: &str| parse(dsn, dir.path()).map(|d| (d.sslmode, d.root_certs));
        assert_eq!(mode("host=db"), Ok((SslMode::Prefer, RootCerts::None)), "libpq's default");
        assert_eq!(mode("host=db sslmode=allow"), Ok((SslMode::Prefer, RootCerts::None)));
        assert_eq!(mode("host=db sslmode=disable"), Ok((SslMode::Disable, RootCerts::None)));
        assert_eq!(mode("host=db sslmode=require"), Ok((SslMode::Require, RootCerts::None)));
        assert_eq!(
            mode("host=db sslmode=require sslrootcert=ca.pem"),
            Ok((SslMode::Require, RootCerts::File(dir.path().join("ca.pem"))))
        );
        assert_eq!(mode("host=db sslrootcert=system"), Ok((SslMode::VerifyFull, RootCerts::System)));
        assert_eq!(
            mode("host=db sslmode=verify-full sslrootcert=system"),
            Ok((SslMode::VerifyFull, RootCerts::System))
        );
        assert_eq!(
            mode("host=db sslmode=prefer sslmode=disable"),
            Ok((SslMode::Disable, RootCerts::None)),
            "last wins"
        );
    }

    #[test]
    fn errors_are_one_clear_line_without_the_password() {
        let dir = dir_with_ca();
        let cases = [
            ("host=db sslmode=verify-full password=hunter2", "sslmode=verify-full needs the CA certificates"),
            ("postgres://u:hunter2@db/x?sslmode=verify-ca", "sslmode=verify-ca needs the CA certificates"),
            ("host=db sslmode=strict password=hunter2", "unknown sslmode `strict`"),
            ("host=db sslmode=verify-ca sslrootcert=nope.pem password=hunter2", "sslrootcert file `"),
            ("host=db sslmode=verify-ca sslrootcert=empty.pem", "holds no PEM certificate"),
            ("host=db sslmode=disable sslrootcert=ca.pem", "sslrootcert has no use with sslmode=disable"),
            ("host=db sslmode=require sslrootcert=system", "sslrootcert=system needs sslmode=verify-full"),
            ("host=db sslcert=c.pem sslkey=k.pem", "`sslcert`: client certificates are not supported yet"),
            ("postgres://db/x?sslkey=k.pem", "`sslkey`: client certificates are not supported yet"),
            ("host=db password=hunter2 sslcrl=x", "not a valid PostgreSQL connection string: unknown option `sslcrl`"),
            ("host=db port=hunter2", "not a valid PostgreSQL connection string: invalid value for option `port`"),
            ("host=db password='hunter2", "the quoted value of `password` has no closing quote"),
            ("host=db hunter2", "a word without `=`"),
            ("postgres://u:hunter2@db:99999/x", "not a valid PostgreSQL connection string"),
        ];
        for (dsn, want) in cases {
            let e = parse(dsn, dir.path()).expect_err(dsn);
            assert!(e.contains(want), "{dsn}: {e}");
            assert!(!e.contains("hunter2") && !e.contains('\n'), "{dsn}: {e}");
        }
        assert!(
            parse("host=db sslmode=verify-full", dir.path()).unwrap_err().contains("sslrootcert=/path/ca.pem"),
            "the error says how to fix it"
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let parsed = parse("host=db password=hunter2", Path::new(".")).unwrap();
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("hunter2") && shown.contains("Prefer"), "{shown}");
    }
}
