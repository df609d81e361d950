//! `[zone]`: the origin, SOA and NS, static records (from the TOML and a zone file), and
//! their consistency.

use super::*;
use crate::config::zonefile::{self, Place, ZoneFile};

/// Where a static record was written.
#[derive(Debug, Clone)]
pub(super) enum Loc {
    Span(Range<usize>),
    Place(Place),
}

/// Names in a zone file's record data written without a trailing dot are relative to
/// its origin already (hickory resolves them); this makes sure they are absolute.
fn absolute_targets(mut r: Record, origin: &Name) -> Record {
    let absolute = |n: &Name| {
        if n.is_fqdn() { n.to_lowercase() } else { n.clone().append_domain(origin).unwrap_or(n.clone()).to_lowercase() }
    };
    r.data = match &r.data {
        RData::CNAME(c) => RData::CNAME(CNAME(absolute(&c.0))),
        RData::NS(n) => RData::NS(NS(absolute(&n.0))),
        other => other.clone(),
    };
    r
}

impl Validator {
    /// A domain name, relative to `origin` unless it ends in a dot; lower-cased.
    pub(super) fn domain(&mut self, s: &S<String>, origin: Option<&Name>, what: &str) -> Option<Name> {
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

    pub(super) fn in_zone(&mut self, name: &Name, origin: &Name, span: Range<usize>) -> bool {
        if origin.zone_of(name) {
            true
        } else {
            self.err(Some(span), format!("`{name}` is outside the zone `{origin}`")).hint =
                Some("write names relative to the origin, or absolute names ending in the origin".into());
            false
        }
    }

    /// An error at a place in a zone file.
    pub(super) fn err_at(&mut self, place: Place, message: impl Into<String>) -> &mut Diagnostic {
        let mut d = Diagnostic::new(None, message);
        d.place = Some(place);
        self.errors.push(d);
        self.errors.last_mut().expect("just pushed")
    }

    /// An error where `loc` says (a config span or a zone file's line).
    fn err_loc(&mut self, loc: Option<&Loc>, message: impl Into<String>) -> &mut Diagnostic {
        match loc {
            Some(Loc::Span(span)) => self.err(Some(span.clone()), message),
            Some(Loc::Place(place)) => self.err_at(place.clone(), message),
            None => self.err(None, message),
        }
    }

    pub(super) fn zone(&mut self, raw: &raw::Zone, base: &Path) -> Option<ZoneConfig> {
        let origin = self.domain(&raw.origin, None, "zone origin")?;
        let zone_ttl = raw.ttl.as_ref().map_or(3600, |t| *t.get_ref());
        let mut records = Vec::new();
        // Where each static record was written, for errors about it.
        let mut locs: Vec<Loc> = Vec::new();

        // A zone file that cannot be found is one error, not also a missing SOA and NS.
        let mut file_missing = false;
        let from_file = match &raw.file {
            Some(f) => {
                let path = base.join(f.get_ref());
                if path.is_file() {
                    zonefile::read(&path, &origin, zone_ttl)
                } else {
                    self.err(Some(f.span()), format!("zone file `{}` not found", path.display())).hint =
                        Some("a path relative to the config file".into());
                    file_missing = true;
                    ZoneFile::default()
                }
            }
            None => ZoneFile::default(),
        };
        for (place, message) in from_file.errors {
            self.err_at(place, message);
        }

        let mut ns = Vec::new();
        let mut ns_places: Vec<(Name, Loc)> = Vec::new();
        for server in raw.ns.iter().flat_map(|list| list.get_ref()) {
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
                        locs.push(Loc::Span(a.span()));
                    }
                }
                for a in &server_raw.ipv6 {
                    if let Some(ip) = self.parse::<Ipv6Addr>(a, "IPv6 address") {
                        records.push(Record::from_rdata(name.clone(), zone_ttl, RData::AAAA(AAAA(ip))));
                        locs.push(Loc::Span(a.span()));
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

        // The zone file's records: its SOA and apex NS stand in for `[zone.soa]` and
        // `[[zone.ns]]`; the rest are static records like `[[zone.records]]`.
        let mut file_soa: Option<(Record, Place)> = None;
        for (record, place) in from_file.records {
            let rtype = record.record_type();
            if !origin.zone_of(&record.name) {
                self.err_at(place, format!("`{}` is outside the zone `{origin}`", record.name)).hint =
                    Some("check the file's $ORIGIN, or relative names that should end in a dot".into());
                continue;
            }
            match rtype {
                RecordType::SOA if record.name == origin => {
                    if raw.soa.is_some() {
                        self.err_at(place, "the zone file has an SOA, and so has `[zone.soa]`").hint =
                            Some("keep one: remove `[zone.soa]` to use the file's".into());
                    } else if file_soa.is_some() {
                        self.err_at(place, "a second SOA");
                    } else {
                        file_soa = Some((record, place));
                    }
                }
                RecordType::SOA => {
                    self.err_at(place, format!("an SOA at `{}`, not at the apex", record.name));
                }
                RecordType::NS if record.name == origin => {
                    let target = match &record.data {
                        RData::NS(n) => n.0.to_lowercase(),
                        _ => continue,
                    };
                    if ns.iter().any(|r| matches!(&r.data, RData::NS(n) if n.0 == target)) {
                        continue;
                    }
                    ns_places.push((target.clone(), Loc::Place(place)));
                    ns.push(Record::from_rdata(origin.clone(), record.ttl, RData::NS(NS(target))));
                }
                t if RECORD_TYPES.contains(&t.to_string().as_str()) => {
                    let record = absolute_targets(record, &origin);
                    records.push(record);
                    locs.push(Loc::Place(place));
                }
                t => {
                    self.err_at(place, format!("record type {t} is not served by switchyard")).hint = Some(format!(
                        "static records may be {}; remove the others from the file",
                        RECORD_TYPES.join(" ")
                    ));
                }
            }
        }
        if ns.is_empty() && !file_missing {
            self.err(raw.ns.as_ref().map(|n| n.span()).or(Some(raw.origin.span())), "the zone needs at least one name server")
                .hint = Some("add `[[zone.ns]]` entries (or NS records at the apex of the zone file); two or more instances is the norm".into());
        }

        let soa = match (&raw.soa, file_soa) {
            (Some(soa_raw), _) => self.toml_soa(soa_raw.get_ref(), &origin, &ns, zone_ttl),
            (None, Some((record, _))) => record,
            (None, None) => {
                if !file_missing {
                    self.err(Some(raw.origin.span()), "the zone needs an SOA").hint =
                        Some("add `[zone.soa]` with at least `rname`, or an SOA record in the zone file".into());
                }
                Record::from_rdata(
                    origin.clone(),
                    zone_ttl,
                    RData::SOA(SOA::new(origin.clone(), origin.clone(), 1, 3600, 600, 1_209_600, 60)),
                )
            }
        };

        for rec in &raw.records {
            let before = records.len();
            self.static_record(rec, &origin, zone_ttl, &mut records);
            locs.extend(std::iter::repeat_n(Loc::Span(rec.get_ref().name.span()), records.len() - before));
        }
        // In-zone name servers from the zone file need their glue in it.
        for (target, loc) in &ns_places {
            let has_address = records
                .iter()
                .any(|r| r.name == *target && matches!(r.record_type(), RecordType::A | RecordType::AAAA));
            if origin.zone_of(target) && !has_address {
                self.err_loc(Some(loc), format!("in-zone name server `{target}` has no address")).hint =
                    Some("add its A/AAAA records: the parent needs glue".into());
            }
        }
        self.zone_consistency(&origin, &records, &locs);
        Some(ZoneConfig { origin, soa, ns, records })
    }

    fn toml_soa(&mut self, soa_raw: &raw::Soa, origin: &Name, ns: &[Record], zone_ttl: u32) -> Record {
        let mname = match &soa_raw.mname {
            Some(m) => self.domain(m, Some(origin), "SOA mname"),
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
        let rname = self.domain(&Spanned::new(soa_raw.rname.span(), rname_text), Some(origin), "SOA rname (mailbox)");
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
        Record::from_rdata(origin.clone(), soa_raw.ttl.unwrap_or(zone_ttl), RData::SOA(soa))
    }

    pub(super) fn parse<T: FromStr>(&mut self, s: &S<String>, what: &str) -> Option<T> {
        match s.get_ref().trim().parse::<T>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.err(Some(s.span()), format!("`{}` is not a valid {what}", s.get_ref()));
                None
            }
        }
    }

    pub(super) fn static_record(
        &mut self,
        rec: &S<raw::StaticRecord>,
        origin: &Name,
        zone_ttl: u32,
        out: &mut Vec<Record>,
    ) {
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

    pub(super) fn rdata(&mut self, rtype: RecordType, value: &S<String>, origin: &Name) -> Option<RData> {
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

    /// CNAME exclusivity and delegation rules across all static records; `locs` says
    /// where each record was written (errors point at a name's first record).
    pub(super) fn zone_consistency(&mut self, origin: &Name, records: &[Record], locs: &[Loc]) {
        let first: HashMap<&Name, &Loc> = {
            let mut m = HashMap::new();
            for (r, loc) in records.iter().zip(locs) {
                m.entry(&r.name).or_insert(loc);
            }
            m
        };
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
                            self.err_loc(first.get(*start).copied(), format!("`{start}` is part of a CNAME loop"))
                                .hint = Some("a chain of CNAMEs must end at a name with data".into());
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
            let loc = first.get(*name).copied();
            if t.contains(&RecordType::CNAME) && t.len() > 1 {
                self.err_loc(loc, format!("`{name}` has a CNAME and other records")).hint =
                    Some("a CNAME must be the only record at its name (RFC 1034 3.6.2)".into());
            }
            if t.contains(&RecordType::DS) && !cuts.contains(name) {
                self.err_loc(loc, format!("`{name}` has a DS record but is not delegated")).hint =
                    Some("DS records belong beside the NS records that delegate a child zone".into());
            }
            if *name == origin && t.contains(&RecordType::CNAME) {
                self.err_loc(loc, "the zone apex cannot be a CNAME");
            }
            for cut in &cuts {
                let below = cut.zone_of(name) && name != cut;
                let glue_only = t.iter().all(|t| matches!(t, RecordType::A | RecordType::AAAA));
                if below && !glue_only {
                    self.err_loc(loc, format!("`{name}` is below the delegation `{cut}`")).hint =
                        Some("only glue (A/AAAA) may sit below a delegated name".into());
                }
                if name == cut && t.iter().any(|t| !matches!(t, RecordType::NS | RecordType::DS)) {
                    self.err_loc(loc, format!("`{name}` is delegated (NS) and has other records"));
                }
            }
        }
    }
}
