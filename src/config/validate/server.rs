//! `[server]`, `[admin]` and `[rrl]`: listeners, limits, ECS, the admin API, rate limiting.

use super::*;

impl Validator {
    pub(super) fn rrl(&mut self, raw: &raw::Rrl) -> RrlConfig {
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

    pub(super) fn admin(&mut self, raw: &raw::Admin, base: &Path) -> AdminConfig {
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
        let token_file = self.existing_file(&raw.token_file, base, "admin token file");
        AdminConfig { listen, token_file }
    }

    pub(super) fn server(&mut self, raw: &raw::Server, base: &Path) -> ServerConfig {
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
        let geoip_db = match (self.geoip_override.clone(), &raw.geoip_db) {
            // From the command line or the environment: relative to the working directory.
            (Some(o), _) => self.geoip_source(&o, Path::new("."), None, "--geoip / SWITCHYARD_GEOIP"),
            (None, Some(p)) => self.geoip_source(p.get_ref(), base, Some(p.span()), "geoip_db"),
            (None, None) => None,
        };
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
}

impl Validator {
    /// A GeoIP database setting: `"default"` (a copy beside the config or installed in
    /// the usual places, else the one built into the binary) or a path from `base`.
    fn geoip_source(
        &mut self,
        value: &str,
        base: &Path,
        span: Option<Range<usize>>,
        what: &str,
    ) -> Option<crate::config::GeoipSource> {
        use crate::config::{GEOIP_DEFAULT_PLACES, GeoipSource};
        if value == "default" {
            // Beside the config, or in a clone of the repository (config/ beside geoip/).
            let local = [base.join("default.mmdb"), base.join("../geoip/default.mmdb")];
            let found = local
                .into_iter()
                .chain(GEOIP_DEFAULT_PLACES.iter().map(std::path::PathBuf::from))
                .find(|p| p.is_file());
            return Some(found.map_or(GeoipSource::Bundled, GeoipSource::File));
        }
        let path = base.join(value);
        if path.is_file() {
            return Some(GeoipSource::File(path));
        }
        self.err(span, format!("GeoIP database `{}` ({what}) not found", path.display())).hint = Some(
            "a path relative to the config file; or \"default\": the bundled database, wherever switchyard is installed"
                .into(),
        );
        None
    }
}
