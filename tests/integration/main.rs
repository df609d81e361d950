//! Integration tests: the real server on real UDP and TCP sockets, with hickory-proto
//! and `dig` as clients, and the built binary for the CLI.

mod support;

/// Floods, slowloris and amplification: RRL, TCP limits and timeouts, answer sizes.
mod abuse;
/// The admin HTTP API: endpoints, token, drains, promtool.
mod admin;
// Which module may import which; where serde's derives may appear.
mod architecture;
/// The CLI: `explain`, `geoip lookup`, `check-config`, `serve` with the example config.
mod cli;
/// Database clusters on real PostgreSQL: identity, honest lag, several clusters, cascading.
mod clusters;
/// `check-config` on broken files: the exact error each one gets.
mod config_errors;
/// SIGKILL and restart: the state file answers within a second; a truncated one is ignored.
mod crash;
/// DNSSEC: unbound and delv validate signed answers; a rollover under a signed parent.
mod dnssec;
/// The DR drill: kill the writer region, promote a standby, query all the while.
mod drill;
/// EDNS Client Subnet (RFC 7871): scopes, trust, malformed options.
mod ecs;
/// The failover record and the application's notifications: webhooks through an
/// outage, a NATS subject, the record across a restart.
mod events;
/// The UDP fast path against the general path: byte-identical answers.
mod fastpath;
/// Several instances, one verdict: shared observations through a real nats-server.
mod fleet;
/// Every kept fuzz input (seeds and regressions) through the fuzz targets' code.
mod fuzz_regressions;
/// GeoIP schemas: MaxMind's own test databases and the flat `country_code` schema.
mod geoip;
/// Health checks against gateways turned sick in every way: exact fall/rise counts.
mod health;
/// Hostile health targets (1 GiB body, redirect loop, TLS and PostgreSQL that never
/// speak, a name that does not resolve, a drip): down within the timeout, nothing delayed.
mod hostile;
/// Webhooks to a real receiver that is down, slow, redirecting or hung: one delivery per
/// event, signed, the oldest dropped from a full queue, `notify` never waiting.
mod notify;
/// deploy/: dashboard and rules against /metrics, promtool, a real Prometheus, the k8s config.
mod observability;
/// TLS to a real PostgreSQL: each sslmode against the right and wrong name and CA.
mod pg_tls;
/// Every routing policy, with clients on five continents by ECS, IPv4 and IPv6.
mod policies;
/// DNS protocol behaviour over UDP and TCP (RFC 1034/1035, 2308, 6891, 7766, 8482).
mod protocol;
/// SIGHUP twenty times under UDP and TCP load: nothing lost.
mod reload;
/// Residency: no answer crosses a jurisdiction's border, whatever is down.
mod residency;
/// A real resolver (unbound with ECS) in front of the server.
mod resolver;
/// The writer and reader names against a real PostgreSQL primary and standbys.
mod writer;
/// `[zone] file`: an RFC 1035 master file, as written and as a peer exports it.
mod zonefile;
