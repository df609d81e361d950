//! The HTML status page: what a person needs at a glance (regions up or down with each
//! check's last result in a few words, where each name sends a client on each continent
//! now, each cluster's writer and members with their recent lag, the failover record,
//! recent changes), rendered from the `/status` document. No scripts; it refreshes
//! itself every five seconds.

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

/// A check's last result in a few words, the whole error a click away.
fn reason(c: &Value) -> String {
    match (&c["reason"], &c["last"]) {
        (Value::String(short), Value::String(full)) if short != full => {
            format!("<details><summary><span>{}</span></summary><small>{}</small></details>", esc(short), esc(full))
        }
        (_, last) => format!("<span>{}</span>", text(last)),
    }
}

/// A sparkline of up to 120 samples (`None`: a gap), scaled to its own maximum.
fn sparkline(values: &[Option<f64>]) -> String {
    let max = values.iter().flatten().fold(0.0f64, |m, v| m.max(*v));
    let (w, h) = (240.0, 24.0);
    let step = w / (values.len().max(2) - 1) as f64;
    let mut paths = String::new();
    let mut run = String::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let y = if max > 0.0 { h - 2.0 - (v / max) * (h - 4.0) } else { h - 2.0 };
                run.push_str(&format!("{}{:.1},{:.1} ", if run.is_empty() { "M" } else { "L" }, i as f64 * step, y));
            }
            None if !run.is_empty() => paths.push_str(&std::mem::take(&mut run)),
            None => {}
        }
    }
    paths.push_str(&run);
    let gaps = values.iter().filter(|v| v.is_none()).count();
    format!(
        "<svg class=\"spark\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"><path d=\"{paths}\" fill=\"none\" stroke=\"#0969da\" stroke-width=\"1.5\"/></svg> <small>max {max:.1} s{}</small>",
        if gaps > 0 { format!(", {gaps} samples down or unknown") } else { String::new() }
    )
}

/// Who was the writer at each sample: one coloured stripe per sample, a colour per member.
fn writer_strip(writers: &[Value], members: &[String]) -> String {
    const COLOURS: &[&str] = &["#1a7f37", "#0969da", "#8250df", "#bf3989", "#9a6700", "#1b7c83"];
    let w = 240.0 / writers.len().max(1) as f64;
    let mut rects = String::new();
    for (i, v) in writers.iter().enumerate() {
        let colour = match v.as_str().and_then(|m| members.iter().position(|k| k == m)) {
            Some(k) => COLOURS[k % COLOURS.len()],
            None => "#cf222e",
        };
        rects.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"0\" width=\"{:.1}\" height=\"10\" fill=\"{colour}\"><title>{}</title></rect>",
            i as f64 * w,
            w + 0.5,
            esc(v.as_str().unwrap_or("no writer"))
        ));
    }
    let legend: Vec<String> = members
        .iter()
        .enumerate()
        .map(|(k, m)| format!("<span style=\"color:{}\">■</span> {}", COLOURS[k % COLOURS.len()], esc(m)))
        .collect();
    format!(
        "<svg class=\"spark\" width=\"240\" height=\"10\">{rects}</svg> <small>{} · <span style=\"color:#cf222e\">■</span> none</small>",
        legend.join(" ")
    )
}

/// "Where do my users go right now?": each name × a client on each continent.
fn routing_matrix(r: &Value) -> String {
    let clients = r["clients"].as_array().cloned().unwrap_or_default();
    if r["names"].as_array().is_none_or(|n| n.is_empty()) {
        return String::new();
    }
    let head: String = clients
        .iter()
        .map(|c| {
            let country = c["country"].as_str().map(|c| format!(", {c}")).unwrap_or_default();
            format!("<th>{}<br><small>{}{}</small></th>", text(&c["label"]), text(&c["client"]), esc(&country))
        })
        .collect();
    let mut rows = String::new();
    for n in r["names"].as_array().into_iter().flatten() {
        let cells: String = n["cells"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let class = match (c["answer"].as_str(), c["fallback"].as_bool()) {
                    (Some("SERVFAIL"), _) => "cell down",
                    (_, Some(true)) => "cell fallback",
                    _ => "cell",
                };
                format!(
                    "<td class=\"{class}\" title=\"{}\">{} <small>TTL {}</small></td>",
                    text(&c["why"]),
                    text(&c["answer"]),
                    text(&c["ttl"])
                )
            })
            .collect();
        rows.push_str(&format!(
            "<tr><td class=\"name\">{} <small>{}</small></td>{cells}</tr>",
            text(&n["name"]),
            text(&n["policy"])
        ));
    }
    format!(
        "<h2>Where users go now</h2><table class=\"matrix\"><tr><th>Name</th>{head}</tr>{rows}</table>\
         <p><small>Highlighted: a fallback (not the client's first choice) or the all-down rule; red: SERVFAIL.</small></p>"
    )
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
                "<div class=\"check {state}\"><code>{}</code> {}</div>",
                text(&c["id"]),
                reason(c)
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
            let lag: Vec<Option<f64>> = c["history"]["lag"][m["name"].as_str().unwrap_or("")]
                .as_array()
                .into_iter()
                .flatten()
                .map(Value::as_f64)
                .collect();
            members.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{role}</td><td>{}</td><td>{}</td></tr>",
                text(&m["name"]),
                text(&m["region"]),
                if lag.is_empty() { String::new() } else { sparkline(&lag) },
                reason(m)
            ));
        }
        let member_names: Vec<String> = c["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["name"].as_str().map(str::to_owned))
            .collect();
        let strip = match c["history"]["writer"].as_array() {
            Some(w) if !w.is_empty() => {
                format!(
                    "<div>Writer, last {} min: {}</div>",
                    (w.len() * 5).div_ceil(60),
                    writer_strip(w, &member_names)
                )
            }
            _ => String::new(),
        };
        clusters.push_str(&format!(
            "<h3>{}</h3><div class=\"writer\">Writer: {writer}</div>{strip}\
             <table><tr><th>Member</th><th>Region</th><th>Role</th><th>Lag, last minutes</th><th>Last probe</th></tr>{members}</table>",
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
    let matrix = routing_matrix(&s["routing"]);
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
.matrix {{ font-size: .85em; }} .matrix td, .matrix th {{ padding: .35em .5em; }} .matrix td.fallback {{ background: #fff8c5; }} .matrix td.down {{ background: #ffebe9; color: #cf222e; }}
details {{ display: inline; }} summary {{ cursor: pointer; display: inline; }} .spark {{ vertical-align: middle; }}
ul {{ padding-left: 1.2em; }} small {{ color: #666; }}
</style></head><body>
<h1>switchyard — {zone}</h1>
<div class="sub">config generation {generation} · GeoIP {geoip}{dnssec}</div>
{ready}{reload_error}
<table><tr><th>Region</th><th>State</th><th>Checks</th></tr>{rows}</table>
{matrix}
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
        dnssec = match s["dnssec"]["keys"].as_array() {
            Some(keys) => {
                let keys: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        let state = if k["active"].as_bool() == Some(true) { "" } else { ", published only" };
                        format!("{} ({}{state})", k["tag"], k["role"].as_str().unwrap_or(""))
                    })
                    .collect();
                format!(" · signed by {}", text(&Value::from(keys.join(", "))))
            }
            None => String::new(),
        },
    )
}
