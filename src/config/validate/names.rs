//! `[names]` and `[latency]`: policies, candidate regions, maps, all-down rules.

use super::*;

impl Validator {
    pub(super) fn region_ref(&mut self, s: &S<String>, regions: &[RegionConfig]) -> Option<usize> {
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

    pub(super) fn area(&mut self, s: &S<String>) -> Option<Area> {
        match Area::parse(s.get_ref()) {
            Ok(a) => Some(a),
            Err(msg) => {
                self.err(Some(s.span()), msg).hint =
                    Some("areas: default, continent:EU, country:GB, subdivision:US-CA, 192.0.2.0/24".into());
                None
            }
        }
    }

    pub(super) fn latency(
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

    pub(super) fn when_all_down(&mut self, w: &S<raw::WhenAllDown>) -> Option<AllDown> {
        match w.get_ref() {
            raw::WhenAllDown::Keyword(k) if k == "fail_open" => Some(AllDown::FailOpen),
            raw::WhenAllDown::Keyword(k) if k == "servfail" => Some(AllDown::ServFail),
            raw::WhenAllDown::Keyword(k) if k == "writer" => Some(AllDown::Writer),
            raw::WhenAllDown::Keyword(k) => {
                self.err(Some(w.span()), format!("unknown when_all_down `{k}`")).hint = Some(
                    "\"fail_open\", \"servfail\", \"writer\" (reader names), { fallback = [\"192.0.2.99\"] } or { cname = \"sorry.example.org.\" }"
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

    pub(super) fn names(
        &mut self,
        s: &Sections<'_>,
        zone: &ZoneConfig,
        regions: &[RegionConfig],
        clusters: &[ClusterConfig],
        latency: &[(Area, Vec<Option<u32>>)],
        jurisdictions: &[JurisdictionConfig],
    ) -> Vec<NameConfig> {
        // A broken `geoip_db` is reported where it is written; here it only needs to be given.
        let have_geoip = s.server.geoip_db.is_some() || self.geoip_override.is_some();
        let d = &s.defaults;
        let default_ttl = d.ttl.as_ref().map_or(60, |t| *t.get_ref());
        // An explicit default is checked against each name's ttl; the implicit one adapts.
        let default_failover_ttl = d.failover_ttl.as_ref().map(|t| *t.get_ref());
        let default_answers = d.answers.as_ref().map_or(1, |a| *a.get_ref());
        let default_all_down = match &d.when_all_down {
            Some(w) => match self.when_all_down(w) {
                Some(AllDown::Writer) => {
                    self.err(Some(w.span()), "when_all_down = \"writer\" applies only to reader names").hint =
                        Some("set it on the reader names; `[defaults]` speaks for the gateway policies".into());
                    AllDown::FailOpen
                }
                other => other.unwrap_or(AllDown::FailOpen),
            },
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
            only(self, n.cluster.as_ref().map(|t| t.span()), "cluster", &["writer", "reader"]);
            if n.require_gateway.is_some() && !["writer", "reader"].contains(&policy_name) {
                self.err(Some(n.policy.span()), "`require_gateway` applies only to the writer and reader policies");
            }

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
                    let Some(cluster) = self.database_names_cluster(n, &mut candidates, regions, clusters) else {
                        continue;
                    };
                    Policy::Writer { cluster, require_gateway: n.require_gateway.unwrap_or(false) }
                }
                "reader" => {
                    let Some(cluster) = self.database_names_cluster(n, &mut candidates, regions, clusters) else {
                        continue;
                    };
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
                    Policy::Reader { cluster, order, max_lag, require_gateway: n.require_gateway.unwrap_or(false) }
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
            // Database names choose their own: `[defaults]` speaks for the gateway policies.
            let when_all_down = match (&n.when_all_down, &policy) {
                (Some(w), _) => {
                    let chosen = self.when_all_down(w).unwrap_or(AllDown::FailOpen);
                    if chosen == AllDown::Writer && !matches!(policy, Policy::Reader { .. }) {
                        self.err(Some(w.span()), "when_all_down = \"writer\" applies only to reader names").hint = Some(
                            "a reader with no fresh replica answers the cluster's writer; other names cannot".into(),
                        );
                    }
                    chosen
                }
                (None, Policy::Reader { .. }) => AllDown::Writer,
                (None, Policy::Writer { .. }) => AllDown::FailOpen,
                (None, _) => default_all_down.clone(),
            };
            let residency = self.residency(n, &policy, &when_all_down, jurisdictions);
            let rto = n.rto.as_ref().map(|r| self.duration(Some(r), Duration::ZERO));
            out.push(NameConfig {
                key: key.get_ref().clone(),
                fqdn,
                policy,
                regions: candidates,
                answers: answers.max(1) as usize,
                ttl,
                failover_ttl,
                when_all_down,
                residency,
                rto,
            });
        }
        out
    }

    /// `residency` and `unlocated`: `Some` for a strict name.
    fn residency(
        &mut self,
        n: &raw::Name,
        policy: &Policy,
        when_all_down: &AllDown,
        jurisdictions: &[JurisdictionConfig],
    ) -> Option<Unlocated> {
        let strict = match &n.residency {
            None => false,
            Some(r) if r.get_ref() == "none" => false,
            Some(r) if r.get_ref() == "strict" => {
                if jurisdictions.is_empty() {
                    self.err(Some(r.span()), "`residency = \"strict\"` needs `[jurisdictions]`").hint = Some(
                        "define `[jurisdictions.NAME]` with `regions` and `clients`, e.g. clients = [\"continent:EU\"]"
                            .into(),
                    );
                }
                if matches!(policy, Policy::Static) {
                    self.err(Some(r.span()), "a static name answers fixed regions; residency does not apply").hint =
                        Some("list only the regions its clients may use, or use another policy".into());
                }
                true
            }
            Some(r) => {
                self.err(Some(r.span()), format!("unknown residency `{}`", r.get_ref())).hint =
                    Some("\"strict\" or \"none\" (default)".into());
                false
            }
        };
        let unlocated = match &n.unlocated {
            None => Unlocated::Open,
            Some(u) if !strict => {
                self.err(Some(u.span()), "`unlocated` applies only to names with `residency = \"strict\"`");
                Unlocated::Open
            }
            Some(u) => match u.get_ref().as_str() {
                "open" => Unlocated::Open,
                "servfail" => Unlocated::ServFail,
                other => match jurisdictions.iter().position(|j| j.name == other) {
                    Some(j) => Unlocated::As(j),
                    None => {
                        let mut options: Vec<&str> = vec!["open", "servfail"];
                        options.extend(jurisdictions.iter().map(|j| j.name.as_str()));
                        let hint = match suggest(other, &options) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!("one of {}", options.join(", ")),
                        };
                        self.err(Some(u.span()), format!("unknown unlocated treatment `{other}`")).hint = Some(hint);
                        Unlocated::Open
                    }
                },
            },
        };
        if strict && matches!(when_all_down, AllDown::Fallback { .. }) {
            for j in jurisdictions.iter().filter(|j| j.sorry.is_none()) {
                let span = n.when_all_down.as_ref().map(|w| w.span()).or(n.residency.as_ref().map(|r| r.span()));
                self.err(span, format!("jurisdiction `{}` has no `sorry` answer for this strict name's fixed all-down answer", j.name))
                    .hint = Some("a fixed answer outside a jurisdiction would cross its border: add `sorry = { fallback = [...] }` to the jurisdiction".into());
            }
        }
        strict.then_some(unlocated)
    }

    pub(super) fn nearest_needs(
        &mut self,
        n: &raw::Name,
        candidates: &[usize],
        regions: &[RegionConfig],
        have_geoip: bool,
    ) {
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

    /// The cluster a `writer` or `reader` name follows; its candidates become the
    /// regions of the cluster's members (those listed in `regions`, if it is given).
    pub(super) fn database_names_cluster(
        &mut self,
        n: &raw::Name,
        candidates: &mut Vec<usize>,
        regions: &[RegionConfig],
        clusters: &[ClusterConfig],
    ) -> Option<usize> {
        let policy = n.policy.get_ref();
        let cluster = match &n.cluster {
            Some(c) => match clusters.iter().position(|k| k.name == *c.get_ref()) {
                Some(i) => i,
                None => {
                    let names: Vec<&str> = clusters.iter().map(|k| k.name.as_str()).collect();
                    let hint = match suggest(c.get_ref(), &names) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if names.is_empty() => "define it under `[clusters.NAME]`".to_owned(),
                        None => format!("defined clusters: {}", names.join(", ")),
                    };
                    self.err(Some(c.span()), format!("unknown cluster `{}`", c.get_ref())).hint = Some(hint);
                    return None;
                }
            },
            None if clusters.len() == 1 => 0,
            None if clusters.is_empty() => {
                self.err(Some(n.policy.span()), format!("the `{policy}` policy needs a database cluster")).hint = Some(
                    "add `[clusters.NAME]` with `[clusters.NAME.members.MEMBER]` entries (region, kind, dsn)".into(),
                );
                return None;
            }
            None => {
                let names: Vec<&str> = clusters.iter().map(|k| k.name.as_str()).collect();
                self.err(Some(n.policy.span()), format!("which cluster does this `{policy}` name follow?")).hint =
                    Some(format!("add `cluster = \"...\"`: one of {}", names.join(", ")));
                return None;
            }
        };
        let mut member_regions: Vec<usize> = Vec::new();
        for m in &clusters[cluster].members {
            if !member_regions.contains(&m.region) {
                member_regions.push(m.region);
            }
        }
        if n.regions.is_some() {
            for &r in candidates.iter() {
                if !member_regions.contains(&r) {
                    let span = n.regions.as_ref().map(|l| l.span());
                    self.err(
                        span,
                        format!("region `{}` has no member of cluster `{}`", regions[r].name, clusters[cluster].name),
                    );
                }
            }
            candidates.retain(|r| member_regions.contains(r));
        } else {
            *candidates = member_regions;
        }
        Some(cluster)
    }
}

fn needs_geoip(area: &Area) -> bool {
    !matches!(area, Area::Default | Area::Cidr(_))
}
