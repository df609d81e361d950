use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::dns::dig;
use crate::support::{POLICIES, Spawned, bin, geoip, repo, write_config};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).current_dir(repo()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn policies_config() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test-city.mmdb"), geoip::city_db()).unwrap();
    let path = write_config(dir.path(), POLICIES);
    (dir, path.display().to_string())
}

#[test]
fn explain_shows_candidates_skips_answer_ttl_and_scope() {
    let (_dir, config) = policies_config();
    let (code, out, err) =
        run(&["explain", "--config", &config, "--name", "app", "--client", "192.0.2.0/24", "--down", "eu-west"]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "name:     app.gslb.example.org. (policy nearest)",
        "client:   192.0.2.0/24",
        "geoip:    country GB, continent EU, location 51.50,-0.12 (network /25)",
        "1. eu-west",
        "down: skipped",
        "2. us-east",
        "up: answered",
        "outcome:  fallback: a preferred region is not usable",
        "A 192.0.2.1 (us-east)",
        "ttl:      10",
        // No checks in this config: nothing can detect a failure.
        "rto:      detection 0s [no checks: never fails over] + propagation 0s + hold-down 0s + cached answer 60s [ttl 60s] = 60s",
        "ecs scope: /24",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    let (code, out, _) =
        run(&["explain", "--config", &config, "--name", "lat.gslb.example.org.", "--client", "203.0.113.9"]);
    assert_eq!(code, 0);
    assert!(out.contains("rtt 40 ms (row country:JP)"), "{out}");
}

#[test]
fn explain_rejects_unknown_names_and_regions() {
    let (_dir, config) = policies_config();
    let (code, _, err) = run(&["explain", "--config", &config, "--name", "nope", "--client", "192.0.2.1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a GSLB name in this config"), "{err}");
    let (code, _, err) =
        run(&["explain", "--config", &config, "--name", "app", "--client", "192.0.2.1", "--down", "mars"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown region `mars`"), "{err}");
    let (code, _, err) = run(&["explain", "--config", &config, "--name", "app", "--client", "not-an-ip"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not an address or subnet"), "{err}");
}

#[test]
fn geoip_lookup_reads_maxminds_test_database() {
    let (code, out, err) =
        run(&["geoip", "lookup", "--db", "tests/fixtures/geoip/GeoIP2-City-Test.mmdb", "81.2.69.142"]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "network:     81.2.69.142/31",
        "country:     GB",
        "continent:   EU",
        "subdivision: ENG",
        "location:    51.5142,-0.0931",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    let (code, _, err) = run(&["geoip", "lookup", "--db", "no-such.mmdb", "81.2.69.142"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot open GeoIP database no-such.mmdb"), "{err}");
}

#[test]
fn the_example_config_and_bundled_database_check_out() {
    let (code, out, err) = run(&["check-config", "config/example.toml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("config/example.toml: ok (zone gslb.example.org."), "{out}");
    assert!(out.contains("jurisdiction eu: regions eu-west; clients continent:EU"), "{out}");
    assert!(
        out.contains("name eu-app: strict residency; clients of unknown location: routed as of no jurisdiction"),
        "{out}"
    );
    assert!(out.contains("name app: rto detection 2.7s [2 × (1s + 0.1s) + 0.5s (us-east/http:"), "{out}");
    assert!(out.contains("= 62.7s; fits rto 120s"), "{out}");
}

/// check-config says, per cluster and database name, what happens when there is nothing
/// fresh to answer: the all-down choices are explicit.
#[test]
fn check_config_says_what_database_names_answer_when_nothing_is_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n[regions.us-east]\na = [\"192.0.2.1\"]\n[regions.eu-west]\na = [\"192.0.2.2\"]\n\
         [clusters.orders]\nfail_open_max_age = \"5m\"\n\
         [clusters.orders.members.pg-1]\nregion = \"us-east\"\nkind = \"postgres\"\ndsn = \"host=db1\"\n\
         [clusters.orders.members.pg-2]\nregion = \"eu-west\"\nkind = \"postgres\"\ndsn = \"host=db2\"\n\
         [clusters.billing]\nsystem_identifier = \"7312345678901234567\"\n\
         [clusters.billing.members.pg-3]\nregion = \"eu-west\"\nkind = \"postgres\"\ndsn = \"host=db3\"\n\
         [names.db]\npolicy = \"writer\"\ncluster = \"orders\"\nrto = \"5m\"\n\
         [names.bill]\npolicy = \"writer\"\ncluster = \"billing\"\nwhen_all_down = \"servfail\"\n\
         [names.ro]\npolicy = \"reader\"\ncluster = \"orders\"\norder = \"latency\"\nmax_lag = \"10s\"\n\
         [names.stale]\npolicy = \"reader\"\ncluster = \"orders\"\norder = \"latency\"\nwhen_all_down = \"fail_open\"\n\
         [latency]\ndefault = {{ us-east = 10, eu-west = 20 }}\n",
        include_str!("../fixtures/configs/zone.toml")
    );
    let path = write_config(dir.path(), &text);
    let (code, out, err) = run(&["check-config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "cluster orders: 2 members; system identifier learned once 2 of 2 postgres members agree",
        "cluster billing: 1 members; system identifier 7312345678901234567 (pinned)",
        "db (writer of orders): no writer after a 10s grace → the last member this instance saw as primary, if within 5m; else SERVFAIL",
        "bill (writer of billing): no writer after a 10s grace → SERVFAIL",
        "ro (reader of orders): none within 10s → the writer; no writer → SERVFAIL",
        "stale (reader of orders): none within 30s → stale reads",
        // One probe of the promoted member, 1 × (5s + 0.5s) + 2s; a writer gap may be
        // SERVFAIL, cached for max(ttl, the SOA minimum).
        "name db: rto detection 7.5s [1 × (5s + 0.5s) + 2s (",
        "+ propagation 0s + hold-down 0s + cached answer 60s [max(ttl 60s, negative ttl 60s)] = 67.5s; fits rto 300s",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
}

/// Runs `switchyard demo` as the README does (the example config, with DNS, control and
/// the three gateways moved to free ports so that another run or a running demo does not
/// collide), reads its stable "listening for TCP on" line, asks with dig, stops
/// eu-west's gateway and watches the answer move and come back, then stops it with
/// SIGTERM.
#[tokio::test]
async fn demo_moves_an_answer_when_a_gateway_stops_and_back() {
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut example = std::fs::read_to_string(repo().join("config/example.toml")).unwrap();
    for gateway in ["127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083"] {
        assert!(example.contains(gateway), "the example's gateways moved: update this test");
        example = example.replace(gateway, &format!("127.0.0.1:{}", free()));
    }
    // `geoip_db = "default"`: the built-in copy, from the temp dir too.
    assert!(example.contains("geoip_db = \"default\""));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("example.toml");
    std::fs::write(&config, example).unwrap();
    let mut server = Spawned::start(
        Command::new(bin())
            .args(["demo", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .arg("--config")
            .arg(&config),
    );
    let control = server.until(Duration::from_secs(20), |l| l.contains("curl -X POST http://"));
    let control = control.split("curl -X POST http://").nth(1).and_then(|c| c.split('/').next()).unwrap().to_owned();
    let addr = server.dns_addr(Duration::from_secs(20));
    let until = |subnet: &'static str, want: &'static str| async move {
        let start = Instant::now();
        loop {
            let d = dig(addr, &["app.gslb.example.org", "A", &format!("+subnet={subnet}")]).await;
            if d.answers.first().map(|a| a.3.as_str()) == Some(want) {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(15), "{subnet} never got {want}:\n{}", d.raw);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // The bundled country database: Europe, North America, Oceania.
    until("81.2.69.0/24", "192.0.2.2").await;
    until("8.8.8.0/24", "192.0.2.1").await;
    until("1.1.1.0/24", "192.0.2.3").await;
    let http = reqwest::Client::new();
    let ctl = |action: &str| format!("http://{control}/eu-west/{action}");
    let r = http.post(ctl("stop")).send().await.unwrap();
    assert!(r.status().is_success());
    until("81.2.69.0/24", "192.0.2.1").await;
    http.post(ctl("start")).send().await.unwrap();
    until("81.2.69.0/24", "192.0.2.2").await;

    let child = &mut server.child.0;
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "clean exit on SIGTERM: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "still running 10 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A database member with a password in its DSN and an admin token: neither reaches the
/// logs (at debug level), `/status` or `/metrics`, even after requests with a wrong token.
#[tokio::test]
async fn secrets_never_reach_logs_status_or_metrics() {
    const TOKEN: &str = "tok-7f3a9c-secret";
    let dir = tempfile::tempdir().unwrap();
    let config = POLICIES.replace(
        "[regions.eu-west]\n",
        "[regions.eu-west.database]\nkind = \"postgres\"\ndsn = \"host=127.0.0.1 port=1 user=switchyard password=hunter2 connect_timeout=1\"\n\n[regions.eu-west]\n",
    );
    std::fs::write(dir.path().join("test-city.mmdb"), geoip::city_db()).unwrap();
    // A signed zone: its private key must not show either.
    let config = crate::support::signed(&config, dir.path());
    let key_file = config.split("file = \"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let private = crate::support::private_key_forms(std::path::Path::new(&key_file));
    let path = write_config(dir.path(), &config);
    let mut server = Spawned::start(
        Command::new(bin())
            .args(["--log-format", "json", "serve", "--admin", "127.0.0.1:0", "--config"])
            .arg(&path)
            .env("SWITCHYARD_LOG", "debug")
            .env("SWITCHYARD_ADMIN_TOKEN", TOKEN),
    );
    let line = server.until(Duration::from_secs(20), |l| l.contains("admin HTTP listening on "));
    let admin = line.split("admin HTTP listening on ").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let http = reqwest::Client::new();
    let drain =
        |token: &'static str| http.post(format!("http://{admin}/regions/us-east/drain")).bearer_auth(token).send();
    assert_eq!(drain("tok-7f3a9c-wrong").await.unwrap().status(), 401);
    assert_eq!(drain(TOKEN).await.unwrap().status(), 200);
    server.until(Duration::from_secs(20), |l| l.contains("check state changed") && l.contains("postgres"));
    let mut pages = String::new();
    for page in ["/status", "/metrics", "/"] {
        pages += &http.get(format!("http://{admin}{page}")).send().await.unwrap().text().await.unwrap();
    }
    server.kill();
    let log = &server.log;
    assert!(log.contains("user=switchyard"), "the check is named by its redacted DSN:\n{log}");
    assert!(log.contains("wrong bearer token"), "the refusal is logged:\n{log}");
    assert!(pages.contains("user=switchyard"), "status names the check");
    let secrets = ["hunter2", TOKEN, "tok-7f3a9c"].into_iter().map(str::to_owned).chain(private);
    for secret in secrets {
        let secret = secret.as_str();
        assert!(!log.contains(secret), "`{secret}` leaked into the log:\n{log}");
        assert!(!pages.contains(secret), "`{secret}` leaked into status or metrics");
    }
}

/// A new user's first steps outside the clone: `init` writes a starter config and the
/// bundled database that check-config accepts; a missing config is one line and exit 2;
/// a config copied elsewhere finds the bundled database with `geoip_db = "default"`;
/// `--geoip` and `SWITCHYARD_GEOIP` replace the config's.
#[test]
fn init_and_the_default_geoip_database_work_outside_the_clone() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    let site_s = site.to_str().unwrap();
    let (code, out, err) = run(&["init", site_s]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("default.mmdb") && out.contains("switchyard.toml"), "{out}");
    let config = site.join("switchyard.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    for region in ["us-east", "sa-east", "eu-west", "af-south", "ap-southeast", "au-east"] {
        assert!(text.contains(&format!("[regions.{region}]")), "one region per continent: {text}");
    }
    let (code, out, err) = run(&["check-config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("from {}", site.join("default.mmdb").display())), "the copy beside it: {out}");
    // Not twice.
    let (code, _, err) = run(&["init", site_s]);
    assert_eq!(code, 2);
    assert!(err.contains("exists: not overwritten"), "{err}");
    // Regions from flags, and a bad one.
    let (code, _, err) = run(&[
        "init",
        dir.path().join("two").to_str().unwrap(),
        "--zone",
        "gslb.example.com",
        "--region",
        "eu-west=53.35,-6.26,192.0.2.2",
        "--region",
        "us-east=39.04,-77.49,2001:db8::1",
    ]);
    assert_eq!(code, 0, "{err}");
    let two = std::fs::read_to_string(dir.path().join("two/switchyard.toml")).unwrap();
    assert!(two.contains("origin = \"gslb.example.com.\"") && two.contains("aaaa = [\"2001:db8::1\"]"), "{two}");
    let (code, _, err) =
        run(&["init", dir.path().join("three").to_str().unwrap(), "--region", "eu-west=north,-6.26,192.0.2.2"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not NAME=LATITUDE,LONGITUDE,ADDRESS"), "{err}");

    // A missing config: one line, exit 2.
    let (code, _, err) = run(&["check-config", "/nonexistent/switchyard.toml"]);
    assert_eq!(code, 2);
    assert_eq!(
        err.trim(),
        "error: cannot read config file /nonexistent/switchyard.toml: No such file or directory (os error 2)"
    );

    // The example, copied away from the clone: "default" is the built-in copy.
    let away = dir.path().join("etc");
    std::fs::create_dir(&away).unwrap();
    std::fs::copy(repo().join("config/example.toml"), away.join("switchyard.toml")).unwrap();
    let away_s = away.join("switchyard.toml");
    let (code, out, err) = run(&["check-config", away_s.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("from (built in) default.mmdb"), "{out}");
    // A wrong path: that one error, no knock-on errors from the names that need GeoIP,
    // no doubled prefix.
    let broken =
        std::fs::read_to_string(&away_s).unwrap().replace("geoip_db = \"default\"", "geoip_db = \"gone.mmdb\"");
    std::fs::write(&away_s, broken).unwrap();
    let (code, _, err) = run(&["check-config", away_s.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(err.matches(": error: ").count(), 1, "{err}");
    assert!(
        err.contains("gone.mmdb` (geoip_db) not found") && err.ends_with(&format!("1 error in {}\n", away_s.display())),
        "{err}"
    );
    assert!(!err.starts_with("error: "), "no doubled prefix: {err}");
    // Overridden on the command line, or in the environment.
    let (code, out, err) =
        run(&["check-config", away_s.to_str().unwrap(), "--geoip", site.join("default.mmdb").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("from {}", site.join("default.mmdb").display())), "{out}");
    let out = Command::new(bin())
        .args(["check-config", away_s.to_str().unwrap()])
        .env("SWITCHYARD_GEOIP", "default")
        .output()
        .unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("(built in)"), "{out:?}");
}

/// `dnssec keygen` writes an owner-only key and prints the DS and DNSKEY; `dnssec keys`
/// prints the same for a config's keys; an Ed25519 zone validates too.
#[tokio::test]
async fn dnssec_keygen_and_keys_print_what_the_parent_needs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let (code, out, err) = run(&["dnssec", "keygen", "gslb.example.org", "--algorithm", "ed25519", "--dir", &d]);
    assert_eq!(code, 0, "{err}");
    let ds = out.lines().find(|l| !l.starts_with(';') && l.contains(" DS ")).unwrap_or_else(|| panic!("{out}"));
    assert!(ds.starts_with("gslb.example.org.") && ds.contains(" 15 2 "), "{ds}");
    assert!(out.contains("DNSKEY\t257 3 15") || out.contains("DNSKEY 257 3 15"), "{out}");
    let file = out.split("wrote ").nth(1).unwrap().split(" (owner-only)").next().unwrap().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "{file}");
    }
    assert_eq!(run(&["dnssec", "keygen", "gslb.example.org", "--role", "kzk"]).0, 2, "a bad role is a usage error");
    // The config's keys: the same DS.
    std::fs::write(dir.path().join("test-city.mmdb"), geoip::city_db()).unwrap();
    let config = format!("{POLICIES}\n[dnssec]\nkeys = [{{ file = \"{file}\" }}]\n");
    let path = write_config(dir.path(), &config);
    let (code, keys, err) = run(&["dnssec", "keys", "--config", &path.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(keys.contains(ds.split(" DS ").nth(1).unwrap()), "the same DS: {keys}");
    let (code, out, err) = run(&["check-config", &path.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dnssec: keys") && !err.contains("warning"), "{out}{err}");
    // A key file others can read is warned about.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (code, _, err) = run(&["check-config", &path.display().to_string()]);
        assert!(code == 0 && err.contains("is readable by others (mode 644)"), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Served, an Ed25519-signed answer validates.
    let s = crate::support::TestServer::start(&config).await;
    let dig = dig(s.addr, &["static.gslb.example.org", "A", "+dnssec"]).await;
    assert!(dig.raw.contains("RRSIG\tA 15 4"), "{}", dig.raw);
    let anchor = keys.lines().find(|l| !l.starts_with(';') && l.contains(" DNSKEY ")).unwrap();
    let b64 = anchor.split_whitespace().skip(7).collect::<String>();
    let anchors = dir.path().join("anchors.conf");
    std::fs::write(&anchors, format!("trust-anchors {{ gslb.example.org. static-key 257 3 15 \"{b64}\"; }};\n"))
        .unwrap();
    let out = Command::new("delv")
        .arg(format!("@{}", s.addr.ip()))
        .args(["-p", &s.addr.port().to_string(), "-a"])
        .arg(&anchors)
        .args(["+root=gslb.example.org", "app.gslb.example.org", "A"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("; fully validated"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    s.stop().await;
}
