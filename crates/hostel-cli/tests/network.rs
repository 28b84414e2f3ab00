//! Tenant networks and the host packet filter against the real engine and iptables, proven with
//! listeners the test starts: a workspace reaches nothing on the host (on any of the host's
//! addresses) and not another tenant, the host still reaches into a workspace, egress `none`
//! has no route out, and the daemon puts removed rules back.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_testkit::{TestRun, docker};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hostel");

/// A TCP listener on every host address, answering until the test ends.
fn host_listener() -> u16 {
    let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            drop(c);
        }
    });
    port
}

/// From inside `tenant`, which of `targets` (`ip:port`) accept a TCP connection (2 s each, all
/// at once).
fn reachable(t: &TestRun, tenant: &str, targets: &[String]) -> Vec<String> {
    let script = format!(
        "for a in {}; do (timeout 2 bash -c \"echo > /dev/tcp/${{a%:*}}/${{a#*:}}\" 2>/dev/null \
         && echo \"$a\") & done; wait",
        targets.join(" ")
    );
    let mut open: Vec<String> = t
        .hostel(&["exec", tenant, "--", "bash", "-c", &script])
        .ok()
        .stdout
        .lines()
        .map(str::to_owned)
        .collect();
    open.sort();
    open
}

/// The workspace's address and its network's gateway.
fn addresses(name: &str) -> (String, String) {
    let out = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.Gateway}}{{end}}",
        &format!("hostel-{name}"),
    ])
    .ok()
    .stdout;
    let mut parts = out.split_whitespace().map(str::to_owned);
    (parts.next().unwrap(), parts.next().unwrap())
}

fn host_address() -> String {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Whether nothing the tenant's network sends leaves it: its bridge is an egress-`none` one
/// (`<prefix>n...`), the network is internal, and the rule dropping such bridges' traffic is in
/// force.
fn sealed(t: &TestRun, tenant: &str) -> bool {
    let out = docker(&[
        "network",
        "inspect",
        "-f",
        "{{.Internal}} {{index .Options \"com.docker.network.bridge.name\"}}",
        &format!("hostel-{tenant}"),
    ])
    .ok()
    .stdout;
    let parts: Vec<&str> = out.split_whitespace().collect();
    let p = t.prefix();
    let rules = std::process::Command::new("iptables")
        .args(["-w", "-S", &format!("HOSTEL-FWD-{p}")])
        .output()
        .unwrap();
    let rule = format!("-A HOSTEL-FWD-{p} -i {p}n+ -j DROP");
    assert!(
        String::from_utf8_lossy(&rules.stdout)
            .lines()
            .any(|l| l == rule),
        "{rule}"
    );
    let internal = parts[0] == "true";
    assert_eq!(internal, parts[1].starts_with(&format!("{p}n")), "{out}");
    internal
}

#[test]
fn workspaces_reach_nothing_on_the_host_and_not_each_other() {
    let t = TestRun::with_config(BIN, "\n[lifecycle]\ncheck_secs = 1\n");
    let a = t.create_tenant("neta", &[]);
    let b = t.create_tenant("netb", &[]);
    let c = t.create_tenant("netc", &["--egress", "none"]);
    assert_eq!(t.hostel(&["firewall", "status"]).ok().code, 0);

    let port = host_listener();
    let (a_ip, a_gw) = addresses(&a);
    let (b_ip, _) = addresses(&b);
    assert_ne!(a_gw, addresses(&b).1, "each tenant has its own network");
    // B serves on 8000 as the tenant; the host reaches it (the web gateway's way in).
    t.hostel(&[
        "exec",
        &b,
        "--",
        "sh",
        "-c",
        "nohup python3 -m http.server 8000 >/dev/null 2>&1 &",
    ])
    .ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect_timeout(
        &format!("{b_ip}:8000").parse().unwrap(),
        Duration::from_secs(1),
    )
    .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the host cannot reach B's server"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let targets: Vec<String> = [
        format!("{a_gw}:{port}"),
        format!("172.17.0.1:{port}"),
        format!("{}:{port}", host_address()),
        format!("{b_ip}:8000"),
    ]
    .into();
    // Without hostel's rules, the engine lets a workspace reach every host address: that is
    // what the rules are for (B stays apart through the engine's own bridge isolation).
    t.hostel(&["firewall", "remove"]).ok();
    assert_eq!(t.hostel(&["firewall", "status"]).code, 1);
    let mut open_without = targets[..3].to_vec();
    open_without.sort();
    assert_eq!(reachable(&t, &a, &targets), open_without);
    t.hostel(&["firewall", "apply"]).ok();
    assert!(
        reachable(&t, &a, &targets).is_empty(),
        "with the rules nothing is reachable"
    );
    assert!(reachable(&t, &c, &targets).is_empty());

    // Egress: nothing leaves `none`'s network; changed with `set` at the next start.
    assert!(!sealed(&t, &a));
    assert!(sealed(&t, &c));
    let info = t.hostel(&["info", &c, "--json"]).ok().json();
    assert_eq!(info["egress"], "none");
    t.hostel(&["set", &c, "--egress", "all"]).ok();
    t.hostel(&["stop", &c]).ok();
    t.hostel(&["start", &c]).ok();
    assert!(!sealed(&t, &c));
    assert_eq!(a_ip, addresses(&a).0, "other tenants keep their addresses");

    // The daemon puts back rules that go missing.
    let _d = t.serve();
    t.hostel(&["firewall", "remove"]).ok();
    let deadline = Instant::now() + Duration::from_secs(15);
    while t.hostel(&["firewall", "status"]).code != 0 {
        assert!(
            Instant::now() < deadline,
            "the daemon did not restore the rules"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let audit = t.hostel(&["audit", "--json"]).ok().json();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "network.filter.repair.v1"),
        "{audit}"
    );

    // A purge takes the tenant's network with it.
    t.hostel(&["purge", &b, "--yes"]).ok();
    assert!(
        !docker(&["network", "ls", "--format", "{{.Name}}"])
            .stdout
            .lines()
            .any(|n| n == format!("hostel-{b}")),
    );
}

#[test]
fn root_in_a_workspace_is_not_root_on_the_host_so_tenants_may_sudo() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("userns", &[]);
    // PID 1 of the workspace (its init, root inside) as the host sees it.
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &format!("hostel-{a}")])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid: u32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(uid + 1000, hostel_testkit::tenant_host_uid());
    assert!(uid >= 65536, "root inside runs as host uid {uid}");
    // The tenant's files are the mapped uid's on the host, and uid 1000 inside.
    t.sh(&a, "echo mine > owned").ok();
    let owner =
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(t.home(&a).join("owned")).unwrap());
    assert_eq!(owner, hostel_testkit::tenant_host_uid());
    assert_eq!(t.sh(&a, "stat -c %u owned").ok().stdout, "1000\n");
    // So the tenant may be root inside: sudo works, and its root is the same unprivileged uid.
    assert_eq!(t.sh(&a, "sudo -n id -u").ok().stdout, "0\n");
    t.sh(&a, "sudo -n sh -c 'echo tenant-root > /etc/motd'")
        .ok();
    assert_eq!(t.sh(&a, "cat /etc/motd").ok().stdout, "tenant-root\n");
    let check = t.hostel(&["check"]).ok().stdout;
    assert!(
        check.contains("user namespaces (root inside is uid"),
        "{check}"
    );
}
