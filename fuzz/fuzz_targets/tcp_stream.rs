//! A raw TCP byte stream (any framing, pipelined, cut short) through the TCP server's
//! framing and the request path (`switchyard::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::fuzzing::{Harness, tcp_stream_target};

thread_local! {
    static HARNESS: Harness = Harness::new();
}

fuzz_target!(|data: &[u8]| HARNESS.with(|h| tcp_stream_target(h, data)));
