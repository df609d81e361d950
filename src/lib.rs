//! switchyard: an authoritative DNS server for a delegated zone that answers every
//! GSLB name with the nearest healthy region.
//!
//! # Layout
//!
//! - `config`: the TOML file, validated with every error located (`raw` → `validate`).
//! - `model`: the compiled, immutable routing table (zone nodes, area tables).
//! - `geo`: GeoIP lookups (MaxMind and ip-location-db schemas) and distances.
//! - `routing`: one ranking per policy, then health filter, cut, all-down rule, TTL.
//! - `health`: probes, hysteresis, region aggregation, writer election, state file.
//! - `state`: the snapshot (model + health) swapped atomically; the DNS path reads it.
//! - `dns`: hickory-server handler, ECS, the pure query → response function, sockets.
//! - `admin`: the HTTP admin server (metrics, status, explain, drain, reload).
//! - `metrics`: Prometheus names and handles; lock-free query counters.
//! - `fuzzing`: the request path and the config loader as the fuzz targets call them.
//! - `app`: wiring; `cli`: the subcommands; `demo`: stand-in gateways for `switchyard demo`.
//!
//! The hot path is `dns::handler` → `dns::answer` → `model` → `geo` → `routing`; the
//! control plane meets it only through `state::State`.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod dns;
pub mod fuzzing;
pub mod geo;
pub mod health;
pub mod metrics;
pub mod model;
pub mod routing;
pub mod state;
