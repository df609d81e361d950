//! What the open internet sends: floods (response rate limiting), slowloris and other
//! TCP abuse (connection limits and timeouts), and amplification (answer sizes).
//!
//! Every load here is bounded in count and time, and goes to loopback only.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::support::dns::{self, IN, raw_query};
use crate::support::{TestServer, ZONE};

/// The zone: a GSLB name, a 100-record A RRset, a TXT RRset. `@SERVER@` and `@RRL@`
/// take extra settings.
fn config(server: &str, rrl: &str) -> String {
    let many: Vec<String> = (1..=100).map(|i| format!("\"192.0.2.{i}\"")).collect();
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
{server}
{rrl}
{ZONE}
[[zone.records]]
name = "many"
type = "A"
values = [{many}]
[[zone.records]]
name = "text"
type = "TXT"
values = ["v=spf1 include:_spf.example.org ~all", "some-verification=0123456789abcdef0123456789abcdef"]

[regions.us-east]
a = ["192.0.2.201"]
[regions.eu-west]
a = ["192.0.2.202"]

[names.app]
policy = "failover"
regions = ["us-east", "eu-west"]
"#,
        many = many.join(", ")
    )
}

fn a_query(id: u16, name: &str) -> Vec<u8> {
    raw_query(id, name, 1, IN, Some((1232, 0, &[])))
}

/// Queries a flood keeps in flight: few enough that the server's socket buffer holds them.
const WINDOW: usize = 64;

/// Sends `packets` from one socket bound to `from` as fast as the server takes them (at
/// most `WINDOW` ahead of what it has `processed`, or if that is not given, of the
/// replies), then collects replies until each packet has one or none has come for `quiet`.
async fn flood(
    server: SocketAddr,
    from: IpAddr,
    packets: &[Vec<u8>],
    quiet: Duration,
    processed: Option<&(dyn Fn() -> usize + Sync)>,
) -> Vec<Vec<u8>> {
    let sock = UdpSocket::bind(SocketAddr::new(from, 0)).await.unwrap();
    let mut replies = Vec::new();
    let mut buf = vec![0u8; 65535];
    for (i, p) in packets.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            while let Ok((n, _)) = sock.try_recv_from(&mut buf) {
                replies.push(buf[..n].to_vec());
            }
            let done = processed.map_or(replies.len(), |f| f());
            if i < done + WINDOW || Instant::now() > deadline {
                break;
            }
            tokio::task::yield_now().await;
        }
        sock.send_to(p, server).await.unwrap();
    }
    // With a server-side count, wait (bounded) until the server has taken every packet,
    // so that a slow server under load is not mistaken for a quiet one.
    if let Some(processed) = processed {
        let deadline = Instant::now() + Duration::from_secs(30);
        while processed() < packets.len() && Instant::now() < deadline {
            if let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_millis(10), sock.recv_from(&mut buf)).await {
                replies.push(buf[..n].to_vec());
            }
        }
    }
    // Then until every packet has its reply, or none has come for `quiet`.
    while replies.len() < packets.len() {
        let Ok(Ok((n, _))) = tokio::time::timeout(quiet, sock.recv_from(&mut buf)).await else { break };
        replies.push(buf[..n].to_vec());
    }
    replies
}

fn is_tc(reply: &[u8]) -> bool {
    reply[2] & 0x02 != 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rrl_limits_a_flood_per_prefix_slips_half_and_spares_other_clients_and_tcp() {
    let rate = 20u64;
    let server = TestServer::start(&config("", "[rrl]\nenabled = true\nresponses_per_second = 20\nslip = 2")).await;
    let packets: Vec<Vec<u8>> = (0..600u16).map(|i| a_query(i, "app.gslb.example.org.")).collect();
    let m = server.control.metrics.clone();
    let seen = move || m.rrl.iter().map(|c| c.get() as usize).sum();
    let started = Instant::now();
    let replies =
        flood(server.addr, "127.0.0.1".parse().unwrap(), &packets, Duration::from_millis(500), Some(&seen)).await;
    // The flood spans this many one-second windows at most.
    let windows = started.elapsed().as_secs() + 2;
    let full = replies.iter().filter(|r| !is_tc(r)).count() as u64;
    let slipped: Vec<&Vec<u8>> = replies.iter().filter(|r| is_tc(r)).collect();
    let m = &server.control.metrics;
    let (sent, slips, dropped) = (m.rrl[0].get(), m.rrl[1].get(), m.rrl[2].get());
    eprintln!(
        "RRL flood: 600 queries from one /24 at {rate}/s: {full} answered, {} slipped (TC), {} dropped; \
         metrics sent={sent} slipped={slips} dropped={dropped}",
        slipped.len(),
        600 - replies.len()
    );
    // What the server did is exact; what reached the client is at most that (UDP may
    // lose a reply on a loaded machine, so the client's counts are bounds, not equalities).
    assert_eq!(sent + slips + dropped, 600, "every answer went through the limiter");
    assert!(sent >= rate && sent <= rate * windows, "{sent} full answers for {windows} windows at {rate}/s");
    // Of the limited answers, every second one slips.
    let limited = 600 - sent;
    assert_eq!(slips + dropped, limited);
    assert!(slips.abs_diff(limited / 2) <= windows, "{slips} slips of {limited} limited");
    assert!(full <= sent && slipped.len() as u64 <= slips, "the client got more than the server sent");
    assert!(!slipped.is_empty(), "of {slips} slips, none reached the client");
    for r in &slipped {
        let m = Message::from_vec(r).expect("a slip parses");
        assert!(m.metadata.truncation);
        assert!(m.answers.is_empty() && m.authorities.is_empty() && m.additionals.is_empty());
        assert_eq!(m.queries[0].name().to_ascii(), "app.gslb.example.org.");
    }
    for r in replies.iter().filter(|r| !is_tc(r)) {
        let m = Message::from_vec(r).expect("an answer parses");
        assert_eq!(dns::first(&m), "192.0.2.201");
    }
    // While that bucket is full, another prefix is answered, and so is TCP.
    let other = flood(server.addr, "127.0.1.1".parse().unwrap(), &packets[..5], Duration::from_secs(10), None).await;
    assert_eq!(other.iter().filter(|r| !is_tc(r)).count(), 5, "another /24 is not limited");
    let m = dns::tcp(server.addr, &dns::query("app.gslb.example.org.", RecordType::A)).await;
    assert_eq!(dns::first(&m), "192.0.2.201", "TCP is never limited");
    server.stop().await;

    // Exempt clients are never limited; with RRL off nothing is counted.
    let exempt =
        TestServer::start(&config("", "[rrl]\nenabled = true\nresponses_per_second = 5\nexempt = [\"127.0.0.0/8\"]"))
            .await;
    let replies =
        flood(exempt.addr, "127.0.0.1".parse().unwrap(), &packets[..200], Duration::from_secs(10), None).await;
    assert_eq!(replies.iter().filter(|r| !is_tc(r)).count(), 200);
    exempt.stop().await;
    let off = TestServer::start(&config("", "")).await;
    let replies = flood(off.addr, "127.0.0.1".parse().unwrap(), &packets[..200], Duration::from_secs(10), None).await;
    assert_eq!(replies.iter().filter(|r| !is_tc(r)).count(), 200);
    assert_eq!(off.control.metrics.rrl.iter().map(|c| c.get()).sum::<u64>(), 0);
    off.stop().await;
}

const TCP_LIMITS: &str = "tcp_idle_timeout = 3\ntcp_io_timeout = 2\ntcp_max_connections = 40\ntcp_max_per_client = 8";

/// Connects from a given loopback address.
async fn connect_from(server: SocketAddr, from: IpAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(from, 0))?;
    tokio::time::timeout(Duration::from_secs(5), s.connect(server)).await.map_err(std::io::Error::other)?
}

/// Whether the server has closed the connection (read gives EOF or an error).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// One framed query over a fresh connection from `from`; the time it took, or None.
async fn tcp_query_from(server: SocketAddr, from: IpAddr, id: u16) -> Option<Duration> {
    let started = Instant::now();
    let mut s = connect_from(server, from).await.ok()?;
    let q = a_query(id, "app.gslb.example.org.");
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed).await.ok()?;
    let mut len = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut len)).await.ok()?.ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.ok()?;
    (buf[..2] == id.to_be_bytes()).then(|| started.elapsed())
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_does_not_stop_other_clients_over_udp_or_tcp() {
    let server = TestServer::start(&config(TCP_LIMITS, "")).await;
    let addr = server.addr;
    // The attack: 5 addresses x 16 connections (twice the per-client limit; 80 is twice
    // the total limit), each sending one byte a second, for at most 8 s.
    let mut attackers = Vec::new();
    for host in 2..7u8 {
        for _ in 0..16 {
            attackers.push(tokio::spawn(async move {
                let from = IpAddr::from([127, 0, 0, host]);
                let Ok(mut s) = connect_from(addr, from).await else { return (false, false) };
                let q = a_query(1, "app.gslb.example.org.");
                let mut framed = (q.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&q);
                for b in framed.iter().take(8) {
                    if s.write_all(&[*b]).await.is_err() {
                        return (true, true);
                    }
                    if closed_within(&mut s, Duration::from_secs(1)).await {
                        return (true, true);
                    }
                }
                (true, false)
            }));
        }
    }
    // Meanwhile a legitimate client asks over UDP and over TCP, 5 s long.
    let legit: IpAddr = "127.0.0.9".parse().unwrap();
    let (mut udp_times, mut tcp_times, mut failures) = (Vec::new(), Vec::new(), 0);
    let until = Instant::now() + Duration::from_secs(5);
    let mut id = 0u16;
    while Instant::now() < until {
        id = id.wrapping_add(1);
        let started = Instant::now();
        let sock = UdpSocket::bind(SocketAddr::new(legit, 0)).await.unwrap();
        match dns::udp_raw_from(&sock, addr, &a_query(id, "app.gslb.example.org."), Duration::from_secs(2)).await {
            Some(r) if r[..2] == id.to_be_bytes() => udp_times.push(started.elapsed()),
            _ => failures += 1,
        }
        match tcp_query_from(addr, legit, id).await {
            Some(t) => tcp_times.push(t),
            None => failures += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut cut = 0;
    for a in attackers {
        let (_, was_cut) = a.await.unwrap();
        cut += was_cut as usize;
    }
    let m = &server.control.metrics;
    eprintln!(
        "slowloris: 80 dripping connections from 5 addresses; legit client: {} UDP and {} TCP queries, {failures} failed; \
         p99 UDP {:?}, p99 TCP {:?} (connect included); {cut} attackers cut off; refused {}, evicted {}, io timeouts {}",
        udp_times.len(),
        tcp_times.len(),
        p99(udp_times.clone()),
        p99(tcp_times.clone()),
        m.tcp_refused.get(),
        m.tcp_evicted.get(),
        m.tcp_timeouts[1].get()
    );
    assert_eq!(failures, 0, "every legitimate query was answered");
    assert!(udp_times.len() > 20 && tcp_times.len() > 20);
    assert_eq!(cut, 80, "every dripping connection was cut off (refused, evicted, or timed out)");
    // Over the per-client limit, connections are refused at once: 8 of each address's
    // 16. When the legitimate client connects while the table is full, it evicts an
    // attacker, whose address may then take one more (so that one is not refused).
    let (refused, evicted) = (m.tcp_refused.get(), m.tcp_evicted.get());
    assert!(refused + evicted >= 5 * 8, "over the per-client limit: refused at once ({refused} + {evicted} evicted)");
    assert!(m.tcp_timeouts[1].get() > 0, "drippers time out");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_idle_and_io_timeouts_and_a_client_that_never_reads() {
    let server = TestServer::start(&config(
        "tcp_idle_timeout = 1\ntcp_io_timeout = 1\ntcp_max_connections = 40\ntcp_max_per_client = 8",
        "",
    ))
    .await;
    let addr = server.addr;
    let local: IpAddr = "127.0.0.1".parse().unwrap();
    // Idle: a connection that sends nothing is closed after about a second.
    let mut idle = connect_from(addr, local).await.unwrap();
    let opened = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await, "an idle connection is closed");
    assert!(opened.elapsed() >= Duration::from_millis(900), "not before the idle timeout");
    // Half a query, then silence: closed after the I/O timeout.
    let mut half = connect_from(addr, local).await.unwrap();
    half.write_all(&[0, 40, 1, 2]).await.unwrap();
    assert!(closed_within(&mut half, Duration::from_secs(5)).await, "a stalled query is cut off");
    // Pipelined queries are answered in order, and the connection stays open.
    let mut s = connect_from(addr, local).await.unwrap();
    let mut batch = Vec::new();
    for id in 0..50u16 {
        let q = a_query(id, "app.gslb.example.org.");
        batch.extend_from_slice(&(q.len() as u16).to_be_bytes());
        batch.extend_from_slice(&q);
    }
    s.write_all(&batch).await.unwrap();
    for id in 0..50u16 {
        let r = dns::read_frame(&mut s).await;
        assert_eq!(r[..2], id.to_be_bytes(), "in order");
    }
    // A client that pipelines and never reads: the server's writes stall, and it cuts the
    // connection off after the I/O timeout instead of buffering answers without bound.
    let mut hog = connect_from(addr, local).await.unwrap();
    let q = a_query(9, "many.gslb.example.org.");
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    let blob: Vec<u8> = framed.iter().copied().cycle().take(framed.len() * 2000).collect();
    let started = Instant::now();
    let mut written = 0usize;
    let mut reset = false;
    for _ in 0..100 {
        match tokio::time::timeout(Duration::from_secs(3), hog.write_all(&blob)).await {
            Ok(Ok(())) => written += blob.len(),
            Ok(Err(_)) => {
                reset = true;
                break;
            }
            Err(_) => break,
        }
    }
    let timeouts = || server.control.metrics.tcp_timeouts[1].get();
    let deadline = Instant::now() + Duration::from_secs(10);
    while timeouts() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "a client that never reads: wrote {written} bytes of queries in {:?} (reset: {reset}); io timeouts {}",
        started.elapsed(),
        timeouts()
    );
    assert!(written < blob.len() * 100, "the server stopped reading: the client's writes stalled");
    assert_eq!(timeouts(), 2, "the stalled half query and the non-reader were both cut off");
    // The idle one, and the pipelining one left open.
    assert_eq!(server.control.metrics.tcp_timeouts[0].get(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_style_drain_answers_the_query_in_flight_then_stops_accepting() {
    let server = TestServer::start(&config("", "")).await;
    let addr = server.addr;
    let mut s = connect_from(addr, "127.0.0.1".parse().unwrap()).await.unwrap();
    // A query whose first byte has arrived is in flight: the drain lets it finish.
    let q = a_query(77, "app.gslb.example.org.");
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed[..1]).await.unwrap();
    // Wait until the server has taken the first byte (the connection is counted open).
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.control.metrics.tcp_open.get() < 1 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.write_all(&framed[1..]).await.unwrap();
    let r = dns::read_frame(&mut s).await;
    assert_eq!(r[..2], 77u16.to_be_bytes(), "the query in flight was answered");
    assert!(closed_within(&mut s, Duration::from_secs(5)).await, "then the connection closed");
    tokio::time::timeout(Duration::from_secs(10), stopping).await.expect("shutdown finishes").unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "no longer accepting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amplification_answers_are_no_larger_than_needed() {
    let server = TestServer::start(&config("", "")).await;
    let from: IpAddr = "127.0.0.1".parse().unwrap();
    let mut report = Vec::new();
    for (what, qname, qtype, edns) in [
        ("ANY, EDNS 4096", "app.gslb.example.org.", 255u16, Some(4096u16)),
        ("ANY at the apex, EDNS 4096", "gslb.example.org.", 255, Some(4096)),
        ("100 A records, no EDNS", "many.gslb.example.org.", 1, None),
        ("100 A records, EDNS 4096", "many.gslb.example.org.", 1, Some(4096)),
        ("TXT, EDNS 4096", "text.gslb.example.org.", 16, Some(4096)),
    ] {
        let packets: Vec<Vec<u8>> =
            (0..500u16).map(|id| raw_query(id, qname, qtype, IN, edns.map(|size| (size, 0, &[][..])))).collect();
        let bytes_in: usize = packets.iter().map(|p| p.len()).sum();
        let replies = flood(server.addr, from, &packets, Duration::from_secs(10), None).await;
        assert_eq!(replies.len(), 500, "{what}: every query answered (RRL off)");
        let bytes_out: usize = replies.iter().map(|r| r.len()).sum();
        let largest = replies.iter().map(|r| r.len()).max().unwrap();
        let limit = edns.map_or(512, |e| e.min(1232)) as usize;
        assert!(largest <= limit, "{what}: {largest} bytes > {limit}");
        if qtype == 255 {
            // RFC 8482: one RRset, not everything the name has.
            let m = Message::from_vec(&replies[0]).unwrap();
            let types: std::collections::BTreeSet<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
            assert_eq!(types.len(), 1, "{what}: one RRset: {types:?}");
            assert!(m.authorities.is_empty() && m.additionals.iter().all(|r| r.record_type() == RecordType::OPT));
        }
        report.push(format!("{what}: {:.2} out/in ({largest} B largest)", bytes_out as f64 / bytes_in as f64));
    }
    eprintln!("amplification: {}", report.join("; "));
    server.stop().await;
}

/// A query that panics (the `fault-injection` feature) costs that query only: over UDP
/// it gets no answer, over TCP its connection closes and its slot is freed; every other
/// query, before and after, is answered.
#[cfg(feature = "fault-injection")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_query_costs_only_itself() {
    let server = TestServer::start(&config("", "")).await;
    let addr = server.addr;
    let ok = || dns::query("app.gslb.example.org.", RecordType::A);
    // TXT: the fast path declines it, so it reaches the general path, shared with TCP.
    let boom = raw_query(666, "fault-injection-panic.gslb.example.org.", 16, IN, None);
    for _ in 0..3 {
        assert_eq!(dns::first(&dns::udp(addr, &ok()).await), "192.0.2.201");
        assert!(dns::udp_raw(addr, &boom, Duration::from_millis(500)).await.is_none(), "no answer to the panic");
        // Over TCP: the panicking connection closes; a fresh one is served.
        let mut s = connect_from(addr, "127.0.0.1".parse().unwrap()).await.unwrap();
        let mut framed = (boom.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&boom);
        s.write_all(&framed).await.unwrap();
        assert!(closed_within(&mut s, Duration::from_secs(5)).await);
        assert_eq!(dns::first(&dns::tcp(addr, &ok()).await), "192.0.2.201");
    }
    // Every slot was given back, the panicked ones included.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.control.metrics.tcp_open.get() != 0 {
        assert!(Instant::now() < deadline, "{} slots still taken", server.control.metrics.tcp_open.get());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.stop().await;
}
