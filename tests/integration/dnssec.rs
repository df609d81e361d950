//! Signed answers, checked by real validators: unbound (validating, with the zone's
//! trust anchor or its parent's) and BIND's delv. Static and GSLB answers before and
//! after a failover, compact denials (NXDOMAIN and NODATA), delegations, truncation, the
//! signature cache, a key swapped under the resolver, and a whole rollover as
//! docs/dnssec.md describes it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::dnssec::PublicKey;
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::rr::{RData, RecordType};
use switchyard::config::dnssec::{KeyRole, read_key};

use hickory_proto::op::{Message, ResponseCode};

use crate::support::dns::{addrs, dig, ecs, raw_query, udp, udp_raw};
use crate::support::unbound::{self, Setup};
use crate::support::{POLICIES, TestServer, bin, keygen, signed};

/// A key's DNSKEY as a zone-file record (unbound's `trust-anchor:`).
fn dnskey_record(key: &Path) -> String {
    let k = read_key(key).expect("key reads");
    format!(
        "{} DNSKEY {} 3 {} {}",
        k.zone,
        k.dnskey.flags(),
        u8::from(k.algorithm),
        data_encoding::BASE64.encode(k.dnskey.public_key().public_bytes())
    )
}

/// A key's DS record data, as a parent's config writes it.
fn ds_data(key: &Path) -> String {
    let k = read_key(key).expect("key reads");
    let zone = k.zone.clone();
    let ds = k.into_zone_key(key.to_owned(), true).ds(&zone).expect("ds");
    format!("{} {} 2 {}", ds.key_tag(), u8::from(ds.algorithm()), data_encoding::HEXUPPER.encode(ds.digest()))
}

/// Runs delv against `server` with `key` as the trust anchor of `zone`; what it prints.
async fn delv(server: SocketAddr, zone: &str, key: &Path, name: &str, qtype: &str) -> String {
    let k = read_key(key).expect("key reads");
    let dir = tempfile::tempdir().unwrap();
    let anchors = dir.path().join("anchors.conf");
    std::fs::write(
        &anchors,
        format!(
            "trust-anchors {{ {zone} static-key {} 3 {} \"{}\"; }};\n",
            k.dnskey.flags(),
            u8::from(k.algorithm),
            data_encoding::BASE64.encode(k.dnskey.public_key().public_bytes())
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new("delv")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "-a"])
        .arg(&anchors)
        .arg(format!("+root={zone}"))
        .args([name, qtype])
        .output()
        .await
        .expect("delv runs (apt-get install bind9-dnsutils)");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The last address in an answer (signatures follow their RRsets).
fn address(d: &crate::support::dns::Dig) -> Option<&str> {
    d.answers.iter().rfind(|a| a.2 == "A" || a.2 == "AAAA").map(|a| a.3.as_str())
}

fn validated(delv_out: &str) -> bool {
    delv_out.contains("; fully validated") || delv_out.contains("; negative response, fully validated")
}

/// Asks unbound, with DO; panics unless the answer is authenticated (`ad`).
async fn authenticated(resolver: SocketAddr, args: &[&str]) -> crate::support::dns::Dig {
    let mut all = vec!["+rec", "+dnssec"];
    all.extend_from_slice(args);
    let d = dig(resolver, &all).await;
    assert!(d.flags.iter().any(|f| f == "ad"), "not authenticated: {args:?}\n{}", d.raw);
    d
}

fn validating<'a>(resolver_for: Vec<(&'a str, SocketAddr)>, anchor: String, probe: (&'a str, &'a str)) -> Setup<'a> {
    Setup {
        modules: "subnetcache validator iterator",
        stubs: resolver_for,
        anchors: vec![anchor],
        extra: "  send-client-subnet: 127.0.0.1\n  max-client-subnet-ipv4: 24\n  max-client-subnet-ipv6: 56",
        probe,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validating_resolver_authenticates_every_answer_and_rejects_a_swapped_key() {
    let keys = tempfile::tempdir().unwrap();
    let (key, _) = keygen(keys.path(), "gslb.example.org.", KeyRole::Csk);
    // Two regions behind one address, and a static RRset written with a duplicate: one
    // record each (a signature over duplicates would not verify).
    let extra = "[regions.us-east-2]\nlocation = [39.0, -77.4]\na = [\"192.0.2.1\"]\n\
                 [names.dup]\npolicy = \"multivalue\"\nregions = [\"us-east\", \"us-east-2\", \"eu-west\"]\n\
                 [[zone.records]]\nname = \"twice\"\ntype = \"A\"\nvalues = [\"192.0.2.20\", \"192.0.2.20\"]\n";
    let config = format!("{POLICIES}\n{extra}\n[dnssec]\nkeys = [{{ file = \"{}\" }}]\n", key.display());
    let s = TestServer::start(&config).await;
    let u = unbound::start(&validating(
        vec![("gslb.example.org", s.addr)],
        dnskey_record(&key),
        ("static.gslb.example.org", "A"),
    ))
    .await;
    let r = u.addr;

    // Static data, a CNAME into a GSLB name, the DNSKEY set.
    let d = authenticated(r, &["static.gslb.example.org", "A"]).await;
    assert_eq!(d.answers[0].3, "192.0.2.10", "{}", d.raw);
    let d = authenticated(r, &["www.gslb.example.org", "A", "+subnet=192.0.2.0/24"]).await;
    assert_eq!(address(&d), Some("192.0.2.2"), "{}", d.raw);
    authenticated(r, &["gslb.example.org", "DNSKEY"]).await;
    authenticated(r, &["gslb.example.org", "CDS"]).await;
    // GSLB answers by client subnet, then after a failover (new RRsets, new signatures).
    for (subnet, want) in [("198.51.100.0/24", "192.0.2.1"), ("192.0.2.0/24", "192.0.2.2")] {
        let d = authenticated(r, &["app.gslb.example.org", "A", &format!("+subnet={subnet}")]).await;
        assert_eq!(address(&d), Some(want), "{subnet}: {}", d.raw);
    }
    s.set_up("eu-west", false);
    let d = authenticated(r, &["app.gslb.example.org", "A", "+subnet=2001:db8:200::/56"]).await;
    assert_eq!(
        d.answers.iter().rfind(|a| a.2 == "A").map(|a| (a.3.as_str(), a.1 <= 10)),
        Some(("192.0.2.1", true)),
        "{}",
        d.raw
    );
    let d = authenticated(r, &["app.gslb.example.org", "AAAA", "+subnet=2001:db8:200:100::/56"]).await;
    assert_eq!(address(&d), Some("2001:db8:1::1"), "{}", d.raw);
    // A name that does not exist: a compact denial, authenticated. The resolver says
    // NOERROR with no data (RFC 9824: it may say NXDOMAIN if it knows NXNAME).
    let d = authenticated(r, &["nope.gslb.example.org", "A"]).await;
    assert!(matches!(d.status.as_str(), "NOERROR" | "NXDOMAIN") && d.answers.is_empty(), "{}", d.raw);
    let d = authenticated(r, &["a.b.nope.gslb.example.org", "MX"]).await;
    assert!(d.answers.is_empty(), "{}", d.raw);
    // No data of a type, at a static name, at a GSLB name, at the apex.
    for (name, qtype) in [("static.gslb.example.org", "TXT"), ("app.gslb.example.org", "MX"), ("gslb.example.org", "A")]
    {
        let d = authenticated(r, &[name, qtype]).await;
        assert_eq!((d.status.as_str(), d.answers.len()), ("NOERROR", 0), "{name} {qtype}: {}", d.raw);
    }

    // (eu-west is down by now: us-east and us-east-2 are left, one address.)
    let d = authenticated(r, &["dup.gslb.example.org", "A"]).await;
    assert_eq!(d.answers.iter().filter(|a| a.2 == "A").count(), 1, "{}", d.raw);
    let d = authenticated(r, &["twice.gslb.example.org", "A"]).await;
    assert_eq!(d.answers.iter().filter(|a| a.2 == "A").count(), 1, "{}", d.raw);
    // The DNSSEC types themselves: an NSEC is answered, not denied (also at a name that
    // does not exist, and at a CNAME, which is not followed for it); RRSIG queries get
    // signatures, not a bogus denial.
    for name in ["nope.gslb.example.org", "static.gslb.example.org", "www.gslb.example.org", "app.gslb.example.org"] {
        let d = authenticated(r, &[name, "NSEC"]).await;
        assert_eq!(
            (d.status.as_str(), d.answers.iter().filter(|a| a.2 == "NSEC").count()),
            ("NOERROR", 1),
            "{}",
            d.raw
        );
        let d = dig(r, &[name, "RRSIG", "+rec", "+dnssec"]).await;
        assert_eq!(d.status, "NOERROR", "{name} RRSIG:\n{}\n{}", d.raw, u.log());
        assert!(d.answers.iter().any(|a| a.2 == "RRSIG"), "{}", d.raw);
    }

    // delv, straight at switchyard, agrees.
    for (name, qtype) in [
        ("static.gslb.example.org", "A"),
        ("app.gslb.example.org", "A"),
        ("www.gslb.example.org", "A"),
        ("nope.gslb.example.org", "A"),
        ("app.gslb.example.org", "TXT"),
        ("gslb.example.org", "DNSKEY"),
        ("child.gslb.example.org", "DS"),
        ("big.gslb.example.org", "TXT"),
    ] {
        let out = delv(s.addr, "gslb.example.org", &key, name, qtype).await;
        assert!(validated(&out), "delv does not validate {name} {qtype}:\n{out}");
    }

    // A key swapped under the resolver: answers signed by a key the trust anchor does
    // not know are bogus, and the resolver says SERVFAIL; delv refuses them too.
    let (other, _) = keygen(keys.path(), "gslb.example.org.", KeyRole::Csk);
    let path = s.dir.path().join("switchyard.toml");
    let text =
        std::fs::read_to_string(&path).unwrap().replace(&key.display().to_string(), &other.display().to_string());
    std::fs::write(&path, text).unwrap();
    s.control.reload().await.expect("reloads");
    let d = dig(r, &["app.gslb.example.org", "A", "+rec", "+dnssec", "+subnet=203.0.113.0/24"]).await;
    assert_eq!(d.status, "SERVFAIL", "a bogus answer must not pass:\n{}\n{}", d.raw, u.log());
    let out = delv(s.addr, "gslb.example.org", &key, "static.gslb.example.org", "A").await;
    assert!(!validated(&out) && out.contains("resolution failed"), "delv accepts a swapped key:\n{out}");
    drop(u);
    s.stop().await;
}

/// Without DO nothing changes; with the CO bit a denial keeps NXDOMAIN; a signed answer
/// too big for the client's buffer is truncated over UDP and whole over TCP; ECS
/// scopes are the same signed or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_answers_keep_rcodes_truncation_and_ecs_scopes() {
    let keys = tempfile::tempdir().unwrap();
    let s = TestServer::start(&signed(POLICIES, keys.path())).await;
    let plain = dig(s.addr, &["nope.gslb.example.org", "A"]).await;
    assert_eq!(plain.status, "NXDOMAIN", "{}", plain.raw);
    assert!(!plain.raw.contains("RRSIG"), "no signatures without DO:\n{}", plain.raw);
    let compact = dig(s.addr, &["nope.gslb.example.org", "A", "+dnssec"]).await;
    assert_eq!(compact.status, "NOERROR", "{}", compact.raw);
    assert!(compact.raw.contains("NSEC\t\\000.nope.gslb.example.org. RRSIG NSEC TYPE128"), "{}", compact.raw);
    // With DO and CO (RFC 9824 4: "Compact Answers OK", EDNS flag bit 1): NXDOMAIN kept.
    let mut p = raw_query(7, "nope.gslb.example.org", 1, 1, Some((1232, 0, &[])));
    let flags = p.len() - 4;
    p[flags] = 0x80 | 0x40;
    let reply = udp_raw(s.addr, &p, Duration::from_secs(2)).await.expect("an answer");
    let co = Message::from_vec(&reply).unwrap();
    assert_eq!(co.metadata.response_code, ResponseCode::NXDomain, "CO keeps NXDOMAIN: {co:?}");
    let flags = co.edns.as_ref().expect("an OPT").flags();
    assert!(flags.dnssec_ok && flags.z & 0x4000 != 0, "CO is echoed (RFC 9824 5.1): {flags:?}");
    let nsec = co.authorities.iter().find(|r| r.record_type() == RecordType::NSEC).expect("an NSEC");
    let RData::DNSSEC(DNSSECRData::NSEC(data)) = &nsec.data else { panic!("{nsec}") };
    assert!(data.type_bit_maps().any(|t| u16::from(t) == 128), "NXNAME in {nsec}");
    let chaos = dig(s.addr, &["version.bind", "TXT", "CH", "+dnssec"]).await;
    assert!(
        chaos.raw.contains("switchyard-test") && !chaos.raw.contains("RRSIG"),
        "CHAOS is not signed:\n{}",
        chaos.raw
    );
    let nxname = dig(s.addr, &["app.gslb.example.org", "TYPE128"]).await;
    assert_eq!(nxname.status, "FORMERR", "NXNAME cannot be asked for:\n{}", nxname.raw);

    let udp = dig(s.addr, &["big.gslb.example.org", "TXT", "+dnssec", "+bufsize=700", "+ignore"]).await;
    assert!(udp.flags.iter().any(|f| f == "tc"), "truncated over UDP:\n{}", udp.raw);
    let tcp = dig(s.addr, &["big.gslb.example.org", "TXT", "+dnssec", "+tcp"]).await;
    assert_eq!(tcp.answers.iter().filter(|a| a.2 == "RRSIG").count(), 1, "{}", tcp.raw);
    assert_eq!(tcp.answers.iter().filter(|a| a.2 == "TXT").count(), 4, "{}", tcp.raw);

    for subnet in ["198.51.100.0/24", "192.0.2.0/24", "2001:db8:300::/56", "203.0.113.77/32"] {
        let sub = format!("+subnet={subnet}");
        let unsigned = dig(s.addr, &["app.gslb.example.org", "A", &sub]).await;
        let signed = dig(s.addr, &["app.gslb.example.org", "A", &sub, "+dnssec"]).await;
        assert_eq!(unsigned.client_subnet, signed.client_subnet, "{subnet}");
        assert_eq!(unsigned.answers.first().map(|a| &a.3), signed.answers.first().map(|a| &a.3), "{subnet}");
        assert!(signed.answers.iter().any(|a| a.2 == "RRSIG"), "{}", signed.raw);
    }
    s.stop().await;
}

/// A GSLB name has few distinct answers: thousands of signed queries from many
/// subnets make a handful of signatures, and a failover a handful more, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_signs_a_handful_of_rrsets_once() {
    let keys = tempfile::tempdir().unwrap();
    let s = TestServer::start(&signed(POLICIES, keys.path())).await;
    let counters = s.control.metrics.signing.clone();
    let made = || counters.rrsets.load(Ordering::Relaxed);
    let subnets = ["198.51.100.0/24", "192.0.2.0/24", "203.0.113.0/24", "2001:db8:300::/56", "100.100.3.0/24"];
    let ask = |round: usize| {
        let subnet = subnets[round % subnets.len()];
        let mut m = ecs(
            "app.gslb.example.org.",
            if round.is_multiple_of(2) { RecordType::A } else { RecordType::AAAA },
            subnet,
        );
        m.edns.as_mut().unwrap().set_dnssec_ok(true);
        m
    };
    let query_all = async |rounds: usize| {
        for round in 0..rounds {
            let reply = udp(s.addr, &ask(round)).await;
            assert!(!addrs(&reply).is_empty(), "{reply:?}");
            assert!(reply.answers.iter().any(|r| r.record_type() == RecordType::RRSIG), "{reply:?}");
        }
    };
    let before = made();
    query_all(1000).await;
    let warm = made() - before;
    // At most one RRset per (region, family) answered: 3 regions × 2.
    assert!((1..=6).contains(&warm), "1000 queries made {warm} signatures");
    s.set_up("eu-west", false);
    let before = made();
    query_all(1000).await;
    let failover = made() - before;
    // The moved clients' answers at the failover TTL: a handful, not one per query.
    assert!((1..=6).contains(&failover), "1000 queries after a failover made {failover} signatures");
    // The status page and the metrics say so.
    let status = reqwest::get(format!("http://{}/status", s.admin)).await.unwrap().text().await.unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let d = &status["dnssec"];
    assert_eq!((d["keys"][0]["role"].as_str(), d["keys"][0]["active"].as_bool()), (Some("csk"), Some(true)), "{d}");
    assert_eq!(d["signatures"]["rrset"].as_u64(), Some(made()), "{d}");
    let metrics = reqwest::get(format!("http://{}/metrics", s.admin)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains(&format!("switchyard_dnssec_signatures_total{{kind=\"rrset\"}} {}", made())), "{metrics}");
    let page = reqwest::get(format!("http://{}/", s.admin)).await.unwrap().text().await.unwrap();
    assert!(page.contains("signed by "), "the status page names the keys");
    s.stop().await;
}

/// Signatures are made again before they expire, without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_refreshed_before_they_expire() {
    let keys = tempfile::tempdir().unwrap();
    // Short TTLs (2 s), so that a 4 s refresh outlives every cache, as check-config asks.
    let (key, _) = keygen(keys.path(), "gslb.example.org.", KeyRole::Csk);
    let config = child_config(&[(&key, true)]).replace("[dnssec]", "[dnssec]\nvalidity = \"6s\"\nrefresh = \"4s\"");
    let s = TestServer::start(&config).await;
    let expiration = |d: &crate::support::dns::Dig| -> String {
        let sig = d.answers.iter().find(|a| a.2 == "RRSIG").unwrap_or_else(|| panic!("signed: {}", d.raw));
        sig.3.split_whitespace().nth(4).unwrap_or_default().to_owned()
    };
    // A static RRset (general path: dig sends a cookie) and a GSLB answer (fast path:
    // no cookie, only ECS), each asked until its signature is made again.
    let asks: [&[&str]; 2] = [
        &["static.gslb.example.org", "A", "+dnssec"],
        &["app.gslb.example.org", "A", "+dnssec", "+nocookie", "+subnet=198.51.100.0/24"],
    ];
    for ask in asks {
        let first = expiration(&dig(s.addr, ask).await);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let d = dig(s.addr, ask).await;
            let now = expiration(&d);
            if now > first {
                break;
            }
            assert!(Instant::now() < deadline, "{ask:?}: the signature expiring at {first} was never made again");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    s.stop().await;
}

/// The child's config, with short TTLs so that a rollover's waits are seconds.
fn child_config(keys: &[(&Path, bool)]) -> String {
    let keys: Vec<String> =
        keys.iter().map(|(k, active)| format!("{{ file = \"{}\", active = {active} }}", k.display())).collect();
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[defaults]
ttl = 2
failover_ttl = 1

[zone]
origin = "gslb.example.org."
ttl = 2
[zone.soa]
rname = "hostmaster@example.org"
minimum = 2
ttl = 2
[[zone.ns]]
name = "ns1"
ipv4 = ["192.0.2.53"]
[[zone.records]]
name = "static"
type = "A"
values = ["192.0.2.10"]

[regions.a]
a = ["192.0.2.1"]
[regions.b]
a = ["192.0.2.2"]

[names.app]
policy = "failover"
regions = ["a", "b"]

[dnssec]
dnskey_ttl = 2
keys = [{}]
"#,
        keys.join(", ")
    )
}

/// The parent zone `example.org.`: it delegates `gslb` with these DS records.
fn parent_config(key: &Path, ds: &[String]) -> String {
    let ds: Vec<String> = ds.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]

[zone]
origin = "example.org."
ttl = 2
[zone.soa]
rname = "hostmaster@example.org"
minimum = 2
ttl = 2
[[zone.ns]]
name = "ns1"
ipv4 = ["192.0.2.50"]
[[zone.records]]
name = "gslb"
type = "NS"
values = ["ns1.gslb"]
[[zone.records]]
name = "ns1.gslb"
type = "A"
values = ["192.0.2.53"]
[[zone.records]]
name = "gslb"
type = "DS"
values = [{}]

[dnssec]
dnskey_ttl = 2
keys = [{{ file = "{}" }}]
"#,
        ds.join(", "),
        key.display()
    )
}

/// Replaces a test server's config and reloads it.
async fn reconfigure(s: &TestServer, config: &str) {
    std::fs::write(s.dir.path().join("switchyard.toml"), config).unwrap();
    s.control.reload().await.expect("the new config loads");
}

/// Polls `switchyard check-config` until it has no warning (the rollover step it
/// guards may be taken); returns the warnings it gave first.
async fn until_no_warning(config: &Path, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut first = None;
    loop {
        let out = tokio::process::Command::new(bin()).arg("check-config").arg(config).output().await.unwrap();
        assert!(out.status.success(), "check-config fails: {}", String::from_utf8_lossy(&out.stderr));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !stderr.contains("warning:") {
            return first.unwrap_or_default();
        }
        first.get_or_insert(stderr);
        assert!(Instant::now() < deadline, "check-config still warns after {within:?}: {first:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The rollover of docs/dnssec.md, step by step, under a signed parent that delegates
/// with DS records, while a validating resolver is asked all along: every answer is
/// authenticated, and check-config warns about each step taken too early.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_documented_key_rollover_keeps_every_answer_authenticated() {
    let keys = tempfile::tempdir().unwrap();
    let (parent_key, _) = keygen(keys.path(), "example.org.", KeyRole::Csk);
    let (old, old_tag) = keygen(keys.path(), "gslb.example.org.", KeyRole::Csk);
    let child = TestServer::start(&child_config(&[(&old, true)])).await;
    let parent = TestServer::start(&parent_config(&parent_key, &[ds_data(&old)])).await;
    let u = unbound::start(&validating(
        vec![("example.org", parent.addr), ("gslb.example.org", child.addr)],
        dnskey_record(&parent_key),
        ("static.gslb.example.org", "A"),
    ))
    .await;
    let r = u.addr;
    // The chain: the parent's delegation is signed, with the DS the child's key matches.
    authenticated(r, &["gslb.example.org", "DS"]).await;
    authenticated(r, &["static.gslb.example.org", "A"]).await;

    // Ask all along: a static name, a GSLB name, and a new name that does not exist
    // each time (a fresh denial, validated against the key set of the moment).
    let stop = Arc::new(AtomicBool::new(false));
    let asker = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut asked, mut failures) = (0usize, Vec::new());
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let nx = format!("nx-{i}.gslb.example.org");
                for (name, qtype) in
                    [("static.gslb.example.org", "A"), ("app.gslb.example.org", "A"), (nx.as_str(), "A")]
                {
                    let d = dig(r, &[name, qtype, "+rec", "+dnssec"]).await;
                    asked += 1;
                    if !d.flags.iter().any(|f| f == "ad") || d.status == "SERVFAIL" {
                        failures.push(format!("{name}: {} {:?}", d.status, d.flags));
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (asked, failures)
        })
    };
    let config = child.dir.path().join("switchyard.toml");

    // 1. Publish the new key, not signing yet.
    let (new, new_tag) = keygen(keys.path(), "gslb.example.org.", KeyRole::Csk);
    reconfigure(&child, &child_config(&[(&old, true), (&new, false)])).await;
    // 2. The parent publishes both DS records (what the child's CDS now says).
    let cds = dig(child.addr, &["gslb.example.org", "CDS"]).await;
    assert_eq!(cds.answers.len(), 2, "CDS lists both keys:\n{}", cds.raw);
    reconfigure(&parent, &parent_config(&parent_key, &[ds_data(&old), ds_data(&new)])).await;
    // 3. After the DNSKEY TTL, the new key signs and the old one stops. Before that,
    //    check-config warns.
    std::fs::write(&config, child_config(&[(&old, false), (&new, true)])).unwrap();
    let warned = until_no_warning(&config, Duration::from_secs(20)).await;
    assert!(warned.contains(&format!("key {new_tag} would start signing")), "warned: {warned}");
    child.control.reload().await.expect("reloads");
    // 4. The resolver must have the new DS set before the old key goes: wait until it
    //    shows both (the parent's DS TTL).
    let deadline = Instant::now() + Duration::from_secs(20);
    while dig(r, &["gslb.example.org", "DS", "+rec"]).await.answers.len() < 2 {
        assert!(Instant::now() < deadline, "the resolver never saw both DS records");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 5. After the longest TTL since the old key last signed, remove it (check-config
    //    warns until then), and then its DS at the parent.
    std::fs::write(&config, child_config(&[(&new, true)])).unwrap();
    let warned = until_no_warning(&config, Duration::from_secs(20)).await;
    assert!(warned.contains(&format!("removing key {old_tag}")), "warned: {warned}");
    child.control.reload().await.expect("reloads");
    reconfigure(&parent, &parent_config(&parent_key, &[ds_data(&new)])).await;
    // Let the resolver's caches turn over once more on the final state.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ds = dig(r, &["gslb.example.org", "DS", "+rec"]).await;
        let keys = dig(r, &["gslb.example.org", "DNSKEY", "+rec"]).await;
        if ds.answers.len() == 1 && keys.answers.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the resolver never saw the final key set");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    authenticated(r, &["app.gslb.example.org", "A"]).await;

    stop.store(true, Ordering::Relaxed);
    let (asked, failures) = asker.await.unwrap();
    let log = u.log();
    let why: Vec<&str> =
        log.lines().filter(|l| l.contains("validation failure") || l.contains("error")).take(10).collect();
    assert!(
        failures.is_empty(),
        "{} of {asked} answers not authenticated during the rollover: {failures:?}\n{why:#?}",
        failures.len()
    );
    assert!(asked > 50, "the resolver was asked all along: {asked}");
    drop(u);
    child.stop().await;
    parent.stop().await;
}

/// A key history that cannot be read is kept aside and started again, not left broken.
#[test]
fn an_unreadable_key_history_starts_again() {
    let keys = tempfile::tempdir().unwrap();
    let (key, _) = keygen(keys.path(), "gslb.example.org.", KeyRole::Csk);
    let dir = tempfile::tempdir().unwrap();
    let path = crate::support::write_config(dir.path(), &child_config(&[(&key, true)]));
    let history = dir.path().join("switchyard.toml.dnssec.json");
    std::fs::write(&history, "not json").unwrap();
    let config = switchyard::config::load(&path).unwrap();
    let warnings = switchyard::app::record_keys(&path, &config, 1_800_000_000.0);
    assert!(warnings.iter().any(|w| w.contains("starts again")), "{warnings:?}");
    assert_eq!(std::fs::read_to_string(dir.path().join("switchyard.toml.dnssec.json.corrupt")).unwrap(), "not json");
    let again = switchyard::config::dnssec::KeyHistory::read(&history).expect("written anew");
    assert_eq!(again.published.len(), 1);
    assert!(switchyard::app::record_keys(&path, &config, 1_800_000_001.0).is_empty(), "and it stays readable");
}
