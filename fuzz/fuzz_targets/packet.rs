//! One packet through the whole request path: over UDP (the fast path checked against
//! the general path, then RRL) and, framed, over TCP (`switchyard::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::fuzzing::{Harness, packet_target};

thread_local! {
    static HARNESS: Harness = Harness::new();
}

fuzz_target!(|data: &[u8]| HARNESS.with(|h| packet_target(h, data)));
