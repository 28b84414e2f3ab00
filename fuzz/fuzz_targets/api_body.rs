//! Every API request body: the first byte picks the body, the rest is its JSON; what parses
//! goes through the same conversion the handler applies.
#![no_main]
use hostel_api::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((which, json)) = input.split_first() else {
        return;
    };
    let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    match which % 12 {
        0 => {
            if let Ok(b) = serde_json::from_slice::<NewTenant>(json) {
                let _ = b.into_request(now);
            }
        }
        1 => {
            if let Ok(b) = serde_json::from_slice::<TenantChange>(json) {
                let _ = b.into_parts();
            }
        }
        2 => {
            let _ = serde_json::from_slice::<ExecBody>(json);
        }
        3 => {
            if let Ok(b) = serde_json::from_slice::<NewKeys>(json) {
                for k in b.keys {
                    let _ = k.parse::<hostel_core::SshPublicKey>();
                }
            }
        }
        4 => {
            if let Ok(b) = serde_json::from_slice::<NewBan>(json) {
                let _ = b.into_parts();
            }
        }
        5 => {
            if let Ok(b) = serde_json::from_slice::<NewLoginLink>(json) {
                let _ = b.ttl();
            }
        }
        6 => {
            if let Ok(b) = serde_json::from_slice::<NewToken>(json) {
                let _ = b.role();
            }
        }
        7 => {
            if let Ok(b) = serde_json::from_slice::<NewPassword>(json) {
                let _ = hostel_service::check_password(b.password.expose());
            }
        }
        8 => {
            let _ = serde_json::from_slice::<NewPublishedPort>(json);
        }
        9 => {
            let _ = serde_json::from_slice::<ImageBuild>(json);
        }
        10 => {
            let _ = serde_json::from_slice::<DoctorRun>(json);
        }
        _ => {
            let _ = serde_json::from_slice::<AuditQuery>(json);
        }
    }
});
