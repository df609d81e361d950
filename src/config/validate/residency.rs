//! `[jurisdictions]` and `[notify]`: where clients' traffic must stay, and whom to tell
//! about writer changes.

use super::*;
use crate::config::{JurisdictionConfig, NotifyConfig, WebhookConfig};

impl Validator {
    pub(super) fn jurisdictions(
        &mut self,
        raw: &[(S<String>, raw::Jurisdiction)],
        regions: &[RegionConfig],
        have_geoip: bool,
    ) -> Vec<JurisdictionConfig> {
        let mut out: Vec<JurisdictionConfig> = Vec::new();
        // Each client area belongs to one jurisdiction: area → (jurisdiction, span).
        let mut owners: Vec<(Area, String)> = Vec::new();
        for (key, j) in raw {
            let name = key.get_ref().clone();
            if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                self.err(Some(key.span()), format!("jurisdiction name `{name}` is not valid")).hint =
                    Some("letters, digits, `-` and `_` (it is a metric label)".into());
            }
            if j.regions.get_ref().is_empty() {
                self.err(Some(j.regions.span()), "a jurisdiction needs at least one region");
            }
            let mut rs = Vec::new();
            for r in j.regions.get_ref() {
                if let Some(i) = self.region_ref(r, regions)
                    && !rs.contains(&i)
                {
                    rs.push(i);
                }
            }
            if j.clients.get_ref().is_empty() {
                self.err(Some(j.clients.span()), "a jurisdiction needs at least one client area").hint =
                    Some("e.g. clients = [\"continent:EU\", \"country:GB\", \"198.51.100.0/24\"]".into());
            }
            let mut clients = Vec::new();
            for c in j.clients.get_ref() {
                let Some(area) = self.area(c) else { continue };
                if area == Area::Default {
                    self.err(Some(c.span()), "`default` cannot be a jurisdiction's client area").hint =
                        Some("name the areas; clients of no jurisdiction are routed by the policy alone".into());
                    continue;
                }
                if !have_geoip && !matches!(area, Area::Cidr(_)) {
                    self.err(Some(c.span()), format!("client area `{area}` needs `[server] geoip_db`"));
                }
                if let Some((_, other)) = owners.iter().find(|(a, _)| *a == area) {
                    self.err(Some(c.span()), format!("client area `{area}` is already in jurisdiction `{other}`"))
                        .hint = Some("an area belongs to one jurisdiction; the most specific area wins".into());
                    continue;
                }
                owners.push((area.clone(), name.clone()));
                clients.push(area);
            }
            let sorry = j.sorry.as_ref().and_then(|w| match self.when_all_down(w) {
                Some(a @ AllDown::Fallback { .. }) => Some(a),
                Some(_) => {
                    self.err(Some(w.span()), "`sorry` is a fixed answer").hint =
                        Some("{ fallback = [\"192.0.2.99\"] } or { cname = \"sorry-eu.example.org.\" }".into());
                    None
                }
                None => None,
            });
            out.push(JurisdictionConfig { name, regions: rs, clients, sorry });
        }
        out
    }

    pub(super) fn notify(&mut self, raw: &raw::Notify, fleet: bool, base: &Path) -> NotifyConfig {
        let mut out = NotifyConfig::default();
        for w in &raw.webhooks {
            let w = w.get_ref();
            let url = w.url.get_ref();
            match reqwest::Url::parse(url) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                _ => {
                    self.err(Some(w.url.span()), format!("webhook url `{url}` is not an http(s) URL"));
                }
            }
            let secret_file = self.existing_file(&w.secret_file, base, "webhook secret file");
            // Read here only to say early what would otherwise leave the webhook out.
            if let (Some(path), Some(raw)) = (&secret_file, &w.secret_file)
                && std::fs::read_to_string(path).map_or(true, |s| s.trim().is_empty())
            {
                self.err(
                    Some(raw.span()),
                    format!("webhook secret file `{}` is empty or unreadable", path.display()),
                )
                .hint = Some("an HMAC key of your own, e.g. `openssl rand -hex 32 > hook.secret`".into());
            }
            let timeout = self.duration(w.timeout.as_ref(), Duration::from_secs(5));
            if timeout.is_zero() {
                self.err(w.timeout.as_ref().map(|t| t.span()), "a webhook timeout must be above zero");
            }
            out.webhooks.push(WebhookConfig { url: url.clone(), secret_file, timeout });
        }
        if let Some(subject) = &raw.nats_subject {
            let s = subject.get_ref();
            let valid = !s.is_empty()
                && s.split('.')
                    .all(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic() && b != b'*' && b != b'>'));
            if !valid {
                self.err(Some(subject.span()), format!("`{s}` is not a NATS subject")).hint =
                    Some("dot-separated tokens without wildcards, e.g. \"switchyard.writer\"".into());
            }
            if !fleet {
                self.err(Some(subject.span()), "`nats_subject` needs `[fleet]`").hint =
                    Some("the NATS connection is the fleet's; without one, use webhooks".into());
            }
            out.nats_subject = Some(s.clone());
        }
        out.queue = self.ranged(&raw.queue, "queue", 1..=100_000, 64, "1 to 100000 events per webhook") as usize;
        out.give_up_after = self.duration(raw.give_up_after.as_ref(), out.give_up_after);
        out.backoff = self.duration(raw.backoff.as_ref(), out.backoff);
        if out.backoff.is_zero() || out.backoff > Duration::from_secs(60) {
            self.err(raw.backoff.as_ref().map(|b| b.span()), "backoff must be above zero and at most 60s");
        }
        out
    }
}

impl Validator {
    /// Every name with an `rto` must be able to meet it: the worst case is computed from
    /// the config (see `config::budget`), and a budget it exceeds is an error.
    pub(super) fn budgets(&mut self, s: &Sections<'_>, config: &Config) {
        for n in config.names.iter().filter(|n| n.rto.is_some()) {
            let b = crate::config::budget::budget(config, n);
            if b.fits() {
                continue;
            }
            let span = s
                .names
                .iter()
                .find(|(k, _)| *k.get_ref() == n.key)
                .and_then(|(_, raw)| raw.rto.as_ref())
                .map(|r| r.span());
            let rto = b.rto.unwrap_or_default();
            self.err(
                span,
                format!(
                    "`{}` cannot meet its rto of {}: the worst case is {}",
                    n.key,
                    crate::config::budget::secs(rto),
                    crate::config::budget::secs(b.total)
                ),
            )
            .hint = Some(format!(
                "{}; shorten the checks' interval, fall or timeout, or the ttl, or raise rto",
                b.arithmetic()
            ));
        }
    }
}
