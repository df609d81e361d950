//! The listeners: sockets and what is bound to them. `server` binds the UDP workers
//! (`udp`: SO_REUSEPORT threads, recvmmsg/sendmmsg batches) and the TCP listeners
//! (`tcp`: our own accept loop with connection limits and timeouts); `rrl` limits UDP
//! answers per client prefix. Every answer comes from `query`.

pub mod rrl;
pub mod server;
pub mod tcp;
pub mod udp;
