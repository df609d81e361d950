//! `[regions]` and `[health]`: addresses, locations, checks and their defaults, region rules.

use super::*;

impl Validator {
    pub(super) fn regions(
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
            });
        }
        out
    }

    pub(super) fn duration(&mut self, d: Option<&S<raw::Dur>>, default: Duration) -> Duration {
        let Some(d) = d else { return default };
        let parsed = match d.get_ref() {
            raw::Dur::Seconds(secs) => {
                Duration::try_from_secs_f64(*secs).map_err(|_| format!("{secs} is not a duration"))
            }
            raw::Dur::Text(t) => crate::config::parse_duration(t),
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

    pub(super) fn health(&mut self, raw: &raw::Health, base: &Path) -> (HealthSettings, CheckDefaults) {
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

    pub(super) fn rule(&mut self, raw: Option<&S<raw::HealthRule>>, checks: usize) -> HealthRule {
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

    pub(super) fn http_check(
        &mut self,
        region: &str,
        c: &raw::Check,
        url: &S<String>,
        base: &Path,
    ) -> Option<HttpCheck> {
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
        let ca_file = self.existing_file(&c.ca_file, base, "CA file");
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
            headers: c
                .headers
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), crate::config::Secret::new(v.clone())))
                .collect(),
            sni: c.sni.as_ref().map(|s| s.get_ref().clone()),
            ca_file,
            insecure: c.insecure.unwrap_or(false),
        })
    }

    pub(super) fn check(
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
                let raw_dsn = need(self, &c.dsn, "dsn")?;
                let dsn = crate::config::dsn::parse(raw_dsn.get_ref(), base).unwrap_or_else(|e| {
                    self.err(Some(raw_dsn.span()), e).hint = Some(
                        "e.g. \"host=db.example.org port=5432 user=switchyard dbname=postgres \
                         sslmode=verify-full sslrootcert=ca.pem\""
                            .into(),
                    );
                    // Read on, for the check's other errors; the config is rejected.
                    crate::config::dsn::PgDsn {
                        conn: crate::config::Secret::new(""),
                        sslmode: crate::config::dsn::SslMode::Disable,
                        root_certs: crate::config::dsn::RootCerts::None,
                    }
                });
                let shown = format!("postgres:{}", crate::config::redact_dsn(raw_dsn.get_ref()));
                (CheckKind::Postgres { dsn }, shown)
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
        let source = c.source.as_ref().and_then(|s| self.parse::<std::net::IpAddr>(s, "IP address"));

        Some(CheckConfig {
            source,
            id: format!("{region}/{shown}"),
            kind,
            interval,
            timeout,
            jitter: self.duration(c.jitter.as_ref(), d.jitter).min(interval / 2),
            rise: rise.max(1),
            fall: fall.max(1),
        })
    }
}

/// Check settings that `[health]` provides for every check.
pub(super) struct CheckDefaults {
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    pub(super) jitter: Duration,
    pub(super) rise: u32,
    pub(super) fall: u32,
}
