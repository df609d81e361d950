//! Each broken config gets exit code 2 and an exact message whose file:line:column
//! points at the offending text.

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

struct Outcome {
    code: i32,
    stderr: String,
    text: String,
}

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

#[test]
fn the_base_config_is_valid() {
    let o = check_config(BASE);
    assert_eq!(o.code, 0, "{}", o.stderr);
}

#[test]
fn unknown_key() {
    let o = check_config(&with("a = [\"192.0.2.1\"]", "lattitude = 1.0\na = [\"192.0.2.1\"]"));
    assert_error(&o, "unknown field `lattitude`, expected one of", Some("lattitude"));
    assert!(o.stderr.contains("hint: remove the key or fix its spelling"), "{}", o.stderr);
}

#[test]
fn unknown_section_with_a_suggestion() {
    let o = check_config(&with("[defaults]", "[defautls]"));
    assert_error(&o, "unknown section `defautls`", Some("defautls"));
    assert!(o.stderr.contains("hint: did you mean `defaults`?"), "{}", o.stderr);
}

#[test]
fn unknown_region_with_a_suggestion() {
    let o = check_config(&with("regions = [\"us-east\", \"eu-west\"]", "regions = [\"us-east\", \"eu-wset\"]"));
    assert_error(&o, "unknown region `eu-wset`", Some("\"eu-wset\""));
    assert!(o.stderr.contains("did you mean `eu-west`?"), "{}", o.stderr);
}

#[test]
fn bad_address() {
    let o = check_config(&with("a = [\"192.0.2.1\"]", "a = [\"192.0.2.300\"]"));
    assert_error(&o, "`192.0.2.300` is not a valid IPv4 address", Some("\"192.0.2.300\""));
}

#[test]
fn unknown_policy_with_a_suggestion() {
    let o = check_config(&with("policy = \"failover\"", "policy = \"nearst\""));
    assert_error(&o, "unknown policy `nearst`", Some("\"nearst\""));
    assert!(o.stderr.contains("did you mean `nearest`?"), "{}", o.stderr);
}

#[test]
fn toml_syntax_error() {
    let o = check_config(&with("origin = \"gslb.example.org.\"", "origin = \"gslb.example.org."));
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("switchyard.toml:8:"), "located on line 8: {}", o.stderr);
}

#[test]
fn geo_without_a_map() {
    let o = check_config(&with("policy = \"failover\"", "policy = \"geo\""));
    assert_error(&o, "the `geo` policy needs a `map`", Some("\"geo\""));
}

#[test]
fn cname_beside_other_records() {
    let o = check_config(&format!(
        "{BASE}\n[[zone.records]]\nname = \"x\"\ntype = \"CNAME\"\nvalues = [\"target.example.net.\"]\n\
         [[zone.records]]\nname = \"x\"\ntype = \"A\"\nvalues = [\"192.0.2.9\"]\n"
    ));
    assert_error(&o, "`x.gslb.example.org.` has a CNAME and other records", None);
}

#[test]
fn region_with_nothing_to_answer() {
    let o = check_config(&format!("{BASE}\n[regions.empty]\nweight = 2\n"));
    assert_error(&o, "region `empty` has nothing to answer with", Some("empty"));
}

#[test]
fn missing_zone() {
    let start = BASE.find("[zone]").unwrap();
    let end = BASE.find("[regions.us-east]").unwrap();
    let text = format!("{}{}", &BASE[..start], &BASE[end..]);
    let o = check_config(&text);
    assert_error(&o, "missing section `[zone]`", None);
}

#[test]
fn bad_area_in_a_geo_map() {
    let o = check_config(&with(
        "policy = \"failover\"",
        "policy = \"geo\"\nmap = { \"continent:XX\" = [\"us-east\"], default = [\"eu-west\"] }",
    ));
    assert_error(&o, "unknown continent `XX`", Some("\"continent:XX\""));
}

#[test]
fn bad_listen_address() {
    let o = check_config(&with("listen = [\"127.0.0.1:5353\"]", "listen = [\"localhost:53\"]"));
    assert_error(&o, "`localhost:53` is not an address:port", Some("\"localhost:53\""));
}

#[test]
fn record_outside_the_zone() {
    let o = check_config(&format!(
        "{BASE}\n[[zone.records]]\nname = \"www.example.com.\"\ntype = \"A\"\nvalues = [\"192.0.2.9\"]\n"
    ));
    assert_error(&o, "`www.example.com.` is outside the zone `gslb.example.org.`", Some("\"www.example.com.\""));
}

#[test]
fn missing_geoip_database() {
    let o = check_config(&with(
        "listen = [\"127.0.0.1:5353\"]",
        "listen = [\"127.0.0.1:5353\"]\ngeoip_db = \"missing.mmdb\"",
    ));
    assert_error(&o, "GeoIP database `", Some("\"missing.mmdb\""));
    assert!(o.stderr.contains("missing.mmdb` not found"), "{}", o.stderr);
}

#[test]
fn nearest_needs_geoip_and_locations() {
    let text = with("policy = \"failover\"", "policy = \"nearest\"").replace("location = [39.0, -77.5]\n", "");
    let o = check_config(&text);
    assert_error(&o, "the `nearest` policy needs `[server] geoip_db`", Some("\"nearest\""));
    assert_error(&o, "region `us-east` has no location, which `nearest` needs", Some("\"nearest\""));
}

#[test]
fn failover_ttl_longer_than_ttl() {
    let o = check_config(&with("ttl = 60", "ttl = 20\nfailover_ttl = 30"));
    assert_error(&o, "failover_ttl (30) is longer than ttl (20)", Some("30"));
}

#[test]
fn wrong_type() {
    let o = check_config(&with("[regions.eu-west]", "[regions.eu-west]\nweight = \"heavy\""));
    assert_error(&o, "invalid type: string \"heavy\", expected u32", Some("\"heavy\""));
}

#[test]
fn every_error_is_reported_at_once() {
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
}

#[test]
fn unknown_keys_do_not_hide_other_errors_or_invent_new_ones() {
    let text = with("rname = \"hostmaster@example.org\"", "rname = \"hostmaster@example.org\"\nminimun = 60")
        .replace("location = [39.0, -77.5]", "locaton = [39.0, -77.5]\nwieght = 2")
        .replace("policy = \"failover\"", "policy = \"nearst\"");
    let o = check_config(&text);
    assert_error(&o, "unknown field `minimun`, expected one of", Some("minimun"));
    assert_error(&o, "unknown field `locaton`, expected one of", Some("locaton"));
    assert_error(&o, "unknown field `wieght`, expected one of", Some("wieght"));
    assert_error(&o, "unknown policy `nearst`", Some("\"nearst\""));
    assert!(!o.stderr.contains("missing section"), "the zone exists: {}", o.stderr);
    assert!(!o.stderr.contains("unknown region"), "us-east exists: {}", o.stderr);
    assert!(o.stderr.contains("4 errors in"), "{}", o.stderr);
}

#[test]
fn cname_loops() {
    let o = check_config(&format!(
        "{BASE}\n[[zone.records]]\nname = \"a\"\ntype = \"CNAME\"\nvalues = [\"b\"]\n[[zone.records]]\nname = \"b\"\ntype = \"CNAME\"\nvalues = [\"a\"]\n"
    ));
    assert_error(&o, "`a.gslb.example.org.` is part of a CNAME loop", None);
}

#[test]
fn mixing_cname_and_address_regions_with_several_answers() {
    let o = check_config(&format!(
        "{BASE}\n[regions.lb]\ncname = \"lb.example.net.\"\n[names.mix]\npolicy = \"multivalue\"\nanswers = 2\n"
    ));
    assert_error(&o, "`mix` mixes CNAME regions and address regions with answers = 2", Some("mix"));
}

#[test]
fn geo_map_regions_must_be_candidates() {
    let o = check_config(&with(
        "policy = \"failover\"\nregions = [\"us-east\", \"eu-west\"]",
        "policy = \"geo\"\nregions = [\"us-east\"]\nmap = { \"192.0.2.0/24\" = [\"eu-west\"], default = [\"us-east\"] }",
    ));
    assert_error(&o, "map entry `cidr:192.0.2.0/24` names `eu-west`, which is not in this name's `regions`", Some("["));
}

#[test]
fn when_all_down_with_an_unknown_form() {
    let o = check_config(&with("ttl = 60", "ttl = 60\nwhen_all_down = { fallbak = [\"192.0.2.9\"] }"));
    assert_error(&o, "when_all_down is not one of the forms it takes", Some("{"));
}

#[test]
fn abuse_limits_out_of_range_each_reported() {
    let o = check_config(&with(
        "listen = [\"127.0.0.1:5353\"]",
        "listen = [\"127.0.0.1:5353\"]\ntcp_max_per_client = 0\ntcp_io_timeout = 600\n[rrl]\nenabled = true\nslip = 11\nipv4_prefix = 4\nexempt = [\"10.0.0.0/33\"]\nrate = 5",
    ));
    assert_error(&o, "tcp_max_per_client 0 is out of range", Some("0"));
    assert_error(&o, "tcp_io_timeout 600 is out of range", Some("600"));
    assert_error(&o, "slip 11 is out of range", Some("11"));
    assert_error(&o, "ipv4_prefix 4 is out of range", Some("4"));
    assert_error(&o, "`10.0.0.0/33` is not an address or CIDR network", Some("\"10.0.0.0/33\""));
    assert_error(&o, "unknown field `rate`, expected one of", Some("rate"));
}
