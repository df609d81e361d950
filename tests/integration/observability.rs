//! What the deploy/ files promise: every metric the dashboard and the alert rules use
//! exists; promtool accepts the rules; a real Prometheus server scrapes every region;
//! the Kubernetes config validates.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::gateway::{Gateway, Mode};
use crate::support::{Killed, POLICIES, TestServer, repo};

/// POLICIES with a gateway check on us-east (failing), a database cluster with a member
/// in eu-west, and a jurisdiction.
async fn observed_server(gw: &Gateway, role: &Gateway) -> TestServer {
    gw.set(Mode::Status(503));
    let config = POLICIES.replace(
        "[regions.eu-west]\n",
        &format!(
            "[[regions.us-east.checks]]\nkind = \"http\"\nurl = \"http://{}/\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\n\n\
             [clusters.main.members.pg-eu]\nregion = \"eu-west\"\nkind = \"http_role\"\nurl = \"http://{}/primary\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\n\n[regions.eu-west]\n",
            gw.addr, role.addr
        ),
    );
    // A jurisdiction, so that the residency counter has its series.
    let config = format!("{config}\n[jurisdictions.eu]\nregions = [\"eu-west\"]\nclients = [\"continent:EU\"]\n");
    let s = TestServer::start(&format!("[admin]\nlisten = \"127.0.0.1:0\"\n{config}")).await;
    // One query, so that the query counter has a series.
    crate::support::dns::udp(
        s.addr,
        &crate::support::dns::query("static.gslb.example.org.", hickory_proto::rr::RecordType::A),
    )
    .await;
    // Wait until both checks have results (and the failing one has failed).
    let start = Instant::now();
    loop {
        let text = metrics(&s).await;
        if text.contains("switchyard_check_failures_total{")
            && text.contains("switchyard_writer{cluster=\"main\",member=\"pg-eu\",region=\"eu-west\"} 1")
        {
            return s;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "checks did not report:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metrics(s: &TestServer) -> String {
    reqwest::get(format!("http://{}/metrics", s.admin)).await.unwrap().text().await.unwrap()
}

/// `switchyard_*` names in a text, with histogram suffixes folded into their base.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("switchyard_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        out.insert(base.to_owned());
        rest = &tail[end..];
    }
    out
}

#[tokio::test]
async fn every_metric_the_dashboard_and_the_rules_use_is_exported() {
    let (gw, role) = (Gateway::http("127.0.0.51").await, Gateway::http("127.0.0.52").await);
    let s = observed_server(&gw, &role).await;
    let exported: BTreeSet<String> = metrics(&s)
        .await
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    let dashboard = std::fs::read_to_string(repo().join("deploy/grafana/switchyard-dashboard.json")).unwrap();
    let _: Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let rules = std::fs::read_to_string(repo().join("deploy/prometheus/rules.yml")).unwrap();
    for (file, text) in [("dashboard", &dashboard), ("rules", &rules)] {
        let used = names_in(text);
        assert!(used.len() >= 5, "{file} uses metrics: {used:?}");
        for name in used {
            assert!(exported.contains(&name), "{file} uses {name}, which /metrics does not export ({exported:?})");
        }
    }
    s.stop().await;
}

#[test]
fn promtool_accepts_the_rules_and_the_prometheusrule_matches_them() {
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(repo().join("deploy/prometheus/rules.yml"))
        .output()
        .expect("promtool runs");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let rules = std::fs::read_to_string(repo().join("deploy/prometheus/rules.yml")).unwrap();
    let crd = std::fs::read_to_string(repo().join("deploy/kubernetes/prometheusrule.yaml")).unwrap();
    let body: String = crd
        .split_once("spec:\n")
        .expect("a spec")
        .1
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    assert_eq!(body, rules, "deploy/kubernetes/prometheusrule.yaml is stale: run deploy/gen-prometheusrule.sh");
}

#[tokio::test]
async fn a_real_prometheus_scrapes_every_region() {
    let (gw, role) = (Gateway::http("127.0.0.53").await, Gateway::http("127.0.0.54").await);
    let s = observed_server(&gw, &role).await;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: switchyard\n    static_configs:\n      - targets: ['{}']\n",
            repo().join("deploy/prometheus/rules.yml").display(),
            s.admin
        ),
    )
    .unwrap();
    // A port picked as free may be taken by another test before Prometheus binds it:
    // then Prometheus exits, and we start it again on another port.
    let mut started = None;
    for attempt in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut prom = Killed(
            Command::new("prometheus")
                .arg(format!("--config.file={}", conf.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join(format!("data{attempt}")).display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("prometheus runs (apt-get install prometheus)"),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while prom.0.try_wait().unwrap().is_none() && Instant::now() < deadline {
            if reqwest::get(format!("http://127.0.0.1:{port}/-/ready")).await.is_ok_and(|r| r.status().is_success()) {
                started = Some((prom, port));
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if started.is_some() {
            break;
        }
    }
    let (_prom, port) = started.expect("Prometheus started and became ready");
    let url = format!("http://127.0.0.1:{port}/api/v1/query?query=switchyard_region_up");
    let start = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(&url).await
            && let Ok(text) = r.text().await
            && let Ok(v) = serde_json::from_str::<Value>(&text)
        {
            let regions: BTreeSet<String> = v["data"]["result"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["metric"]["region"].as_str().map(str::to_owned))
                .collect();
            if regions.len() == 4 {
                assert_eq!(regions, ["ap-southeast", "cdn", "eu-west", "us-east"].map(String::from).into());
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Prometheus did not scrape switchyard_region_up for every region"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The failing gateway made us-east down, and Prometheus sees it.
    let text =
        reqwest::get(format!("http://127.0.0.1:{port}/api/v1/query?query=switchyard_region_up{{region=\"us-east\"}}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "0");
    s.stop().await;
}

#[test]
fn the_kubernetes_config_validates() {
    for configmap in ["deploy/kubernetes/configmap.yaml", "deploy/kubernetes/fleet/base/configmap.yaml"] {
        check_configmap(configmap);
    }
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/switchyard.service")).unwrap();
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID"), "systemd reload sends SIGHUP");
}

/// The switchyard.toml inside a ConfigMap passes check-config (its paths moved to the repo).
fn check_configmap(configmap: &str) {
    let cm = std::fs::read_to_string(repo().join(configmap)).unwrap();
    let toml: String = cm
        .split_once("switchyard.toml: |\n")
        .unwrap()
        .1
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t0ken\n").unwrap();
    let toml = toml
        .replace("/usr/share/switchyard/default.mmdb", &repo().join("geoip/default.mmdb").display().to_string())
        .replace("/etc/switchyard-token/token", &dir.path().join("token").display().to_string());
    let path = dir.path().join("switchyard.toml");
    std::fs::write(&path, toml).unwrap();
    let out = Command::new(crate::support::bin()).arg("check-config").arg(&path).output().unwrap();
    assert!(out.status.success(), "{configmap}: {}", String::from_utf8_lossy(&out.stderr));
}
