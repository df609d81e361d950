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
    AdminConfig, AllDown, Area, CheckConfig, CheckKind, ColdStart, Config, Diagnostic, HealthRule, HealthSettings,
    HttpCheck, NameConfig, Policy, ReaderOrder, RegionConfig, RrlConfig, ServerConfig, ZoneConfig,
};

const POLICIES: &[&str] =
    &["latency", "nearest", "geo", "failover", "weighted", "multivalue", "static", "writer", "reader"];
const RECORD_TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA", "NS", "PTR"];

pub(super) fn parse(text: &str, base: &Path) -> Result<Config, Vec<Diagnostic>> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(syntax.iter().map(toml_diagnostic).collect());
    }
    let mut v = Validator { errors: Vec::new(), broken_regions: Vec::new(), zone_present: false };
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
}

/// Spans of the raw sections, kept for errors that concern a whole section.
struct Sections<'a> {
    server: raw::Server,
    admin: raw::Admin,
    rrl: raw::Rrl,
    defaults: raw::Defaults,
    health: raw::Health,
    zone: Option<(Range<usize>, raw::Zone)>,
    regions: Vec<(S<String>, raw::Region)>,
    regions_span: Option<Range<usize>>,
    names: Vec<(S<String>, raw::Name)>,
    latency: Option<(Range<usize>, raw::Latency)>,
    _marker: std::marker::PhantomData<&'a ()>,
}

impl Validator {
    fn err(&mut self, span: Option<Range<usize>>, message: impl Into<String>) -> &mut Diagnostic {
        self.errors.push(Diagnostic::new(span, message));
        self.errors.last_mut().expect("just pushed")
    }

    /// Deserializes one section. serde stops at the first problem, so each problem key
    /// is reported, removed, and the section read again, until it reads or nothing more
    /// can be removed: every unknown key and every wrongly typed value is reported.
    fn section<T: for<'de> Deserialize<'de>>(&mut self, value: &Spanned<DeValue<'_>>) -> Option<T> {
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
    fn entries<T: for<'de> Deserialize<'de>>(
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

    fn split<'a>(&mut self, root: DeTable<'a>) -> Sections<'a> {
        let mut s = Sections {
            server: raw::Server::default(),
            admin: raw::Admin::default(),
            rrl: raw::Rrl::default(),
            defaults: raw::Defaults::default(),
            health: raw::Health::default(),
            zone: None,
            regions: Vec::new(),
            regions_span: None,
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
                "zone" => {
                    self.zone_present = true;
                    s.zone = self.section(value).map(|z| (value.span(), z));
                }
                "regions" => {
                    s.regions_span = Some(key.span());
                    s.regions = self.entries(value, "regions");
                }
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

    fn config(&mut self, root: DeTable<'_>, base: &Path) -> Option<Config> {
        let s = self.split(root);
        let server = self.server(&s.server, base);
        let admin = self.admin(&s.admin, base);
        let rrl = self.rrl(&s.rrl);
        let zone = match &s.zone {
            Some((_, z)) => self.zone(z),
            None if self.zone_present => None,
            None => {
                self.err(None, "missing section `[zone]`").hint =
                    Some("add `[zone]` with `origin`, `[zone.soa]` and at least one `[[zone.ns]]`".into());
                None
            }
        };
        let (health, defaults) = self.health(&s.health, base);
        let regions = self.regions(&s.regions, &defaults, base);
        if regions.is_empty() && !s.names.is_empty() {
            self.err(s.regions_span.clone(), "no regions are defined, but names refer to regions").hint =
                Some("add `[regions.NAME]` sections".into());
        }
        let latency = match &s.latency {
            Some((span, l)) => self.latency(span.clone(), l, &regions),
            None => Vec::new(),
        };
        let zone = zone?;
        let names = self.names(&s, &zone, &regions, &latency, server.geoip_db.is_some());
        Some(Config { server, admin, rrl, health, zone, regions, names, latency })
    }

    fn rrl(&mut self, raw: &raw::Rrl) -> RrlConfig {
        let d = RrlConfig::default();
        let responses_per_second = self.ranged(
            &raw.responses_per_second,
            "responses_per_second",
            1..=1_000_000,
            d.responses_per_second,
            "answers per second per client prefix and kind of answer, 1..=1000000",
        );
        let slip =
            self.ranged(&raw.slip, "slip", 0..=10, d.slip, "0 (drop all), 1 (truncate all) .. 10; 2 is BIND's default");
        let ipv4_prefix = self.ranged(&raw.ipv4_prefix, "ipv4_prefix", 8..=32, d.ipv4_prefix, "8..=32");
        let ipv6_prefix = self.ranged(&raw.ipv6_prefix, "ipv6_prefix", 16..=128, d.ipv6_prefix, "16..=128");
        let exempt = self.networks(&raw.exempt);
        RrlConfig {
            enabled: raw.enabled.unwrap_or(d.enabled),
            responses_per_second,
            slip,
            ipv4_prefix,
            ipv6_prefix,
            exempt,
        }
    }

    fn admin(&mut self, raw: &raw::Admin, base: &Path) -> AdminConfig {
        let listen = match (&raw.listen, raw.enabled) {
            (_, Some(false)) => None,
            (None, _) => Some(SocketAddr::from(([127, 0, 0, 1], 9353))),
            (Some(addr), _) => match addr.get_ref().parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.err(Some(addr.span()), format!("`{}` is not an address:port", addr.get_ref())).hint =
                        Some("e.g. \"127.0.0.1:9353\"; keep it on loopback or a management network".into());
                    None
                }
            },
        };
        let token_file = raw.token_file.as_ref().and_then(|p| {
            let path = base.join(p.get_ref());
            if path.is_file() {
                Some(path)
            } else {
                self.err(Some(p.span()), format!("admin token file `{}` not found", path.display()));
                None
            }
        });
        AdminConfig { listen, token_file }
    }

    /// An integer setting within `range`, else an error (and `default`).
    fn ranged<T: Copy + PartialOrd + std::fmt::Display>(
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

    /// A list of addresses or CIDR networks (truncated to their network); each bad one
    /// is an error.
    fn networks(&mut self, list: &Option<Vec<raw::S<String>>>) -> Vec<IpNet> {
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

    fn server(&mut self, raw: &raw::Server, base: &Path) -> ServerConfig {
        let mut listen = Vec::new();
        match &raw.listen {
            None => listen.push(SocketAddr::from(([127, 0, 0, 1], 5353))),
            Some(list) => {
                if list.get_ref().is_empty() {
                    self.err(Some(list.span()), "`listen` is empty").hint =
                        Some("give at least one address, e.g. [\"127.0.0.1:5353\"]".into());
                }
                for addr in list.get_ref() {
                    match addr.get_ref().parse::<SocketAddr>() {
                        Ok(a) => listen.push(a),
                        Err(_) => {
                            self.err(Some(addr.span()), format!("`{}` is not an address:port", addr.get_ref())).hint =
                                Some("write e.g. \"127.0.0.1:5353\" or \"[::1]:53\"".into());
                        }
                    }
                }
            }
        }
        let geoip_db = raw.geoip_db.as_ref().and_then(|p| {
            let path = base.join(p.get_ref());
            if path.is_file() {
                Some(path)
            } else {
                self.err(Some(p.span()), format!("GeoIP database `{}` not found", path.display())).hint =
                    Some("the path is relative to the config file; the bundled one is geoip/default.mmdb".into());
                None
            }
        });
        let ecs_trusted = self.networks(&raw.ecs_trusted);
        let edns_udp_size = self.ranged(
            &raw.edns_udp_size,
            "edns_udp_size",
            512..=4096,
            1232,
            "use 512..=4096; 1232 avoids IP fragmentation (DNS flag day 2020)",
        );
        let tcp_idle_timeout = self.ranged(
            &raw.tcp_idle_timeout,
            "tcp_idle_timeout",
            1..=300,
            10,
            "seconds, 1..=300 (RFC 7766 suggests about 10)",
        );
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let udp_workers =
            self.ranged(&raw.udp_workers, "udp_workers", 1..=64, cpus, "1..=64; the default is one per available CPU");
        let tcp_io_timeout = self.ranged(&raw.tcp_io_timeout, "tcp_io_timeout", 1..=60, 2, "seconds, 1..=60");
        let tcp_max_connections = self.ranged(
            &raw.tcp_max_connections,
            "tcp_max_connections",
            1..=65536,
            1024,
            "1..=65536; each connection holds a file descriptor",
        );
        let tcp_max_per_client = self.ranged(&raw.tcp_max_per_client, "tcp_max_per_client", 1..=65536, 16, "1..=65536");
        let chaos = raw.chaos.as_ref();
        ServerConfig {
            listen,
            geoip_db,
            ecs: raw.ecs.unwrap_or(true),
            ecs_trusted,
            edns_udp_size,
            tcp_idle_timeout: Duration::from_secs(tcp_idle_timeout),
            tcp_io_timeout: Duration::from_secs(tcp_io_timeout),
            tcp_max_connections: tcp_max_connections as usize,
            tcp_max_per_client: tcp_max_per_client as usize,
            fast_path: raw.fast_path.unwrap_or(true),
            udp_workers: udp_workers as usize,
            chaos_version: chaos.and_then(|c| c.version.clone()),
            chaos_id: chaos.and_then(|c| c.id.clone()),
        }
    }

    /// A domain name, relative to `origin` unless it ends in a dot; lower-cased.
    fn domain(&mut self, s: &S<String>, origin: Option<&Name>, what: &str) -> Option<Name> {
        let text = s.get_ref().trim();
        let parsed = if text == "@" {
            origin.cloned().ok_or(())
        } else {
            match Name::from_ascii(text) {
                Ok(n) if n.is_fqdn() => Ok(n),
                Ok(n) => match origin {
                    Some(o) => n.append_domain(o).map_err(|_| ()),
                    None => Ok({
                        let mut n = n;
                        n.set_fqdn(true);
                        n
                    }),
                },
                Err(_) => Err(()),
            }
        };
        match parsed {
            Ok(n) if !text.is_empty() => Some(n.to_lowercase()),
            _ => {
                self.err(Some(s.span()), format!("`{text}` is not a valid {what}")).hint =
                    Some("labels of letters, digits and hyphens, at most 63 bytes each".into());
                None
            }
        }
    }

    fn in_zone(&mut self, name: &Name, origin: &Name, span: Range<usize>) -> bool {
        if origin.zone_of(name) {
            true
        } else {
            self.err(Some(span), format!("`{name}` is outside the zone `{origin}`")).hint =
                Some("write names relative to the origin, or absolute names ending in the origin".into());
            false
        }
    }

    fn zone(&mut self, raw: &raw::Zone) -> Option<ZoneConfig> {
        let origin = self.domain(&raw.origin, None, "zone origin")?;
        let zone_ttl = raw.ttl.as_ref().map_or(3600, |t| *t.get_ref());
        let mut records = Vec::new();

        let mut ns = Vec::new();
        if raw.ns.get_ref().is_empty() {
            self.err(Some(raw.ns.span()), "the zone needs at least one name server").hint =
                Some("add `[[zone.ns]]` entries; two or more instances is the norm".into());
        }
        for server in raw.ns.get_ref() {
            let server_raw = server.get_ref();
            let Some(name) = self.domain(&server_raw.name, Some(&origin), "name server") else {
                continue;
            };
            ns.push(Record::from_rdata(origin.clone(), zone_ttl, RData::NS(NS(name.clone()))));
            let glue = !server_raw.ipv4.is_empty() || !server_raw.ipv6.is_empty();
            if origin.zone_of(&name) {
                if !glue {
                    self.err(Some(server_raw.name.span()), format!("in-zone name server `{name}` has no address"))
                        .hint = Some("add `ipv4 = [...]` and/or `ipv6 = [...]`: the parent needs glue".into());
                }
                for a in &server_raw.ipv4 {
                    if let Some(ip) = self.parse::<Ipv4Addr>(a, "IPv4 address") {
                        records.push(Record::from_rdata(name.clone(), zone_ttl, RData::A(A(ip))));
                    }
                }
                for a in &server_raw.ipv6 {
                    if let Some(ip) = self.parse::<Ipv6Addr>(a, "IPv6 address") {
                        records.push(Record::from_rdata(name.clone(), zone_ttl, RData::AAAA(AAAA(ip))));
                    }
                }
            } else if glue {
                self.err(
                    Some(server_raw.name.span()),
                    format!("name server `{name}` is outside the zone, so its addresses would not be served"),
                )
                .hint = Some("remove ipv4/ipv6 here; the name server's own zone publishes them".into());
            }
        }

        let soa_raw = &raw.soa;
        let mname = match &soa_raw.mname {
            Some(m) => self.domain(m, Some(&origin), "SOA mname"),
            None => ns.first().and_then(|r| match &r.data {
                RData::NS(n) => Some(n.0.clone()),
                _ => None,
            }),
        };
        // `hostmaster@example.org` is the mailbox `hostmaster.example.org.`: absolute.
        let rname_raw = soa_raw.rname.get_ref();
        let rname_text = match rname_raw.split_once('@') {
            Some((user, domain)) => format!("{}.{}.", user.replace('.', "\\."), domain.trim_end_matches('.')),
            None => rname_raw.clone(),
        };
        let rname = self.domain(&Spanned::new(soa_raw.rname.span(), rname_text), Some(&origin), "SOA rname (mailbox)");
        let minimum = soa_raw.minimum.unwrap_or(60);
        let soa = SOA::new(
            mname.unwrap_or_else(|| origin.clone()),
            rname.unwrap_or_else(|| origin.clone()),
            soa_raw.serial.unwrap_or(1),
            soa_raw.refresh.unwrap_or(3600) as i32,
            soa_raw.retry.unwrap_or(600) as i32,
            soa_raw.expire.unwrap_or(1_209_600) as i32,
            minimum,
        );
        let soa = Record::from_rdata(origin.clone(), soa_raw.ttl.unwrap_or(zone_ttl), RData::SOA(soa));

        for rec in &raw.records {
            self.static_record(rec, &origin, zone_ttl, &mut records);
        }
        self.zone_consistency(&origin, &records);
        Some(ZoneConfig { origin, soa, ns, records })
    }

    fn parse<T: FromStr>(&mut self, s: &S<String>, what: &str) -> Option<T> {
        match s.get_ref().trim().parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.err(Some(s.span()), format!("`{}` is not a valid {what}", s.get_ref()));
                None
            }
        }
    }

    fn static_record(&mut self, rec: &S<raw::StaticRecord>, origin: &Name, zone_ttl: u32, out: &mut Vec<Record>) {
        let r = rec.get_ref();
        let Some(owner) = self.domain(&r.name, Some(origin), "record name") else {
            return;
        };
        if !self.in_zone(&owner, origin, r.name.span()) {
            return;
        }
        let type_text = r.rtype.get_ref().to_ascii_uppercase();
        if !RECORD_TYPES.contains(&type_text.as_str()) {
            self.err(Some(r.rtype.span()), format!("record type `{}` is not supported here", r.rtype.get_ref())).hint =
                Some(format!("one of {}", RECORD_TYPES.join(" ")));
            return;
        }
        let rtype = RecordType::from_str(&type_text).expect("listed types parse");
        if rtype == RecordType::NS && owner == *origin {
            self.err(Some(r.name.span()), "NS records at the apex come from `[[zone.ns]]`").hint =
                Some("NS records in `[[zone.records]]` delegate a child zone; move this to [[zone.ns]]".into());
            return;
        }
        if r.values.get_ref().is_empty() {
            self.err(Some(r.values.span()), "`values` is empty");
        }
        if rtype == RecordType::CNAME && r.values.get_ref().len() > 1 {
            self.err(Some(r.values.span()), "a CNAME has exactly one target");
        }
        let ttl = r.ttl.unwrap_or(zone_ttl);
        for value in r.values.get_ref() {
            if let Some(data) = self.rdata(rtype, value, origin) {
                out.push(Record::from_rdata(owner.clone(), ttl, data));
            }
        }
    }

    fn rdata(&mut self, rtype: RecordType, value: &S<String>, origin: &Name) -> Option<RData> {
        let text = value.get_ref().trim();
        if rtype == RecordType::TXT && !text.starts_with('"') {
            // A bare string is one TXT value, split into 255-byte character-strings.
            let chunks =
                text.as_bytes().chunks(255).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>();
            return Some(RData::TXT(TXT::new(if chunks.is_empty() { vec![String::new()] } else { chunks })));
        }
        let data = match RData::try_from_str(rtype, text) {
            Ok(d) => d,
            Err(e) => {
                let example = match rtype {
                    RecordType::MX => "\"10 mail.example.org.\"",
                    RecordType::SRV => "\"10 5 443 app.example.org.\"",
                    RecordType::CAA => "\"0 issue \\\"letsencrypt.org\\\"\"",
                    RecordType::A => "\"192.0.2.10\"",
                    RecordType::AAAA => "\"2001:db8::10\"",
                    _ => "\"target.example.org.\"",
                };
                self.err(Some(value.span()), format!("invalid {rtype} data `{text}`: {e}")).hint =
                    Some(format!("for example {example}"));
                return None;
            }
        };
        // Targets written without a trailing dot are relative to the origin, as in a zone file.
        let absolute = |n: Name| {
            if n.is_fqdn() { n } else { n.clone().append_domain(origin).unwrap_or(n) }
        };
        Some(match data {
            RData::CNAME(c) => RData::CNAME(CNAME(absolute(c.0))),
            RData::NS(n) => RData::NS(NS(absolute(n.0))),
            RData::MX(mx) => RData::MX(hickory_proto::rr::rdata::MX::new(mx.preference, absolute(mx.exchange))),
            RData::SRV(srv) => {
                RData::SRV(hickory_proto::rr::rdata::SRV::new(srv.priority, srv.weight, srv.port, absolute(srv.target)))
            }
            other => other,
        })
    }

    /// CNAME exclusivity and delegation rules across all static records.
    fn zone_consistency(&mut self, origin: &Name, records: &[Record]) {
        // CNAME chains must end: follow each one, at most as many steps as there are CNAMEs.
        let cnames: HashMap<&Name, &Name> = records
            .iter()
            .filter_map(|r| match &r.data {
                RData::CNAME(c) => Some((&r.name, &c.0)),
                _ => None,
            })
            .collect();
        let mut reported: HashSet<&Name> = HashSet::new();
        for start in cnames.keys() {
            let mut at = *start;
            for _ in 0..=cnames.len() {
                match cnames.get(at) {
                    Some(next) if *next == *start => {
                        if reported.insert(start) {
                            self.err(None, format!("`{start}` is part of a CNAME loop")).hint =
                                Some("a chain of CNAMEs must end at a name with data".into());
                        }
                        break;
                    }
                    Some(next) => at = next,
                    None => break,
                }
            }
        }
        let mut types: HashMap<&Name, HashSet<RecordType>> = HashMap::new();
        for r in records {
            types.entry(&r.name).or_default().insert(r.record_type());
        }
        let cuts: Vec<&Name> =
            types.iter().filter(|(n, t)| t.contains(&RecordType::NS) && ***n != *origin).map(|(n, _)| *n).collect();
        for (name, t) in &types {
            if t.contains(&RecordType::CNAME) && t.len() > 1 {
                self.err(None, format!("`{name}` has a CNAME and other records")).hint =
                    Some("a CNAME must be the only record at its name (RFC 1034 3.6.2)".into());
            }
            if *name == origin && t.contains(&RecordType::CNAME) {
                self.err(None, "the zone apex cannot be a CNAME");
            }
            for cut in &cuts {
                let below = cut.zone_of(name) && name != cut;
                let glue_only = t.iter().all(|t| matches!(t, RecordType::A | RecordType::AAAA));
                if below && !glue_only {
                    self.err(None, format!("`{name}` is below the delegation `{cut}`")).hint =
                        Some("only glue (A/AAAA) may sit below a delegated name".into());
                }
                if name == cut && t.iter().any(|t| *t != RecordType::NS) {
                    self.err(None, format!("`{name}` is delegated (NS) and has other records"));
                }
            }
        }
    }

    fn regions(
        &mut self,
        raw: &[(S<String>, raw::Region)],
        defaults: &CheckDefaults,
        base: &Path,
    ) -> Vec<RegionConfig> {
        let mut out = Vec::new();
        for (key, r) in raw {
            let name = key.get_ref().clone();
            let valid = !name.is_empty()
                && name.len() <= 63
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !valid {
                self.err(Some(key.span()), format!("region name `{name}` is not valid")).hint =
                    Some("use lower-case letters, digits, `-` and `_`, e.g. `eu-west`".into());
            }
            let location = r.location.as_ref().and_then(|loc| match loc.get_ref().as_slice() {
                [lat, lon] if (-90.0..=90.0).contains(lat) && (-180.0..=180.0).contains(lon) => Some((*lat, *lon)),
                _ => {
                    self.err(Some(loc.span()), "location must be [latitude, longitude] in degrees").hint =
                        Some("latitude -90..=90, longitude -180..=180, e.g. [50.11, 8.68]".into());
                    None
                }
            });
            let a: Vec<Ipv4Addr> = r.a.iter().filter_map(|s| self.parse(s, "IPv4 address")).collect();
            let aaaa: Vec<Ipv6Addr> = r.aaaa.iter().filter_map(|s| self.parse(s, "IPv6 address")).collect();
            let cname = r.cname.as_ref().and_then(|c| {
                if !c.get_ref().ends_with('.') {
                    self.err(Some(c.span()), "a region's cname must be fully qualified").hint =
                        Some(format!("end it with a dot: \"{}.\"", c.get_ref()));
                    return None;
                }
                self.domain(c, None, "cname target")
            });
            if r.cname.is_some() && (!r.a.is_empty() || !r.aaaa.is_empty()) {
                self.err(Some(key.span()), format!("region `{name}` has both a cname and addresses")).hint =
                    Some("a region answers either with addresses (a/aaaa) or with one CNAME".into());
            }
            if r.cname.is_none() && r.a.is_empty() && r.aaaa.is_empty() {
                self.err(Some(key.span()), format!("region `{name}` has nothing to answer with")).hint =
                    Some("add `a = [...]`, `aaaa = [...]` or `cname = \"...\"`".into());
            }
            let bias = match &r.bias {
                Some(b) if !(-99..=99).contains(b.get_ref()) => {
                    self.err(Some(b.span()), format!("bias {} is out of range", b.get_ref())).hint =
                        Some("a percentage, -99..=99".into());
                    0
                }
                Some(b) => *b.get_ref(),
                None => 0,
            };
            out.push(RegionConfig {
                name: name.clone(),
                location,
                a,
                aaaa,
                cname,
                weight: r.weight.as_ref().map_or(1, |w| *w.get_ref()),
                bias,
                drained: r.drained,
                checks: r.checks.iter().filter_map(|c| self.check(&name, c, defaults, base, false)).collect(),
                rule: self.rule(r.health.as_ref(), r.checks.len()),
                database: r.database.as_ref().and_then(|c| self.check(&name, c, defaults, base, true)),
            });
        }
        out
    }

    fn duration(&mut self, d: Option<&S<raw::Dur>>, default: Duration) -> Duration {
        let Some(d) = d else { return default };
        let parsed = match d.get_ref() {
            raw::Dur::Seconds(secs) => {
                Duration::try_from_secs_f64(*secs).map_err(|_| format!("{secs} is not a duration"))
            }
            raw::Dur::Text(t) => super::parse_duration(t),
        };
        match parsed {
            Ok(v) => v,
            Err(msg) => {
                self.err(Some(d.span()), msg).hint =
                    Some("a number of seconds, or text such as \"500ms\", \"2s\", \"1m\"".into());
                default
            }
        }
    }

    fn health(&mut self, raw: &raw::Health, base: &Path) -> (HealthSettings, CheckDefaults) {
        let interval = self.duration(raw.interval.as_ref(), Duration::from_secs(5));
        let defaults = CheckDefaults {
            interval,
            timeout: self.duration(raw.timeout.as_ref(), Duration::from_secs(2).min(interval)),
            jitter: self.duration(raw.jitter.as_ref(), interval / 10),
            rise: raw.rise.as_ref().map_or(2, |r| *r.get_ref()),
            fall: raw.fall.as_ref().map_or(3, |f| *f.get_ref()),
        };
        let cold_start = match raw.cold_start.as_ref().map(|c| (c.get_ref().as_str(), c.span())) {
            None | Some(("wait", _)) => ColdStart::Wait,
            Some(("assume_up", _)) => ColdStart::AssumeUp,
            Some((other, span)) => {
                self.err(Some(span), format!("unknown cold_start `{other}`")).hint =
                    Some("\"wait\" (SERVFAIL for GSLB names until the first round) or \"assume_up\"".into());
                ColdStart::Wait
            }
        };
        let settings = HealthSettings {
            hold_down: self.duration(raw.hold_down.as_ref(), Duration::from_secs(30)),
            writer_grace: self.duration(raw.writer_grace.as_ref(), Duration::from_secs(10)),
            cold_start,
            cold_start_grace: self.duration(raw.cold_start_grace.as_ref(), Duration::from_secs(10)),
            state_file: raw.state_file.as_ref().map(|p| base.join(p.get_ref())),
        };
        (settings, defaults)
    }

    fn rule(&mut self, raw: Option<&S<raw::HealthRule>>, checks: usize) -> HealthRule {
        match raw.map(|r| (r.get_ref(), r.span())) {
            None => HealthRule::All,
            Some((raw::HealthRule::Keyword(k), _)) if k == "all" => HealthRule::All,
            Some((raw::HealthRule::Keyword(k), _)) if k == "any" => HealthRule::Any,
            Some((raw::HealthRule::Quorum { quorum }, span)) => {
                if *quorum == 0 || *quorum as usize > checks {
                    self.err(Some(span), format!("quorum {quorum} needs between 1 and {checks} checks"));
                }
                HealthRule::Quorum(*quorum)
            }
            Some((raw::HealthRule::Keyword(k), span)) => {
                self.err(Some(span), format!("unknown health rule `{k}`")).hint =
                    Some("\"all\", \"any\" or { quorum = N }".into());
                HealthRule::All
            }
        }
    }

    fn http_check(&mut self, region: &str, c: &raw::Check, url: &S<String>, base: &Path) -> Option<HttpCheck> {
        let u = url.get_ref();
        let scheme_ok = u.starts_with("http://") || u.starts_with("https://");
        if !scheme_ok || reqwest::Url::parse(u).is_err() {
            self.err(Some(url.span()), format!("`{u}` is not an http:// or https:// URL")).hint =
                Some("e.g. \"http://127.0.0.1:8081/healthz\"".into());
            return None;
        }
        let method = c.method.as_ref().map_or("GET".to_owned(), |m| m.get_ref().to_ascii_uppercase());
        if !["GET", "HEAD", "POST", "OPTIONS"].contains(&method.as_str()) {
            let span = c.method.as_ref().map(|m| m.span());
            self.err(span, format!("method `{method}` is not allowed for a health check")).hint =
                Some("GET, HEAD, POST or OPTIONS".into());
        }
        let expect_status = match &c.expect_status {
            Some(codes) => {
                if codes.get_ref().is_empty() || codes.get_ref().iter().any(|c| !(100..=599).contains(c)) {
                    self.err(Some(codes.span()), "expect_status must list HTTP status codes (100-599)");
                }
                codes.get_ref().clone()
            }
            None => Vec::new(),
        };
        let ca_file = c.ca_file.as_ref().and_then(|p| {
            let path = base.join(p.get_ref());
            if path.is_file() {
                Some(path)
            } else {
                self.err(Some(p.span()), format!("CA file `{}` not found", path.display()));
                None
            }
        });
        let https = u.starts_with("https://");
        for (key, span) in
            [("sni", c.sni.as_ref().map(|s| s.span())), ("ca_file", c.ca_file.as_ref().map(|s| s.span()))]
        {
            if let Some(span) = span
                && !https
            {
                self.err(Some(span), format!("`{key}` applies only to https:// URLs (region `{region}`)"));
            }
        }
        Some(HttpCheck {
            url: u.clone(),
            method,
            expect_status,
            body_contains: c.body_contains.clone(),
            headers: c.headers.iter().flatten().map(|(k, v)| (k.clone(), super::Secret::new(v.clone()))).collect(),
            sni: c.sni.as_ref().map(|s| s.get_ref().clone()),
            ca_file,
            insecure: c.insecure.unwrap_or(false),
        })
    }

    fn check(
        &mut self,
        region: &str,
        raw: &S<raw::Check>,
        d: &CheckDefaults,
        base: &Path,
        database: bool,
    ) -> Option<CheckConfig> {
        let c = raw.get_ref();
        let kind_name = c.kind.get_ref().as_str();
        let allowed: &[&str] = if database { &["postgres", "http_role"] } else { &["http", "https", "tcp"] };
        if !allowed.contains(&kind_name) {
            let what = if database { "a database member" } else { "a gateway check" };
            self.err(Some(c.kind.span()), format!("`{kind_name}` is not a kind of {what}")).hint =
                Some(format!("one of {}", allowed.join(", ")));
            return None;
        }
        let kind_span = c.kind.span();
        let need = |v: &mut Validator, field: &Option<S<String>>, key: &str| -> Option<S<String>> {
            if field.is_none() {
                v.err(Some(kind_span.clone()), format!("a `{kind_name}` check needs `{key}`"));
            }
            field.clone()
        };
        let (kind, shown) = match kind_name {
            "http" | "https" => {
                let url = need(self, &c.url, "url")?;
                let check = self.http_check(region, c, &url, base)?;
                if (kind_name == "https") != check.url.starts_with("https://") {
                    self.err(Some(url.span()), format!("a `{kind_name}` check needs a {kind_name}:// URL"));
                }
                let shown = format!("{kind_name}:{}", check.url);
                (CheckKind::Http(check), shown)
            }
            "tcp" => {
                let target = need(self, &c.target, "target")?;
                let t = target.get_ref();
                let valid = t.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                if !valid {
                    self.err(Some(target.span()), format!("`{t}` is not host:port")).hint =
                        Some("e.g. \"192.0.2.1:443\" or \"[2001:db8::1]:443\"".into());
                }
                (CheckKind::Tcp { target: t.clone() }, format!("tcp:{t}"))
            }
            "postgres" => {
                let dsn = need(self, &c.dsn, "dsn")?;
                if dsn.get_ref().parse::<tokio_postgres::Config>().is_err() {
                    self.err(Some(dsn.span()), "the dsn is not a valid PostgreSQL connection string").hint =
                        Some("e.g. \"host=db.example.org port=5432 user=switchyard dbname=postgres\"".into());
                }
                let shown = format!("postgres:{}", super::redact_dsn(dsn.get_ref()));
                (CheckKind::Postgres { dsn: super::Secret::new(dsn.get_ref().clone()) }, shown)
            }
            _ => {
                let url = need(self, &c.url, "url")?;
                let primary = self.http_check(region, c, &url, base)?;
                let replica = match &c.replica_url {
                    Some(r) => Some(self.http_check(region, c, r, base)?),
                    None => None,
                };
                let shown = format!("http_role:{}", primary.url);
                (CheckKind::HttpRole { primary, replica }, shown)
            }
        };
        let interval = self.duration(c.interval.as_ref(), d.interval);
        let timeout = self.duration(c.timeout.as_ref(), d.timeout.min(interval));
        if timeout > interval || timeout.is_zero() || interval.is_zero() {
            let span = c.timeout.as_ref().or(c.interval.as_ref()).map_or(raw.span(), |t| t.span());
            self.err(Some(span), format!("timeout {timeout:?} must be non-zero and at most the interval {interval:?}"));
        }
        let rise = c.rise.as_ref().map_or(d.rise, |r| *r.get_ref());
        let fall = c.fall.as_ref().map_or(d.fall, |f| *f.get_ref());
        if rise == 0 || fall == 0 {
            self.err(Some(raw.span()), "rise and fall must be at least 1");
        }
        Some(CheckConfig {
            id: format!("{region}/{shown}"),
            kind,
            interval,
            timeout,
            jitter: self.duration(c.jitter.as_ref(), d.jitter).min(interval / 2),
            rise: rise.max(1),
            fall: fall.max(1),
        })
    }

    fn region_ref(&mut self, s: &S<String>, regions: &[RegionConfig]) -> Option<usize> {
        let name = s.get_ref();
        if self.broken_regions.contains(name) {
            // Already reported where it is defined.
            return None;
        }
        match regions.iter().position(|r| &r.name == name) {
            Some(i) => Some(i),
            None => {
                let names: Vec<&str> = regions.iter().map(|r| r.name.as_str()).collect();
                let hint = match suggest(name, &names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("defined regions: {}", names.join(", ")),
                };
                self.err(Some(s.span()), format!("unknown region `{name}`")).hint = Some(hint);
                None
            }
        }
    }

    fn area(&mut self, s: &S<String>) -> Option<Area> {
        match Area::parse(s.get_ref()) {
            Ok(a) => Some(a),
            Err(msg) => {
                self.err(Some(s.span()), msg).hint =
                    Some("areas: default, continent:EU, country:GB, subdivision:US-CA, 192.0.2.0/24".into());
                None
            }
        }
    }

    fn latency(
        &mut self,
        span: Range<usize>,
        raw: &raw::Latency,
        regions: &[RegionConfig],
    ) -> Vec<(Area, Vec<Option<u32>>)> {
        let mut out: Vec<(Area, Vec<Option<u32>>)> = Vec::new();
        if raw.is_empty() {
            self.err(Some(span), "the latency table is empty");
        }
        for (key, row) in raw {
            let Some(area) = self.area(key) else { continue };
            if out.iter().any(|(a, _)| *a == area) {
                self.err(Some(key.span()), format!("duplicate latency row `{area}`"));
                continue;
            }
            let mut rtts = vec![None; regions.len()];
            for (region, ms) in row.get_ref() {
                if let Some(i) = self.region_ref(region, regions) {
                    rtts[i] = Some(*ms.get_ref());
                }
            }
            out.push((area, rtts));
        }
        out
    }

    fn when_all_down(&mut self, w: &S<raw::WhenAllDown>) -> Option<AllDown> {
        match w.get_ref() {
            raw::WhenAllDown::Keyword(k) if k == "fail_open" => Some(AllDown::FailOpen),
            raw::WhenAllDown::Keyword(k) if k == "servfail" => Some(AllDown::ServFail),
            raw::WhenAllDown::Keyword(k) => {
                self.err(Some(w.span()), format!("unknown when_all_down `{k}`")).hint = Some(
                    "\"fail_open\", \"servfail\", { fallback = [\"192.0.2.99\"] } or { cname = \"sorry.example.org.\" }"
                        .into(),
                );
                None
            }
            raw::WhenAllDown::Answer(f) => {
                let (mut a, mut aaaa) = (Vec::new(), Vec::new());
                for ip in f.fallback.iter().flatten() {
                    match ip.parse::<IpAddr>() {
                        Ok(IpAddr::V4(v4)) => a.push(v4),
                        Ok(IpAddr::V6(v6)) => aaaa.push(v6),
                        Err(_) => {
                            self.err(Some(w.span()), format!("fallback `{ip}` is not an IP address"));
                        }
                    }
                }
                let cname = f
                    .cname
                    .as_ref()
                    .and_then(|c| self.domain(&Spanned::new(w.span(), c.clone()), None, "fallback cname"));
                if cname.is_some() == (!a.is_empty() || !aaaa.is_empty()) {
                    self.err(Some(w.span()), "when_all_down needs either `fallback` addresses or a `cname`");
                    return None;
                }
                Some(AllDown::Fallback { a, aaaa, cname })
            }
        }
    }

    fn names(
        &mut self,
        s: &Sections<'_>,
        zone: &ZoneConfig,
        regions: &[RegionConfig],
        latency: &[(Area, Vec<Option<u32>>)],
        have_geoip: bool,
    ) -> Vec<NameConfig> {
        let d = &s.defaults;
        let default_ttl = d.ttl.as_ref().map_or(60, |t| *t.get_ref());
        // An explicit default is checked against each name's ttl; the implicit one adapts.
        let default_failover_ttl = d.failover_ttl.as_ref().map(|t| *t.get_ref());
        let default_answers = d.answers.as_ref().map_or(1, |a| *a.get_ref());
        let default_all_down = match &d.when_all_down {
            Some(w) => self.when_all_down(w).unwrap_or(AllDown::FailOpen),
            None => AllDown::FailOpen,
        };
        let static_names: HashSet<&Name> = zone.records.iter().map(|r| &r.name).collect();
        let cuts: Vec<&Name> =
            zone.records.iter().filter(|r| r.record_type() == RecordType::NS).map(|r| &r.name).collect();
        let mut seen: HashMap<Name, Range<usize>> = HashMap::new();
        let mut out = Vec::new();

        for (key, n) in &s.names {
            let Some(fqdn) = self.domain(key, Some(&zone.origin), "name") else {
                continue;
            };
            if !self.in_zone(&fqdn, &zone.origin, key.span()) {
                continue;
            }
            if fqdn == zone.origin {
                self.err(Some(key.span()), "a GSLB name cannot be the zone apex").hint =
                    Some("use a label such as `app`; point the apex elsewhere with static records".into());
                continue;
            }
            if seen.insert(fqdn.clone(), key.span()).is_some() {
                self.err(Some(key.span()), format!("`{fqdn}` is defined twice"));
                continue;
            }
            if static_names.contains(&fqdn) {
                self.err(Some(key.span()), format!("`{fqdn}` is both a GSLB name and a static record")).hint =
                    Some("remove one of them".into());
            }
            if let Some(cut) = cuts.iter().find(|c| c.zone_of(&fqdn)) {
                self.err(Some(key.span()), format!("`{fqdn}` is inside the delegated zone `{cut}`"));
            }

            let policy_name = n.policy.get_ref().as_str();
            if !POLICIES.contains(&policy_name) {
                let hint = match suggest(policy_name, POLICIES) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("one of {}", POLICIES.join(", ")),
                };
                self.err(Some(n.policy.span()), format!("unknown policy `{policy_name}`")).hint = Some(hint);
                continue;
            }
            let only = |v: &mut Validator, present: Option<Range<usize>>, key: &str, policies: &[&str]| {
                if let Some(span) = present
                    && !policies.contains(&policy_name)
                {
                    v.err(Some(span), format!("`{key}` applies only to the {} policy", policies.join(" and ")));
                }
            };
            only(self, n.tie_window.as_ref().map(|t| t.span()), "tie_window", &["latency", "reader"]);
            only(self, n.map.as_ref().map(|t| t.span()), "map", &["geo"]);
            only(self, n.weights.as_ref().map(|t| t.span()), "weights", &["weighted"]);
            only(self, n.order.as_ref().map(|t| t.span()), "order", &["reader"]);
            only(self, n.max_lag.as_ref().map(|t| t.span()), "max_lag", &["reader"]);

            let mut candidates: Vec<usize> = match &n.regions {
                Some(list) => {
                    if list.get_ref().is_empty() {
                        self.err(Some(list.span()), "`regions` is empty");
                    }
                    let mut v = Vec::new();
                    for r in list.get_ref() {
                        if let Some(i) = self.region_ref(r, regions) {
                            if v.contains(&i) {
                                self.err(Some(r.span()), format!("region `{}` is listed twice", r.get_ref()));
                            } else {
                                v.push(i);
                            }
                        }
                    }
                    v
                }
                None => (0..regions.len()).collect(),
            };

            let policy = match policy_name {
                "latency" => {
                    if latency.is_empty() {
                        self.err(Some(n.policy.span()), "the `latency` policy needs a `[latency]` table").hint =
                            Some("add rows such as `[latency] default = { us-east = 80, eu-west = 20 }`".into());
                    }
                    if !have_geoip && latency.iter().any(|(a, _)| needs_geoip(a)) {
                        self.err(
                            Some(n.policy.span()),
                            "latency rows by continent/country/subdivision need `[server] geoip_db`",
                        );
                    }
                    Policy::Latency { tie_window: n.tie_window.as_ref().map_or(0, |t| *t.get_ref()) }
                }
                "nearest" => {
                    self.nearest_needs(n, &candidates, regions, have_geoip);
                    Policy::Nearest
                }
                "geo" => {
                    let mut map = Vec::new();
                    let mut default = None;
                    match &n.map {
                        None => {
                            self.err(Some(n.policy.span()), "the `geo` policy needs a `map`").hint = Some(
                                "add `[names.NAME.map]` with rows such as \"continent:EU\" = [\"eu-west\"]".into(),
                            );
                        }
                        Some(m) => {
                            for (area_s, list) in m.get_ref() {
                                let Some(area) = self.area(area_s) else {
                                    continue;
                                };
                                let rs: Vec<usize> =
                                    list.get_ref().iter().filter_map(|r| self.region_ref(r, regions)).collect();
                                if list.get_ref().is_empty() {
                                    self.err(Some(list.span()), "a map entry needs at least one region");
                                }
                                if map.iter().any(|(a, _): &(Area, Vec<usize>)| *a == area)
                                    || (area == Area::Default && default.is_some())
                                {
                                    self.err(Some(area_s.span()), format!("duplicate map entry `{area}`"));
                                } else if area == Area::Default {
                                    default = Some(rs);
                                } else {
                                    if !have_geoip && needs_geoip(&area) {
                                        self.err(
                                            Some(area_s.span()),
                                            format!("map entry `{area}` needs `[server] geoip_db`"),
                                        );
                                    }
                                    map.push((area, rs));
                                }
                            }
                        }
                    }
                    // Every region the map names is a candidate, in first-mentioned order.
                    if let Some(list) = &n.regions {
                        for (area, rs) in map
                            .iter()
                            .map(|(a, rs)| (a.to_string(), rs))
                            .chain(default.iter().map(|d| ("default".to_owned(), d)))
                        {
                            for &r in rs {
                                if !candidates.contains(&r) {
                                    self.err(Some(list.span()), format!("map entry `{area}` names `{}`, which is not in this name's `regions`", regions[r].name))
                                        .hint = Some("add it to `regions`, or leave `regions` out: a geo name's candidates are the regions its map names".into());
                                }
                            }
                        }
                    } else {
                        candidates.clear();
                        for &i in map.iter().flat_map(|(_, rs)| rs).chain(default.iter().flatten()) {
                            if !candidates.contains(&i) {
                                candidates.push(i);
                            }
                        }
                    }
                    Policy::Geo { map, default: default.unwrap_or_else(|| candidates.clone()) }
                }
                "failover" => Policy::Failover,
                "weighted" => {
                    let mut weights: Vec<u32> = regions.iter().map(|r| r.weight).collect();
                    if let Some(w) = &n.weights {
                        for (r, weight) in w.get_ref() {
                            if let Some(i) = self.region_ref(r, regions) {
                                weights[i] = *weight.get_ref();
                                if !candidates.contains(&i) {
                                    self.err(
                                        Some(r.span()),
                                        format!(
                                            "region `{}` has a weight but is not among this name's regions",
                                            r.get_ref()
                                        ),
                                    );
                                }
                            }
                        }
                    }
                    if !candidates.is_empty() && candidates.iter().all(|&i| weights[i] == 0) {
                        self.err(Some(n.policy.span()), "every region of this weighted name has weight 0");
                    }
                    Policy::Weighted { weights }
                }
                "writer" => {
                    self.needs_databases(n, &candidates, regions);
                    Policy::Writer
                }
                "reader" => {
                    self.needs_databases(n, &candidates, regions);
                    let order = match n.order.as_ref().map(|o| (o.get_ref().as_str(), o.span())) {
                        None | Some(("nearest", _)) => {
                            self.nearest_needs(n, &candidates, regions, have_geoip);
                            ReaderOrder::Nearest
                        }
                        Some(("latency", span)) => {
                            if latency.is_empty() {
                                self.err(Some(span), "reader order `latency` needs a `[latency]` table");
                            }
                            ReaderOrder::Latency { tie_window: n.tie_window.as_ref().map_or(0, |t| *t.get_ref()) }
                        }
                        Some((other, span)) => {
                            self.err(Some(span), format!("unknown reader order `{other}`")).hint =
                                Some("\"nearest\" or \"latency\"".into());
                            ReaderOrder::Nearest
                        }
                    };
                    let max_lag = self.duration(n.max_lag.as_ref(), Duration::from_secs(30));
                    Policy::Reader { order, max_lag }
                }
                "multivalue" => Policy::Multivalue,
                "static" => Policy::Static,
                _ => unreachable!("checked against POLICIES"),
            };

            let answers_n = n.answers.as_ref().or(d.answers.as_ref()).map_or(1, |a| *a.get_ref());
            let cnames = candidates.iter().filter(|&&r| regions[r].cname.is_some()).count();
            if answers_n > 1 && cnames > 0 && cnames < candidates.len() {
                self.err(Some(key.span()), format!("`{}` mixes CNAME regions and address regions with answers = {answers_n}", key.get_ref()))
                    .hint = Some("a CNAME cannot share a name with addresses; use answers = 1 (failover between them) or one kind of region".into());
            }
            let ttl = n.ttl.as_ref().map_or(default_ttl, |t| *t.get_ref());
            let failover_ttl = match (&n.failover_ttl, default_failover_ttl) {
                (Some(t), _) => *t.get_ref(),
                (None, Some(t)) => t,
                (None, None) => 10.min(ttl),
            };
            if failover_ttl > ttl {
                let span = n.failover_ttl.as_ref().or(d.failover_ttl.as_ref()).map(|t| t.span());
                self.err(
                    span.or(Some(key.span())),
                    format!("failover_ttl ({failover_ttl}) is longer than ttl ({ttl})"),
                )
                .hint = Some("the failover TTL exists to be short; lower it or raise ttl".into());
            }
            let answers = n.answers.as_ref().map_or(default_answers, |a| *a.get_ref());
            if answers == 0 {
                let span = n.answers.as_ref().or(d.answers.as_ref()).map(|a| a.span());
                self.err(span, "`answers` must be at least 1");
            }
            let when_all_down = match &n.when_all_down {
                Some(w) => self.when_all_down(w).unwrap_or(AllDown::FailOpen),
                None => default_all_down.clone(),
            };
            out.push(NameConfig {
                key: key.get_ref().clone(),
                fqdn,
                policy,
                regions: candidates,
                answers: answers.max(1) as usize,
                ttl,
                failover_ttl,
                when_all_down,
            });
        }
        out
    }
}

/// Check settings that `[health]` provides for every check.
struct CheckDefaults {
    interval: Duration,
    timeout: Duration,
    jitter: Duration,
    rise: u32,
    fall: u32,
}

impl Validator {
    fn nearest_needs(&mut self, n: &raw::Name, candidates: &[usize], regions: &[RegionConfig], have_geoip: bool) {
        if !have_geoip {
            self.err(Some(n.policy.span()), "the `nearest` policy needs `[server] geoip_db`");
        }
        for &i in candidates {
            if regions[i].location.is_none() {
                self.err(
                    Some(n.policy.span()),
                    format!("region `{}` has no location, which `nearest` needs", regions[i].name),
                )
                .hint = Some("add `location = [lat, lon]` to the region".into());
            }
        }
    }

    fn needs_databases(&mut self, n: &raw::Name, candidates: &[usize], regions: &[RegionConfig]) {
        if !candidates.iter().any(|&i| regions[i].database.is_some()) {
            self.err(
                Some(n.policy.span()),
                format!("the `{}` policy needs regions with a `database` member", n.policy.get_ref()),
            )
            .hint = Some("add `[regions.NAME.database]` with kind = \"postgres\" or \"http_role\"".into());
        }
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

fn needs_geoip(area: &Area) -> bool {
    !matches!(area, Area::Default | Area::Cidr(_))
}

/// The closest known word, if it is close enough to be a likely typo.
fn suggest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
