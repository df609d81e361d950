//! The compiled routing table: what the DNS path reads.
//!
//! A [`Model`] is built once per config load from a validated `Config` and the GeoIP
//! database, and never changes afterwards: names are resolved to indices, area tables
//! to tries and hash maps, static records to RRsets keyed by wire-format name. It holds
//! no health state (that is `state::HealthView`) and does no I/O.

pub mod area;
pub mod dnssec;
pub mod zone;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::rr::Name;
use ipnet::IpNet;

use crate::config::{self, Area, Config, Policy, ReaderOrder};
use crate::geo::GeoDb;
use area::AreaTable;
use zone::Zone;

/// Region indices; `u16` keeps candidate lists small and inline.
pub type RegionId = u16;

/// Member indices within their cluster.
pub type MemberId = u16;

/// What the DNS path reads: compiled from a validated `Config`, which itself stays on
/// the control plane (no DSN, token or check spec is reachable from a query).
#[derive(Debug)]
pub struct Model {
    pub zone: Zone,
    pub names: Vec<GslbName>,
    /// Indexed by `RegionId`, in the config's order.
    pub regions: Vec<Region>,
    /// Database clusters, indexed like `Config::clusters`.
    pub clusters: Vec<Cluster>,
    /// How many `reader` names there are (each has a slot in `HealthView::readers`).
    pub readers: usize,
    /// Jurisdictions, for names with strict residency.
    pub residency: Residency,
    pub dns: DnsSettings,
    pub geo: Option<Arc<GeoDb>>,
    /// Each region's slot in the query counters.
    pub metric_slots: Vec<u16>,
    /// The zone is signed: the keys and the signature cache.
    pub signer: Option<dnssec::Signer>,
}

/// Where the query counters count a config's regions and jurisdictions.
#[derive(Debug, Clone)]
pub struct MetricSlots {
    /// One per region, in order.
    pub regions: Vec<u16>,
    /// One per jurisdiction, in order.
    pub jurisdictions: Vec<u16>,
    /// Where signing counts what it does.
    pub signing: Arc<dnssec::SignCounters>,
}

impl MetricSlots {
    /// Slot 0 for everything: a model nothing counts for (tests, `explain`).
    pub fn none(config: &Config) -> MetricSlots {
        MetricSlots {
            regions: vec![0; config.regions.len()],
            jurisdictions: vec![0; config.jurisdictions.len()],
            signing: Arc::default(),
        }
    }
}

/// The jurisdictions and the client table that says whose client is whose.
#[derive(Debug)]
pub struct Residency {
    /// Client area → jurisdiction index.
    pub clients: AreaTable<u16>,
    pub jurisdictions: Vec<Jurisdiction>,
}

#[derive(Debug)]
pub struct Jurisdiction {
    pub name: String,
    pub regions: Vec<RegionId>,
    /// The in-jurisdiction fixed answer (`AllDown::Fallback`).
    pub sorry: Option<AllDown>,
    /// Its slot in the residency counter.
    pub metric_slot: u16,
}

/// What a strict name answers a client of unknown location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlocated {
    Open,
    ServFail,
    As(u16),
}

/// A region as the DNS path sees it.
#[derive(Debug, Clone)]
pub struct Region {
    pub name: String,
    pub a: Vec<Ipv4Addr>,
    pub aaaa: Vec<Ipv6Addr>,
    pub cname: Option<Name>,
    /// Latitude and longitude in degrees.
    pub location: Option<(f64, f64)>,
    /// Geoproximity bias, percent (-99..=99).
    pub bias: i32,
    /// A stable hash of the name, for sticky choices that survive config reordering.
    pub hash: u64,
    /// Drained by the config (an operator's drain overrides it).
    pub drained: bool,
    /// The health engine maintains the region's state (it has gateway checks).
    pub probed: bool,
}

/// A database cluster as the DNS path sees it: its members' endpoints.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub region: RegionId,
    pub a: Vec<Ipv4Addr>,
    pub aaaa: Vec<Ipv6Addr>,
    pub cname: Option<Name>,
}

/// The `[server]` settings a query reads.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    pub ecs: bool,
    /// Resolvers whose ECS option is used; empty: every resolver's.
    pub ecs_trusted: Vec<IpNet>,
    pub edns_udp_size: u16,
    /// Whether UDP queries try the fast path first.
    pub fast_path: bool,
    pub chaos_version: Option<String>,
    pub chaos_id: Option<String>,
}

#[derive(Debug)]
pub struct GslbName {
    pub fqdn: Name,
    /// The key under `[names]`, as written.
    pub key: String,
    /// Some answer of this name may be a CNAME (a CNAME region or fallback).
    pub may_cname: bool,
    pub ranker: Ranker,
    /// The policy's name, as the config spells it.
    pub policy: &'static str,
    pub regions: Vec<RegionId>,
    pub answers: usize,
    pub ttl: u32,
    pub failover_ttl: u32,
    pub when_all_down: AllDown,
    /// `Some`: strict residency, with the treatment of clients of unknown location.
    pub residency: Option<Unlocated>,
}

/// How a name orders its regions for a client: the policy, with its tables compiled.
#[derive(Debug)]
pub enum Ranker {
    Latency {
        /// One table, shared by every name that uses it.
        table: Arc<AreaTable<Vec<Option<u32>>>>,
        tie_window: u32,
    },
    Nearest,
    Geo {
        table: Box<AreaTable<Vec<RegionId>>>,
    },
    Failover,
    Weighted {
        weights: Vec<u32>,
    },
    Multivalue,
    Static,
    /// The cluster's writer member.
    Writer {
        cluster: u16,
        require_gateway: bool,
    },
    /// `order` is `Nearest` or `Latency`; `slot` indexes `HealthView::readers`, where
    /// the engine keeps which members are within this name's `max_lag`.
    Reader {
        cluster: u16,
        order: Box<Ranker>,
        slot: usize,
        require_gateway: bool,
    },
}

/// What to answer when no candidate region is usable.
#[derive(Debug, Clone, PartialEq)]
pub enum AllDown {
    /// Answer as if every candidate were up (`writer`: the last primary observed).
    FailOpen,
    /// `reader`: the cluster's writer.
    Writer,
    ServFail,
    /// A fixed "sorry" answer.
    Fallback {
        a: Vec<Ipv4Addr>,
        aaaa: Vec<Ipv6Addr>,
        cname: Option<Name>,
    },
}

impl From<&config::AllDown> for AllDown {
    fn from(a: &config::AllDown) -> AllDown {
        match a {
            config::AllDown::FailOpen => AllDown::FailOpen,
            config::AllDown::Writer => AllDown::Writer,
            config::AllDown::ServFail => AllDown::ServFail,
            config::AllDown::Fallback { a, aaaa, cname } => {
                AllDown::Fallback { a: a.clone(), aaaa: aaaa.clone(), cname: cname.clone() }
            }
        }
    }
}

impl Model {
    /// Compiles `config`; `metric_slots` are the regions' slots in the query counters
    /// (one per region, in order; zeros where nothing counts).
    pub fn new(config: &Config, geo: Option<Arc<GeoDb>>, slots: MetricSlots) -> Model {
        assert_eq!(slots.regions.len(), config.regions.len(), "a metric slot per region");
        assert_eq!(slots.jurisdictions.len(), config.jurisdictions.len(), "a metric slot per jurisdiction");
        let latency = std::cell::OnceCell::new();
        let latency = || latency.get_or_init(|| Arc::new(AreaTable::new(config.latency.iter().cloned()))).clone();
        let ids = |v: &[usize]| v.iter().map(|&i| i as RegionId).collect::<Vec<_>>();
        let mut readers = 0;
        let names: Vec<GslbName> = config
            .names
            .iter()
            .map(|n| {
                let ranker = match &n.policy {
                    Policy::Latency { tie_window } => Ranker::Latency { table: latency(), tie_window: *tie_window },
                    Policy::Nearest => Ranker::Nearest,
                    Policy::Geo { map, default } => Ranker::Geo {
                        table: Box::new(AreaTable::new(
                            map.iter()
                                .map(|(a, rs)| (a.clone(), ids(rs)))
                                .chain(std::iter::once((Area::Default, ids(default)))),
                        )),
                    },
                    Policy::Failover => Ranker::Failover,
                    Policy::Weighted { weights } => Ranker::Weighted { weights: weights.clone() },
                    Policy::Multivalue => Ranker::Multivalue,
                    Policy::Static => Ranker::Static,
                    Policy::Writer { cluster, require_gateway } => {
                        Ranker::Writer { cluster: *cluster as u16, require_gateway: *require_gateway }
                    }
                    Policy::Reader { cluster, order, require_gateway, .. } => {
                        readers += 1;
                        Ranker::Reader {
                            cluster: *cluster as u16,
                            order: Box::new(match order {
                                ReaderOrder::Nearest => Ranker::Nearest,
                                ReaderOrder::Latency { tie_window } => {
                                    Ranker::Latency { table: latency(), tie_window: *tie_window }
                                }
                            }),
                            slot: readers - 1,
                            require_gateway: *require_gateway,
                        }
                    }
                };
                let member_cname = match &n.policy {
                    Policy::Writer { cluster, .. } | Policy::Reader { cluster, .. } => {
                        config.clusters[*cluster].members.iter().any(|m| m.endpoint.cname.is_some())
                    }
                    _ => false,
                };
                let may_cname = member_cname
                    || n.regions.iter().any(|&r| config.regions[r].cname.is_some())
                    || matches!(&n.when_all_down, config::AllDown::Fallback { cname: Some(_), .. })
                    // A strict name's clients may get their jurisdiction's sorry CNAME.
                    || (n.residency.is_some()
                        && config.jurisdictions.iter().any(|j| matches!(&j.sorry, Some(config::AllDown::Fallback { cname: Some(_), .. }))))
                    || matches!(&n.policy, Policy::Geo { map, default }
                        if map.iter().flat_map(|(_, rs)| rs).chain(default).any(|&r| config.regions[r].cname.is_some()));
                GslbName {
                    fqdn: n.fqdn.clone(),
                    key: n.key.clone(),
                    may_cname,
                    ranker,
                    policy: n.policy.kind(),
                    regions: ids(&n.regions),
                    answers: n.answers,
                    ttl: n.ttl,
                    failover_ttl: n.failover_ttl,
                    when_all_down: AllDown::from(&n.when_all_down),
                    residency: n.residency.map(|u| match u {
                        config::Unlocated::Open => Unlocated::Open,
                        config::Unlocated::ServFail => Unlocated::ServFail,
                        config::Unlocated::As(j) => Unlocated::As(j as u16),
                    }),
                }
            })
            .collect();
        let fqdns: Vec<Name> = names.iter().map(|n| n.fqdn.clone()).collect();
        let zone = Zone::new(&config.zone, config.dnssec.as_ref(), &fqdns);
        let regions = config
            .regions
            .iter()
            .map(|r| Region {
                name: r.name.clone(),
                a: r.a.clone(),
                aaaa: r.aaaa.clone(),
                cname: r.cname.clone(),
                location: r.location,
                bias: r.bias,
                hash: crate::hash::hash_bytes(r.name.as_bytes()),
                drained: r.drained,
                probed: !r.checks.is_empty(),
            })
            .collect();
        let clusters = config
            .clusters
            .iter()
            .map(|c| Cluster {
                name: c.name.clone(),
                members: c
                    .members
                    .iter()
                    .map(|m| Member {
                        name: m.name.clone(),
                        region: m.region as RegionId,
                        a: m.endpoint.a.clone(),
                        aaaa: m.endpoint.aaaa.clone(),
                        cname: m.endpoint.cname.clone(),
                    })
                    .collect(),
            })
            .collect();
        let s = &config.server;
        let dns = DnsSettings {
            ecs: s.ecs,
            ecs_trusted: s.ecs_trusted.clone(),
            edns_udp_size: s.edns_udp_size,
            fast_path: s.fast_path,
            chaos_version: s.chaos_version.clone(),
            chaos_id: s.chaos_id.clone(),
        };
        let residency = Residency {
            clients: AreaTable::new(
                config
                    .jurisdictions
                    .iter()
                    .enumerate()
                    .flat_map(|(j, jur)| jur.clients.iter().map(move |a| (a.clone(), j as u16))),
            ),
            jurisdictions: config
                .jurisdictions
                .iter()
                .zip(&slots.jurisdictions)
                .map(|(j, &slot)| Jurisdiction {
                    name: j.name.clone(),
                    regions: ids(&j.regions),
                    sorry: j.sorry.as_ref().map(AllDown::from),
                    metric_slot: slot,
                })
                .collect(),
        };
        let metric_slots = slots.regions;
        // Keys were read and checked when the config was validated.
        let signer = config.dnssec.as_ref().and_then(|d| {
            let statics = zone.signable();
            dnssec::Signer::new(
                d,
                &config.zone.origin,
                slots.signing.clone(),
                &statics,
                &zone.negative_soa(),
                dnssec::unix_now(),
            )
            .map_err(|e| tracing::error!(error = %e, "cannot use a DNSSEC key; the zone is served unsigned"))
            .ok()
        });
        Model { zone, names, regions, clusters, readers, residency, dns, geo, metric_slots, signer }
    }

    pub fn region_name(&self, id: RegionId) -> &str {
        &self.regions[id as usize].name
    }

    pub fn region_index(&self, name: &str) -> Option<RegionId> {
        self.regions.iter().position(|r| r.name == name).map(|i| i as RegionId)
    }

    pub fn name_index(&self, fqdn: &Name) -> Option<usize> {
        self.names.iter().position(|n| n.fqdn == *fqdn)
    }

    /// Whether the health engine has anything to probe.
    pub fn probed(&self) -> bool {
        self.regions.iter().any(|r| r.probed) || self.clusters.iter().any(|c| !c.members.is_empty())
    }
}
