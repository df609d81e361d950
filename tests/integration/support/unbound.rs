//! A real recursive resolver for the tests: unbound in the foreground on a free
//! loopback port, stubbed to the test servers, optionally validating with given trust
//! anchors.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::dns::dig;

pub struct Unbound {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Unbound {
    /// What unbound logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("unbound.log")).unwrap_or_default()
    }
}

/// How unbound is set up.
pub struct Setup<'a> {
    /// `module-config`, e.g. "subnetcache iterator" or "validator iterator".
    pub modules: &'a str,
    /// Zones and the server each is stubbed to.
    pub stubs: Vec<(&'a str, SocketAddr)>,
    /// `trust-anchor:` lines (records in zone-file form); none: nothing is validated.
    pub anchors: Vec<String>,
    /// Extra `server:` lines.
    pub extra: &'a str,
    /// A name and type that must resolve before the resolver counts as up.
    pub probe: (&'a str, &'a str),
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts unbound as `setup` says, and waits until it answers the probe.
pub async fn start(setup: &Setup<'_>) -> Unbound {
    // A port picked as free may be taken by another test before unbound binds it:
    // then unbound exits at once, and we try again on another port.
    let mut failures = String::new();
    for _ in 0..5 {
        match try_start(setup).await {
            Ok(u) => return u,
            Err(why) => failures.push_str(&why),
        }
    }
    panic!("unbound did not start:\n{failures}");
}

async fn try_start(setup: &Setup<'_>) -> Result<Unbound, String> {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut conf = format!(
        r#"server:
  interface: 127.0.0.1
  port: {port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{dir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  module-config: "{modules}"
  do-not-query-localhost: no
  qname-minimisation: no
  val-log-level: 2
{extra}
"#,
        dir = dir.path().display(),
        modules = setup.modules,
        extra = setup.extra,
    );
    for a in &setup.anchors {
        conf.push_str(&format!("  trust-anchor: \"{a}\"\n"));
    }
    for (zone, addr) in &setup.stubs {
        conf.push_str(&format!("stub-zone:\n  name: \"{zone}\"\n  stub-addr: {}@{}\n", addr.ip(), addr.port()));
    }
    let path = dir.path().join("unbound.conf");
    std::fs::write(&path, conf).unwrap();
    let log = std::fs::File::create(dir.path().join("unbound.log")).unwrap();
    let child = Command::new("unbound")
        .arg("-d")
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("unbound runs (apt-get install unbound)");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut u = Unbound { child, addr, dir };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = u.child.try_wait() {
            return Err(format!("unbound on port {port} exited ({status}):\n{}\n", u.log()));
        }
        let d = dig(addr, &[setup.probe.0, setup.probe.1, "+time=1", "+rec"]).await;
        if d.status == "NOERROR" && !d.answers.is_empty() {
            return Ok(u);
        }
        if Instant::now() > deadline {
            return Err(format!("unbound on port {port} did not answer within 15 s:\n{}\n{}\n", d.raw, u.log()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
