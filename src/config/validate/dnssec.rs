//! `[dnssec]`: the zone's keys, read from their files, and the signing settings.

use super::*;
use crate::config::ZoneConfig;
use crate::config::dnssec::{DnssecConfig, KeyRole, ZoneKey, read_key};

impl Validator {
    /// A signature served just before it is made again must outlive every cache that
    /// keeps the answer: `refresh` longer than the zone's longest TTL.
    pub(super) fn dnssec_timing(&mut self, raw: Option<&(Range<usize>, raw::Dnssec)>, config: &crate::config::Config) {
        let (Some((span, d)), Some(dnssec)) = (raw, &config.dnssec) else { return };
        let longest = crate::config::dnssec::max_ttl(config);
        if dnssec.refresh.as_secs() <= u64::from(longest) {
            let at = d.refresh.as_ref().map(|r| r.span()).unwrap_or(span.clone());
            self.err(
                Some(at),
                format!(
                    "`refresh` ({}s) is not longer than the zone's longest TTL ({longest}s): a signature served just \
                     before it is made again would expire in caches",
                    dnssec.refresh.as_secs()
                ),
            )
            .hint = Some("days, e.g. validity 14d, refresh 7d".into());
        }
    }

    pub(super) fn dnssec(
        &mut self,
        span: Range<usize>,
        d: &raw::Dnssec,
        zone: &ZoneConfig,
        base: &Path,
    ) -> Option<DnssecConfig> {
        let mut keys: Vec<ZoneKey> = Vec::new();
        let errors_before = self.errors.len();
        for k in d.keys.get_ref() {
            let entry = k.get_ref();
            let path = base.join(entry.file.get_ref());
            let loaded = match read_key(&path) {
                Ok(key) => key,
                Err(message) => {
                    self.err(Some(entry.file.span()), message).hint =
                        Some("make one with `switchyard dnssec keygen ZONE --dir DIR`".into());
                    continue;
                }
            };
            if loaded.zone != zone.origin {
                self.err(
                    Some(entry.file.span()),
                    format!("key `{}` is for zone `{}`, not `{}`", path.display(), loaded.zone, zone.origin),
                );
                continue;
            }
            if keys.iter().any(|other| other.tag == loaded.tag) {
                self.err(Some(entry.file.span()), format!("key tag {} is listed twice", loaded.tag)).hint =
                    Some("two keys with one tag confuse validators: make a new key".into());
                continue;
            }
            keys.push(loaded.into_zone_key(path, entry.active.unwrap_or(true)));
        }
        if self.errors.len() == errors_before {
            if keys.is_empty() {
                self.err(Some(d.keys.span()), "`[dnssec]` needs at least one key").hint =
                    Some("make one with `switchyard dnssec keygen ZONE --dir DIR`".into());
            } else if !keys.iter().any(|k| k.active && k.role != KeyRole::Ksk) {
                self.err(Some(d.keys.span()), "no active key signs the zone's data").hint =
                    Some("one csk or zsk key needs `active = true` (the default)".into());
            } else if !keys.iter().any(|k| k.role.signs_keys()) {
                self.err(Some(d.keys.span()), "no key signs the DNSKEY set").hint =
                    Some("add a csk or ksk key (the parent's DS points at it)".into());
            }
            // Every algorithm in the DNSKEY set must sign every RRset, the DNSKEY set
            // included (RFC 4035 2.2, RFC 6840 5.11).
            for k in &keys {
                let signs_keys = keys.iter().any(|o| o.algorithm == k.algorithm && o.role.signs_keys());
                if !signs_keys {
                    self.err(
                        Some(d.keys.span()),
                        format!(
                            "key {} uses algorithm {} but no csk or ksk of that algorithm signs the DNSKEY set",
                            k.tag, k.algorithm
                        ),
                    )
                    .hint = Some("validators expect each algorithm in the DNSKEY set to sign it".into());
                }
                let signs_data = keys.iter().any(|o| o.algorithm == k.algorithm && o.active && o.role != KeyRole::Ksk);
                if !signs_data {
                    self.err(
                        Some(d.keys.span()),
                        format!(
                            "key {} uses algorithm {} but no active key of that algorithm signs the zone's data",
                            k.tag, k.algorithm
                        ),
                    )
                    .hint = Some("validators expect each algorithm in the DNSKEY set to sign every RRset".into());
                }
            }
        }
        let soa_ttl = zone.soa.ttl;
        let validity = self.duration(d.validity.as_ref(), Duration::from_secs(14 * 86400));
        let refresh = self.duration(d.refresh.as_ref(), Duration::from_secs(7 * 86400));
        let inception = self.duration(d.inception.as_ref(), Duration::from_secs(3600));
        if refresh >= validity {
            let at = d.refresh.as_ref().map(|r| r.span()).unwrap_or(span.clone());
            self.err(Some(at), "`refresh` must be shorter than `validity`").hint = Some(
                "signatures are made again when `refresh` is left of `validity`, e.g. validity 14d, refresh 7d".into(),
            );
        }
        if validity < Duration::from_secs(4) || validity > Duration::from_secs(366 * 86400) {
            let at = d.validity.as_ref().map(|r| r.span()).unwrap_or(span.clone());
            self.err(Some(at), "`validity` must be between 4 seconds and 366 days").hint =
                Some("days, e.g. \"14d\" (signature times are 32-bit serial numbers)".into());
        }
        if inception > Duration::from_secs(7 * 86400) {
            let at = d.inception.as_ref().map(|r| r.span()).unwrap_or(span.clone());
            self.err(Some(at), "`inception` must be at most 7 days").hint =
                Some("an hour covers resolvers with slow clocks".into());
        }
        let dnskey_ttl = self.ranged(&d.dnskey_ttl, "dnskey_ttl", 1..=604_800, soa_ttl, "1 to 604800 seconds");
        let cache_size =
            self.ranged(&d.cache_size, "cache_size", 16..=10_000_000, 10_000, "16 to 10000000 signed RRsets") as usize;
        if self.errors.len() != errors_before {
            return None;
        }
        Some(DnssecConfig { keys, validity, refresh, inception, dnskey_ttl, cache_size, cds: d.cds.unwrap_or(true) })
    }
}
