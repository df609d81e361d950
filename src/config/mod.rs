//! Configuration: one TOML file, read in three steps.
//!
//! `raw` mirrors the file (serde, unknown keys rejected); `validate` checks meaning and
//! collects **every** error with its location and a hint; the result is a [`Config`]
//! whose names are resolved to region indices, ready for `model` to compile into the
//! hot-path tables. `check-config`, start-up and reload all run this same pipeline.
//! This module does no I/O beyond reading the one file, and never touches sockets.

mod raw;
mod validate;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::{Name, Record};
use ipnet::IpNet;

/// A validated configuration. Region references are indices into `regions`.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub zone: ZoneConfig,
    pub regions: Vec<RegionConfig>,
    pub names: Vec<NameConfig>,
    /// Latency table rows: area → RTT in ms per region (by index), `None` where unknown.
    pub latency: Vec<(Area, Vec<Option<u32>>)>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    pub geoip_db: Option<PathBuf>,
    pub ecs: bool,
    /// Resolvers whose ECS option is used; empty: every resolver's.
    pub ecs_trusted: Vec<IpNet>,
    pub edns_udp_size: u16,
    pub tcp_idle_timeout: Duration,
    pub chaos_version: Option<String>,
    pub chaos_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// Lower-case, fully qualified.
    pub origin: Name,
    /// The SOA record (owner: origin); its `minimum` is the negative TTL.
    pub soa: Record,
    /// NS records at the apex.
    pub ns: Vec<Record>,
    /// Static records, including the name servers' glue; owners lower-case and absolute.
    pub records: Vec<Record>,
}

#[derive(Debug, Clone)]
pub struct RegionConfig {
    pub name: String,
    /// Latitude and longitude in degrees.
    pub location: Option<(f64, f64)>,
    pub a: Vec<Ipv4Addr>,
    pub aaaa: Vec<Ipv6Addr>,
    pub cname: Option<Name>,
    pub weight: u32,
    /// Geoproximity bias, percent (-99..=99).
    pub bias: i32,
    pub drained: bool,
}

#[derive(Debug, Clone)]
pub struct NameConfig {
    /// The key under `[names]`, as written.
    pub key: String,
    /// Lower-case, fully qualified.
    pub fqdn: Name,
    pub policy: Policy,
    /// Candidate regions in configured order.
    pub regions: Vec<usize>,
    pub answers: usize,
    pub ttl: u32,
    pub failover_ttl: u32,
    pub when_all_down: AllDown,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    Latency {
        tie_window: u32,
    },
    Nearest,
    Geo {
        map: Vec<(Area, Vec<usize>)>,
        default: Vec<usize>,
    },
    Failover,
    /// Weights by region index (all regions, 0 where the name does not use one).
    Weighted {
        weights: Vec<u32>,
    },
    Multivalue,
    Static,
}

impl Policy {
    pub fn kind(&self) -> &'static str {
        match self {
            Policy::Latency { .. } => "latency",
            Policy::Nearest => "nearest",
            Policy::Geo { .. } => "geo",
            Policy::Failover => "failover",
            Policy::Weighted { .. } => "weighted",
            Policy::Multivalue => "multivalue",
            Policy::Static => "static",
        }
    }
}

/// What to answer when no candidate region is up.
#[derive(Debug, Clone, PartialEq)]
pub enum AllDown {
    /// Answer as if every candidate were up.
    FailOpen,
    ServFail,
    /// A fixed "sorry" answer.
    Fallback {
        a: Vec<Ipv4Addr>,
        aaaa: Vec<Ipv6Addr>,
        cname: Option<Name>,
    },
}

/// A client area, the key of a latency row or a geo map entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Area {
    Default,
    Continent([u8; 2]),
    Country([u8; 2]),
    /// Country and ISO 3166-2 subdivision code, e.g. `US` + `CA`.
    Subdivision([u8; 2], String),
    Cidr(IpNet),
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = |c: &[u8; 2]| String::from_utf8_lossy(c).into_owned();
        match self {
            Area::Default => f.write_str("default"),
            Area::Continent(c) => write!(f, "continent:{}", code(c)),
            Area::Country(c) => write!(f, "country:{}", code(c)),
            Area::Subdivision(c, s) => write!(f, "subdivision:{}-{}", code(c), s),
            Area::Cidr(net) => write!(f, "cidr:{net}"),
        }
    }
}

/// The continent codes GeoIP databases use.
pub const CONTINENTS: &[&str] = &["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

impl Area {
    /// Parses `default`, `continent:EU`, `country:GB`, `subdivision:US-CA`,
    /// `cidr:192.0.2.0/24` or a bare CIDR.
    pub fn parse(s: &str) -> Result<Area, String> {
        fn code(s: &str, what: &str) -> Result<[u8; 2], String> {
            let b = s.as_bytes();
            if b.len() == 2 && b.iter().all(u8::is_ascii_uppercase) {
                Ok([b[0], b[1]])
            } else {
                Err(format!("{what} code `{s}` must be two upper-case letters"))
            }
        }
        if s == "default" {
            return Ok(Area::Default);
        }
        let (kind, rest) = match s.split_once(':') {
            _ if s.parse::<IpNet>().is_ok() => ("cidr", s),
            Some((k, r)) if k.bytes().all(|b| b.is_ascii_lowercase()) => (k, r),
            _ => ("cidr", s),
        };
        match kind {
            "continent" => {
                let c = code(rest, "continent")?;
                if CONTINENTS.contains(&rest) {
                    Ok(Area::Continent(c))
                } else {
                    Err(format!(
                        "unknown continent `{rest}` (one of {})",
                        CONTINENTS.join(" ")
                    ))
                }
            }
            "country" => Ok(Area::Country(code(rest, "country")?)),
            "subdivision" => {
                let (c, sub) = rest
                    .split_once('-')
                    .ok_or_else(|| format!("subdivision `{rest}` must look like `US-CA`"))?;
                if sub.is_empty()
                    || sub.len() > 3
                    || !sub.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(format!("subdivision `{rest}` must look like `US-CA`"));
                }
                Ok(Area::Subdivision(
                    code(c, "country")?,
                    sub.to_ascii_uppercase(),
                ))
            }
            "cidr" => {
                let net: IpNet = rest
                    .parse()
                    .map_err(|_| format!("`{rest}` is not a CIDR network such as 192.0.2.0/24"))?;
                if net.trunc() != net {
                    return Err(format!(
                        "`{rest}` has host bits set; did you mean {}?",
                        net.trunc()
                    ));
                }
                Ok(Area::Cidr(net))
            }
            other => Err(format!(
                "unknown area kind `{other}` (use default, continent:, country:, subdivision: or a CIDR)"
            )),
        }
    }
}

/// One problem in a config file: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub span: Option<Range<usize>>,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        Diagnostic {
            span,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Every problem found in one file, with the text needed to show where each one is.
#[derive(Debug)]
pub struct ConfigErrors {
    pub path: PathBuf,
    pub text: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigErrors {
    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match &d.span {
                Some(span) => {
                    let (line, col) = self.line_col(span.start);
                    writeln!(f, "{path}:{line}:{col}: error: {}", d.message)?;
                    if let Some(src) = self.text.lines().nth(line - 1) {
                        let width = self.text[span.clone()]
                            .lines()
                            .next()
                            .map_or(1, |l| l.chars().count().max(1));
                        writeln!(f, "  {line:>4} | {src}")?;
                        writeln!(
                            f,
                            "       | {}{}",
                            " ".repeat(col - 1),
                            "^".repeat(width.min(80))
                        )?;
                    }
                }
                None => writeln!(f, "{path}: error: {}", d.message)?,
            }
            if let Some(hint) = &d.hint {
                writeln!(f, "       = hint: {hint}")?;
            }
        }
        write!(
            f,
            "{} error{} in {path}",
            self.diagnostics.len(),
            if self.diagnostics.len() == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for ConfigErrors {}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Box<ConfigErrors>),
}

/// Reads and validates a config file. Relative paths inside it are taken from the
/// file's own directory.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })?;
    let base = path.parent().map(Path::to_owned).unwrap_or_default();
    parse(&text, &base).map_err(|diagnostics| {
        LoadError::Invalid(Box::new(ConfigErrors {
            path: path.to_owned(),
            text,
            diagnostics,
        }))
    })
}

/// Parses and validates config text; `base` resolves relative paths.
pub fn parse(text: &str, base: &Path) -> Result<Config, Vec<Diagnostic>> {
    validate::parse(text, base)
}
