//! The UDP fast path writes exactly the bytes the general (hickory) path writes, for
//! every query it takes: answers, NXDOMAIN, ECS scopes, EDNS sizes, DO bit, query-name
//! case, health states. Queries it declines are answered by the general path.

use std::net::SocketAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use switchyard::metrics::Metrics;
use switchyard::query::fast;
use switchyard::query::handler::{Handler, general};

use crate::support::{POLICIES, TestServer};

fn packet(id: u16, name: &str, qtype: RecordType, edns: Option<(u16, bool)>, ecs: Option<&str>, rd: bool) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = rd;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some((size, dnssec_ok)) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        e.set_dnssec_ok(dnssec_ok);
        if let Some(subnet) = ecs {
            e.options_mut().insert(EdnsOption::Subnet(subnet.parse::<ClientSubnet>().unwrap()));
        }
        m.edns = Some(e);
    }
    m.to_vec().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_and_general_paths_write_identical_bytes() {
    let s = TestServer::start(POLICIES).await;
    let edns = [None, Some((512, false)), Some((1232, true)), Some((4096, false))];
    let (taken, total, _) = compare_paths(&s, &edns).await;
    assert!(taken * 3 > total, "the fast path takes the common queries: {taken} of {total}");
    s.stop().await;
}

/// In a signed zone, the fast path serves signed answers (DO) from the signature cache
/// in the bytes the general path writes, through failovers that need new signatures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_answers_are_byte_identical_on_both_paths() {
    let keys = tempfile::tempdir().unwrap();
    let s = TestServer::start(&crate::support::signed(POLICIES, keys.path())).await;
    let edns = [Some((1232, true)), Some((4096, true)), Some((512, true)), None, Some((1232, false))];
    let (taken, total, signed) = compare_paths(&s, &edns).await;
    assert!(taken * 3 > total, "the fast path takes the common queries: {taken} of {total}");
    assert!(signed * 5 > taken, "many of them signed: {signed} of {taken}");
    // Compact denials with the CO bit keep NXDOMAIN, on both paths alike.
    let handler = Handler::new(s.state.clone(), Metrics::new());
    let src: SocketAddr = "127.0.0.1:40002".parse().unwrap();
    let mut scratch = fast::Scratch::default();
    for name in ["nope.gslb.example.org.", "Nx-7.gslb.EXAMPLE.org.", "a.b.c.nope.gslb.example.org."] {
        let mut p = packet(9, name, RecordType::A, Some((1232, true)), None, false);
        let flags = p.len() - 4;
        p[flags] |= 0x40;
        let general = general(&handler, &p, src, hickory_server::net::xfer::Protocol::Udp).await.unwrap();
        let snap = s.state.load();
        assert!(fast::answer(&snap, &p, src.ip(), &mut scratch).is_some(), "the fast path takes {name} with CO");
        assert_eq!(scratch.out, general, "{name} with CO");
        let m = Message::from_vec(&general).unwrap();
        assert_eq!(m.metadata.response_code, hickory_proto::op::ResponseCode::NXDomain, "{name}: {m:?}");
        assert!(m.edns.as_ref().is_some_and(|e| e.flags().z & 0x4000 != 0), "CO echoed: {m:?}");
        assert_eq!(m.authorities.iter().filter(|r| r.record_type() == RecordType::RRSIG).count(), 2, "{m:?}");
    }
    s.stop().await;
}

/// Sends every combination of name, type, EDNS and ECS, in three health states, to
/// both paths (the general one first, so that what it signs is cached), and checks that
/// whatever the fast path takes it answers byte for byte as the general path does.
/// Returns how many the fast path took, of how many, and how many of those were signed.
async fn compare_paths(s: &TestServer, edns_list: &[Option<(u16, bool)>]) -> (usize, usize, usize) {
    let handler = Handler::new(s.state.clone(), Metrics::new());
    let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let names = [
        "app.gslb.example.org.",
        "APP.Gslb.Example.ORG.",
        "lat.gslb.example.org.",
        "tie.gslb.example.org.",
        "geo.gslb.example.org.",
        "w.gslb.example.org.",
        "mv.gslb.example.org.",
        "st.gslb.example.org.",
        "fo.gslb.example.org.",
        "static.gslb.example.org.",
        "StAtIc.gslb.example.org.",
        "nope.gslb.example.org.",
        "nx-42.GSLB.example.org.",
        "a.b.c.nope.gslb.example.org.",
        "www.gslb.example.org.",
        "edge.gslb.example.org.",
        "sorry.gslb.example.org.",
        "child.gslb.example.org.",
        "example.com.",
    ];
    let subnets = [
        None,
        Some("198.51.100.0/24"),
        Some("192.0.2.0/25"),
        Some("203.0.113.77/32"),
        Some("100.100.3.0/24"),
        Some("100.64.0.0/12"),
        Some("0.0.0.0/0"),
        Some("2001:db8:300::/56"),
        Some("2001:db8:999::/48"),
    ];
    let mut taken = 0;
    let mut total = 0;
    let mut signed = 0;
    let mut scratch = fast::Scratch::default();
    for health in 0..3 {
        // All up; eu-west down; every region down.
        match health {
            1 => s.set_up("eu-west", false),
            2 => ["us-east", "ap-southeast", "cdn"].iter().for_each(|r| s.set_up(r, false)),
            _ => {}
        }
        for name in names {
            for qtype in [RecordType::A, RecordType::AAAA, RecordType::MX] {
                for &edns in edns_list {
                    for ecs in subnets {
                        if edns.is_none() && ecs.is_some() {
                            continue;
                        }
                        total += 1;
                        let p = packet(total as u16, name, qtype, edns, ecs, total % 2 == 0);
                        let general = general(&handler, &p, src, hickory_server::net::xfer::Protocol::Udp)
                            .await
                            .expect("the general path answers");
                        let snap = s.state.load();
                        let fast_answer = fast::answer(&snap, &p, src.ip(), &mut scratch);
                        drop(snap);
                        if fast_answer.is_some() {
                            taken += 1;
                            let out = &scratch.out;
                            assert_eq!(
                                out, &general,
                                "fast and general differ for {name} {qtype} edns {edns:?} ecs {ecs:?} health {health}\nfast:    {out:02x?}\ngeneral: {general:02x?}"
                            );
                            let m = Message::from_vec(out).expect("decodes");
                            let sections = m.answers.iter().chain(&m.authorities);
                            if sections.into_iter().any(|r| r.record_type() == RecordType::RRSIG) {
                                signed += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    eprintln!("fast path took {taken} of {total} queries ({signed} signed), byte-identical to the general path");
    (taken, total, signed)
}

/// Mutated packets (a seeded xorshift flips, truncates and extends valid queries):
/// neither path panics, and whatever the fast path takes, it answers as the general
/// path does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_packets_never_panic_and_never_diverge() {
    let s = TestServer::start(POLICIES).await;
    mutate(&s).await;
    s.stop().await;
    // Signed: DO queries too, through the signing code on both paths.
    let keys = tempfile::tempdir().unwrap();
    let s = TestServer::start(&crate::support::signed(POLICIES, keys.path())).await;
    mutate(&s).await;
    s.stop().await;
}

async fn mutate(s: &TestServer) {
    let handler = Handler::new(s.state.clone(), Metrics::new());
    let src: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    let seeds = [
        packet(1, "app.gslb.example.org.", RecordType::A, Some((1232, false)), Some("198.51.100.0/24"), true),
        packet(2, "static.gslb.example.org.", RecordType::AAAA, Some((512, true)), None, false),
        packet(3, "nope.gslb.example.org.", RecordType::A, None, None, true),
        packet(4, "w.gslb.example.org.", RecordType::A, Some((4096, false)), Some("2001:db8:300::/56"), false),
        packet(5, "app.gslb.example.org.", RecordType::AAAA, Some((1232, true)), Some("192.0.2.0/24"), false),
        packet(6, "child.gslb.example.org.", RecordType::DS, Some((1232, true)), None, false),
    ];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut scratch = fast::Scratch::default();
    let (mut taken, mut total) = (0, 0);
    for round in 0..20_000u32 {
        let mut p = seeds[round as usize % seeds.len()].clone();
        for _ in 0..(next() % 4 + 1) {
            match next() % 4 {
                0 => {
                    let i = (next() as usize) % p.len();
                    p[i] ^= 1 << (next() % 8);
                }
                1 => {
                    let i = (next() as usize) % p.len();
                    p[i] = next() as u8;
                }
                2 => p.truncate((next() as usize) % (p.len() + 1)),
                _ => p.extend_from_slice(&next().to_be_bytes()[..(next() % 8) as usize]),
            }
            if p.is_empty() {
                break;
            }
        }
        total += 1;
        // The general path first: what it signs, the fast path may then serve.
        let general = general(&handler, &p, src, hickory_server::net::xfer::Protocol::Udp).await;
        let snap = s.state.load();
        let fast_answer = fast::answer(&snap, &p, src.ip(), &mut scratch);
        drop(snap);
        if fast_answer.is_some() {
            taken += 1;
            assert_eq!(Some(&scratch.out), general.as_ref(), "diverged on {p:02x?}");
        }
    }
    eprintln!("{total} mutated packets: the fast path took {taken}, identical to the general path");
    assert!(taken > 100, "mutations still reach the fast path: {taken}");
}
