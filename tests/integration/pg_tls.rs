//! TLS to a real PostgreSQL 15 that takes TLS connections only, with a certificate for
//! `pg.test` from a test CA: each `sslmode` against the right and the wrong name, the
//! right and the wrong CA, and `require` against a server without TLS.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::dns::until_answer;
use crate::support::gateway::Pki;
use crate::support::postgres::Pg;
use crate::support::{TestServer, ZONE};

/// A TLS-only primary whose certificate names `pg.test`, and two CA files: the CA that
/// signed it (`ca.pem`) and one that did not (`other-ca.pem`).
struct Setup {
    pg: Pg,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let ca = Pki::new("switchyard test CA");
        let (cert, key) = ca.server_cert("pg.test");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca.ca_pem).unwrap();
        std::fs::write(dir.path().join("other-ca.pem"), &Pki::new("another CA").ca_pem).unwrap();
        Setup { pg: Pg::primary_with_tls(&cert, &key), dir }
    }

    /// A DSN for this server, named `host`, connecting to 127.0.0.1, with `tls` added.
    fn dsn(&self, host: &str, tls: &str) -> String {
        dsn(self.pg.port, host, &tls.replace("@CA@", &self.ca("ca.pem")).replace("@OTHER@", &self.ca("other-ca.pem")))
    }

    fn ca(&self, file: &str) -> String {
        format!("'{}'", self.dir.path().join(file).display())
    }
}

fn dsn(port: u16, host: &str, tls: &str) -> String {
    format!("host={host} hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2 {tls}")
}

/// One region per DSN (`a` 192.0.2.1, .2, …), each with a one-member cluster of the
/// same name probing that DSN, and a `writer` name following the first.
fn config(regions: &[(&str, String)]) -> String {
    let mut text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[health]\ninterval = \"250ms\"\ntimeout = \"2s\"\njitter = 0\n\
         rise = 1\nfall = 1\n\n[defaults]\nttl = 60\n\n{ZONE}\n"
    );
    for (i, (name, dsn)) in regions.iter().enumerate() {
        text += &format!(
            "[regions.{name}]\na = [\"192.0.2.{}\"]\n[clusters.{name}.members.{name}]\nregion = \"{name}\"\n\
             kind = \"postgres\"\ndsn = \"{dsn}\"\n\n",
            i + 1
        );
    }
    let first = regions[0].0;
    text + &format!("[names.writer]\npolicy = \"writer\"\ncluster = \"{first}\"\nwhen_all_down = \"servfail\"\n")
}

async fn status(s: &TestServer) -> Value {
    let body = reqwest::get(format!("http://{}/status", s.admin)).await.unwrap().text().await.unwrap();
    serde_json::from_str(&body).unwrap()
}

/// Each region's member: whether it is up, and its last result ("ok" or the failure,
/// e.g. "tls: …").
fn members(v: &Value) -> Vec<(String, Option<bool>, String)> {
    v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let m = &c["members"][0];
            (m["region"].as_str().unwrap().to_owned(), m["up"].as_bool(), m["last"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

/// Polls `/status` until every region's member is up or down as `want` says, with a
/// last result starting with the given text; returns the last results by region.
async fn until_members(s: &TestServer, want: &[(&str, bool, &str)]) -> Vec<(String, Option<bool>, String)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let seen = members(&status(s).await);
        let matches = want.iter().all(|(name, up, reason)| {
            seen.iter().any(|(n, u, last)| n == name && *u == Some(*up) && last.starts_with(reason))
        });
        if matches {
            return seen;
        }
        assert!(Instant::now() < deadline, "members not as wanted {want:?} within 15 s; last seen: {seen:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn last<'a>(seen: &'a [(String, Option<bool>, String)], region: &str) -> &'a str {
    &seen.iter().find(|(n, _, _)| n == region).unwrap().2
}

/// verify-full: the right name is up and the writer; the same server under another
/// name is down, for TLS, and the DSN appears nowhere on the status page.
#[tokio::test]
async fn verify_full_checks_the_name_it_connects_by() {
    let setup = Setup::new();
    let s = TestServer::start(&config(&[
        ("right", setup.dsn("pg.test", "sslmode=verify-full sslrootcert=@CA@ password=hunter2")),
        ("wrong", setup.dsn("wrong.test", "sslmode=verify-full sslrootcert=@CA@")),
    ]))
    .await;
    until_answer(s.addr, "writer.gslb.example.org.", "192.0.2.1", Duration::from_secs(15)).await;
    let seen = until_members(&s, &[("right", true, "ok"), ("wrong", false, "tls: ")]).await;
    let why = last(&seen, "wrong");
    assert!(why.contains("wrong.test") && why.contains("not valid for name"), "{why}");
    let page = status(&s).await.to_string();
    assert!(!page.contains("hunter2"), "no password on the status page");
    s.stop().await;
}

/// verify-ca ignores the name but not the CA; require verifies nothing without roots,
/// and the chain with them (as libpq); a plain connection is refused by the server
/// (pg_hba.conf) and that is no TLS failure; require against a server without TLS is.
#[tokio::test]
async fn each_sslmode_against_the_right_and_the_wrong_name_and_ca() {
    let setup = Setup::new();
    let plain = Pg::primary();
    let s = TestServer::start(&config(&[
        ("ca-wrong-name", setup.dsn("wrong.test", "sslmode=verify-ca sslrootcert=@CA@")),
        ("ca-other-ca", setup.dsn("pg.test", "sslmode=verify-ca sslrootcert=@OTHER@")),
        ("full-other-ca", setup.dsn("pg.test", "sslmode=verify-full sslrootcert=@OTHER@")),
        ("require-no-roots", setup.dsn("wrong.test", "sslmode=require")),
        ("require-other-ca", setup.dsn("pg.test", "sslmode=require sslrootcert=@OTHER@")),
        ("prefer", setup.dsn("wrong.test", "")),
        ("disable", setup.dsn("pg.test", "sslmode=disable")),
        ("require-plain-server", dsn(plain.port, "127.0.0.1", "sslmode=require")),
        ("prefer-plain-server", dsn(plain.port, "127.0.0.1", "sslmode=prefer")),
    ]))
    .await;
    let seen = until_members(
        &s,
        &[
            ("ca-wrong-name", true, "ok"),
            ("ca-other-ca", false, "tls: "),
            ("full-other-ca", false, "tls: "),
            ("require-no-roots", true, "ok"),
            ("require-other-ca", false, "tls: "),
            ("prefer", true, "ok"),
            ("disable", false, "connect: "),
            ("require-plain-server", false, "tls: "),
            ("prefer-plain-server", true, "ok"),
        ],
    )
    .await;
    for region in ["ca-other-ca", "full-other-ca", "require-other-ca"] {
        let why = last(&seen, region);
        assert!(why.contains("UnknownIssuer") || why.contains("unknown issuer"), "{region}: {why}");
    }
    let why = last(&seen, "require-plain-server");
    assert!(why.contains("server does not support TLS"), "{why}");
    let why = last(&seen, "disable");
    assert!(why.contains("no encryption"), "pg_hba.conf has hostssl lines only: {why}");
    s.stop().await;
}

/// A relative sslrootcert is taken from the config file's directory.
#[test]
fn a_relative_sslrootcert_is_read_from_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), Pki::new("a CA").ca_pem).unwrap();
    let text = config(&[("db", dsn(5432, "pg.test", "sslmode=verify-full sslrootcert=ca.pem"))]);
    let path = crate::support::write_config(dir.path(), &text);
    let loaded = switchyard::config::load(&path).unwrap();
    let member = &loaded.clusters[0].members[0].check;
    let switchyard::config::CheckKind::Postgres { dsn } = &member.kind else { panic!("a postgres member") };
    assert_eq!(dsn.root_certs, switchyard::config::dsn::RootCerts::File(dir.path().join("ca.pem")));
}
