//! hostel's packet-filter rules against the host's real iptables: installed, checked, repaired
//! after a hand edit, and removed without a trace. Each test run uses a prefix of its own.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_runtime::netfilter::{FilterRules, Iptables, PacketFilter};

fn iptables(v6: bool, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(if v6 { "ip6tables" } else { "iptables" })
        .arg("-w")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Removes the prefix's rules however the test ends.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Its own thread and runtime: it may run inside the test's.
        let prefix = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = rt.block_on(Iptables.remove(&prefix));
        })
        .join();
    }
}

#[tokio::test]
async fn rules_are_installed_checked_repaired_and_removed() {
    let prefix = format!("z{}", &uuid::Uuid::new_v4().simple().to_string()[..5]);
    let rules = FilterRules {
        prefix: prefix.clone(),
        pool: "10.219.0.0/16".into(),
        deny: vec!["169.254.0.0/16".into(), "100.100.100.200/32".into()],
    };
    let f = Iptables;
    assert!(!f.check(&rules).await.unwrap());
    let cleanup = Cleanup(prefix.clone());
    f.apply(&rules).await.unwrap();
    assert!(f.check(&rules).await.unwrap());
    let input = iptables(false, &["-S", "INPUT"]).1;
    let jump = format!("-A INPUT -i {prefix}+ -j HOSTEL-IN-{prefix}");
    assert_eq!(input.lines().filter(|l| *l == jump).count(), 1, "{input}");
    let fwd = iptables(false, &["-S", &format!("HOSTEL-FWD-{prefix}")]).1;
    assert!(
        fwd.contains(&format!(
            "-A HOSTEL-FWD-{prefix} -d 100.100.100.200/32 -j DROP"
        )),
        "{fwd}"
    );
    assert!(iptables(true, &["-S", &format!("HOSTEL-IN-{prefix}")]).0);
    let nat = iptables(false, &["-t", "nat", "-S", "POSTROUTING"]).1;
    assert!(
        nat.contains(&format!(
            "-A POSTROUTING -s 10.219.0.0/16 -j HOSTEL-NAT-{prefix}"
        )),
        "{nat}"
    );

    // Applying again changes nothing; a hand edit is noticed and undone.
    f.apply(&rules).await.unwrap();
    let input = iptables(false, &["-S", "INPUT"]).1;
    assert_eq!(input.lines().filter(|l| *l == jump).count(), 1, "{input}");
    iptables(false, &["-F", &format!("HOSTEL-IN-{prefix}")]);
    assert!(!f.check(&rules).await.unwrap());
    f.apply(&rules).await.unwrap();
    assert!(f.check(&rules).await.unwrap());

    f.remove(&prefix).await.unwrap();
    assert!(!f.check(&rules).await.unwrap());
    for v6 in [false, true] {
        assert!(!iptables(v6, &["-S", &format!("HOSTEL-IN-{prefix}")]).0);
        assert!(!iptables(v6, &["-S", &format!("HOSTEL-FWD-{prefix}")]).0);
        assert!(!iptables(v6, &["-S", "INPUT"]).1.contains(&prefix));
        assert!(!iptables(v6, &["-t", "nat", "-S"]).1.contains(&prefix));
    }
    f.remove(&prefix).await.unwrap();
    drop(cleanup);
}
