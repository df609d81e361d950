//! Why a client gets the answer it gets: the ranking with each candidate's measure and
//! health, then the decision. Used by `switchyard explain` and the admin API; it calls
//! the same [`rank`] and [`finish`] as the DNS path, so it cannot drift from it.

use std::fmt::{self, Write as _};

use super::{Client, Confine, Outcome, Route, finish, nearest, place, ranking_for, usable, weighted};
use crate::model::AllDown;
use crate::model::{Model, Ranker};
use crate::state::HealthView;

/// A human-readable account of one routing decision.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub name: String,
    pub policy: &'static str,
    pub client: String,
    /// What GeoIP said about the client.
    pub geo: String,
    /// One line per candidate, best first.
    pub candidates: Vec<String>,
    pub route: Route,
    /// The answer records as text.
    pub answer: Vec<String>,
    /// Strict names: the client's jurisdiction and what residency excluded.
    pub residency: Option<String>,
    /// The name's recovery-time budget and its arithmetic (filled in by callers that
    /// hold the config).
    pub budget: Option<String>,
}

/// Parses the client of an explain request: `IP` or `IP/PREFIX`, as the (truncated)
/// address and the prefix.
pub fn parse_client(s: &str) -> Result<(std::net::IpAddr, u8), String> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok((ip, if ip.is_ipv4() { 32 } else { 128 }));
    }
    let net: ipnet::IpNet = s.parse().map_err(|_| format!("`{s}` is not an address or subnet"))?;
    Ok((net.network(), net.prefix_len()))
}

pub fn explain(model: &Model, health: &HealthView, name_index: usize, client: &Client<'_>) -> Explanation {
    let n = &model.names[name_index];
    let placement = place(model, n, client);
    let ranking = ranking_for(model, n, client, health, placement.confine);
    let route = finish(model, n, &ranking, placement, health, client.prefix);
    let residency = n.residency.map(|_| {
        let names = |rs: &[u16]| rs.iter().map(|&r| model.region_name(r)).collect::<Vec<_>>().join(", ");
        let whose = match (placement.confine, placement.unlocated) {
            (Confine::Anywhere, false) => "client of no jurisdiction: the policy alone decides".to_owned(),
            (Confine::Anywhere, true) => "location unknown, unlocated = \"open\": the policy alone decides".to_owned(),
            (Confine::Nowhere, _) => "location unknown, unlocated = \"servfail\": refused".to_owned(),
            (Confine::Within(j), unlocated) => {
                let j = &model.residency.jurisdictions[j as usize];
                let how = if unlocated { "location unknown, treated as a client" } else { "client" };
                format!("{how} of jurisdiction {} (regions {})", j.name, names(&j.regions))
            }
        };
        if route.excluded.is_empty() {
            format!("strict; {whose}; nothing excluded")
        } else {
            format!("strict; {whose}; excluded {}", names(&route.excluded))
        }
    });

    let geo = match (&model.geo, client.geo()) {
        (None, _) => "no GeoIP database".to_owned(),
        (Some(_), None) => "not looked up".to_owned(),
        (Some(_), Some(g)) if !g.found => {
            format!("unknown to the GeoIP database (network /{})", g.prefix)
        }
        (Some(_), Some(g)) => {
            let code = |c: Option<[u8; 2]>| c.map_or("-".to_owned(), |c| String::from_utf8_lossy(&c).into_owned());
            let mut s = format!("country {}, continent {}", code(g.info.country), code(g.info.continent));
            if let Some((lat, lon)) = g.info.location {
                let what = if g.info.location_is_centroid { "centroid" } else { "location" };
                let _ = write!(s, ", {what} {lat:.2},{lon:.2}");
            }
            let _ = write!(s, " (network /{})", g.prefix);
            s
        }
    };

    let sticky = client.sticky_hash();
    let mut candidates = Vec::new();
    for (place, &r) in ranking.order.iter().enumerate() {
        let region = &model.regions[r as usize];
        let policy = match &n.ranker {
            Ranker::Reader { order, .. } => &**order,
            other => other,
        };
        let mut measure = match policy {
            Ranker::Latency { table, .. } => {
                let m = table.lookup(client.addr, || client.geo().map(|g| &g.info));
                match (m.row, m.index) {
                    (Some(row), Some(i)) => match row[r as usize] {
                        Some(ms) => format!("rtt {ms} ms (row {})", table.key(i)),
                        None => format!("no rtt in row {}", table.key(i)),
                    },
                    _ => "no latency row covers this client".to_owned(),
                }
            }
            Ranker::Nearest => match client.geo().and_then(|g| g.info.location) {
                Some(loc) => match nearest::biased_km(model, r, loc) {
                    Some(km) if region.bias != 0 => {
                        format!("{km:.0} km with bias {}%", region.bias)
                    }
                    Some(km) => format!("{km:.0} km"),
                    None => "no location".to_owned(),
                },
                None => "client location unknown: configured order".to_owned(),
            },
            Ranker::Geo { .. } => "listed by the map entry".to_owned(),
            Ranker::Weighted { weights } => {
                format!("weight {}, score {:.3}", weights[r as usize], weighted::score(model, weights, r, sticky))
            }
            Ranker::Writer { cluster, .. } => {
                let view = &health.clusters[*cluster as usize];
                match view.primaries.len() {
                    1 => "database primary".to_owned(),
                    0 => "last writer, kept on grace (no primary seen)".to_owned(),
                    n => format!("split brain: {n} primaries, this one wins"),
                }
            }
            Ranker::Failover | Ranker::Multivalue | Ranker::Static | Ranker::Reader { .. } => {
                "configured order".to_owned()
            }
        };
        if let Ranker::Reader { cluster, slot, .. } = &n.ranker {
            let c = *cluster as usize;
            for (m, member) in model.clusters[c].members.iter().enumerate().filter(|(_, m)| m.region == r) {
                let lag = match (health.clusters[c].lag[m], health.readers[*slot].fresh[m]) {
                    (Some(l), true) => format!("{l:.1} s"),
                    (Some(l), false) => format!("{l:.1} s, over max_lag"),
                    (None, _) => "down or unknown".to_owned(),
                };
                let _ = write!(measure, "; {} lag {lag}", member.name);
            }
        }
        let state = if matches!(n.ranker, Ranker::Static) {
            "static: health not consulted"
        } else if route.excluded.contains(&r) {
            "outside the client's jurisdiction: excluded"
        } else if health.drained[r as usize] {
            "drained: skipped"
        } else if !usable(model, n, health, r) {
            if health.up[r as usize] { "not usable: skipped" } else { "down: skipped" }
        } else if route.regions.contains(&r) {
            "up: answered"
        } else {
            "up: not needed"
        };
        candidates.push(format!("{}. {:<16} {:<40} {}", place + 1, region.name, measure, state));
    }

    let mut answer = Vec::new();
    match (&route.outcome, &n.when_all_down) {
        (Outcome::AllDownServFail, _) if route.confine != Confine::Anywhere => {
            answer.push("SERVFAIL (nothing usable inside the client's jurisdiction)".to_owned())
        }
        (Outcome::AllDownServFail, _) => answer.push("SERVFAIL (when_all_down = servfail)".to_owned()),
        (Outcome::Unlocated, _) => answer.push("SERVFAIL (client of unknown location refused)".to_owned()),
        (Outcome::AllDownFallback, _) if matches!(route.confine, Confine::Within(_)) => {
            let sorry = match route.confine {
                Confine::Within(j) => model.residency.jurisdictions[j as usize].sorry.as_ref(),
                _ => None,
            };
            match sorry {
                Some(AllDown::Fallback { a, aaaa, cname }) => {
                    answer.extend(a.iter().map(|ip| format!("A {ip} (jurisdiction's sorry answer)")));
                    answer.extend(aaaa.iter().map(|ip| format!("AAAA {ip} (jurisdiction's sorry answer)")));
                    answer.extend(cname.iter().map(|c| format!("CNAME {c} (jurisdiction's sorry answer)")));
                }
                _ => answer.push("SERVFAIL (the jurisdiction has no sorry answer)".to_owned()),
            }
        }
        (Outcome::AllDownUnknown, _) => answer.push("SERVFAIL (nothing known that may be answered)".to_owned()),
        (Outcome::AllDownFallback, AllDown::Fallback { a, aaaa, cname }) => {
            answer.extend(a.iter().map(|ip| format!("A {ip} (fallback)")));
            answer.extend(aaaa.iter().map(|ip| format!("AAAA {ip} (fallback)")));
            answer.extend(cname.iter().map(|c| format!("CNAME {c} (fallback)")));
        }
        _ => match &n.ranker {
            Ranker::Writer { cluster, .. } | Ranker::Reader { cluster, .. } => {
                let cluster = &model.clusters[*cluster as usize];
                for &m in &route.members {
                    let member = &cluster.members[m as usize];
                    let whose = format!("{}/{}", cluster.name, member.name);
                    answer.extend(member.a.iter().map(|ip| format!("A {ip} ({whose})")));
                    answer.extend(member.aaaa.iter().map(|ip| format!("AAAA {ip} ({whose})")));
                    answer.extend(member.cname.iter().map(|c| format!("CNAME {c} ({whose})")));
                }
            }
            _ => {
                for &r in &route.regions {
                    let region = &model.regions[r as usize];
                    answer.extend(region.a.iter().map(|ip| format!("A {ip} ({})", region.name)));
                    answer.extend(region.aaaa.iter().map(|ip| format!("AAAA {ip} ({})", region.name)));
                    answer.extend(region.cname.iter().map(|c| format!("CNAME {c} ({})", region.name)));
                }
            }
        },
    }

    Explanation {
        name: n.fqdn.to_string(),
        policy: n.policy,
        client: format!("{}/{}", client.addr, client.prefix),
        geo,
        candidates,
        route,
        answer,
        residency,
        budget: None,
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "name:     {} (policy {})", self.name, self.policy)?;
        writeln!(f, "client:   {}", self.client)?;
        writeln!(f, "geoip:    {}", self.geo)?;
        if let Some(r) = &self.residency {
            writeln!(f, "residency: {r}")?;
        }
        writeln!(f, "candidates:")?;
        for c in &self.candidates {
            writeln!(f, "  {c}")?;
        }
        let outcome = match self.route.outcome {
            Outcome::Preferred => "first choice",
            Outcome::Fallback => "fallback: a preferred region is not usable",
            Outcome::AllDownFailOpen => "all down: fail open (answering as if all were up)",
            Outcome::AllDownServFail => "all down: SERVFAIL",
            Outcome::AllDownFallback => "all down: fixed fallback answer",
            Outcome::AllDownWriter => "no member within max_lag: the cluster's writer answers",
            Outcome::AllDownUnknown => "all down, and no writer or recently seen primary to answer: SERVFAIL",
            Outcome::Unlocated => "client of unknown location, refused by unlocated = \"servfail\": SERVFAIL",
        };
        writeln!(f, "outcome:  {outcome}")?;
        writeln!(f, "answer:")?;
        for a in &self.answer {
            writeln!(f, "  {a}")?;
        }
        writeln!(f, "ttl:      {}", self.route.ttl)?;
        if let Some(b) = &self.budget {
            writeln!(f, "rto:      {b}")?;
        }
        write!(f, "ecs scope: /{}", self.route.scope)
    }
}
