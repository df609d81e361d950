//! Each broken config gets an exact message whose file:line:column points at the
//! offending text. One table runs them in-process through the config loader (what
//! `check-config`, start-up and reload all call); a few spawn the binary for its exit
//! codes and its rendering.

use std::process::Command;

use crate::support::{bin, write_config};

const BASE: &str = concat!(
    r#"[server]
listen = ["127.0.0.1:5353"]

[defaults]
ttl = 60

"#,
    include_str!("../fixtures/configs/zone.toml"),
    r#"
[regions.us-east]
location = [39.0, -77.5]
a = ["192.0.2.1"]
[regions.eu-west]
location = [53.3, -6.3]
a = ["192.0.2.2"]

[names.app]
policy = "failover"
regions = ["us-east", "eu-west"]
"#
);

/// Two clusters, one member each.
const TWO_CLUSTERS: &str = "[clusters.orders.members.pg-1]\nregion = \"us-east\"\nkind = \"postgres\"\ndsn = \"host=db1\"\n\
                            [clusters.billing.members.pg-2]\nregion = \"eu-west\"\nkind = \"postgres\"\ndsn = \"host=db2\"\n";

struct Outcome {
    code: i32,
    stderr: String,
    text: String,
}

/// `switchyard check-config` on `text`: its exit code and what it printed.
fn check_config(text: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), text);
    let out = Command::new(bin()).arg("check-config").arg(&path).output().unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        text: text.to_owned(),
    }
}

/// The config loader on `text`, in-process: 0 if it loads, 2 with the rendered errors.
fn load(text: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), text);
    let (code, stderr) = match switchyard::config::load(&path) {
        Ok(_) => (0, String::new()),
        Err(e @ switchyard::config::LoadError::Invalid(_)) => (2, e.to_string()),
        Err(e) => (1, e.to_string()),
    };
    Outcome { code, stderr, text: text.to_owned() }
}

/// Asserts exit 2, an error line with exactly `message`, located at text starting with `at`.
fn assert_error(o: &Outcome, message: &str, at: Option<&str>) {
    assert_eq!(o.code, 2, "exit code 2 for a bad config:\n{}", o.stderr);
    let line = o
        .stderr
        .lines()
        .find(|l| l.contains(&format!("error: {message}")))
        .unwrap_or_else(|| panic!("no error `{message}` in:\n{}", o.stderr));
    let location = line.split(": error: ").next().unwrap();
    match at {
        Some(snippet) => {
            let mut parts = location.rsplitn(3, ':');
            let col: usize = parts.next().unwrap().parse().unwrap_or_else(|_| panic!("no column in `{line}`"));
            let row: usize = parts.next().unwrap().parse().unwrap();
            assert!(parts.next().unwrap().ends_with("switchyard.toml"), "{line}");
            let src = o.text.lines().nth(row - 1).unwrap();
            let from: String = src.chars().skip(col - 1).collect();
            assert!(from.starts_with(snippet), "{line}: points at `{from}`, expected `{snippet}`");
        }
        None => assert!(location.ends_with("switchyard.toml"), "{line}"),
    }
}

fn with(find: &str, replace: &str) -> String {
    assert!(BASE.contains(find), "{find}");
    BASE.replacen(find, replace, 1)
}

/// Exit codes and rendering, through the binary.
#[test]
fn the_binary_exits_0_on_a_good_config_and_2_on_a_bad_one_with_every_error() {
    let o = check_config(BASE);
    assert_eq!(o.code, 0, "{}", o.stderr);
    // TOML syntax: stops at the first error, still located.
    let o = check_config(&with("origin = \"gslb.example.org.\"", "origin = \"gslb.example.org."));
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("switchyard.toml:8:"), "located on line 8: {}", o.stderr);
    // Meaning: every error at once, each with its source line and a caret.
    let text = with("a = [\"192.0.2.1\"]", "a = [\"192.0.2.300\"]")
        .replace("policy = \"failover\"", "policy = \"nearst\"")
        .replace("[defaults]", "[defautls]")
        + "\n[regions.broken]\nweight = \"x\"\n";
    let o = check_config(&text);
    assert_error(&o, "`192.0.2.300` is not a valid IPv4 address", Some("\"192.0.2.300\""));
    assert_error(&o, "unknown policy `nearst`", Some("\"nearst\""));
    assert_error(&o, "unknown section `defautls`", Some("defautls"));
    assert_error(&o, "invalid type: string \"x\", expected u32", Some("\"x\""));
    assert_error(&o, "region `broken` has nothing to answer with", Some("broken"));
    assert!(o.stderr.contains("5 errors in"), "{}", o.stderr);
    assert!(o.stderr.contains("       | ") && o.stderr.contains('^'), "a caret under the text: {}", o.stderr);
}

/// One broken config: its text, the errors it must get (message, where it points), and
/// other text the report must hold (hints).
struct Case {
    what: &'static str,
    text: String,
    errors: Vec<(&'static str, Option<&'static str>)>,
    also: Vec<&'static str>,
}

fn case(what: &'static str, text: String, message: &'static str, at: Option<&'static str>) -> Case {
    Case { what, text, errors: vec![(message, at)], also: Vec::new() }
}

impl Case {
    fn and(mut self, message: &'static str, at: Option<&'static str>) -> Case {
        self.errors.push((message, at));
        self
    }

    fn hint(mut self, text: &'static str) -> Case {
        self.also.push(text);
        self
    }
}

#[test]
fn each_broken_config_gets_its_located_error() {
    let records = |extra: &str| format!("{BASE}\n{extra}");
    let cases = vec![
        case(
            "unknown key",
            with("a = [\"192.0.2.1\"]", "lattitude = 1.0\na = [\"192.0.2.1\"]"),
            "unknown field `lattitude`, expected one of",
            Some("lattitude"),
        )
        .hint("hint: remove the key or fix its spelling"),
        case("unknown section", with("[defaults]", "[defautls]"), "unknown section `defautls`", Some("defautls"))
            .hint("hint: did you mean `defaults`?"),
        case(
            "unknown region",
            with("regions = [\"us-east\", \"eu-west\"]", "regions = [\"us-east\", \"eu-wset\"]"),
            "unknown region `eu-wset`",
            Some("\"eu-wset\""),
        )
        .hint("did you mean `eu-west`?"),
        case(
            "bad address",
            with("a = [\"192.0.2.1\"]", "a = [\"192.0.2.300\"]"),
            "`192.0.2.300` is not a valid IPv4 address",
            Some("\"192.0.2.300\""),
        ),
        case(
            "unknown policy",
            with("policy = \"failover\"", "policy = \"nearst\""),
            "unknown policy `nearst`",
            Some("\"nearst\""),
        )
        .hint("did you mean `nearest`?"),
        case(
            "geo without a map",
            with("policy = \"failover\"", "policy = \"geo\""),
            "the `geo` policy needs a `map`",
            Some("\"geo\""),
        ),
        case(
            "CNAME beside other records",
            records(
                "[[zone.records]]\nname = \"x\"\ntype = \"CNAME\"\nvalues = [\"target.example.net.\"]\n\
                 [[zone.records]]\nname = \"x\"\ntype = \"A\"\nvalues = [\"192.0.2.9\"]\n",
            ),
            "`x.gslb.example.org.` has a CNAME and other records",
            Some("\"x\""),
        ),
        case(
            "a region with nothing to answer",
            records("[regions.empty]\nweight = 2\n"),
            "region `empty` has nothing to answer with",
            Some("empty"),
        ),
        case(
            "no zone",
            {
                let (start, end) = (BASE.find("[zone]").unwrap(), BASE.find("[regions.us-east]").unwrap());
                format!("{}{}", &BASE[..start], &BASE[end..])
            },
            "missing section `[zone]`",
            None,
        ),
        case(
            "a bad area in a geo map",
            with(
                "policy = \"failover\"",
                "policy = \"geo\"\nmap = { \"continent:XX\" = [\"us-east\"], default = [\"eu-west\"] }",
            ),
            "unknown continent `XX`",
            Some("\"continent:XX\""),
        ),
        case(
            "a bad listen address",
            with("listen = [\"127.0.0.1:5353\"]", "listen = [\"localhost:53\"]"),
            "`localhost:53` is not an address:port",
            Some("\"localhost:53\""),
        ),
        case(
            "a record outside the zone",
            records("[[zone.records]]\nname = \"www.example.com.\"\ntype = \"A\"\nvalues = [\"192.0.2.9\"]\n"),
            "`www.example.com.` is outside the zone `gslb.example.org.`",
            Some("\"www.example.com.\""),
        ),
        case(
            "a missing GeoIP database",
            with("listen = [\"127.0.0.1:5353\"]", "listen = [\"127.0.0.1:5353\"]\ngeoip_db = \"missing.mmdb\""),
            "GeoIP database `",
            Some("\"missing.mmdb\""),
        )
        .hint("missing.mmdb` (geoip_db) not found")
        .hint("or \"default\": the bundled database, wherever switchyard is installed"),
        case(
            "nearest without GeoIP or locations",
            with("policy = \"failover\"", "policy = \"nearest\"").replace("location = [39.0, -77.5]\n", ""),
            "the `nearest` policy needs `[server] geoip_db`",
            Some("\"nearest\""),
        )
        .and("region `us-east` has no location, which `nearest` needs", Some("\"nearest\"")),
        case(
            "failover_ttl longer than ttl",
            with("ttl = 60", "ttl = 20\nfailover_ttl = 30"),
            "failover_ttl (30) is longer than ttl (20)",
            Some("30"),
        ),
        case(
            "a wrong type",
            with("[regions.eu-west]", "[regions.eu-west]\nweight = \"heavy\""),
            "invalid type: string \"heavy\", expected u32",
            Some("\"heavy\""),
        ),
        case(
            "a CNAME loop",
            records(
                "[[zone.records]]\nname = \"a\"\ntype = \"CNAME\"\nvalues = [\"b\"]\n\
                 [[zone.records]]\nname = \"b\"\ntype = \"CNAME\"\nvalues = [\"a\"]\n",
            ),
            "`a.gslb.example.org.` is part of a CNAME loop",
            Some("\"a\""),
        )
        .and("`b.gslb.example.org.` is part of a CNAME loop", Some("\"b\"")),
        case(
            "CNAME and address regions with several answers",
            records("[regions.lb]\ncname = \"lb.example.net.\"\n[names.mix]\npolicy = \"multivalue\"\nanswers = 2\n"),
            "`mix` mixes CNAME regions and address regions with answers = 2",
            Some("mix"),
        ),
        case(
            "a geo map naming a region that is not a candidate",
            with(
                "policy = \"failover\"\nregions = [\"us-east\", \"eu-west\"]",
                "policy = \"geo\"\nregions = [\"us-east\"]\nmap = { \"192.0.2.0/24\" = [\"eu-west\"], default = [\"us-east\"] }",
            ),
            "map entry `cidr:192.0.2.0/24` names `eu-west`, which is not in this name's `regions`",
            Some("["),
        ),
        case(
            "when_all_down in an unknown form",
            with("ttl = 60", "ttl = 60\nwhen_all_down = { fallbak = [\"192.0.2.9\"] }"),
            "when_all_down is not one of the forms it takes",
            Some("{"),
        ),
        case(
            "abuse limits out of range, each reported",
            with(
                "listen = [\"127.0.0.1:5353\"]",
                "listen = [\"127.0.0.1:5353\"]\ntcp_max_per_client = 0\ntcp_io_timeout = 600\n[rrl]\nenabled = true\n\
                 slip = 11\nipv4_prefix = 4\nexempt = [\"10.0.0.0/33\"]\nrate = 5",
            ),
            "tcp_max_per_client 0 is out of range",
            Some("0"),
        )
        .and("tcp_io_timeout 600 is out of range", Some("600"))
        .and("slip 11 is out of range", Some("11"))
        .and("ipv4_prefix 4 is out of range", Some("4"))
        .and("`10.0.0.0/33` is not an address or CIDR network", Some("\"10.0.0.0/33\""))
        .and("unknown field `rate`, expected one of", Some("rate")),
        case(
            "unknown keys hide no other error and invent none",
            with("rname = \"hostmaster@example.org\"", "rname = \"hostmaster@example.org\"\nminimun = 60")
                .replace("location = [39.0, -77.5]", "locaton = [39.0, -77.5]\nwieght = 2")
                .replace("policy = \"failover\"", "policy = \"nearst\""),
            "unknown field `minimun`, expected one of",
            Some("minimun"),
        )
        .and("unknown field `locaton`, expected one of", Some("locaton"))
        .and("unknown field `wieght`, expected one of", Some("wieght"))
        .and("unknown policy `nearst`", Some("\"nearst\""))
        .hint("4 errors in"),
        case(
            "verify-full without sslrootcert",
            with(
                "a = [\"192.0.2.2\"]",
                "a = [\"192.0.2.2\"]\n[regions.eu-west.database]\nkind = \"postgres\"\n\
                 dsn = \"host=db.example.org user=switchyard sslmode=verify-full\"",
            ),
            "sslmode=verify-full needs the CA certificates to verify the server with: add sslrootcert=/path/ca.pem, \
             or sslrootcert=system for the system's trust store",
            Some("\"host=db.example.org"),
        )
        .hint("hint: e.g. \"host=db.example.org port=5432"),
        case(
            "a missing sslrootcert file",
            with(
                "a = [\"192.0.2.2\"]",
                "a = [\"192.0.2.2\"]\n[regions.eu-west.database]\nkind = \"postgres\"\n\
                 dsn = \"postgres://switchyard@db.example.org/postgres?sslmode=verify-ca&sslrootcert=no-ca.pem\"",
            ),
            "sslrootcert file `",
            Some("\"postgres://"),
        )
        .hint("no-ca.pem` not found (a relative path is taken from the config file's directory)"),
        case(
            "a writer name with two clusters to choose from",
            records(&format!("{TWO_CLUSTERS}[names.db]\npolicy = \"writer\"\n")),
            "which cluster does this `writer` name follow?",
            Some("\"writer\""),
        )
        .hint("add `cluster = \"...\"`: one of orders, billing"),
        case(
            "an unknown cluster",
            records(&format!(
                "{TWO_CLUSTERS}[names.db]\npolicy = \"reader\"\ncluster = \"order\"\norder = \"latency\"\n"
            )),
            "unknown cluster `order`",
            Some("\"order\""),
        )
        .hint("did you mean `orders`?"),
        case(
            "when_all_down = writer on a writer name",
            records(&format!(
                "{TWO_CLUSTERS}[names.db]\npolicy = \"writer\"\ncluster = \"orders\"\nwhen_all_down = \"writer\"\n"
            )),
            "when_all_down = \"writer\" applies only to reader names",
            Some("\"writer\""),
        ),
        case(
            "a member in a region that does not exist",
            records("[clusters.orders.members.pg-1]\nregion = \"us-est\"\nkind = \"postgres\"\ndsn = \"host=db\"\n"),
            "unknown region `us-est`",
            Some("\"us-est\""),
        )
        .hint("did you mean `us-east`?"),
        case(
            "a member probed like a gateway",
            records("[clusters.orders.members.pg-1]\nregion = \"us-east\"\nkind = \"tcp\"\n"),
            "`tcp` is not a kind of a database member",
            Some("\"tcp\""),
        ),
        case(
            "a system identifier that is not one",
            records(&format!(
                "[clusters.orders]\nsystem_identifier = \"0x7f\"\n{}",
                &TWO_CLUSTERS[TWO_CLUSTERS.find("[clusters.orders.members").unwrap()..]
            )),
            "`0x7f` is not a PostgreSQL system identifier",
            Some("\"0x7f\""),
        ),
        case(
            "a fleet without servers",
            records("[fleet]\nname = \"ns1\"\n"),
            "`[fleet]` needs `servers`",
            Some("[fleet]"),
        )
        .hint("the NATS servers, e.g. servers = [\"nats://127.0.0.1:4222\"]"),
        case(
            "a fleet quorum of another form",
            records("[fleet]\nname = \"ns1\"\nservers = [\"nats://127.0.0.1:4222\"]\nquorum = \"most\"\n"),
            "quorum is not one of the forms it takes",
            Some("\"most\""),
        )
        .hint("\"majority\" (default), a number of vantages such as 2, or a share such as 0.5"),
        case(
            "a fleet member name that is no key",
            records("[fleet]\nname = \"ns 1\"\nservers = [\"nats://127.0.0.1:4222\"]\n"),
            "fleet name `ns 1` is not valid",
            Some("\"ns 1\""),
        ),
        case(
            "observations that expire before a second probe",
            records("[fleet]\nname = \"ns1\"\nservers = [\"nats://127.0.0.1:4222\"]\nobservation_ttl = \"1s\"\n"),
            "observation_ttl 1s is shorter than two probe intervals",
            Some("\"1s\""),
        ),
        case(
            "a recovery-time budget the config cannot meet",
            with("policy = \"failover\"", "policy = \"failover\"\nrto = \"1m\"")
                + "[[regions.us-east.checks]]\nkind = \"tcp\"\ntarget = \"192.0.2.1:443\"\n",
            "`app` cannot meet its rto of 60s: the worst case is 78.5s",
            Some("\"1m\""),
        )
        .hint("detection 18.5s [3 × (5s + 0.5s) + 2s (us-east/tcp:192.0.2.1:443)] + propagation 0s + hold-down 0s + cached answer 60s [ttl 60s] = 78.5s; exceeds rto 60s"),
        case(
            "strict residency without jurisdictions",
            with("policy = \"failover\"", "policy = \"failover\"\nresidency = \"strict\""),
            "`residency = \"strict\"` needs `[jurisdictions]`",
            Some("\"strict\""),
        ),
        case(
            "a client area in two jurisdictions",
            records("[jurisdictions.eu]\nregions = [\"eu-west\"]\nclients = [\"10.0.0.0/8\"]\n[jurisdictions.us]\nregions = [\"us-east\"]\nclients = [\"10.0.0.0/8\"]\n"),
            "client area `cidr:10.0.0.0/8` is already in jurisdiction `eu`",
            Some("\"10.0.0.0/8\""),
        ),
        case(
            "unlocated on a name without residency",
            with("policy = \"failover\"", "policy = \"failover\"\nunlocated = \"servfail\""),
            "`unlocated` applies only to names with `residency = \"strict\"`",
            Some("\"servfail\""),
        ),
        case(
            "a strict fixed answer with a jurisdiction that has no sorry answer",
            with(
                "policy = \"failover\"",
                "policy = \"failover\"\nresidency = \"strict\"\nwhen_all_down = { fallback = [\"192.0.2.99\"] }",
            ) + "[jurisdictions.eu]\nregions = [\"eu-west\"]\nclients = [\"10.0.0.0/8\"]\n",
            "jurisdiction `eu` has no `sorry` answer for this strict name's fixed all-down answer",
            Some("{ fallback"),
        ),
    ];
    for c in cases {
        let o = load(&c.text);
        let caught = std::panic::catch_unwind(|| {
            for (message, at) in &c.errors {
                assert_error(&o, message, *at);
            }
            for text in &c.also {
                assert!(o.stderr.contains(text), "`{text}` missing");
            }
            let count = o.stderr.lines().filter(|l| l.contains(": error: ")).count();
            assert_eq!(count, c.errors.len(), "exactly the expected errors");
        });
        assert!(caught.is_ok(), "case `{}`:\n{}", c.what, o.stderr);
    }
    assert!(!load(BASE).stderr.contains("error"), "the base loads");
}

/// `[dnssec]`: a key file that is missing, not a key, for another zone, edited by hand,
/// or listed twice, and bad signing settings: each error points at its value.
#[test]
fn dnssec_key_errors_are_located() {
    use switchyard::config::dnssec::KeyRole;
    let keys = tempfile::tempdir().unwrap();
    let (good, _) = crate::support::keygen(keys.path(), "gslb.example.org.", KeyRole::Csk);
    let (other_zone, _) = crate::support::keygen(keys.path(), "example.net.", KeyRole::Csk);
    let (zsk, _) = crate::support::keygen(keys.path(), "gslb.example.org.", KeyRole::Zsk);
    let tampered = keys.path().join("tampered.key");
    let text = std::fs::read_to_string(&good).unwrap();
    let tag_line = text.lines().find(|l| l.starts_with("key_tag")).unwrap();
    std::fs::write(&tampered, text.replace(tag_line, "key_tag = 1")).unwrap();
    let not_a_key = keys.path().join("notes.txt");
    std::fs::write(&not_a_key, "hello").unwrap();
    let dnssec = |keys: &str, extra: &str| format!("{BASE}\n[dnssec]\nkeys = [{keys}]\n{extra}");
    let file = |p: &std::path::Path| format!("{{ file = \"{}\" }}", p.display());

    let ok = load(&dnssec(&file(&good), ""));
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let o = load(&dnssec("{ file = \"missing.key\" }", ""));
    assert_error(&o, "cannot read key file", Some("\"missing.key\""));
    assert!(o.stderr.contains("switchyard dnssec keygen"), "{}", o.stderr);
    let o = load(&dnssec(&file(&not_a_key), ""));
    assert_error(&o, &format!("`{}` is not a switchyard key file", not_a_key.display()), Some("\""));
    let o = load(&dnssec(&file(&other_zone), ""));
    assert_error(
        &o,
        &format!("key `{}` is for zone `example.net.`, not `gslb.example.org.`", other_zone.display()),
        Some("\""),
    );
    let o = load(&dnssec(&file(&tampered), ""));
    assert!(o.stderr.contains("key_tag says 1 but the key's tag is"), "{}", o.stderr);
    let o = load(&dnssec(&format!("{}, {}", file(&good), file(&good)), ""));
    assert!(o.stderr.contains("is listed twice"), "{}", o.stderr);
    let o = load(&dnssec(&file(&zsk), ""));
    assert_error(&o, "no key signs the DNSKEY set", Some("["));
    let o = load(&dnssec(&format!("{{ file = \"{}\", active = false }}", good.display()), ""));
    assert_error(&o, "no active key signs the zone's data", Some("["));
    let o = load(&dnssec(&file(&good), "validity = \"2d\"\nrefresh = \"3d\""));
    assert_error(&o, "`refresh` must be shorter than `validity`", Some("\"3d\""));
    let o = load(&dnssec(&file(&good), "validity = \"400d\"\nrefresh = \"7d\""));
    assert_error(&o, "`validity` must be between 4 seconds and 366 days", Some("\"400d\""));
    // Each algorithm in the DNSKEY set must sign it too.
    let ed_zsk = switchyard::config::dnssec::generate(
        &hickory_proto::rr::Name::from_ascii("gslb.example.org.").unwrap(),
        hickory_proto::dnssec::Algorithm::ED25519,
        KeyRole::Zsk,
        keys.path(),
    )
    .unwrap()
    .0;
    let o = load(&dnssec(&format!("{}, {}", file(&good), file(&ed_zsk)), ""));
    assert!(o.stderr.contains("no csk or ksk of that algorithm signs the DNSKEY set"), "{}", o.stderr);
    // A signature served just before it is made again must outlive the caches.
    let o = load(&dnssec(&file(&good), "validity = \"2h\"\nrefresh = \"30m\"").replace("ttl = 60", "ttl = 3600"));
    assert_error(&o, "`refresh` (1800s) is not longer than the zone's longest TTL (3600s)", Some("\"30m\""));
    let o = load(&dnssec(&file(&good), "dnskey_ttl = 0"));
    assert_error(&o, "dnskey_ttl 0 is out of range", Some("0"));
    // A DS record belongs at a delegation.
    let o = load(&format!("{BASE}\n[[zone.records]]\nname = \"www2\"\ntype = \"DS\"\nvalues = [\"1 13 2 AB\"]\n"));
    assert_error(&o, "`www2.gslb.example.org.` has a DS record but is not delegated", Some("\"www2\""));
    // Nothing of the private key reaches Debug (logs).
    let loaded = switchyard::config::load(&{
        let dir = tempfile::tempdir().unwrap().keep();
        crate::support::write_config(&dir, &dnssec(&file(&good), ""))
    })
    .unwrap();
    let debug = format!("{loaded:?}");
    assert!(debug.contains("PrivateKey(..)"), "the private key is named, not shown");
    for form in crate::support::private_key_forms(&good) {
        assert!(!debug.contains(&form), "the private key leaks into Debug as `{form}`");
    }
}
