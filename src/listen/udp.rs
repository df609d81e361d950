//! The UDP listeners: one blocking worker thread per socket, the sockets sharing the
//! port with SO_REUSEPORT so the kernel spreads queries over them.
//!
//! Each query goes to the fast path first (`fast`); what it declines goes to the
//! general path: the same hickory request handler as TCP, run to completion on the
//! tokio runtime from this thread and encoded as hickory-server would encode it. A
//! worker reuses its buffers; it never spawns a task per query.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use socket2::{Domain, Socket, Type};
use tracing::{debug, warn};

use super::rrl;
use crate::metrics::{Metrics, qtype_index, rcode_index};
use crate::query::fast;
use crate::query::handler::{Handler, general};
use crate::state::State;

/// The bound UDP sockets of one address, and their workers.
pub struct UdpWorkers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn reuseport_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    let s: UdpSocket = s.into();
    // Wake up now and then to notice a shutdown.
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    Ok(s)
}

/// Binds the first socket (port 0: any free port).
pub fn bind_first(addr: SocketAddr) -> io::Result<UdpSocket> {
    reuseport_socket(addr)
}

/// What every worker shares.
#[derive(Clone)]
pub struct Shared {
    pub handler: Arc<Handler>,
    pub state: Arc<State>,
    pub metrics: Arc<Metrics>,
    pub rrl: Arc<rrl::Slot>,
    pub runtime: tokio::runtime::Handle,
}

impl UdpWorkers {
    /// Starts `count` workers on `first` and `count - 1` more sockets on its address.
    pub fn start(first: UdpSocket, count: usize, shared: Shared) -> io::Result<UdpWorkers> {
        let addr = first.local_addr()?;
        let mut sockets = vec![first];
        for _ in 1..count.max(1) {
            sockets.push(reuseport_socket(addr)?);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            let (stop, shared) = (stop.clone(), shared.clone());
            threads.push(
                std::thread::Builder::new().name(format!("udp-{i}")).spawn(move || serve(socket, &stop, &shared))?,
            );
        }
        Ok(UdpWorkers { stop, threads })
    }

    /// Stops the workers (within their 100 ms wake-up) and waits for them.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for UdpWorkers {
    /// Workers never outlive their handle, even when start-up fails half-way.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Packets a worker takes from the kernel (and gives back) in one system call.
const BATCH: usize = 32;

/// Receives up to `BATCH` packets with recvmmsg(2) (waiting for the first), answers
/// each, and sends the answers with sendmmsg(2).
fn serve(socket: UdpSocket, stop: &AtomicBool, shared: &Shared) {
    let Shared { handler, state, metrics, rrl, runtime } = shared;
    use std::io::{IoSlice, IoSliceMut};
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};

    let fd = socket.as_raw_fd();
    let mut bufs: Vec<[u8; 4096]> = vec![[0u8; 4096]; BATCH];
    let mut outs: Vec<fast::Scratch> = (0..BATCH).map(|_| fast::Scratch::default()).collect();
    let mut rx = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut tx = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut lens = [0usize; BATCH];
    let mut srcs: [Option<SocketAddr>; BATCH] = [None; BATCH];
    while !stop.load(Ordering::Relaxed) {
        let received = {
            let mut it = bufs.iter_mut();
            let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
                std::array::from_fn(|_| [IoSliceMut::new(it.next().expect("BATCH buffers"))]);
            match recvmmsg(fd, &mut rx, iovs.iter_mut(), MsgFlags::MSG_WAITFORONE, None) {
                Ok(msgs) => {
                    let mut n = 0;
                    for m in msgs {
                        lens[n] = m.bytes;
                        srcs[n] = m.address.and_then(|a: SockaddrStorage| {
                            a.as_sockaddr_in()
                                .map(|v4| SocketAddr::from((v4.ip(), v4.port())))
                                .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::from((v6.ip(), v6.port()))))
                        });
                        n += 1;
                    }
                    n
                }
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => 0,
                Err(e) => {
                    debug!(error = %e, "udp receive error");
                    0
                }
            }
        };
        if received == 0 {
            continue;
        }
        let snap = state.load();
        let mut reply = [false; BATCH];
        for i in 0..received {
            let Some(src) = srcs[i] else { continue };
            // As hickory-server: never answer port 0 or an unspecified/broadcast source.
            if src.port() == 0 || src.ip().is_unspecified() || src.ip() == std::net::Ipv4Addr::BROADCAST {
                continue;
            }
            let packet = &bufs[i][..lens[i]];
            let scratch = &mut outs[i];
            // A panic answering one packet costs that packet, not the worker.
            let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let fast = if snap.model.dns.fast_path { fast::answer(&snap, packet, src.ip(), scratch) } else { None };
                match fast {
                    Some(a) => {
                        let slot = a.region.map_or(0, |r| snap.model.metric_slots[r as usize]);
                        metrics.queries.count(qtype_index(a.qtype), rcode_index(a.rcode), slot);
                        if let Some(j) = a.restricted {
                            metrics.queries.restricted(j);
                        }
                        true
                    }
                    None => match runtime.block_on(general(handler, packet, src, Protocol::Udp)) {
                        Some(bytes) => {
                            scratch.out.clear();
                            scratch.out.extend_from_slice(&bytes);
                            true
                        }
                        None => false,
                    },
                }
            }));
            reply[i] = answered.unwrap_or_else(|_| {
                warn!(%src, "a query panicked; dropped");
                false
            });
        }
        if let Some(rrl) = &*rrl.load() {
            let now = rrl.now();
            for i in 0..received {
                let Some(src) = srcs[i].filter(|_| reply[i]) else { continue };
                let action = rrl.check(src.ip(), &outs[i].out, now);
                metrics.rrl[action as usize].inc();
                match action {
                    rrl::Action::Send => {}
                    rrl::Action::Slip => rrl::slip(&mut outs[i].out),
                    rrl::Action::Drop => reply[i] = false,
                }
            }
        }
        drop(snap);
        let mut addrs: [Option<SockaddrStorage>; BATCH] = [None; BATCH];
        let mut count = 0;
        let mut slices: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|_| [IoSlice::new(&[])]);
        for i in (0..received).filter(|&i| reply[i]) {
            slices[count] = [IoSlice::new(&outs[i].out)];
            addrs[count] = srcs[i].map(SockaddrStorage::from);
            count += 1;
        }
        // sendmmsg stops at the first message it cannot send: skip that one and go on.
        let mut sent = 0;
        while sent < count {
            match sendmmsg(fd, &mut tx, slices[sent..count].iter(), &addrs[sent..count], [], MsgFlags::empty()) {
                Ok(results) => match results.count() {
                    0 => break,
                    n => sent += n,
                },
                Err(e) => {
                    debug!(error = %e, "udp send failed");
                    sent += 1;
                }
            }
        }
    }
}
