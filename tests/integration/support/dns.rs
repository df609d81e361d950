//! A DNS client over real sockets: hickory-proto builds and parses the messages, tokio
//! sends them over UDP or TCP (RFC 1035 framing). Also raw-packet helpers for what an
//! encoder would refuse to build, and `dig` as a second, independent client.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A query message with EDNS (udp size 1232) and no RD.
pub fn query(name: &str, qtype: RecordType) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    m.edns = Some(edns);
    m
}

/// The same without EDNS.
pub fn plain(name: &str, qtype: RecordType) -> Message {
    let mut m = query(name, qtype);
    m.edns = None;
    m
}

/// A query with an ECS option for `subnet` ("198.51.100.0/24").
pub fn ecs(name: &str, qtype: RecordType, subnet: &str) -> Message {
    let mut m = query(name, qtype);
    let cs: ClientSubnet = subnet.parse().unwrap();
    m.edns.as_mut().unwrap().options_mut().insert(EdnsOption::Subnet(cs));
    m
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(1);
    NEXT.fetch_add(7919, Ordering::Relaxed)
}

/// Sends raw bytes over UDP and returns the raw reply (None on timeout).
pub async fn udp_raw(server: SocketAddr, packet: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(packet, server).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(timeout, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// Sends raw bytes from a given socket and returns the raw reply (None on timeout).
pub async fn udp_raw_from(sock: &UdpSocket, server: SocketAddr, packet: &[u8], timeout: Duration) -> Option<Vec<u8>> {
    sock.send_to(packet, server).await.ok()?;
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(timeout, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, _))) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

pub async fn udp(server: SocketAddr, m: &Message) -> Message {
    let bytes = m.to_vec().unwrap();
    let reply = udp_raw(server, &bytes, TIMEOUT).await.expect("UDP reply within 5 s");
    let reply = Message::from_vec(&reply).expect("reply parses");
    assert_eq!(reply.metadata.id, m.metadata.id, "reply id matches");
    reply
}

/// Sends raw bytes over TCP (length-prefixed) and returns the raw reply.
pub async fn tcp_raw(server: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let mut s = tokio::time::timeout(TIMEOUT, TcpStream::connect(server)).await.unwrap().unwrap();
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    s.write_all(&framed).await.unwrap();
    read_frame(&mut s).await
}

pub async fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    tokio::time::timeout(TIMEOUT, s.read_exact(&mut len)).await.expect("TCP reply within 5 s").unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    tokio::time::timeout(TIMEOUT, s.read_exact(&mut buf)).await.unwrap().unwrap();
    buf
}

pub async fn tcp(server: SocketAddr, m: &Message) -> Message {
    let reply = Message::from_vec(&tcp_raw(server, &m.to_vec().unwrap()).await).expect("reply parses");
    assert_eq!(reply.metadata.id, m.metadata.id);
    reply
}

/// The A and AAAA addresses in the answer section, in order.
pub fn addrs(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// The first answer address as a string, for compact assertions.
pub fn first(m: &Message) -> String {
    addrs(m).first().map(|a| a.to_string()).unwrap_or_else(|| format!("no address ({})", m.metadata.response_code))
}

/// TTLs of the answer records.
pub fn ttls(m: &Message) -> Vec<u32> {
    m.answers.iter().map(|r| r.ttl).collect()
}

/// The echoed ECS option: (source prefix, scope prefix).
pub fn ecs_echo(m: &Message) -> Option<(u8, u8)> {
    match m.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(cs) => Some((cs.source_prefix(), cs.scope_prefix())),
        _ => None,
    }
}

/// EDNS options as (code, data).
pub type Options = Vec<(u16, Vec<u8>)>;

/// An OPT record: (udp size, version, options).
pub type Opt<'a> = (u16, u8, &'a [(u16, Vec<u8>)]);

/// A raw query: header with the given counts, one question, and optionally an OPT
/// record with the given option bytes (code, data).
pub fn raw_query(id: u16, name: &str, qtype: u16, qclass: u16, opt: Option<Opt<'_>>) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x00, 0x00]); // QUERY, no RD
    p.extend_from_slice(&1u16.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&(opt.is_some() as u16).to_be_bytes());
    for label in name.trim_end_matches('.').split('.') {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&qclass.to_be_bytes());
    if let Some((size, version, options)) = opt {
        p.push(0); // root
        p.extend_from_slice(&41u16.to_be_bytes());
        p.extend_from_slice(&size.to_be_bytes());
        p.extend_from_slice(&[0, version, 0, 0]);
        let rdata: Vec<u8> = options
            .iter()
            .flat_map(|(code, data)| {
                let mut o = code.to_be_bytes().to_vec();
                o.extend_from_slice(&(data.len() as u16).to_be_bytes());
                o.extend_from_slice(data);
                o
            })
            .collect();
        p.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        p.extend_from_slice(&rdata);
    }
    p
}

/// Raw ECS option data: family, source, scope, address bytes as given.
pub fn ecs_bytes(family: u16, source: u8, scope: u8, addr: &[u8]) -> Vec<u8> {
    let mut d = family.to_be_bytes().to_vec();
    d.push(source);
    d.push(scope);
    d.extend_from_slice(addr);
    d
}

/// The response code of a raw reply (header RCODE plus the OPT extended bits).
pub fn rcode(reply: &[u8]) -> u16 {
    let m = Message::from_vec(reply).expect("reply parses");
    u16::from(m.metadata.response_code)
}

pub const IN: u16 = 1;

/// Output of one `dig` run.
#[derive(Debug)]
pub struct Dig {
    pub status: String,
    pub flags: Vec<String>,
    /// Answer section lines: (owner, ttl, type, data).
    pub answers: Vec<(String, u32, String, String)>,
    /// `CLIENT-SUBNET: a/b/c` as printed.
    pub client_subnet: Option<String>,
    pub raw: String,
}

/// Runs `dig @127.0.0.1 -p PORT ARGS... +norec` and parses what it prints.
pub async fn dig(server: SocketAddr, args: &[&str]) -> Dig {
    let out = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(["+norec", "+time=3", "+tries=1"])
        .args(args)
        .output()
        .await
        .expect("dig runs (apt-get install dnsutils)");
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = raw.split("status: ").nth(1).and_then(|s| s.split(',').next()).unwrap_or("none").to_owned();
    let flags = raw
        .split(";; flags: ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let client_subnet = raw.lines().find_map(|l| l.strip_prefix("; CLIENT-SUBNET: ")).map(|s| s.trim().to_owned());
    let mut answers = Vec::new();
    let mut in_answer = false;
    for line in raw.lines() {
        if line.starts_with(";; ANSWER SECTION") {
            in_answer = true;
            continue;
        }
        if in_answer {
            if line.trim().is_empty() || line.starts_with(";;") {
                break;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 5 {
                answers.push((f[0].to_owned(), f[1].parse().unwrap_or(0), f[3].to_owned(), f[4..].join(" ")));
            }
        }
    }
    Dig { status, flags, answers, client_subnet, raw }
}

/// Polls `qname A` until its first address is `want`; returns how long that took.
pub async fn until_answer(server: SocketAddr, qname: &str, want: &str, within: Duration) -> Duration {
    let start = std::time::Instant::now();
    loop {
        let r = udp(server, &query(qname, RecordType::A)).await;
        if first(&r) == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{qname} did not answer {want} within {within:?} (last: {})", first(&r));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
