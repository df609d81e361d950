//! The config loader on arbitrary text: errors or a config, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard::fuzzing::config_target(data));
