//! Checks the meaning of a parsed config and resolves it into a [`Config`].
//!
//! Every check pushes a [`Diagnostic`] and carries on, so that one run reports every
//! problem in the file. Sections are deserialized one at a time (each region and each
//! name on its own) for the same reason.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::raw::{self, S};
use super::{
    AdminConfig, AllDown, Area, CheckConfig, CheckKind, ClusterConfig, ColdStart, Config, Diagnostic, Endpoint,
    FleetConfig, HealthRule, HealthSettings, HttpCheck, JurisdictionConfig, MemberConfig, NameConfig, Policy, Quorum,
    ReaderOrder, RegionConfig, RrlConfig, ServerConfig, Unlocated, ZoneConfig,
};

const POLICIES: &[&str] =
    &["latency", "nearest", "geo", "failover", "weighted", "multivalue", "static", "writer", "reader"];
const RECORD_TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS", "PTR", "DS"];

pub(super) fn parse(text: &str, base: &Path, geoip: Option<&str>) -> Result<Config, Vec<Diagnostic>> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(syntax.iter().map(toml_diagnostic).collect());
    }
    let mut v = Validator {
        errors: Vec::new(),
        broken_regions: Vec::new(),
        zone_present: false,
        geoip_override: geoip.map(str::to_owned),
    };
    let config = v.config(root.into_inner(), base);
    match config {
        Some(config) if v.errors.is_empty() => Ok(config),
        _ => {
            v.errors.sort_by_key(|d| d.span.as_ref().map_or(usize::MAX, |s| s.start));
            Err(v.errors)
        }
    }
}

fn toml_diagnostic(e: &toml::de::Error) -> Diagnostic {
    let message = e.message().trim_end().to_owned();
    let hint = if message.starts_with("unknown field") {
        Some("remove the key or fix its spelling; `switchyard check-config` rejects keys it does not know")
    } else if message.contains("untagged enum WhenAllDown") {
        return Diagnostic::new(e.span(), "when_all_down is not one of the forms it takes").hint(
            "\"fail_open\", \"servfail\", { fallback = [\"192.0.2.99\"] } or { cname = \"sorry.example.org.\" }",
        );
    } else if message.contains("untagged enum HealthRule") {
        return Diagnostic::new(e.span(), "health is not one of the forms it takes")
            .hint("\"all\", \"any\" or { quorum = N }");
    } else if message.contains("untagged enum Quorum") {
        return Diagnostic::new(e.span(), "quorum is not one of the forms it takes")
            .hint("\"majority\" (default), a number of vantages such as 2, or a share such as 0.5");
    } else if message.contains("untagged enum Dur") {
        return Diagnostic::new(e.span(), "not a duration")
            .hint("a number of seconds, or text such as \"500ms\", \"2s\", \"1m\"");
    } else if message.starts_with("missing field") {
        Some("add the key: it has no default")
    } else if message.starts_with("invalid type") {
        Some("check the value's type (string in quotes, number, list in [ ])")
    } else {
        None
    };
    let d = Diagnostic::new(e.span(), message);
    match hint {
        Some(h) => d.hint(h),
        None => d,
    }
}

struct Validator {
    errors: Vec<Diagnostic>,
    /// Regions whose entry could not be read: references to them are not errors too.
    broken_regions: Vec<String>,
    /// A `[zone]` section exists, even if it could not be read.
    zone_present: bool,
    /// `--geoip` / `SWITCHYARD_GEOIP`, in place of `[server] geoip_db`.
    geoip_override: Option<String>,
}

/// Spans of the raw sections, kept for errors that concern a whole section.
struct Sections<'a> {
    server: raw::Server,
    admin: raw::Admin,
    rrl: raw::Rrl,
    defaults: raw::Defaults,
    health: raw::Health,
    fleet: Option<(Range<usize>, raw::Fleet)>,
    zone: Option<(Range<usize>, raw::Zone)>,
    dnssec: Option<(Range<usize>, raw::Dnssec)>,
    regions: Vec<(S<String>, raw::Region)>,
    regions_span: Option<Range<usize>>,
    clusters: Vec<(S<String>, raw::Cluster)>,
    jurisdictions: Vec<(S<String>, raw::Jurisdiction)>,
    notify: raw::Notify,
    names: Vec<(S<String>, raw::Name)>,
    latency: Option<(Range<usize>, raw::Latency)>,
    _marker: std::marker::PhantomData<&'a ()>,
}

mod clusters;
mod dnssec;
mod fleet;
mod names;
mod regions;
mod residency;
mod server;
mod suggest;
mod zone;

use suggest::suggest;

impl Validator {
    pub(super) fn err(&mut self, span: Option<Range<usize>>, message: impl Into<String>) -> &mut Diagnostic {
        self.errors.push(Diagnostic::new(span, message));
        self.errors.last_mut().expect("just pushed")
    }

    /// Deserializes one section. serde stops at the first problem, so each problem key
    /// is reported, removed, and the section read again, until it reads or nothing more
    /// can be removed: every unknown key and every wrongly typed value is reported.
    pub(super) fn section<T: for<'de> Deserialize<'de>>(&mut self, value: &Spanned<DeValue<'_>>) -> Option<T> {
        let mut owned = value.clone();
        owned.get_mut().make_owned();
        let mut removed: Vec<String> = Vec::new();
        for _ in 0..64 {
            let e = match T::deserialize(ValueDeserializer::from(owned.clone())) {
                Ok(t) => return Some(t),
                Err(e) => e,
            };
            let mut d = toml_diagnostic(&e);
            // A key we removed for its bad value is not also "missing".
            let echo = removed.iter().any(|k| d.message.starts_with(&format!("missing field `{k}`")));
            if d.span.is_none() {
                d.span = Some(value.span());
            }
            let key = e.span().and_then(|span| remove_at(owned.get_mut(), &span));
            if !echo {
                self.errors.push(d);
            }
            match key {
                Some(k) => removed.push(k),
                None => return None,
            }
        }
        None
    }

    /// Deserializes a table of named entries one entry at a time.
    pub(super) fn entries<T: for<'de> Deserialize<'de>>(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        what: &str,
    ) -> Vec<(S<String>, T)> {
        let Some(table) = value.get_ref().as_table() else {
            self.err(Some(value.span()), format!("`{what}` must be a table of named entries")).hint =
                Some(format!("write `[{what}.NAME]` sections"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, entry) in table.iter() {
            match self.section::<T>(entry) {
                Some(t) => out.push((Spanned::new(key.span(), key.get_ref().to_string()), t)),
                None if what == "regions" => self.broken_regions.push(key.get_ref().to_string()),
                None => {}
            }
        }
        out
    }

    pub(super) fn split<'a>(&mut self, root: DeTable<'a>) -> Sections<'a> {
        let mut s = Sections {
            server: raw::Server::default(),
            admin: raw::Admin::default(),
            rrl: raw::Rrl::default(),
            defaults: raw::Defaults::default(),
            health: raw::Health::default(),
            fleet: None,
            zone: None,
            dnssec: None,
            regions: Vec::new(),
            regions_span: None,
            clusters: Vec::new(),
            jurisdictions: Vec::new(),
            notify: raw::Notify::default(),
            names: Vec::new(),
            latency: None,
            _marker: std::marker::PhantomData,
        };
        for (key, value) in root.iter() {
            match key.get_ref().as_ref() {
                "server" => s.server = self.section(value).unwrap_or_default(),
                "defaults" => s.defaults = self.section(value).unwrap_or_default(),
                "admin" => s.admin = self.section(value).unwrap_or_default(),
                "rrl" => s.rrl = self.section(value).unwrap_or_default(),
                "health" => s.health = self.section(value).unwrap_or_default(),
                "fleet" => s.fleet = self.section(value).map(|f| (value.span(), f)),
                "zone" => {
                    self.zone_present = true;
                    s.zone = self.section(value).map(|z| (value.span(), z));
                }
                "dnssec" => s.dnssec = self.section(value).map(|d| (value.span(), d)),
                "regions" => {
                    s.regions_span = Some(key.span());
                    s.regions = self.entries(value, "regions");
                }
                "clusters" => s.clusters = self.entries(value, "clusters"),
                "jurisdictions" => s.jurisdictions = self.entries(value, "jurisdictions"),
                "notify" => s.notify = self.section(value).unwrap_or_default(),
                "names" => s.names = self.entries(value, "names"),
                "latency" => s.latency = self.section(value).map(|l| (value.span(), l)),
                other => {
                    let hint = match suggest(other, raw::SECTIONS) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("the sections are: {}", raw::SECTIONS.join(", ")),
                    };
                    self.err(Some(key.span()), format!("unknown section `{other}`")).hint = Some(hint);
                }
            }
        }
        s
    }

    pub(super) fn config(&mut self, root: DeTable<'_>, base: &Path) -> Option<Config> {
        let s = self.split(root);
        let server = self.server(&s.server, base);
        let admin = self.admin(&s.admin, base);
        let rrl = self.rrl(&s.rrl);
        let zone = match &s.zone {
            Some((_, z)) => self.zone(z, base),
            None if self.zone_present => None,
            None => {
                self.err(None, "missing section `[zone]`").hint =
                    Some("add `[zone]` with `origin`, `[zone.soa]` and at least one `[[zone.ns]]`".into());
                None
            }
        };
        let (health, defaults) = self.health(&s.health, base);
        let fleet = self.fleet(s.fleet.as_ref(), &defaults, base);
        let regions = self.regions(&s.regions, &defaults, base);
        if regions.is_empty() && !s.names.is_empty() {
            self.err(s.regions_span.clone(), "no regions are defined, but names refer to regions").hint =
                Some("add `[regions.NAME]` sections".into());
        }
        let latency = match &s.latency {
            Some((span, l)) => self.latency(span.clone(), l, &regions),
            None => Vec::new(),
        };
        let clusters = self.clusters(&s, &regions, &health, &defaults, base);
        // A broken `geoip_db` is reported where it is written; the rest only needs it given.
        let have_geoip = s.server.geoip_db.is_some() || self.geoip_override.is_some();
        let jurisdictions = self.jurisdictions(&s.jurisdictions, &regions, have_geoip);
        let notify = self.notify(&s.notify, fleet.is_some(), base);
        let zone = zone?;
        let dnssec = s.dnssec.as_ref().and_then(|(span, d)| self.dnssec(span.clone(), d, &zone, base));
        let names = self.names(&s, &zone, &regions, &clusters, &latency, &jurisdictions);
        let config = Config {
            server,
            admin,
            rrl,
            health,
            fleet,
            zone,
            dnssec,
            regions,
            clusters,
            jurisdictions,
            notify,
            names,
            latency,
        };
        self.budgets(&s, &config);
        self.dnssec_timing(s.dnssec.as_ref(), &config);
        Some(config)
    }
    /// An integer setting within `range`, else an error (and `default`).
    pub(super) fn ranged<T: Copy + PartialOrd + std::fmt::Display>(
        &mut self,
        value: &Option<raw::S<T>>,
        key: &str,
        range: std::ops::RangeInclusive<T>,
        default: T,
        hint: &str,
    ) -> T {
        match value {
            Some(v) if !range.contains(v.get_ref()) => {
                self.err(Some(v.span()), format!("{key} {} is out of range", v.get_ref())).hint = Some(hint.into());
                default
            }
            Some(v) => *v.get_ref(),
            None => default,
        }
    }

    /// A file the config names, relative to the config's directory; a missing one is an
    /// error ("WHAT `path` not found").
    pub(super) fn existing_file(
        &mut self,
        p: &Option<raw::S<String>>,
        base: &Path,
        what: &str,
    ) -> Option<std::path::PathBuf> {
        let p = p.as_ref()?;
        let path = base.join(p.get_ref());
        if path.is_file() {
            Some(path)
        } else {
            self.err(Some(p.span()), format!("{what} `{}` not found", path.display()));
            None
        }
    }

    /// A list of addresses or CIDR networks (truncated to their network); each bad one
    /// is an error.
    pub(super) fn networks(&mut self, list: &Option<Vec<raw::S<String>>>) -> Vec<IpNet> {
        let mut out = Vec::new();
        for net in list.iter().flatten() {
            let s = net.get_ref();
            match s.parse::<IpNet>().or_else(|_| s.parse::<IpAddr>().map(IpNet::from)) {
                Ok(n) => out.push(n.trunc()),
                Err(_) => {
                    self.err(Some(net.span()), format!("`{s}` is not an address or CIDR network"));
                }
            }
        }
        out
    }
}

/// Removes the table entry whose key or value has `span`, anywhere below `v`; returns
/// the key's name.
fn remove_at(v: &mut DeValue<'_>, span: &Range<usize>) -> Option<String> {
    match v {
        DeValue::Table(t) => {
            let hit = t
                .iter()
                .find(|(k, val)| k.span() == *span || val.span() == *span)
                .map(|(k, _)| k.get_ref().to_string());
            if let Some(name) = hit {
                let old = std::mem::take(t);
                *t = old.into_iter().filter(|(k, _)| k.get_ref().as_ref() != name).collect();
                return Some(name);
            }
            t.iter_mut().find_map(|(_, val)| remove_at(val.get_mut(), span))
        }
        DeValue::Array(a) => a.iter_mut().find_map(|item| remove_at(item.get_mut(), span)),
        _ => None,
    }
}
