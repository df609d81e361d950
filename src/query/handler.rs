//! The general path: hickory-server's `RequestHandler` (header checks, EDNS and ECS,
//! then [`resolve`](super::answer::resolve) on the current snapshot, then encoding), and
//! [`general`], which runs it on one message's bytes for the UDP and TCP listeners.
//!
//! hickory-server has already answered FORMERR for messages it cannot decode (including
//! ECS options of an unknown family or the wrong length) and dropped responses. What is
//! left to do here is protocol policy: opcode, question count, EDNS version, ECS rules.

use std::sync::Arc;

use std::net::SocketAddr;

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::runtime::{Time, TokioTime};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder};
use tracing::debug;

use super::answer::{Question, Response, resolve};
use super::client::{EcsPolicy, from_query};
use super::wire;
use crate::metrics::{Metrics, qtype_index, rcode_index};
use crate::model::zone::key;
use crate::state::State;

pub struct Handler {
    state: Arc<State>,
    metrics: Arc<Metrics>,
}

impl Handler {
    pub fn new(state: Arc<State>, metrics: Arc<Metrics>) -> Handler {
        Handler { state, metrics }
    }
}

/// The CO flag among the EDNS flags below DO (RFC 9824: bit 1 of the flags).
const CO: u16 = 0x4000;

/// The EDNS to answer with, if the query had EDNS.
fn response_edns(query: &Edns, ours: u16, ecs: Option<ClientSubnet>) -> Edns {
    let mut edns = Edns::new();
    // Advertise no more than the client can take, so that hickory's encoder truncates
    // to the client's limit (RFC 6891 6.2.5), and never less than 512.
    edns.set_max_payload(ours.min(query.max_payload().max(512)));
    edns.set_dnssec_ok(query.flags().dnssec_ok);
    // CO ("Compact Answers OK", RFC 9824 5.1) is echoed to a query with DO and CO.
    if query.flags().dnssec_ok && query.flags().z & CO != 0 {
        edns.flags_mut().z = CO;
    }
    if let Some(ecs) = ecs {
        edns.options_mut().insert(EdnsOption::Subnet(ecs));
    }
    edns
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let snap = self.state.load();
        let server = &snap.model.dns;
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let queries = &request.queries;
        let query_edns = request.edns.as_ref();
        let ours = server.edns_udp_size;

        let reply = |metadata: Metadata, edns: Option<Edns>, r: Option<Response>| (metadata, edns, r);
        let (mut metadata, edns, response) = if request.metadata.op_code != OpCode::Query {
            metadata.response_code = ResponseCode::NotImp;
            // Only RD is echoed to an opcode we do not implement (as Knot and gdnsd do).
            metadata.checking_disabled = false;
            metadata.authentic_data = false;
            reply(metadata, query_edns.map(|e| response_edns(e, ours, None)), None)
        } else if let Some(e) = query_edns.filter(|e| e.version() > 0) {
            // RFC 6891 6.1.3: BADVERS, with an OPT of the version we do speak.
            metadata.response_code = ResponseCode::BADVERS;
            reply(metadata, Some(response_edns(e, ours, None)), None)
        } else if queries.len() != 1 {
            metadata.response_code = ResponseCode::FormErr;
            reply(metadata, query_edns.map(|e| response_edns(e, ours, None)), None)
        } else {
            let policy = EcsPolicy { enabled: server.ecs, trusted: &server.ecs_trusted };
            let raw = request.as_slice();
            let opt = wire::opt(raw);
            match from_query(request.src().ip(), opt.as_ref().map(|o| &raw[o.options.clone()]), policy) {
                Err(error) => {
                    debug!(%error, src = %request.src(), "malformed client subnet option");
                    metadata.response_code = ResponseCode::FormErr;
                    reply(metadata, query_edns.map(|e| response_edns(e, ours, None)), None)
                }
                Ok(client) => {
                    let lower = &queries.queries()[0];
                    let original = lower.original();
                    let qkey = key(original.name());
                    let q = Question {
                        name: original.name(),
                        key: &qkey,
                        qtype: original.query_type(),
                        qclass: original.query_class(),
                        dnssec_ok: query_edns.is_some_and(|e| e.flags().dnssec_ok),
                        compact_ok: opt.as_ref().is_some_and(|o| o.ttl[2] & 0x40 != 0),
                    };
                    let r = resolve(&snap, &q, &client, crate::model::dnssec::unix_now());
                    let ecs = client.ecs.map(|mut ecs| {
                        ecs.set_scope_prefix(r.scope.min(ecs.source_prefix()));
                        ecs
                    });
                    metadata.response_code = r.rcode;
                    metadata.authoritative = r.authoritative;
                    reply(metadata, query_edns.map(|e| response_edns(e, ours, ecs)), Some(r))
                }
            }
        };
        metadata.recursion_available = false;

        let empty: &[Record] = &[];
        let (mut answers, mut authority, mut additional) = match &response {
            Some(r) => (&r.answers[..], &r.authority[..], &r.additional[..]),
            None => (empty, empty, empty),
        };
        // Over UDP an answer that does not fit goes out as TC with no records, so that
        // the OPT (and the ECS echo) always fits (RFC 6891 7): hickory's encoder would
        // fill the sections and then drop the OPT.
        if request.protocol() == Protocol::Udp {
            let limit = edns.as_ref().map_or(512, |e| e.max_payload());
            let sections = [answers, authority, additional];
            if !fits(queries, edns.as_ref(), metadata, &sections, limit) {
                metadata.truncation = true;
                (answers, authority, additional) = (empty, empty, empty);
            }
        }
        let qtype = queries.queries().first().map_or(0, |q| u16::from(q.query_type()));
        let slot = response.as_ref().and_then(|r| r.region).map_or(0, |r| snap.model.metric_slots[r as usize]);
        self.metrics.queries.count(qtype_index(qtype), rcode_index(u16::from(metadata.response_code)), slot);
        if let Some(j) = response.as_ref().and_then(|r| r.restricted) {
            self.metrics.queries.restricted(j);
        }
        let mut builder = MessageResponseBuilder::new(queries, None);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let message = builder.build(metadata, answers.iter(), authority.iter(), empty.iter(), additional.iter());
        match response_handle.send_response(message).await {
            Ok(info) => info,
            Err(error) => {
                debug!(%error, "failed to send response");
                let mut metadata = metadata;
                metadata.response_code = ResponseCode::ServFail;
                Header { metadata, counts: HeaderCounts::default() }.into()
            }
        }
    }
}

/// The most bytes a name can take on the wire (no compression).
fn name_len(name: &hickory_proto::rr::Name) -> usize {
    name.iter().map(|l| l.len() + 1).sum::<usize>() + 1
}

/// An upper bound on a record's wire size, if it is cheap to know.
fn record_bound(r: &Record) -> Option<usize> {
    use hickory_proto::rr::RData;
    let rdata = match &r.data {
        RData::A(_) => 4,
        RData::AAAA(_) => 16,
        RData::CNAME(n) => name_len(&n.0),
        RData::NS(n) => name_len(&n.0),
        RData::PTR(n) => name_len(&n.0),
        RData::MX(mx) => 2 + name_len(&mx.exchange),
        RData::SRV(srv) => 6 + name_len(&srv.target),
        RData::SOA(soa) => name_len(&soa.mname) + name_len(&soa.rname) + 20,
        RData::TXT(txt) => txt.txt_data.iter().map(|s| s.len() + 1).sum(),
        RData::DNSSEC(d) => {
            use hickory_proto::dnssec::PublicKey;
            use hickory_proto::dnssec::rdata::DNSSECRData;
            match d {
                DNSSECRData::RRSIG(sig) => 18 + name_len(&sig.input().signer_name) + sig.sig().len(),
                // Our bitmaps span at most windows 0 and 1 (CAA is 257), 34 bytes each.
                DNSSECRData::NSEC(nsec) => name_len(nsec.next_domain_name()) + 68,
                DNSSECRData::DNSKEY(k) => 4 + k.public_key().public_bytes().len(),
                DNSSECRData::DS(ds) => 4 + ds.digest().len(),
                DNSSECRData::CDS(ds) => 4 + ds.digest().len(),
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(name_len(&r.name) + 10 + rdata)
}

/// Whether a response fits in `limit` bytes: a cheap bound first, an encoding if the
/// bound says it might not.
fn fits(
    queries: &hickory_server::zone_handler::Queries,
    edns: Option<&Edns>,
    metadata: Metadata,
    sections: &[&[Record]; 3],
    limit: u16,
) -> bool {
    let opt = edns.map_or(0, |_| 11 + 12);
    let records: Option<usize> = sections.iter().flat_map(|s| s.iter()).map(record_bound).sum();
    if let Some(bound) = records
        && 12 + queries.as_bytes().len() + opt + bound <= limit as usize
    {
        return true;
    }
    let mut builder = MessageResponseBuilder::new(queries, None);
    if let Some(edns) = edns {
        builder.edns(edns);
    }
    let [a, n, d] = sections;
    let message = builder.build(metadata, a.iter(), n.iter(), [].iter(), d.iter());
    let mut buf = Vec::with_capacity(limit as usize);
    let mut encoder = hickory_proto::serialize::binary::BinEncoder::new(&mut buf);
    encoder.set_max_size(limit);
    match message.destructive_emit(&mut encoder) {
        Ok(info) => !info.truncation,
        Err(_) => false,
    }
}

/// Keeps the encoded response of one request (hickory's UDP limits applied over UDP).
/// hickory-server takes the response handler by value, so the bytes come back through
/// a shared cell, set once and never waited on.
#[derive(Clone)]
pub struct Capture {
    bytes: Arc<std::sync::OnceLock<Vec<u8>>>,
    protocol: Protocol,
}

impl Capture {
    pub fn new(protocol: Protocol) -> Capture {
        Capture { bytes: Arc::default(), protocol }
    }

    pub fn take(self) -> Option<Vec<u8>> {
        Arc::into_inner(self.bytes).and_then(std::sync::OnceLock::into_inner)
    }
}

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        // As hickory-server: over UDP the client's EDNS size, else 512; over TCP 64 KiB.
        let max = match self.protocol {
            Protocol::Udp => response.edns().map_or(512, |e| e.max_payload()),
            _ => u16::MAX,
        };
        let mut buf = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut buf);
        encoder.set_max_size(max);
        let info = response.destructive_emit(&mut encoder).map_err(|e| NetError::from(e.to_string()))?;
        let _ = self.bytes.set(buf);
        Ok(info)
    }
}

/// The general path for one message, as hickory-server answers it: FORMERR for what
/// does not decode (if it has a header), nothing for responses or runts.
///
/// A question name with a compression pointer is FORMERR too: the first name of a
/// message can only point into the header, and hickory-server echoes the question's
/// bytes as they came, so the answer would carry a pointer to the answer's own header.
pub async fn general(handler: &Handler, packet: &[u8], src: SocketAddr, protocol: Protocol) -> Option<Vec<u8>> {
    let capture = Capture::new(protocol);
    let request = match Request::from_bytes(packet.to_vec(), src, protocol) {
        Ok(request) if !wire::question_has_pointer(packet) => request,
        _ => {
            let header = Header::read(&mut BinDecoder::new(packet)).ok()?;
            if header.metadata.message_type == MessageType::Response {
                return None;
            }
            // What hickory-server sends then: the header with FORMERR, no sections.
            let m = &header.metadata;
            let mut reply = m.id.to_be_bytes().to_vec();
            reply.push(0x80 | (u8::from(m.op_code) << 3) | u8::from(m.recursion_desired));
            reply.push(if m.checking_disabled { 0x10 } else { 0 } | ResponseCode::FormErr.low());
            reply.extend_from_slice(&[0; 8]);
            return Some(reply);
        }
    };
    if request.metadata.message_type == MessageType::Response {
        return None;
    }
    handler.handle_request::<_, TokioTime>(&request, capture.clone()).await;
    capture.take()
}
