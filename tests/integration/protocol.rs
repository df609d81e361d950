use std::time::Duration;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, RecordType};

use crate::support::dns::{IN, dig, plain, query, raw_query, rcode, tcp, tcp_raw, udp, udp_raw};
use crate::support::{POLICIES, TestServer};

/// Both transports, so each behaviour is checked over UDP and TCP.
async fn both(s: &TestServer, m: &Message) -> [Message; 2] {
    [udp(s.addr, m).await, tcp(s.addr, m).await]
}

#[tokio::test]
async fn authoritative_flags_and_no_recursion() {
    let s = TestServer::start(POLICIES).await;
    let mut m = query("static.gslb.example.org.", RecordType::A);
    m.metadata.recursion_desired = true;
    for r in both(&s, &m).await {
        assert!(r.metadata.authoritative, "AA set");
        assert!(!r.metadata.recursion_available, "RA clear");
        assert!(r.metadata.recursion_desired, "RD copied");
        assert_eq!(r.answers.len(), 1);
        assert!(matches!(r.answers[0].data, RData::A(a) if a.0.to_string() == "192.0.2.10"));
    }
    s.stop().await;
}

#[tokio::test]
async fn out_of_zone_is_refused_without_aa() {
    let s = TestServer::start(POLICIES).await;
    for name in ["example.com.", "org.", "example.org.", "xgslb.example.org."] {
        for r in both(&s, &query(name, RecordType::A)).await {
            assert_eq!(r.metadata.response_code, ResponseCode::Refused, "{name}");
            assert!(!r.metadata.authoritative);
            assert!(r.answers.is_empty());
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
    let s = TestServer::start(POLICIES).await;
    // SOA ttl 300, minimum 30: negative TTL is 30 (RFC 2308).
    for (name, qtype, code) in [
        ("nope.gslb.example.org.", RecordType::A, ResponseCode::NXDomain),
        ("a.b.nope.gslb.example.org.", RecordType::AAAA, ResponseCode::NXDomain),
        ("static.gslb.example.org.", RecordType::AAAA, ResponseCode::NoError),
        ("app.gslb.example.org.", RecordType::TXT, ResponseCode::NoError),
        // An empty non-terminal exists: NODATA, not NXDOMAIN.
        ("_tcp.gslb.example.org.", RecordType::A, ResponseCode::NoError),
    ] {
        for r in both(&s, &query(name, qtype)).await {
            assert_eq!(r.metadata.response_code, code, "{name} {qtype}");
            assert!(r.metadata.authoritative);
            assert!(r.answers.is_empty(), "{name} {qtype}");
            assert_eq!(r.authorities.len(), 1, "{name} {qtype}");
            let soa = &r.authorities[0];
            assert_eq!(soa.record_type(), RecordType::SOA);
            assert_eq!(soa.name.to_ascii(), "gslb.example.org.");
            assert_eq!(soa.ttl, 30);
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn apex_ns_with_glue_and_delegation_referral() {
    let s = TestServer::start(POLICIES).await;
    let r = udp(s.addr, &query("gslb.example.org.", RecordType::NS)).await;
    assert_eq!(r.answers.len(), 1);
    assert!(r.additionals.iter().any(|a| matches!(&a.data, RData::A(ip) if ip.0.to_string() == "192.0.2.53")));

    for r in both(&s, &query("www.child.gslb.example.org.", RecordType::A)).await {
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(!r.metadata.authoritative, "a referral is not authoritative");
        assert!(r.answers.is_empty());
        assert_eq!(r.authorities.len(), 1);
        assert_eq!(r.authorities[0].name.to_ascii(), "child.gslb.example.org.");
        assert!(
            r.additionals.iter().any(|a| matches!(&a.data, RData::A(ip) if ip.0.to_string() == "192.0.2.54")),
            "glue"
        );
    }
    // DS at the cut is the parent's to answer: NODATA, authoritative.
    let r = udp(s.addr, &query("child.gslb.example.org.", RecordType::DS)).await;
    assert!(r.metadata.authoritative && r.answers.is_empty());
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    s.stop().await;
}

#[tokio::test]
async fn edns_is_echoed_and_version_1_gets_badvers() {
    let s = TestServer::start(POLICIES).await;
    let r = udp(s.addr, &query("static.gslb.example.org.", RecordType::A)).await;
    let edns = r.edns.as_ref().expect("OPT echoed");
    assert_eq!(edns.version(), 0);
    assert!(edns.max_payload() >= 512);
    let r = udp(s.addr, &plain("static.gslb.example.org.", RecordType::A)).await;
    assert!(r.edns.is_none(), "no OPT without OPT in the query");

    let packet = raw_query(77, "static.gslb.example.org", 1, IN, Some((1232, 1, &[])));
    for reply in [udp_raw(s.addr, &packet, Duration::from_secs(5)).await.unwrap(), tcp_raw(s.addr, &packet).await] {
        assert_eq!(rcode(&reply), 16, "BADVERS");
        let m = Message::from_vec(&reply).unwrap();
        assert_eq!(m.edns.as_ref().unwrap().version(), 0);
        assert!(m.answers.is_empty());
    }
    // Unknown options are ignored.
    let packet = raw_query(78, "static.gslb.example.org", 1, IN, Some((1232, 0, &[(65001, vec![1, 2, 3])])));
    let reply = udp_raw(s.addr, &packet, Duration::from_secs(5)).await.unwrap();
    assert_eq!(rcode(&reply), 0);
    assert_eq!(Message::from_vec(&reply).unwrap().answers.len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn udp_truncates_to_the_clients_buffer_and_tcp_gets_everything() {
    let s = TestServer::start(POLICIES).await;
    // The TXT RRset is about 700 bytes: too big for 512 without EDNS.
    let r = udp(s.addr, &plain("big.gslb.example.org.", RecordType::TXT)).await;
    assert!(r.metadata.truncation, "TC set at 512 bytes");
    let bytes =
        udp_raw(s.addr, &plain("big.gslb.example.org.", RecordType::TXT).to_vec().unwrap(), Duration::from_secs(5))
            .await
            .unwrap();
    assert!(bytes.len() <= 512, "{} bytes", bytes.len());

    let mut small = query("big.gslb.example.org.", RecordType::TXT);
    small.edns.as_mut().unwrap().set_max_payload(600);
    let bytes = udp_raw(s.addr, &small.to_vec().unwrap(), Duration::from_secs(5)).await.unwrap();
    assert!(bytes.len() <= 600, "honours the client's 600: {}", bytes.len());
    let m = Message::from_vec(&bytes).unwrap();
    assert!(m.metadata.truncation);
    assert!(m.edns.is_some(), "the OPT is kept in a truncated answer (RFC 6891 7)");
    assert!(m.answers.is_empty(), "no partial RRset");

    let r = udp(s.addr, &query("big.gslb.example.org.", RecordType::TXT)).await;
    assert!(!r.metadata.truncation, "fits in 1232");
    assert_eq!(r.answers.len(), 4);

    let r = tcp(s.addr, &plain("big.gslb.example.org.", RecordType::TXT)).await;
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 4, "TCP carries the whole answer");

    // dig retries over TCP by itself when it sees TC.
    let d = dig(s.addr, &["big.gslb.example.org", "TXT", "+noedns"]).await;
    assert_eq!(d.answers.len(), 4, "{}", d.raw);
    assert!(d.raw.contains("Truncated, retrying in TCP mode"), "{}", d.raw);
    s.stop().await;
}

#[tokio::test]
async fn any_queries_get_one_rrset() {
    let s = TestServer::start(POLICIES).await;
    for r in both(&s, &query("gslb.example.org.", RecordType::ANY)).await {
        assert!(r.metadata.authoritative);
        let types: std::collections::HashSet<_> = r.answers.iter().map(|a| a.record_type()).collect();
        assert_eq!(types.len(), 1, "one RRset, not the whole apex: {types:?}");
    }
    let r = udp(s.addr, &query("app.gslb.example.org.", RecordType::ANY)).await;
    assert_eq!(r.answers.len(), 1);
    assert_eq!(r.answers[0].record_type(), RecordType::A);
    s.stop().await;
}

#[tokio::test]
async fn query_name_case_is_preserved() {
    let s = TestServer::start(POLICIES).await;
    for name in ["StAtIc.GsLb.ExAmPlE.oRg.", "APP.gslb.example.ORG."] {
        for r in both(&s, &query(name, RecordType::A)).await {
            assert_eq!(r.queries[0].name().to_ascii(), name, "question as asked");
            assert_eq!(r.answers[0].name.to_ascii(), name, "answer owner as asked");
        }
    }
    let d = dig(s.addr, &["WwW.GsLb.ExAmPlE.OrG", "A"]).await;
    assert_eq!(d.answers[0].0, "WwW.GsLb.ExAmPlE.OrG.", "{}", d.raw);
    s.stop().await;
}

#[tokio::test]
async fn chaos_is_refused_unless_configured() {
    let s = TestServer::start(POLICIES).await;
    let mut m = query("version.bind.", RecordType::TXT);
    m.queries[0].set_query_class(DNSClass::CH);
    let r = udp(s.addr, &m).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(matches!(&r.answers[0].data, RData::TXT(t) if t.to_string().contains("switchyard-test")));
    let mut m = query("id.server.", RecordType::TXT);
    m.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(udp(s.addr, &m).await.metadata.response_code, ResponseCode::Refused, "id.server not configured");
    let d = dig(s.addr, &["hostname.bind", "TXT", "CH"]).await;
    assert_eq!(d.status, "REFUSED");
    s.stop().await;
}

#[tokio::test]
async fn odd_queries_get_protocol_answers_and_the_server_keeps_serving() {
    let s = TestServer::start(POLICIES).await;
    let t = Duration::from_secs(5);
    // NOTIFY opcode: not implemented.
    let mut m = query("static.gslb.example.org.", RecordType::A);
    m.metadata.op_code = OpCode::Notify;
    assert_eq!(udp(s.addr, &m).await.metadata.response_code, ResponseCode::NotImp);
    // An unknown opcode (15) with RD, CD and AD set: NOTIMP with RD echoed and CD and AD
    // clear, as Knot and gdnsd answer (ISC genreport's `opcodeflg`).
    for opcode in [3u8, 15] {
        let mut q = raw_query(7, "static.gslb.example.org", 1, IN, None);
        q[2] = (opcode << 3) | 0x01; // opcode, RD
        q[3] = 0x30; // AD, CD
        let reply = udp_raw(s.addr, &q, t).await.expect("an answer to an unknown opcode");
        assert_eq!(
            (reply[2], reply[3]),
            (0x80 | (opcode << 3) | 0x01, 0x04),
            "opcode {opcode}: QR, opcode, RD; NOTIMP"
        );
    }
    // No question, or two.
    let mut none = raw_query(1, "static.gslb.example.org", 1, IN, None);
    none[5] = 0;
    none.truncate(12);
    assert_eq!(rcode(&udp_raw(s.addr, &none, t).await.expect("answer to an empty query")), 1, "FORMERR");
    let mut m = query("static.gslb.example.org.", RecordType::A);
    m.add_query(hickory_proto::op::Query::query("app.gslb.example.org.".parse().unwrap(), RecordType::A));
    assert_eq!(udp(s.addr, &m).await.metadata.response_code, ResponseCode::FormErr);
    // A compressed question name (it can only point into the header): FORMERR with the
    // header alone, over UDP and TCP, never an echo whose pointer lands in our own header.
    let pointer = [0, 1, 0, 0x13, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 2, 0, 1, 0, 1];
    let reply = udp_raw(s.addr, &pointer, t).await.expect("an answer to a compressed question");
    assert_eq!((rcode(&reply), reply.len()), (1, 12), "FORMERR, header only: {reply:02x?}");
    assert!(Message::from_vec(&reply).is_ok());
    assert_eq!(tcp_raw(s.addr, &pointer).await, reply);
    // Zone transfers are refused.
    assert_eq!(
        tcp(s.addr, &query("gslb.example.org.", RecordType::AXFR)).await.metadata.response_code,
        ResponseCode::Refused
    );
    // Unknown class.
    let reply = udp_raw(s.addr, &raw_query(9, "static.gslb.example.org", 1, 4, None), t).await.unwrap();
    assert_eq!(rcode(&reply), 5, "REFUSED for class HS");
    // Garbage: short packets, truncated questions, a response. None may stop the server.
    for junk in [vec![0u8; 3], vec![0xff; 40], raw_query(3, "static.gslb.example.org", 1, IN, None)[..20].to_vec()] {
        let _ = udp_raw(s.addr, &junk, Duration::from_millis(200)).await;
    }
    let mut response = raw_query(4, "static.gslb.example.org", 1, IN, None);
    response[2] |= 0x80;
    assert!(udp_raw(s.addr, &response, Duration::from_millis(300)).await.is_none(), "responses are never answered");
    let r = udp(s.addr, &query("static.gslb.example.org.", RecordType::A)).await;
    assert_eq!(r.answers.len(), 1, "still serving");
    s.stop().await;
}

#[tokio::test]
async fn tcp_pipelines_several_queries_on_one_connection() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start(POLICIES).await;
    let mut conn = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let names = ["static.gslb.example.org.", "app.gslb.example.org.", "nope.gslb.example.org."];
    let mut ids = Vec::new();
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut m = query(name, RecordType::A);
        m.metadata.id = 1000 + i as u16;
        ids.push(m.metadata.id);
        let bytes = m.to_vec().unwrap();
        out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    conn.write_all(&out).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..names.len() {
        let m = Message::from_vec(&crate::support::dns::read_frame(&mut conn).await).unwrap();
        got.push((m.metadata.id, m.metadata.response_code));
    }
    got.sort_by_key(|(id, _)| *id);
    assert_eq!(got, vec![(1000, ResponseCode::NoError), (1001, ResponseCode::NoError), (1002, ResponseCode::NXDomain)]);
    s.stop().await;
}

#[tokio::test]
async fn static_record_types_and_in_zone_cname_targets() {
    let s = TestServer::start(POLICIES).await;
    let r = udp(s.addr, &query("gslb.example.org.", RecordType::MX)).await;
    assert!(
        matches!(&r.answers[0].data, RData::MX(mx) if mx.exchange.to_ascii() == "mail.example.org." && mx.preference == 10)
    );
    let r = udp(s.addr, &query("_https._tcp.gslb.example.org.", RecordType::SRV)).await;
    assert!(
        matches!(&r.answers[0].data, RData::SRV(srv) if srv.target.to_ascii() == "app.gslb.example.org." && srv.port == 443)
    );
    let r = udp(s.addr, &query("www.gslb.example.org.", RecordType::CNAME)).await;
    assert_eq!(r.answers.len(), 1, "a CNAME query gets the CNAME only");
    s.stop().await;
}

#[tokio::test]
async fn nodata_at_the_end_of_a_cname_chain_carries_the_soa() {
    let s = TestServer::start(POLICIES).await;
    for r in both(&s, &query("www.gslb.example.org.", RecordType::MX)).await {
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.answers.len(), 1, "the CNAME");
        assert_eq!(r.authorities.len(), 1);
        assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    }
    s.stop().await;
}

#[tokio::test]
async fn a_cname_answer_is_given_for_every_type() {
    let s = TestServer::start(POLICIES).await;
    for qtype in [RecordType::MX, RecordType::TXT, RecordType::A] {
        let r = udp(s.addr, &query("edge.gslb.example.org.", qtype)).await;
        assert_eq!(r.answers.len(), 1, "{qtype}");
        assert_eq!(r.answers[0].record_type(), RecordType::CNAME, "{qtype}");
    }
    s.stop().await;
}

#[tokio::test]
async fn meta_query_types() {
    let s = TestServer::start(POLICIES).await;
    let t = Duration::from_secs(5);
    for (qtype, code) in [(0u16, 1u16), (41, 1), (249, 4), (253, 4), (254, 4)] {
        let reply = udp_raw(s.addr, &raw_query(50, "static.gslb.example.org", qtype, IN, None), t).await.unwrap();
        assert_eq!(rcode(&reply), code, "qtype {qtype}");
    }
    s.stop().await;
}
