//! Entry points for the fuzz targets (`fuzz/`) and their regression tests
//! (`tests/integration/fuzz_regressions.rs`): the whole request path from raw bytes to
//! a response, with no sockets, and the config loader.
//!
//! [`Harness::udp`] runs a packet through the fast path and the general path and
//! checks that whenever the fast path answers, the general path gives the same bytes;
//! [`Harness::tcp`] runs a byte stream through the TCP framing (`listen::tcp::serve_stream`)
//! and checks every answer is framed and echoes a query's id. A panic is a finding.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::listen::rrl;
use crate::listen::tcp::{TcpLimits, serve_stream};
use crate::metrics::Metrics;
use crate::query::fast;
use crate::query::handler::Handler;
use crate::query::handler::general;
use crate::state::State;

/// The zone the harness serves: every policy (with a database cluster), static records
/// of each type, a delegation, a CNAME chain, on the bundled GeoIP database.
pub const CONFIG: &str = include_str!("../tests/fixtures/configs/fuzz.toml");

/// A server's request path without sockets.
pub struct Harness {
    state: Arc<State>,
    handler: Handler,
    rrl: Option<rrl::Rrl>,
    runtime: tokio::runtime::Runtime,
    scratch: std::cell::RefCell<fast::Scratch>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Harness {
        let base = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = crate::config::parse(CONFIG, base).expect("the fuzz config is valid");
        let loaded = crate::app::open(config).expect("the bundled GeoIP database opens");
        let rrl = crate::app::rrl_settings(&loaded.config.rrl).map(rrl::Rrl::new);
        let state = Arc::new(State::new(loaded.model(None), true));
        // One region down, so that fallbacks are exercised too; the cluster has a writer
        // (an address member) and a fresh CNAME member, so that member answers are too.
        state.set_region_up("eu-west", false);
        state.update_health(|_, h| {
            let cluster = &mut h.clusters[0];
            (cluster.writer, cluster.last_primary, cluster.lag) = (Some(0), Some(0), vec![Some(0.0), Some(1.0)]);
            for reader in &mut h.readers {
                reader.fresh = vec![true, true];
            }
            true
        });
        let handler = Handler::new(state.clone(), Metrics::new());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
        Harness { state, handler, rrl, runtime, scratch: Default::default() }
    }

    /// One UDP packet from `src`: the answer the server would send (after RRL), if any.
    /// Panics if the fast path answers differently from the general path.
    pub fn udp(&self, packet: &[u8], src: IpAddr) -> Option<Vec<u8>> {
        let snap = self.state.load();
        let mut scratch = self.scratch.borrow_mut();
        let fast = fast::answer(&snap, packet, src, &mut scratch).map(|_| scratch.out.clone());
        let general = self.runtime.block_on(general(&self.handler, packet, SocketAddr::new(src, 53), Protocol::Udp));
        if let Some(fast) = &fast {
            assert_eq!(Some(fast), general.as_ref(), "the fast path and the general path differ for {packet:02x?}");
        }
        let mut answer = general?;
        assert!(answer.len() >= 12, "an answer has a header");
        assert_eq!(answer[..2], packet[..2], "an answer echoes the id");
        assert!(hickory_proto::op::Message::from_vec(&answer).is_ok(), "an answer that does not parse: {answer:02x?}");
        // Every answer is also slipped (whatever the limiter decides, whose table carries
        // over between inputs): the truncated reply must parse and echo the id.
        let mut slipped = answer.clone();
        rrl::slip(&mut slipped);
        let parsed = hickory_proto::op::Message::from_vec(&slipped);
        assert!(parsed.is_ok_and(|m| m.metadata.truncation && m.answers.is_empty()), "a bad slip: {slipped:02x?}");
        if let Some(limiter) = &self.rrl {
            match limiter.check(src, &answer, 0) {
                rrl::Action::Send => {}
                rrl::Action::Slip => rrl::slip(&mut answer),
                rrl::Action::Drop => return None,
            }
        }
        Some(answer)
    }

    /// A TCP byte stream from a client that sends `stream` and then closes its side:
    /// the answers, each framed. Panics on a reply that is not framed or not a reply.
    pub fn tcp(&self, stream: &[u8]) -> Vec<Vec<u8>> {
        self.runtime.block_on(async {
            let (client, server) = tokio::io::duplex(64 * 1024);
            let (mut from_server, mut to_server) = tokio::io::split(client);
            let limits = TcpLimits {
                max_connections: 1,
                max_per_client: 1,
                idle: Duration::from_secs(5),
                io: Duration::from_secs(5),
            };
            let (drain, evict) = (CancellationToken::new(), CancellationToken::new());
            let peer = SocketAddr::from(([192, 0, 2, 7], 40000));
            let serving = serve_stream(server, peer, &self.handler, limits, &drain, &evict, || {});
            // The client writes and reads at once, as a pipelining client would.
            let writing = async {
                let _ = to_server.write_all(stream).await;
                let _ = to_server.shutdown().await;
            };
            let reading = async {
                let mut out = Vec::new();
                let _ = from_server.read_to_end(&mut out).await;
                out
            };
            let (_, _, out) = tokio::join!(serving, writing, reading);
            // The ids of the whole messages sent, in order.
            let mut ids = Vec::new();
            let mut rest = stream;
            while rest.len() >= 2 {
                let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                if n == 0 || rest.len() < 2 + n {
                    break;
                }
                if n >= 2 {
                    ids.push([rest[2], rest[3]]);
                }
                rest = &rest[2 + n..];
            }
            let mut answers = Vec::new();
            let mut rest = &out[..];
            while !rest.is_empty() {
                assert!(rest.len() >= 2, "a frame has a length");
                let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                assert!(rest.len() >= 2 + n, "a frame is whole");
                let answer = &rest[2..2 + n];
                assert!(answer.len() >= 12 && answer[2] & 0x80 != 0, "each frame is a DNS response");
                assert!(ids.contains(&[answer[0], answer[1]]), "an answer echoes a query's id");
                assert!(
                    hickory_proto::op::Message::from_vec(answer).is_ok(),
                    "an answer that does not parse: {answer:02x?}"
                );
                answers.push(answer.to_vec());
                rest = &rest[2 + n..];
            }
            answers
        })
    }
}

/// The config loader on arbitrary text: an error list or a config, never a panic.
pub fn config(text: &str) -> bool {
    crate::config::parse(text, Path::new(env!("CARGO_MANIFEST_DIR"))).is_ok()
}

/// The `packet` target: the first byte picks the client (four networks the zone routes
/// differently), the rest is the packet, sent over UDP and then framed over TCP.
pub fn packet_target(h: &Harness, data: &[u8]) {
    let Some((&pick, packet)) = data.split_first() else { return };
    let src: IpAddr = match pick % 4 {
        0 => [81, 2, 69, pick].into(),
        1 => [175, 16, 199, pick].into(),
        2 => [0x2001, 0x218, 0, 0, 0, 0, 0, u16::from(pick)].into(),
        _ => [10, 1, 2, pick].into(),
    };
    h.udp(packet, src);
    if packet.len() <= u16::MAX as usize {
        let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(packet);
        h.tcp(&framed);
    }
}

/// The `tcp_stream` target: the bytes are what a TCP client sends.
pub fn tcp_stream_target(h: &Harness, data: &[u8]) {
    h.tcp(data);
}

/// The `config` target: the bytes, if UTF-8, are a config file.
pub fn config_target(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        config(text);
    }
}

#[cfg(test)]
mod tests {
    /// A query for `name`, type A, with EDNS.
    fn query(id: u8, name: &str) -> Vec<u8> {
        let mut q = vec![0, id, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1, 0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]);
        q
    }

    #[test]
    fn the_harness_answers_over_udp_and_tcp() {
        let h = super::Harness::new();
        let src = "81.2.69.160".parse().unwrap();
        let a = h.udp(&query(1, "app.gslb.example.org"), src).expect("an answer");
        assert_eq!((a[3] & 0x0f, a[7]), (0, 1), "NOERROR, one answer");
        let mut stream = Vec::new();
        for (id, name) in [(2, "static.gslb.example.org"), (3, "nope.gslb.example.org")] {
            let q = query(id, name);
            stream.extend_from_slice(&(q.len() as u16).to_be_bytes());
            stream.extend_from_slice(&q);
        }
        stream.extend_from_slice(&[0, 30, 1]);
        let answers = h.tcp(&stream);
        assert_eq!(answers.len(), 2, "two whole queries, two answers; the cut one none");
        assert_eq!((answers[0][1], answers[0][3] & 0x0f, answers[0][7]), (2, 0, 2));
        assert_eq!((answers[1][1], answers[1][3] & 0x0f), (3, 3), "NXDOMAIN");
        assert!(super::config(super::CONFIG));
        assert!(!super::config("[zone]\norigin = 7"));
    }

    #[test]
    fn database_names_answer_their_members() {
        let h = super::Harness::new();
        let src = "81.2.69.160".parse().unwrap();
        let parse = |a: Vec<u8>| hickory_proto::op::Message::from_vec(&a).unwrap();
        let db = parse(h.udp(&query(1, "db.gslb.example.org"), src).expect("an answer"));
        assert_eq!(db.answers[0].data.to_string(), "10.0.0.1", "the writer member's own address");
        // A client in Europe (81.2.69.160 is in GB) reads from eu-west's member: a CNAME.
        let ro = parse(h.udp(&query(2, "db-ro.gslb.example.org"), src).expect("an answer"));
        assert_eq!(ro.answers[0].data.to_string(), "pg-eu.example.net.");
    }
}
