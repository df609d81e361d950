//! The HTML status page: what a person needs at a glance (regions up or down, the
//! writer, recent changes), rendered from the `/status` document. No scripts; it
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
        let db = match &r["database"] {
            Value::Null => "–".to_owned(),
            d => format!(
                "{} {}",
                text(&d["role"]),
                if d["up"].as_bool() == Some(false) { "<b>(unreachable)</b>" } else { "" }
            ),
        };
        rows.push_str(&format!(
            "<tr><td class=\"name\">{}</td><td><span class=\"badge {class}\">{label}</span>{}</td><td>{checks}</td><td>{db}</td></tr>",
            text(&r["name"]),
            if r["recently_changed"].as_bool() == Some(true) { " <small>changed recently</small>" } else { "" },
        ));
    }
    let writer = match (&s["writer"], s["split_brain"].as_bool()) {
        _ if s["databases"].as_u64() == Some(0) => "<small>no database members configured</small>".to_owned(),
        (_, Some(true)) => format!(
            "<span class=\"badge down\">SPLIT BRAIN</span> primaries: {} — answering {}",
            esc(&s["primaries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p.as_str().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(", ")),
            text(&s["writer"])
        ),
        (Value::Null, _) => "<span class=\"badge down\">NO WRITER</span>".to_owned(),
        (w, _) => format!(
            "<span class=\"badge up\">{}</span>{}",
            text(w),
            if s["writer_unsettled"].as_bool() == Some(true) { " <small>(unsettled: short TTL)</small>" } else { "" }
        ),
    };
    let mut events = String::new();
    for e in s["recent_changes"].as_array().into_iter().flatten().take(20) {
        let secs = e["at"].as_f64().unwrap_or(0.0) as i64;
        let t = format!("{:02}:{:02}:{:02} UTC", (secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        events.push_str(&format!("<li><time>{t}</time> {}</li>", text(&e["what"])));
    }
    if events.is_empty() {
        events.push_str("<li>no changes since start</li>");
    }
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
<div class="writer">Database writer: {writer}</div>
<table><tr><th>Region</th><th>State</th><th>Checks</th><th>Database</th></tr>{rows}</table>
<h2>Recent changes</h2><ul>{events}</ul>
</body></html>
"#,
        zone = text(&s["zone"]),
        generation = text(&s["config"]["generation"]),
        geoip = text(&s["geoip"]["type"]),
    )
}
