//! A real recursive resolver in front of switchyard: unbound with its ECS module
//! (`subnetcache`), stubbed to the test server. It checks that our ECS echo is one a
//! real resolver accepts and caches per subnet.

use crate::support::dns::dig;
use crate::support::unbound::{self, Setup};
use crate::support::{POLICIES, TestServer};

async fn start_unbound(upstream: std::net::SocketAddr) -> unbound::Unbound {
    unbound::start(&Setup {
        modules: "subnetcache iterator",
        stubs: vec![("gslb.example.org", upstream)],
        anchors: Vec::new(),
        extra: "  send-client-subnet: 127.0.0.1\n  max-client-subnet-ipv4: 24\n  max-client-subnet-ipv6: 56\n  domain-insecure: \"gslb.example.org\"",
        probe: ("static.gslb.example.org", "A"),
    })
    .await
}

#[tokio::test]
async fn answers_through_unbound_follow_the_client_subnet() {
    let s = TestServer::start(POLICIES).await;
    let u = start_unbound(s.addr).await;
    let resolver = u.addr;
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
