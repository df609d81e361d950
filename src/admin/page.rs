//! The HTML status page: what a person needs at a glance (regions up or down, each
//! cluster's writer and members, recent changes), rendered from the `/status` document. No scripts; it
//! refreshes itself every five seconds.

use serde_json::Value;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => esc(s),
        Value::Null => "–".to_owned(),
        other => esc(&other.to_string()),
    }
}

pub fn render(s: &Value) -> String {
    let mut rows = String::new();
    for r in s["regions"].as_array().into_iter().flatten() {
        let (class, label) = match (r["up"].as_bool(), r["drained"].as_bool()) {
            (_, Some(true)) => ("drained", "DRAINED"),
            (Some(true), _) => ("up", "UP"),
            _ => ("down", "DOWN"),
        };
        let mut checks = String::new();
        for c in r["checks"].as_array().into_iter().flatten() {
            let state = match c["up"].as_bool() {
                Some(true) => "up",
                Some(false) => "down",
                None => "unknown",
            };
            checks.push_str(&format!(
                "<div class=\"check {state}\"><code>{}</code> <span>{}</span></div>",
                text(&c["id"]),
                text(&c["last"])
            ));
        }
        rows.push_str(&format!(
            "<tr><td class=\"name\">{}</td><td><span class=\"badge {class}\">{label}</span>{}</td><td>{checks}</td></tr>",
            text(&r["name"]),
            if r["recently_changed"].as_bool() == Some(true) { " <small>changed recently</small>" } else { "" },
        ));
    }
    let mut clusters = String::new();
    for c in s["clusters"].as_array().into_iter().flatten() {
        let writer = match (&c["writer"], c["split_brain"].as_bool()) {
            (_, Some(true)) => format!(
                "<span class=\"badge down\">SPLIT BRAIN</span> primaries: {} — answering {}",
                esc(&c["primaries"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| p.as_str().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join(", ")),
                text(&c["writer"])
            ),
            (Value::Null, _) => format!(
                "<span class=\"badge down\">NO WRITER</span>{}",
                match &c["fail_open_to"] {
                    Value::Null => String::new(),
                    m => format!(" <small>(fail_open answers {}, the last primary seen)</small>", text(m)),
                }
            ),
            (w, _) => format!(
                "<span class=\"badge up\">{}</span>{}",
                text(w),
                if c["writer_unsettled"].as_bool() == Some(true) {
                    " <small>(unsettled: short TTL)</small>"
                } else {
                    ""
                }
            ),
        };
        let mut members = String::new();
        for m in c["members"].as_array().into_iter().flatten() {
            let role = match (&m["role"], &m["last_role"]) {
                (Value::Null, Value::Null) => "<b>unknown</b>".to_owned(),
                (Value::Null, last) => {
                    format!("<b>unreachable</b> <small>(last seen: {})</small>", text(&last["role"]))
                }
                (role, _) => text(role),
            };
            members.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{role}</td><td><small>{}</small></td></tr>",
                text(&m["name"]),
                text(&m["region"]),
                text(&m["last"])
            ));
        }
        clusters.push_str(&format!(
            "<h3>{}</h3><div class=\"writer\">Writer: {writer}</div>\
             <table><tr><th>Member</th><th>Region</th><th>Role</th><th>Last probe</th></tr>{members}</table>",
            text(&c["name"])
        ));
    }
    let fleet = match &s["fleet"] {
        Value::Null => String::new(),
        f => {
            let names: Vec<String> = f["vantages"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| {
                    let stale = if v["fresh"].as_bool() == Some(false) { " <small>(stale)</small>" } else { "" };
                    format!("<th>{}{stale}</th>", text(&v["name"]))
                })
                .collect();
            let mut rows = String::new();
            for (region, row) in f["matrix"].as_object().into_iter().flatten() {
                let cells: String = f["vantages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| {
                        let word = row[v["name"].as_str().unwrap_or("")].as_str().unwrap_or("unknown");
                        let class = match word {
                            "up" => "up",
                            "down" => "down",
                            _ => "drained",
                        };
                        format!("<td><span class=\"badge {class}\">{}</span></td>", esc(word))
                    })
                    .collect();
                rows.push_str(&format!("<tr><td class=\"name\">{}</td>{cells}</tr>", esc(region)));
            }
            let connected = if f["connected"].as_bool() == Some(true) {
                "<span class=\"badge up\">CONNECTED</span>"
            } else {
                "<span class=\"badge down\">NATS UNREACHABLE</span>"
            };
            format!(
                "<h2>Fleet</h2><p>{connected} this instance: <b>{}</b>, quorum {}</p>\
                 <table><tr><th>Region</th>{}</tr>{rows}</table>",
                text(&f["name"]),
                text(&f["quorum"]),
                names.join("")
            )
        }
    };
    if clusters.is_empty() {
        clusters.push_str("<p><small>No database clusters configured.</small></p>");
    }
    let mut events = String::new();
    for e in s["recent_changes"].as_array().into_iter().flatten().take(20) {
        let secs = e["at"].as_f64().unwrap_or(0.0) as i64;
        let t = format!("{:02}:{:02}:{:02} UTC", (secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        events.push_str(&format!("<li><time>{t}</time> {}</li>", text(&e["what"])));
    }
    if events.is_empty() {
        events.push_str("<li>no changes since start</li>");
    }
    // The failover record: one row per event, its timeline in words.
    let mut timeline = String::new();
    for e in s["events"].as_array().into_iter().flatten() {
        let class = match e["kind"].as_str() {
            Some("region_up") => "up",
            Some("region_down") => "down",
            _ => "drained",
        };
        let what = match e["kind"].as_str() {
            Some("writer_changed") => format!(
                "cluster {}: writer {} → {}",
                text(&e["cluster"]),
                e["from"].as_str().unwrap_or("none"),
                e["to"].as_str().unwrap_or("none")
            ),
            Some(kind) => format!("region {} {}", text(&e["region"]), if kind == "region_up" { "up" } else { "down" }),
            None => String::new(),
        };
        timeline.push_str(&format!(
            "<tr><td><span class=\"badge {class}\">{}</span></td><td><small>{}</small></td></tr>",
            esc(&what),
            esc(&crate::events::describe(e))
        ));
    }
    let timeline = if timeline.is_empty() {
        "<p><small>No failovers recorded.</small></p>".to_owned()
    } else {
        format!("<table><tr><th>Event</th><th>Timeline</th></tr>{timeline}</table>")
    };
    let ready = if s["ready"].as_bool() == Some(true) {
        ""
    } else {
        "<p class=\"warn\">Waiting for the first round of health checks: GSLB names answer SERVFAIL.</p>"
    };
    let reload_error = match &s["config"]["last_error"] {
        Value::String(e) => format!(
            "<p class=\"warn\">The last reload failed; the previous config is in force:<pre>{}</pre></p>",
            esc(e)
        ),
        _ => String::new(),
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>switchyard — {zone}</title>
<style>
body {{ font: 15px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
h1 {{ font-size: 1.4em; margin: 0 0 .2em; }} .sub {{ color: #666; margin-bottom: 1.5em; }}
table {{ border-collapse: collapse; width: 100%; margin: 1em 0 2em; }}
td, th {{ text-align: left; padding: .5em .8em; border-bottom: 1px solid #ddd; vertical-align: top; }}
.name {{ font-weight: 600; font-size: 1.1em; }}
.badge {{ display: inline-block; padding: .15em .6em; border-radius: .3em; color: #fff; font-weight: 700; }}
.badge.up {{ background: #1a7f37; }} .badge.down {{ background: #cf222e; }} .badge.drained {{ background: #9a6700; }}
.check {{ font-size: .85em; }} .check.down span {{ color: #cf222e; }} .check.unknown span {{ color: #888; }}
.warn {{ background: #fff8c5; padding: .6em 1em; border-left: 4px solid #9a6700; }}
.writer {{ font-size: 1.2em; }} time {{ color: #666; font-variant-numeric: tabular-nums; }}
ul {{ padding-left: 1.2em; }} small {{ color: #666; }}
</style></head><body>
<h1>switchyard — {zone}</h1>
<div class="sub">config generation {generation} · GeoIP {geoip}</div>
{ready}{reload_error}
<table><tr><th>Region</th><th>State</th><th>Checks</th></tr>{rows}</table>
{fleet}
<h2>Database clusters</h2>
{clusters}
<h2>Failover record</h2>
{timeline}
<h2>Recent changes</h2><ul>{events}</ul>
</body></html>
"#,
        zone = text(&s["zone"]),
        generation = text(&s["config"]["generation"]),
        geoip = text(&s["geoip"]["type"]),
    )
}
