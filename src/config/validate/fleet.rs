//! `[fleet]`: the NATS connection, this instance's name, and how the instances decide
//! together.

use super::regions::CheckDefaults;
use super::*;

impl Validator {
    pub(super) fn fleet(
        &mut self,
        raw: Option<&(Range<usize>, raw::Fleet)>,
        health: &CheckDefaults,
        base: &Path,
    ) -> Option<FleetConfig> {
        let (span, f) = raw?;
        let token = |s: &str| {
            !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let name = match &f.name {
            Some(n) => {
                if !token(n.get_ref()) {
                    self.err(Some(n.span()), format!("fleet name `{}` is not valid", n.get_ref())).hint =
                        Some("letters, digits, `-` and `_`: it is a key in the bucket, e.g. \"ns1\"".into());
                }
                n.get_ref().clone()
            }
            None => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
                let host: String =
                    host.trim().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
                if host.is_empty() {
                    self.err(Some(span.clone()), "`[fleet]` needs a `name`: the host name is not known").hint =
                        Some("e.g. name = \"ns1\"".into());
                }
                host
            }
        };
        let servers: Vec<String> = match &f.servers {
            Some(list) if !list.get_ref().is_empty() => list
                .get_ref()
                .iter()
                .filter_map(|s| {
                    let url = s.get_ref();
                    if url.split("://").nth(1).unwrap_or(url).split('/').next().is_some_and(|a| a.contains('@')) {
                        self.err(Some(s.span()), "credentials in a NATS URL would be logged").hint =
                            Some("put them in `credentials_file` or `token_file`".into());
                        return None;
                    }
                    let ok = ["nats://", "tls://"].iter().any(|p| url.starts_with(p))
                        || url.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                    if ok {
                        Some(url.clone())
                    } else {
                        self.err(Some(s.span()), format!("`{url}` is not a NATS server URL")).hint =
                            Some("e.g. \"nats://nats.internal:4222\" or \"tls://nats.internal:4222\"".into());
                        None
                    }
                })
                .collect(),
            Some(list) => {
                self.err(Some(list.span()), "`servers` is empty");
                Vec::new()
            }
            None => {
                self.err(Some(span.clone()), "`[fleet]` needs `servers`").hint =
                    Some("the NATS servers, e.g. servers = [\"nats://127.0.0.1:4222\"]".into());
                Vec::new()
            }
        };
        let bucket = f.bucket.as_ref().map_or("switchyard".to_owned(), |b| {
            if !token(b.get_ref()) {
                self.err(Some(b.span()), format!("bucket name `{}` is not valid", b.get_ref())).hint =
                    Some("letters, digits, `-` and `_`".into());
            }
            b.get_ref().clone()
        });
        let credentials_file = self.existing_file(&f.credentials_file, base, "NATS credentials file");
        let token_file = self.existing_file(&f.token_file, base, "NATS token file");
        let ca_file = self.existing_file(&f.ca_file, base, "CA file");
        let quorum = match f.quorum.as_ref().map(|q| (q.get_ref(), q.span())) {
            None => Quorum::Majority,
            Some((raw::Quorum::Keyword(k), _)) if k == "majority" => Quorum::Majority,
            Some((raw::Quorum::Count(n), _)) if *n >= 1 && *n <= 1000 => Quorum::Count(*n as u32),
            Some((raw::Quorum::Fraction(x), _)) if *x > 0.0 && *x <= 1.0 => Quorum::Fraction(*x),
            Some((_, span)) => {
                self.err(Some(span), "quorum is not one of the forms it takes").hint =
                    Some("\"majority\" (default), a number of vantages such as 2, or a share such as 0.5".into());
                Quorum::Majority
            }
        };
        // A vantage that missed three rounds no longer counts.
        let observation_ttl =
            self.duration(f.observation_ttl.as_ref(), (health.interval * 3).max(Duration::from_secs(3)));
        if observation_ttl < health.interval * 2
            && let Some(t) = &f.observation_ttl
        {
            self.err(
                Some(t.span()),
                format!("observation_ttl {observation_ttl:?} is shorter than two probe intervals"),
            )
            .hint = Some(format!("at least {:?}: vantages publish once per interval", health.interval * 2));
        }
        let shared_grace = self.duration(f.shared_grace.as_ref(), Duration::from_secs(30));
        Some(FleetConfig {
            name,
            servers,
            bucket,
            credentials_file,
            token_file,
            ca_file,
            quorum,
            observation_ttl,
            shared_grace,
        })
    }
}
