//! The per-query decision: from a query's bytes and a snapshot to the answer's bytes.
//! No sockets, no locks, no I/O; the listeners (`listen`) call it.
//!
//! `wire` reads the raw query (EDNS options, the question's shape); `client` decides
//! which address routing should use (ECS or resolver) and rejects malformed ECS;
//! `answer::resolve` is the pure function that decides every DNS outcome; `handler` is
//! the general path (hickory decodes and encodes around `resolve`); `fast` answers the
//! common shapes in place, byte for byte as the general path would; `sign` adds the
//! signatures and the denial of existence to answers for queries with DO.

pub mod answer;
pub mod client;
pub mod fast;
pub mod handler;
pub mod sign;
pub mod wire;
