//! `hostel selftest security`, the attacker suite, against the real engine, iptables and
//! OpenSSH: every move blocked on a hardened host, and the network moves seen to work when the
//! packet filter is off, so the suite can tell the difference.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_testkit::TestRun;

const BIN: &str = env!("CARGO_BIN_EXE_hostel");

fn moves(report: &serde_json::Value) -> Vec<(String, String)> {
    report["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["move"].as_str().unwrap().to_owned(),
                m["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_move_is_blocked_and_noisy_neighbours_do_not_stop_others() {
    let t = TestRun::new(BIN);
    let run = t.hostel(&["selftest", "security", "--json"]).ok();
    let report = run.json();
    let moves = moves(&report);
    assert!(moves.len() >= 30, "{moves:?}");
    let open: Vec<_> = moves.iter().filter(|(_, r)| r != "blocked").collect();
    assert!(open.is_empty(), "not blocked: {open:?}");
    let noise: Vec<&str> = report["latency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["noise"].as_str().unwrap())
        .collect();
    assert_eq!(
        noise,
        [
            "nothing (baseline)",
            "fork bomb",
            "memory hog",
            "disk filler"
        ]
    );
    // Nothing of the suite's is left behind.
    assert_eq!(
        t.hostel(&["list", "--json"]).ok().json(),
        serde_json::json!([])
    );
}

#[test]
fn without_the_packet_filter_the_suite_sees_the_host_open() {
    let t = TestRun::with_config(BIN, "\n[network]\npacket_filter = false\n");
    // The metadata move aims at the workspace's own loopback here: without the filter nothing
    // would stop it leaving the host, and tests talk to nothing outside.
    let run = t
        .hostel(&[
            "selftest",
            "security",
            "--json",
            "--metadata",
            "127.0.0.9:80",
        ])
        .expect_code(1);
    let moves = moves(&run.json());
    let open: Vec<&str> = moves
        .iter()
        .filter(|(_, r)| r != "blocked")
        .map(|(m, _)| m.as_str())
        .collect();
    assert_eq!(
        open,
        [
            "reach a host service on the network's gateway",
            "reach a host service on the default bridge (172.17.0.1)",
            "reach a host service on the host's own address",
            "reach the SSH gateway from inside",
        ]
    );
}
