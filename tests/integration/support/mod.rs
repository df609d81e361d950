//! Test harnesses: an in-process server on 127.0.0.1:0, GeoIP databases built for the
//! test, a DNS client over real UDP/TCP sockets (hickory-proto messages), `dig`, and the
//! spawned binary.

pub mod dns;
pub mod gateway;
pub mod geoip;
pub mod nats;
pub mod postgres;
pub mod receiver;
pub mod unbound;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchyard::app::{self, App};
use switchyard::state::State;

/// The admin token every test server's directory holds in `admin-token`.
pub const ADMIN_TOKEN: &str = "s3cret-test-token";

/// A server running in this process, with its config and GeoIP database in a temp dir.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The admin HTTP server.
    pub admin: SocketAddr,
    pub state: Arc<State>,
    pub control: Arc<switchyard::app::Control>,
    pub dir: tempfile::TempDir,
    app: Option<App>,
}

impl TestServer {
    /// Starts a server on `config`, in which `@GEOIP@` names a test GeoIP database
    /// (see [`geoip::city_db`]) and `@DIR@` the temp dir.
    pub async fn start(config: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("test-city.mmdb");
        std::fs::write(&db, geoip::city_db()).expect("write test db");
        std::fs::write(dir.path().join("admin-token"), format!("{ADMIN_TOKEN}\n")).expect("write token");
        let config = if config.contains("[admin]") {
            config.to_owned()
        } else {
            format!("[admin]\nlisten = \"127.0.0.1:0\"\n{config}")
        };
        let path = write_config(dir.path(), &config);
        let loaded =
            app::load(&path, &Default::default()).unwrap_or_else(|e| panic!("test config does not load: {e:#}"));
        let app = App::start(loaded, Some(path), Default::default()).await.expect("server starts");
        TestServer {
            addr: app.dns_addr(),
            admin: app.admin_addr().expect("admin on"),
            state: app.state.clone(),
            control: app.control.clone(),
            dir,
            app: Some(app),
        }
    }

    pub fn set_up(&self, region: &str, up: bool) {
        assert!(self.state.set_region_up(region, up), "unknown region {region}");
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await.expect("clean shutdown");
        }
    }
}

/// Writes a config into `dir`, substituting `@GEOIP@` and `@DIR@`.
pub fn write_config(dir: &Path, config: &str) -> PathBuf {
    let text = config.replace("@GEOIP@", "test-city.mmdb").replace("@DIR@", &dir.display().to_string());
    let path = dir.join("switchyard.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The switchyard binary built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_switchyard")
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Makes a DNSSEC key for `zone` in `dir` as `switchyard dnssec keygen` does; its path.
pub fn keygen(dir: &Path, zone: &str, role: switchyard::config::dnssec::KeyRole) -> (PathBuf, u16) {
    let zone = hickory_proto::rr::Name::from_ascii(zone).expect("zone name");
    let (path, key) =
        switchyard::config::dnssec::generate(&zone, hickory_proto::dnssec::Algorithm::ECDSAP256SHA256, role, dir)
            .expect("key made");
    (path, key.tag)
}

/// The ways a key file's private key could show if it leaked: its secret scalar (the 32
/// bytes after the PKCS#8 header, not the public key or the header every key shares) in
/// base64, hex and as a `Debug` list of numbers, and the whole base64 text.
pub fn private_key_forms(key_file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(key_file).expect("key file");
    let b64 = text.lines().find(|l| l.starts_with("private_key")).unwrap().split('"').nth(1).unwrap().to_owned();
    let der = data_encoding::BASE64.decode(b64.as_bytes()).expect("base64");
    // P-256: ... INTEGER 1, OCTET STRING (32); Ed25519: OCTET STRING (34) { OCTET STRING (32) }.
    let at = der
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        .map(|i| i + 5)
        .or_else(|| der.windows(4).position(|w| w == [0x04, 0x22, 0x04, 0x20]).map(|i| i + 4))
        .expect("a PKCS#8 private key of P-256 or Ed25519");
    let scalar = &der[at..at + 32];
    let list: Vec<String> = scalar[..6].iter().map(|b| b.to_string()).collect();
    vec![
        data_encoding::BASE64.encode(scalar),
        data_encoding::BASE64.encode(scalar).trim_end_matches('=')[..24].to_owned(),
        data_encoding::HEXLOWER.encode(scalar),
        data_encoding::HEXUPPER.encode(scalar),
        list.join(", "),
        b64[b64.len() / 2..][..24].to_owned(),
    ]
}

/// `config` with a `[dnssec]` section signing it with a new combined key in `dir`.
pub fn signed(config: &str, dir: &Path) -> String {
    let (key, _) = keygen(dir, "gslb.example.org.", switchyard::config::dnssec::KeyRole::Csk);
    format!("{config}\n[dnssec]\nkeys = [{{ file = \"{}\" }}]\n", key.display())
}

/// The zone of the small test configs: `gslb.example.org.`, with ns1 and its glue.
pub const ZONE: &str = include_str!("../../fixtures/configs/zone.toml");

/// A config with three regions and one name per policy, on the test GeoIP database.
pub const POLICIES: &str = r#"
[server]
listen = ["127.0.0.1:0"]
geoip_db = "@GEOIP@"

[server.chaos]
version = "switchyard-test"

[defaults]
ttl = 60
failover_ttl = 10

[zone]
origin = "gslb.example.org."
[zone.soa]
rname = "hostmaster@example.org"
minimum = 30
ttl = 300
[[zone.ns]]
name = "ns1"
ipv4 = ["192.0.2.53"]
[[zone.records]]
name = "static"
type = "A"
values = ["192.0.2.10"]
[[zone.records]]
name = "www"
type = "CNAME"
values = ["app"]
[[zone.records]]
name = "big"
type = "TXT"
ttl = 120
values = ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-1",
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-2",
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-3",
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-4"]
[[zone.records]]
name = "_https._tcp"
type = "SRV"
values = ["10 5 443 app"]
[[zone.records]]
name = "@"
type = "MX"
values = ["10 mail.example.org."]
[[zone.records]]
name = "child"
type = "NS"
values = ["ns1.child"]
[[zone.records]]
name = "ns1.child"
type = "A"
values = ["192.0.2.54"]

[regions.us-east]
location = [39.04, -77.49]
a = ["192.0.2.1"]
aaaa = ["2001:db8:1::1"]
weight = 3

[regions.eu-west]
location = [53.35, -6.26]
a = ["192.0.2.2"]
aaaa = ["2001:db8:2::1"]
weight = 1

[regions.ap-southeast]
location = [1.29, 103.85]
a = ["192.0.2.3"]
aaaa = ["2001:db8:3::1"]

[regions.cdn]
cname = "edge.cdn.example.net."

[names.app]
policy = "nearest"
regions = ["us-east", "eu-west", "ap-southeast"]

[names.lat]
policy = "latency"
regions = ["us-east", "eu-west", "ap-southeast"]

[names.tie]
policy = "latency"
regions = ["us-east", "eu-west", "ap-southeast"]
tie_window = 20

[names.geo]
policy = "geo"
[names.geo.map]
"continent:EU" = ["eu-west", "us-east"]
"country:JP" = ["ap-southeast", "us-east"]
"203.0.113.128/25" = ["eu-west"]
"subdivision:US-CA" = ["ap-southeast"]
"default" = ["us-east"]

[names.fo]
policy = "failover"
regions = ["eu-west", "us-east"]

[names.w]
policy = "weighted"
regions = ["us-east", "eu-west", "ap-southeast"]

[names.mv]
policy = "multivalue"
regions = ["us-east", "eu-west", "ap-southeast"]
answers = 2

[names.st]
policy = "static"
regions = ["us-east", "eu-west"]
answers = 2

[names.sf]
policy = "failover"
regions = ["ap-southeast"]
when_all_down = "servfail"

[names.sorry]
policy = "failover"
regions = ["ap-southeast"]
when_all_down = { fallback = ["192.0.2.99", "2001:db8::99"] }

[names.edge]
policy = "failover"
regions = ["cdn", "us-east"]

[latency]
"default" = { us-east = 50, eu-west = 60, ap-southeast = 200 }
"continent:EU" = { us-east = 90, eu-west = 15, ap-southeast = 180 }
"country:JP" = { us-east = 150, eu-west = 220, ap-southeast = 40 }
"198.51.100.0/25" = { us-east = 40, eu-west = 10, ap-southeast = 300 }
"#;

/// A spawned binary whose stderr lines are gathered as they come (killed on drop).
pub struct Spawned {
    pub child: Killed,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every line read so far.
    pub log: String,
}

impl Spawned {
    pub fn start(command: &mut std::process::Command) -> Spawned {
        use std::io::{BufRead, BufReader};
        let mut child = command.stderr(std::process::Stdio::piped()).spawn().expect("the binary starts");
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Spawned { child: Killed(child), lines, log: String::new() }
    }

    /// The first line, already read or arriving within `within`, that `what` accepts.
    pub fn until(&mut self, within: std::time::Duration, what: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.log.lines().find(|l| what(l)) {
            return line.to_owned();
        }
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("the awaited log line did not come within {within:?}:\n{}", self.log)
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.0.wait().map(|s| s.to_string()).unwrap_or_default();
                    panic!("the process ended ({status}) before the awaited log line:\n{}", self.log)
                }
            };
            self.log.push_str(&line);
            self.log.push('\n');
            if what(&line) {
                return line;
            }
        }
    }

    /// The DNS address the server bound (its stable `listening for TCP on ADDR` line,
    /// text or JSON), waiting up to `within`. Tests listen on port 0 and read the port
    /// here: a port picked free beforehand may be taken by another test before the
    /// server binds it.
    pub fn dns_addr(&mut self, within: std::time::Duration) -> std::net::SocketAddr {
        let line = self.until(within, |l| l.contains("listening for TCP on "));
        let rest = line.split("listening for TCP on ").nth(1).unwrap_or_default();
        let addr: String = rest.chars().take_while(|c| c.is_ascii_hexdigit() || ".:[]".contains(*c)).collect();
        addr.parse().unwrap_or_else(|e| panic!("`{addr}` in `{line}`: {e}"))
    }

    /// Kills the process and reads what it had written.
    pub fn kill(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_millis(200)) {
            self.log.push_str(&line);
            self.log.push('\n');
        }
    }
}

/// A spawned process that is killed if the test ends early, so nothing outlives it.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
