//! Text frames on the exec WebSocket.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    let _ = hostel_web::control_frame(input);
});
