//! A real recursive resolver in front of switchyard: unbound with its ECS module
//! (`subnetcache`), stubbed to the test server. It checks that our ECS echo is one a
//! real resolver accepts and caches per subnet.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::dns::dig;
use crate::support::{POLICIES, TestServer};

struct Unbound {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_unbound(upstream: std::net::SocketAddr) -> Unbound {
    // A port picked as free may be taken by another test before unbound binds it:
    // then unbound exits at once, and we try again on another port.
    let mut failures = String::new();
    for _ in 0..5 {
        match try_unbound(upstream).await {
            Ok(u) => return u,
            Err(why) => failures.push_str(&why),
        }
    }
    panic!("unbound did not start:\n{failures}");
}

async fn try_unbound(upstream: std::net::SocketAddr) -> Result<Unbound, String> {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = format!(
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
  module-config: "subnetcache iterator"
  send-client-subnet: 127.0.0.1
  max-client-subnet-ipv4: 24
  max-client-subnet-ipv6: 56
  do-not-query-localhost: no
  qname-minimisation: no
  domain-insecure: "gslb.example.org"
stub-zone:
  name: "gslb.example.org"
  stub-addr: {ip}@{uport}
"#,
        dir = dir.path().display(),
        ip = upstream.ip(),
        uport = upstream.port()
    );
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
    let mut u = Unbound { child, port, _dir: dir };
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = u.child.try_wait() {
            let log = std::fs::read_to_string(u._dir.path().join("unbound.log")).unwrap_or_default();
            return Err(format!("unbound on port {port} exited ({status}):\n{log}\n"));
        }
        let d = dig(addr, &["static.gslb.example.org", "A", "+time=1", "+rec"]).await;
        if d.status == "NOERROR" && !d.answers.is_empty() {
            return Ok(u);
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(u._dir.path().join("unbound.log")).unwrap_or_default();
            return Err(format!("unbound on port {port} did not answer within 15 s:\n{}\n{log}\n", d.raw));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn answers_through_unbound_follow_the_client_subnet() {
    let s = TestServer::start(POLICIES).await;
    let u = start_unbound(s.addr).await;
    let resolver = format!("127.0.0.1:{}", u.port).parse().unwrap();
    for (subnet, want) in [
        ("198.51.100.0/24", "192.0.2.1"),
        ("192.0.2.0/24", "192.0.2.2"),
        ("203.0.113.0/24", "192.0.2.3"),
        ("2001:db8:300::/56", "192.0.2.3"),
    ] {
        let d = dig(resolver, &["app.gslb.example.org", "A", "+rec", &format!("+subnet={subnet}")]).await;
        assert_eq!(d.status, "NOERROR", "{}", d.raw);
        assert_eq!(d.answers.last().map(|a| a.3.as_str()), Some(want), "{subnet} via unbound:\n{}", d.raw);
    }
    // eu-west goes down. A subnet unbound has not seen asks switchyard again and gets
    // the fallback with the short TTL: unbound cached the earlier answer per subnet, as
    // the scope told it, not for everyone.
    s.set_up("eu-west", false);
    let d = dig(resolver, &["app.gslb.example.org", "A", "+rec", "+subnet=2001:db8:200::/56"]).await;
    let last = d.answers.last().expect("an answer");
    assert_eq!((last.3.as_str(), last.1 <= 10), ("192.0.2.1", true), "{}", d.raw);
    drop(u);
    s.stop().await;
}
