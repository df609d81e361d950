//! The admin HTTP server (default 127.0.0.1:9353).
//!
//! | endpoint | what |
//! | --- | --- |
//! | `GET /` | an HTML status page: regions, checks, the writer, recent changes |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /healthz` | 200 while the process runs |
//! | `GET /readyz` | 200 once the config is loaded and the first health round is done, else 503 |
//! | `GET /status` | the same as the page, as JSON |
//! | `GET /explain?name=N&client=IP[/PREFIX]` | which answer that client gets and why, with live health |
//! | `GET /events[?since=1h]` | the failover record: each region transition and writer change with its timeline |
//! | `POST /regions/{name}/drain`, `/undrain` | take a region out of rotation, or back (bearer token; `?notice=60s`) |
//! | `POST /reload` | re-read the config, as SIGHUP does (bearer token) |
//!
//! Mutations need `Authorization: Bearer <token>`, compared in constant time; with no
//! token configured they are refused. This module is the only one that serializes.

mod page;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::Control;
use crate::routing::{self, Client};

pub struct AdminServer {
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl AdminServer {
    pub async fn start(control: Arc<Control>, addr: SocketAddr) -> Result<AdminServer> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("admin server cannot listen on {addr}"))?;
        let addr = listener.local_addr()?;
        info!(%addr, "admin HTTP listening on {addr}");
        let control_for_history = control.clone();
        let router = Router::new()
            .route("/", get(page))
            .route("/metrics", get(metrics))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/status", get(status))
            .route("/explain", get(explain))
            .route("/events", get(events))
            .route("/regions/{name}/drain", post(drain))
            .route("/regions/{name}/undrain", post(undrain))
            .route("/reload", post(reload))
            .with_state(control);
        let stop = CancellationToken::new();
        // The status page's sparklines: a sample of every cluster every five seconds.
        tokio::spawn(sample_history(control_for_history, stop.clone()));
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async move { token.cancelled().await });
            if let Err(e) = serve.await {
                warn!(error = %e, "admin server stopped");
            }
        });
        Ok(AdminServer { addr, stop, task })
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

type Ctl = AxState<Arc<Control>>;

/// Samples each cluster's writer and members' lag every five seconds, until `stop`.
async fn sample_history(c: Arc<Control>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let snap = c.state.snapshot();
        let clusters: Vec<_> = snap
            .model
            .clusters
            .iter()
            .zip(&snap.health.clusters)
            .map(|(cluster, view)| {
                let writer = view.writer.map(|w| cluster.members[w as usize].name.clone());
                let lags = cluster.members.iter().zip(&view.lag).map(|(m, l)| (m.name.clone(), *l)).collect();
                (cluster.name.clone(), writer, lags)
            })
            .collect();
        c.recent.sample(&clusters);
    }
}

/// Representative clients for the routing matrix: a network on each continent that the
/// bundled GeoIP database places there, and a resolver the database does not know
/// (no ECS).
const MATRIX_CLIENTS: &[(&str, &str)] = &[
    ("North America", "8.8.8.0/24"),
    ("South America", "200.147.3.0/24"),
    ("Europe", "81.2.69.0/24"),
    ("Africa", "196.25.1.0/24"),
    ("Asia", "133.0.0.0/24"),
    ("Oceania", "1.1.1.0/24"),
    ("resolver only, location unknown", "192.0.2.1"),
];

/// Where each name sends each representative client now: the region (or member)
/// answered, its TTL, and whether it is a fallback.
fn routing_json(snap: &crate::state::Snapshot) -> Value {
    use crate::routing::Outcome;
    let model = &snap.model;
    let clients: Vec<Value> = MATRIX_CLIENTS
        .iter()
        .map(|(label, net)| {
            let (addr, _) = routing::parse_client(net).expect("valid");
            let geo = model.geo.as_ref().map(|g| g.lookup(addr));
            let country =
                geo.filter(|g| g.found).and_then(|g| g.info.country).map(|c| String::from_utf8_lossy(&c).into_owned());
            json!({"label": label, "client": net, "country": country})
        })
        .collect();
    let names: Vec<Value> = model
        .names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let cells: Vec<Value> = MATRIX_CLIENTS
                .iter()
                .map(|(_, net)| {
                    let (addr, prefix) = routing::parse_client(net).expect("valid");
                    if !snap.health.ready {
                        return json!({"answer": "SERVFAIL", "ttl": 0, "fallback": true, "why": "first round of checks not done"});
                    }
                    let client = Client::new(addr, prefix, model.geo.as_deref());
                    let route = routing::route(model, &snap.health, i, &client);
                    let cluster = match &n.ranker {
                        crate::model::Ranker::Writer { cluster, .. } | crate::model::Ranker::Reader { cluster, .. } => {
                            Some(&model.clusters[*cluster as usize])
                        }
                        _ => None,
                    };
                    let answer = match (route.outcome, cluster) {
                        (Outcome::AllDownServFail | Outcome::AllDownUnknown | Outcome::Unlocated, _) => "SERVFAIL".to_owned(),
                        (Outcome::AllDownFallback, _) => "fixed answer".to_owned(),
                        (_, Some(c)) => route
                            .members
                            .first()
                            .map(|&m| format!("{} ({})", c.members[m as usize].name, model.region_name(c.members[m as usize].region)))
                            .unwrap_or_else(|| "SERVFAIL".to_owned()),
                        (_, None) => route.regions.iter().map(|&r| model.region_name(r)).collect::<Vec<_>>().join(", "),
                    };
                    json!({
                        "answer": answer,
                        "ttl": route.ttl,
                        "fallback": route.outcome != Outcome::Preferred,
                        "why": format!("{:?}", route.outcome),
                    })
                })
                .collect();
            json!({"name": n.key, "policy": n.policy, "cells": cells})
        })
        .collect();
    json!({"clients": clients, "names": names})
}

/// Refreshes the gauges that mirror the live snapshot (drains change them too).
fn refresh(control: &Control) {
    let snap = control.state.snapshot();
    let m = &control.metrics;
    m.region_up.reset();
    m.region_drained.reset();
    for (i, r) in snap.model.regions.iter().enumerate() {
        m.region_up.with_label_values(&[&r.name]).set(i64::from(snap.health.up[i]));
        m.region_drained.with_label_values(&[&r.name]).set(i64::from(snap.health.drained[i]));
    }
    m.health_ready.set(i64::from(snap.health.ready));
}

async fn metrics(AxState(c): Ctl) -> impl IntoResponse {
    refresh(&c);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], c.metrics.render())
}

async fn readyz(AxState(c): Ctl) -> Response {
    if c.state.snapshot().health.ready {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "waiting for the first round of health checks\n").into_response()
    }
}

fn unix(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// The status document, shared by `/status` and the page.
pub fn status_json(c: &Control) -> Value {
    let snap = c.state.snapshot();
    let (model, h) = (&snap.model, &snap.health);
    let checks = c.recent.checks();
    let check_json = |id: &str, s: Option<&crate::recent::CheckStatus>| {
        json!({
            "id": id,
            "up": s.and_then(|s| s.up),
            "last": s.map(|s| s.last.clone()),
            "reason": s.map(|s| s.short.clone()),
            "at": s.map(|s| unix(s.at)),
        })
    };
    let find = |id: &str| checks.iter().find(|(k, _)| k == id).map(|(_, v)| v);
    // The config is matched to the snapshot's regions by name: a reload swaps the two
    // one after the other.
    let config = c.config.load();
    let drains = c.state.drains();
    let regions: Vec<Value> = model
        .regions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let probes = config.regions.iter().find(|p| p.name == r.name);
            json!({
                "name": r.name,
                "up": h.up[i],
                "drained": h.drained[i],
                "usable": h.usable(i as u16),
                "recently_changed": h.recent[i],
                // Within an operator's notice or an undrain's hold-down: short TTLs.
                "short_ttl_by_operator": h.noticed[i],
                "operator": drains.get(&r.name).map(|d| json!({
                    "drained": d.drained,
                    "by": d.by,
                    "why": d.why,
                    "at": d.at,
                    "effective_at": d.effective_at,
                    "short_until": d.short_until,
                })),
                "checks": probes.iter().flat_map(|p| &p.checks).map(|k| check_json(&k.id, find(&k.id))).collect::<Vec<_>>(),
            })
        })
        .collect();
    let clusters: Vec<Value> = model
        .clusters
        .iter()
        .zip(&h.clusters)
        .map(|(cluster, v)| {
            let spec = config.clusters.iter().find(|k| k.name == cluster.name);
            let name = |m: Option<u16>| m.map(|m| cluster.members[m as usize].name.clone());
            let members: Vec<Value> = cluster
                .members
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let check = spec.and_then(|k| k.members.iter().find(|s| s.name == m.name)).map(|s| &s.check);
                    let status = check.and_then(|k| find(&k.id));
                    let mut j = check_json(check.map_or("", |k| k.id.as_str()), status);
                    j["name"] = json!(m.name);
                    j["region"] = json!(model.region_name(m.region));
                    j["lag_seconds"] = json!(v.lag[i]);
                    // A role is current only while the member answers; otherwise it is
                    // what was last seen, and when.
                    let current = status.is_some_and(|s| s.up == Some(true) && s.last == "ok");
                    match status.and_then(|s| s.role.clone()) {
                        Some((role, _)) if current => j["role"] = json!(role),
                        Some((role, at)) => {
                            j["role"] = Value::Null;
                            j["last_role"] = json!({"role": role, "at": unix(at)});
                        }
                        None => j["role"] = Value::Null,
                    }
                    j
                })
                .collect();
            json!({
                "name": cluster.name,
                // Configured, learned from a majority, or restored; null while not settled.
                "system_identifier": v.identity.map(|i| i.to_string()),
                "system_identifier_pinned": spec.is_some_and(|k| k.system_identifier.is_some()),
                "writer": name(v.writer),
                "fail_open_to": name(v.last_primary),
                "writer_unsettled": v.writer_unsettled,
                "primaries": v.primaries.iter().map(|&p| name(Some(p))).collect::<Vec<_>>(),
                "split_brain": v.primaries.len() > 1,
                "members": members,
                // The last ten minutes, a sample every five seconds, oldest first.
                "history": c.recent.history(&cluster.name).map(|h| json!({
                    "writer": h.writer,
                    "lag": h.lag,
                })),
            })
        })
        .collect();
    let reload = c.reload_status.lock().expect("not poisoned").clone();
    json!({
        "zone": model.zone.origin.to_ascii(),
        "ready": h.ready,
        "config": {
            "path": c.config_path.as_ref().map(|p| p.display().to_string()),
            "generation": reload.generation,
            "last_success": unix(reload.last_success),
            "last_error": reload.last_error,
        },
        "geoip": model.geo.as_ref().map(|g| json!({
            "path": g.path().display().to_string(),
            "type": g.database_type(),
            "build_epoch": g.build_epoch(),
        })),
        "regions": regions,
        // Which keys sign, and what signing has done (never a private key).
        "dnssec": config.dnssec.as_ref().map(|d| json!({
            "keys": d.keys.iter().map(|k| json!({
                "tag": k.tag,
                "role": k.role.as_str(),
                "algorithm": k.algorithm.to_string(),
                "active": k.active,
            })).collect::<Vec<_>>(),
            "signatures": {
                "rrset": c.metrics.signing.rrsets.load(std::sync::atomic::Ordering::Relaxed),
                "denial": c.metrics.signing.denials.load(std::sync::atomic::Ordering::Relaxed),
            },
            "cache_entries": model.signer.as_ref().map(|s| s.cache_len()),
        })),
        "routing": routing_json(&snap),
        "clusters": clusters,
        "fleet": fleet_json(c, &config),
        "names": model.names.iter().map(|n| {
            let mut j = json!({"name": n.fqdn.to_ascii(), "policy": n.policy, "residency": n.residency.map(|_| "strict")});
            // The recovery-time worst case, from the config now serving.
            if let Some(spec) = config.names.iter().find(|s| s.key == n.key) {
                let b = crate::config::budget::budget(&config, spec);
                j["rto"] = json!({
                    "budget_seconds": b.rto.map(|r| r.as_secs_f64()),
                    "worst_case_seconds": b.total.as_secs_f64(),
                    "fits": b.rto.map(|_| b.fits()),
                    "arithmetic": b.arithmetic(),
                });
            }
            j
        }).collect::<Vec<_>>(),
        // The failover record's newest events, newest first, for the timeline.
        "events": c.events.since(0.0).into_iter().rev().take(20).collect::<Vec<_>>(),
        "recent_changes": c.recent.events().into_iter().map(|(t, what)| json!({"at": unix(t), "what": what})).collect::<Vec<_>>(),
    })
}

/// The fleet as this instance sees it: the connection, each vantage's age, and the
/// region × vantage matrix (each vantage's word on each region's checks: `up` when all
/// it knows are up, `down` when one is down, `unknown` before any result).
fn fleet_json(c: &Control, config: &crate::config::Config) -> Value {
    let (Some(fleet), Some(settings)) = (&c.fleet, &config.fleet) else { return Value::Null };
    let shared = fleet.shared.borrow().clone();
    let own = fleet.own.borrow().as_ref().map(|o| o.observation.clone()).unwrap_or_default();
    let now = tokio::time::Instant::now();
    let mut vantages = vec![(settings.name.clone(), own, 0.0)];
    vantages.extend(
        shared.vantages.into_iter().map(|(name, (o, at))| (name, o, now.saturating_duration_since(at).as_secs_f64())),
    );
    let word = |o: &crate::fleet::Observation, r: &crate::config::RegionConfig| {
        let states: Vec<Option<bool>> = r.checks.iter().map(|k| o.checks.get(&k.id).and_then(|s| s.up)).collect();
        if states.contains(&Some(false)) {
            "down"
        } else if !states.is_empty() && states.iter().all(|s| *s == Some(true)) {
            "up"
        } else {
            "unknown"
        }
    };
    let matrix: serde_json::Map<String, Value> = config
        .regions
        .iter()
        .filter(|r| !r.checks.is_empty())
        .map(|r| {
            let row: serde_json::Map<String, Value> =
                vantages.iter().map(|(name, o, _)| (name.clone(), json!(word(o, r)))).collect();
            (r.name.clone(), Value::Object(row))
        })
        .collect();
    json!({
        "name": settings.name,
        "connected": shared.connected,
        "quorum": format!("{:?}", settings.quorum).to_lowercase(),
        "vantages": vantages.iter().map(|(name, _, age)| json!({
            "name": name,
            "age_seconds": age,
            "fresh": *age <= settings.observation_ttl.as_secs_f64(),
        })).collect::<Vec<_>>(),
        "matrix": matrix,
    })
}

async fn status(AxState(c): Ctl) -> Json<Value> {
    Json(status_json(&c))
}

async fn page(AxState(c): Ctl) -> Html<String> {
    Html(page::render(&status_json(&c)))
}

/// `/events?since=DURATION`: the failover record's events of the last `since` (default:
/// all kept), oldest first.
async fn events(AxState(c): Ctl, Query(q): Query<std::collections::HashMap<String, String>>) -> Response {
    let since = match q.get("since").map(|s| crate::config::parse_duration(s)) {
        None => 0.0,
        Some(Ok(d)) => crate::reload::unix_now() - d.as_secs_f64(),
        Some(Err(e)) => return (StatusCode::BAD_REQUEST, format!("since: {e}\n")).into_response(),
    };
    Json(json!({ "events": c.events.since(since) })).into_response()
}

/// `/explain?name=NAME&client=IP[/PREFIX]`.
async fn explain(AxState(c): Ctl, Query(q): Query<std::collections::HashMap<String, String>>) -> Response {
    let (Some(name), Some(client)) = (q.get("name"), q.get("client")) else {
        return (StatusCode::BAD_REQUEST, "give `name` and `client`, e.g. /explain?name=app&client=81.2.69.0/24\n")
            .into_response();
    };
    let snap = c.state.snapshot();
    let model = &snap.model;
    let (addr, prefix) = match routing::parse_client(client) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let fqdn = if name.ends_with('.') { name.clone() } else { format!("{name}.{}", model.zone.origin) };
    let index = hickory_proto::rr::Name::from_ascii(&fqdn).ok().and_then(|n| model.name_index(&n.to_lowercase()));
    let Some(index) = index else {
        return (StatusCode::NOT_FOUND, format!("`{fqdn}` is not a GSLB name in this config\n")).into_response();
    };
    let client = Client::new(addr, prefix, model.geo.as_deref());
    let mut explanation = routing::explain(model, &snap.health, index, &client);
    let config = c.config.load();
    explanation.budget = config
        .names
        .iter()
        .find(|s| s.key == model.names[index].key)
        .map(|spec| crate::config::budget::budget(&config, spec).arithmetic());
    (StatusCode::OK, format!("{explanation}\n")).into_response()
}

/// Checks the bearer token in constant time; `Some` is the refusal to send.
fn refused(c: &Control, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &c.admin_token else {
        return Some((StatusCode::FORBIDDEN, "mutations are disabled: no admin token is configured\n").into_response());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) && !given.is_empty() {
        None
    } else {
        warn!("admin request refused: missing or wrong bearer token");
        Some(
            (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "a valid bearer token is required\n")
                .into_response(),
        )
    }
}

/// `?by=NAME&reason=TEXT`: who asks and why, kept with the drain.
type Params = Query<std::collections::HashMap<String, String>>;

async fn set_drain(c: &Control, headers: &HeaderMap, region: &str, drained: bool, q: &Params) -> Response {
    if let Some(r) = refused(c, headers) {
        return r;
    }
    let snap = c.state.snapshot();
    let model = &snap.model;
    let Some(index) = model.region_index(region) else {
        return (StatusCode::NOT_FOUND, format!("no region `{region}`\n")).into_response();
    };
    // A drain's notice: by default the longest TTL of the names that use the region, so
    // that every cache holds the short TTL by the time the drain takes effect.
    let notice = match q.get("notice").map(|n| crate::config::parse_duration(n)) {
        _ if !drained => Duration::ZERO,
        Some(Ok(n)) => n,
        Some(Err(e)) => return (StatusCode::BAD_REQUEST, format!("notice: {e}\n")).into_response(),
        None => {
            let longest = model.names.iter().filter(|n| n.regions.contains(&index)).map(|n| n.ttl).max();
            Duration::from_secs(u64::from(longest.unwrap_or(0)))
        }
    };
    let at = crate::reload::unix_now();
    let hold_down = c.config.load().health.hold_down;
    let (effective_at, short_until) = if drained {
        (at + notice.as_secs_f64(), at + notice.as_secs_f64())
    } else {
        // Back with the short TTL for the hold-down, as after any change.
        (at, at + hold_down.as_secs_f64())
    };
    let mut note = crate::state::Drain {
        drained,
        by: q.get("by").cloned().unwrap_or_else(|| "admin".to_owned()),
        at,
        why: q.get("reason").cloned().unwrap_or_default(),
        revision: 0,
        effective_at,
        short_until,
    };
    // With a fleet, the bucket is where every instance (and a restart) finds it: only
    // once NATS has it is it applied here too; if it cannot be stored, nothing changes.
    if let Some(fleet) = &c.fleet {
        match fleet.set_override(region, note.clone()).await {
            Ok(revision) => note.revision = revision,
            Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
        }
    }
    let what = match (drained, notice.is_zero()) {
        (true, true) => "drained".to_owned(),
        (true, false) => format!("drains in {}", crate::config::budget::secs(notice)),
        (false, _) => "undrained".to_owned(),
    };
    let (by, why) = (note.by.clone(), note.why.clone());
    c.state.set_drain(region, note);
    info!(region, by = %by, reason = %why, notice = ?notice, "region {what} by an operator");
    c.recent.event(format!(
        "region {region} {what} by {by}{}",
        if why.is_empty() { String::new() } else { format!(": {why}") }
    ));
    let ttl = if drained && !notice.is_zero() {
        "; until then the names that use it answer with their failover_ttl"
    } else if !drained && !hold_down.is_zero() {
        "; its names answer with their failover_ttl for the hold-down"
    } else {
        ""
    };
    (StatusCode::OK, format!("{region} {what}{ttl}\n")).into_response()
}

async fn drain(AxState(c): Ctl, Path(region): Path<String>, q: Params, headers: HeaderMap) -> Response {
    set_drain(&c, &headers, &region, true, &q).await
}

async fn undrain(AxState(c): Ctl, Path(region): Path<String>, q: Params, headers: HeaderMap) -> Response {
    set_drain(&c, &headers, &region, false, &q).await
}

async fn reload(AxState(c): Ctl, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&c, &headers) {
        return r;
    }
    // Spawned: a client that hangs up must not cut a reload off half-way.
    let control = c.clone();
    let result = match tokio::spawn(async move { control.reload().await }).await {
        Ok(r) => r,
        Err(e) => Err(anyhow::anyhow!("reload task failed: {e}")),
    };
    match result {
        Ok(generation) => (StatusCode::OK, format!("reloaded: generation {generation}\n")).into_response(),
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}\n")).into_response(),
    }
}
