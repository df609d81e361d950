//! switchyard: an authoritative DNS server for a delegated zone that answers every
//! GSLB name with the nearest healthy region.
//!
//! # Layout: two planes and a bridge
//!
//! The per-query plane (no locks, no I/O beyond its sockets, no waiting on the control
//! plane):
//! - `listen`: the sockets: UDP workers, the TCP accept loop, response rate limiting.
//! - `query`: one query's bytes and a snapshot to the answer's bytes (fast path, general
//!   path, ECS, the pure `resolve`).
//! - `routing`: one ranking per policy, then health filter, cut, all-down rule, TTL.
//! - `model`: the compiled, immutable tables a query reads (zone, names, regions).
//! - `geo`: GeoIP lookups and distances; `hash`: stable hashes (a leaf).
//!
//! The bridge:
//! - `state`: the snapshot (model + health) swapped atomically; `metrics`: Prometheus
//!   handles, and the lock-free counters the query plane bumps.
//!
//! The control plane:
//! - `config`: the TOML file, validated with every error located.
//! - `health`: probes, hysteresis, region aggregation, writer election, state file.
//! - `fleet`: the NATS JetStream bucket the instances share observations and operator
//!   actions through.
//! - `notify`: signed, retried webhooks to the application when the writer changes.
//! - `reload`: SIGHUP, `POST /reload` and file watching, all through one reload path.
//! - `admin`: the HTTP admin server (metrics, status, explain, drain, reload, events);
//!   `recent`: the status page's log of check results and state changes.
//! - `events`: the failover record (each region transition and writer change with its
//!   timeline, kept beside the state file).
//! - `app`: wiring; `cli`: the subcommands; `demo`: stand-in gateways; `init`: the
//!   starter config.
//! - `fuzzing`: the request path and the config loader as the fuzz targets call them.
//!
//! Arrows point one way: `listen` → `query` → `routing`/`model` → `geo`/`hash`; the
//! control plane → `model` → `config`. The two planes meet only in `state`.

// The per-query plane.
pub mod geo;
pub mod hash;
pub mod listen;
pub mod model;
pub mod query;
pub mod routing;

// The bridge.
pub mod metrics;
pub mod state;

// The control plane.
pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod events;
pub mod fleet;
pub mod fuzzing;
pub mod health;
pub mod init;
pub mod notify;
pub mod recent;
pub mod reload;
