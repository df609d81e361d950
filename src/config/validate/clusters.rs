//! `[clusters]`: database clusters, their members, and the older one-member-per-region
//! form (`[regions.NAME.database]`), read as the members of a cluster named `default`.

use super::regions::CheckDefaults;
use super::*;

/// The cluster the older `[regions.NAME.database]` members belong to.
pub(super) const LEGACY_CLUSTER: &str = "default";

impl Validator {
    pub(super) fn clusters(
        &mut self,
        s: &Sections<'_>,
        regions: &[RegionConfig],
        health: &HealthSettings,
        defaults: &CheckDefaults,
        base: &Path,
    ) -> Vec<ClusterConfig> {
        let mut out = Vec::new();
        let legacy: Vec<(&S<String>, &S<raw::Check>)> =
            s.regions.iter().filter_map(|(name, r)| r.database.as_ref().map(|db| (name, db))).collect();
        // `[clusters.default]` may hold the settings (no members) of the older form's cluster.
        let legacy_settings = s.clusters.iter().find(|(k, _)| k.get_ref() == LEGACY_CLUSTER);
        if !legacy.is_empty() {
            if let Some((key, c)) = legacy_settings
                && c.members.is_some()
            {
                self.err(
                    Some(key.span()),
                    format!("cluster `{LEGACY_CLUSTER}` is also made of `[regions.*.database]` members"),
                )
                .hint = Some(format!(
                    "move each `[regions.NAME.database]` into `[clusters.{LEGACY_CLUSTER}.members.NAME]` with `region = \"NAME\"`"
                ));
            }
            let mut members = Vec::new();
            for &(region_key, db) in &legacy {
                let Some(region) = regions.iter().position(|r| r.name == *region_key.get_ref()) else {
                    continue;
                };
                let name = region_key.get_ref().clone();
                let id = format!("{LEGACY_CLUSTER}/{name}");
                let Some(check) = self.check(&id, db, defaults, base, true) else { continue };
                members.push(MemberConfig {
                    name,
                    region,
                    endpoint: region_endpoint(&regions[region]),
                    application_name: None,
                    check,
                });
            }
            let settings = legacy_settings.map(|(_, c)| self.cluster_settings(c, health));
            let (system_identifier, writer_grace, fail_open_max_age) =
                settings.unwrap_or((None, health.writer_grace, DEFAULT_FAIL_OPEN_MAX_AGE));
            out.push(ClusterConfig {
                name: LEGACY_CLUSTER.to_owned(),
                system_identifier,
                writer_grace,
                fail_open_max_age,
                members,
            });
        }
        for (key, c) in &s.clusters {
            let name = key.get_ref().clone();
            if !valid_label(&name) {
                self.err(Some(key.span()), format!("cluster name `{name}` is not valid")).hint =
                    Some("use lower-case letters, digits, `-` and `_`, e.g. `orders`".into());
            }
            if name == LEGACY_CLUSTER && !legacy.is_empty() {
                continue;
            }
            let (system_identifier, writer_grace, fail_open_max_age) = self.cluster_settings(c, health);
            let mut members = Vec::new();
            match &c.members {
                Some(m) if !m.get_ref().is_empty() => {
                    for (member_key, member) in m.get_ref() {
                        if let Some(m) = self.member(&name, member_key, member, regions, defaults, base) {
                            members.push(m);
                        }
                    }
                }
                Some(m) => {
                    self.err(Some(m.span()), format!("cluster `{name}` has no members"));
                }
                None => {
                    self.err(Some(key.span()), format!("cluster `{name}` has no members")).hint = Some(format!(
                        "add `[clusters.{name}.members.NAME]` with `region`, `kind` and `dsn` (or `url`)"
                    ));
                }
            }
            out.push(ClusterConfig { name, system_identifier, writer_grace, fail_open_max_age, members });
        }
        out
    }

    /// A cluster's identity, writer grace and fail-open age.
    fn cluster_settings(&mut self, c: &raw::Cluster, health: &HealthSettings) -> (Option<u64>, Duration, Duration) {
        let system_identifier = c.system_identifier.as_ref().and_then(|id| match id.get_ref().parse::<u64>() {
            Ok(v) if v != 0 => Some(v),
            _ => {
                self.err(Some(id.span()), format!("`{}` is not a PostgreSQL system identifier", id.get_ref())).hint =
                    Some(
                        "the decimal number `SELECT system_identifier FROM pg_control_system()` shows, in quotes"
                            .into(),
                    );
                None
            }
        });
        let writer_grace = self.duration(c.writer_grace.as_ref(), health.writer_grace);
        let fail_open_max_age = self.duration(c.fail_open_max_age.as_ref(), DEFAULT_FAIL_OPEN_MAX_AGE);
        (system_identifier, writer_grace, fail_open_max_age)
    }

    fn member(
        &mut self,
        cluster: &str,
        key: &S<String>,
        raw: &S<raw::Member>,
        regions: &[RegionConfig],
        defaults: &CheckDefaults,
        base: &Path,
    ) -> Option<MemberConfig> {
        let m = raw.get_ref();
        let name = key.get_ref().clone();
        if !valid_label(&name) {
            self.err(Some(key.span()), format!("member name `{name}` is not valid")).hint =
                Some("use lower-case letters, digits, `-` and `_`, e.g. `pg-us-east-1`".into());
        }
        let region = self.region_ref(&m.region, regions);
        let a: Vec<Ipv4Addr> = m.a.iter().filter_map(|s| self.parse(s, "IPv4 address")).collect();
        let aaaa: Vec<Ipv6Addr> = m.aaaa.iter().filter_map(|s| self.parse(s, "IPv6 address")).collect();
        let cname = m.cname.as_ref().and_then(|c| {
            if !c.get_ref().ends_with('.') {
                self.err(Some(c.span()), "a member's cname must be fully qualified").hint =
                    Some(format!("end it with a dot: \"{}.\"", c.get_ref()));
                return None;
            }
            self.domain(c, None, "cname target")
        });
        if m.cname.is_some() && (!m.a.is_empty() || !m.aaaa.is_empty()) {
            self.err(Some(key.span()), format!("member `{name}` has both a cname and addresses")).hint =
                Some("a member answers either with addresses (a/aaaa) or with one CNAME".into());
        }
        let check =
            self.check(&format!("{cluster}/{name}"), &Spanned::new(raw.span(), m.check()), defaults, base, true);
        let region = region?;
        let endpoint = if m.cname.is_none() && m.a.is_empty() && m.aaaa.is_empty() {
            region_endpoint(&regions[region])
        } else {
            Endpoint { a, aaaa, cname }
        };
        Some(MemberConfig {
            name,
            region,
            endpoint,
            application_name: m.application_name.as_ref().map(|a| a.get_ref().clone()),
            check: check?,
        })
    }
}

/// `fail_open` answers a primary last observed at most this long ago, by default.
const DEFAULT_FAIL_OPEN_MAX_AGE: Duration = Duration::from_secs(15 * 60);

fn region_endpoint(r: &RegionConfig) -> Endpoint {
    Endpoint { a: r.a.clone(), aaaa: r.aaaa.clone(), cname: r.cname.clone() }
}

fn valid_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}
