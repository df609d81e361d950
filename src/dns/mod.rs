//! The DNS side: sockets, the hickory-server request handler, and the one function
//! that turns a query and a snapshot into a response.
//!
//! `handler` adapts hickory-server's `RequestHandler` (which sees EDNS and the source
//! address) to [`answer::resolve`], a pure function over the current snapshot;
//! `client` decides which address routing should use (ECS or resolver) and rejects
//! malformed ECS; `server` binds the UDP listeners (`udp`, with `fast` beside the
//! handler) and the TCP listeners (`tcp`, with connection limits and timeouts).

pub mod answer;
pub mod client;
pub mod fast;
pub mod handler;
pub mod rrl;
pub mod server;
pub mod tcp;
pub mod udp;
pub mod wire;
