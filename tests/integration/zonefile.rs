//! `[zone] file`: static records from an RFC 1035 master file ($ORIGIN, $TTL, $INCLUDE,
//! parentheses, comments), mixed with GSLB names; the same zone as a peer server
//! exports it (`named-compilezone -s full`) serves the same answers; problems in the
//! file are located by file and line.

use std::process::Command;

use hickory_proto::rr::RecordType;

use crate::support::dns::{query, udp};
use crate::support::{TestServer, bin};

const ZONE: &str = r#"$ORIGIN gslb.example.org.
$TTL 300
@   IN SOA ns1 hostmaster.example.org. (
        2026113001 ; serial
        3600 600 1209600
        60 )
    IN NS ns1
    IN NS ns2.example.net.
ns1 IN A 192.0.2.53
www  CNAME app            ; into a GSLB name
mail 600 IN A 192.0.2.25
@    MX 10 mail
txt  TXT "v=spf1 -all" "a ; second string"
_sip._tcp SRV 10 5 5060 sip
sip  A 192.0.2.26
$INCLUDE extra.db sub.gslb.example.org.
"#;

const EXTRA: &str = "host  A 192.0.2.40   ; host.sub\n";

fn config(file: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[zone]
origin = "gslb.example.org."
file = "{file}"
[regions.us-east]
a = ["192.0.2.1"]
[regions.eu-west]
a = ["192.0.2.2"]
[names.app]
policy = "failover"
"#
    )
}

/// Every answer the test asks for, as text: (qname, qtype) → rcode and sorted records.
async fn answers(s: &TestServer) -> Vec<String> {
    let asks = [
        ("gslb.example.org.", RecordType::SOA),
        ("gslb.example.org.", RecordType::NS),
        ("gslb.example.org.", RecordType::MX),
        ("ns1.gslb.example.org.", RecordType::A),
        ("www.gslb.example.org.", RecordType::A),
        ("mail.gslb.example.org.", RecordType::A),
        ("txt.gslb.example.org.", RecordType::TXT),
        ("_sip._tcp.gslb.example.org.", RecordType::SRV),
        ("host.sub.gslb.example.org.", RecordType::A),
        ("nope.gslb.example.org.", RecordType::A),
    ];
    let mut out = Vec::new();
    for (name, qtype) in asks {
        let r = udp(s.addr, &query(name, qtype)).await;
        let mut records: Vec<String> = r.answers.iter().map(|a| a.to_string()).collect();
        records.sort();
        out.push(format!("{name} {qtype}: {:?} {}", r.metadata.response_code, records.join(" | ")));
    }
    out
}

#[tokio::test]
async fn a_zone_file_serves_as_written_and_as_a_peer_exports_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("zone.db"), ZONE).unwrap();
    std::fs::write(dir.path().join("extra.db"), EXTRA).unwrap();
    let zone = dir.path().join("zone.db").display().to_string();
    let s = TestServer::start(&config(&zone)).await;
    let ours = answers(&s).await;
    s.stop().await;
    let text = ours.join("\n");
    for want in [
        "gslb.example.org. SOA: NoError gslb.example.org. 300 IN SOA ns1.gslb.example.org. hostmaster.example.org. 2026113001 3600 600 1209600 60",
        "gslb.example.org. NS: NoError gslb.example.org. 300 IN NS ns1.gslb.example.org. | gslb.example.org. 300 IN NS ns2.example.net.",
        "mail.gslb.example.org. A: NoError mail.gslb.example.org. 600 IN A 192.0.2.25",
        "host.sub.gslb.example.org. A: NoError host.sub.gslb.example.org. 300 IN A 192.0.2.40",
        // The CNAME leads into the GSLB name, which answers its first region.
        "www.gslb.example.org. A: NoError app.gslb.example.org. 60 IN A 192.0.2.1 | www.gslb.example.org. 300 IN CNAME app.gslb.example.org.",
        "_sip._tcp.gslb.example.org. SRV: NoError _sip._tcp.gslb.example.org. 300 IN SRV 10 5 5060 sip.gslb.example.org.",
        "nope.gslb.example.org. A: NXDomain ",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
    assert!(text.contains("v=spf1 -alla ; second string"), "two strings, a ; inside quotes is data: {text}");

    // The same zone, exported by BIND's named-compilezone (one line per record, absolute
    // names, explicit TTLs, $INCLUDE resolved): the same answers.
    let export = dir.path().join("export.db");
    // BIND reads a relative $INCLUDE from its working directory; switchyard from the
    // including file's: run it beside the files.
    let out = Command::new("named-compilezone")
        .current_dir(dir.path())
        .args(["-q", "-s", "full", "-o"])
        .arg(&export)
        .arg("gslb.example.org")
        .arg(&zone)
        .output()
        .expect("named-compilezone (bind9-utils) runs");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let s = TestServer::start(&config(&export.display().to_string())).await;
    assert_eq!(answers(&s).await, ours, "the peer's export serves the same");
    s.stop().await;
}

#[test]
fn problems_in_a_zone_file_are_located_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken = ZONE
        .replace("mail 600 IN A 192.0.2.25", "mail 600 IN A 192.0.2.300")
        .replace("sip  A 192.0.2.26", "sip  A 192.0.2.26\nsip  CNAME elsewhere.example.net.\nkey  DNSKEY 257 3 13 AAAA")
        .replace("www  CNAME app", "app  A 192.0.2.9\nwww  CNAME app");
    std::fs::write(dir.path().join("zone.db"), broken).unwrap();
    std::fs::write(dir.path().join("extra.db"), "loop A 192.0.2.41\n$INCLUDE missing.db\n").unwrap();
    std::fs::write(dir.path().join("switchyard.toml"), config("zone.db")).unwrap();
    let out = Command::new(bin()).arg("check-config").arg(dir.path().join("switchyard.toml")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let zone = dir.path().join("zone.db").display().to_string();
    let extra = dir.path().join("extra.db").display().to_string();
    for want in [
        format!("{zone}:12: error: "),
        "192.0.2.300".to_owned(),
        // At the name's first record.
        format!("{zone}:16: error: `sip.gslb.example.org.` has a CNAME and other records"),
        format!("{zone}:18: error: DNSKEY should be dynamically generated"),
        format!("{extra}:2: error: cannot read zone file {}", dir.path().join("missing.db").display()),
        // A record at a GSLB name: the name is where the conflict is reported.
        "error: `app.gslb.example.org.` is both a GSLB name and a static record".to_owned(),
        "  12 | mail 600 IN A 192.0.2.300".to_owned(),
    ] {
        assert!(err.contains(&want), "missing `{want}` in:\n{err}");
    }
    assert!(err.contains("5 errors in"), "{err}");
}
