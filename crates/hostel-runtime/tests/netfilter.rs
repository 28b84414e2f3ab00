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
        connections_max: 4096,
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

/// Runs `ip` (or `ip netns exec NS ...`); panics on failure.
fn ip(args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "ip {args:?}: {out:?}");
}

/// Two namespaces standing for a workspace of each instance, each behind an interface named
/// with its instance's prefix, routed through the host; removed on drop.
struct Pair {
    ns: [String; 2],
}

impl Pair {
    fn new(prefixes: [&str; 2], net: u8) -> Pair {
        let ns = prefixes.map(|p| format!("hostel-test-{p}"));
        for (i, (p, n)) in prefixes.iter().zip(&ns).enumerate() {
            let host_if = format!("{p}x");
            let inner = format!("{p}i");
            let sub = format!("10.{net}.{}", i + 1);
            ip(&["netns", "add", n]);
            ip(&[
                "link", "add", &host_if, "type", "veth", "peer", "name", &inner,
            ]);
            ip(&["link", "set", &inner, "netns", n]);
            ip(&["addr", "add", &format!("{sub}.1/30"), "dev", &host_if]);
            ip(&["link", "set", &host_if, "up"]);
            ip(&[
                "netns",
                "exec",
                n,
                "ip",
                "addr",
                "add",
                &format!("{sub}.2/30"),
                "dev",
                &inner,
            ]);
            ip(&["netns", "exec", n, "ip", "link", "set", &inner, "up"]);
            ip(&["netns", "exec", n, "ip", "link", "set", "lo", "up"]);
            ip(&[
                "netns",
                "exec",
                n,
                "ip",
                "route",
                "add",
                "default",
                "via",
                &format!("{sub}.1"),
            ]);
        }
        Pair { ns }
    }

    /// Whether a TCP connection from the first namespace reaches a listener in the second.
    fn first_reaches_second(&self, net: u8) -> bool {
        let mut server = std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns[1], "python3", "-c"])
            .arg(
                "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                 s.bind(('0.0.0.0', 8080))\ns.listen()\nprint('ready', flush=True)\ns.settimeout(5)\n\
                 try:\n  c,_=s.accept(); c.send(b'hi')\nexcept OSError: pass\n",
            )
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Probe only once it listens.
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(server.stdout.take().unwrap()),
            &mut ready,
        )
        .unwrap();
        assert_eq!(ready.trim(), "ready");
        let probe = std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns[0], "timeout", "2", "bash", "-c"])
            .arg(format!(
                "exec 3<>/dev/tcp/10.{net}.2.2/8080 && head -c 2 <&3"
            ))
            .output()
            .unwrap();
        let _ = server.kill();
        let _ = server.wait();
        probe.status.success() && probe.stdout == b"hi"
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for n in &self.ns {
            // The veth pair goes with the namespace.
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", n])
                .status();
        }
    }
}

/// Regression (#12): each instance's forward chain ended in ACCEPT, so whichever instance
/// installed last let its tenants into the other's bridges. Drops now come before every
/// accept, whatever the order.
#[tokio::test]
async fn issue_12_two_instances_stay_apart_whatever_their_order() {
    let id = &uuid::Uuid::new_v4().simple().to_string()[..4];
    let (pa, pb) = (format!("za{id}"), format!("zb{id}"));
    let _ca = Cleanup(pa.clone());
    let _cb = Cleanup(pb.clone());
    let net = 251;
    let pair = Pair::new([&pa, &pb], net);
    let rules = |p: &str, pool: &str| FilterRules {
        prefix: p.to_owned(),
        pool: pool.to_owned(),
        deny: vec![],
        connections_max: 4096,
    };
    let (a, b) = (rules(&pa, "10.251.1.0/24"), rules(&pb, "10.251.2.0/24"));
    let f = Iptables;
    // Only A is an instance: its tenant's egress goes out, so the probe can succeed.
    f.apply(&a).await.unwrap();
    assert!(pair.first_reaches_second(net), "A's egress is accepted");
    // B installed after A, and A after B: A's tenant never gets into B's bridge.
    f.apply(&b).await.unwrap();
    assert!(!pair.first_reaches_second(net), "B after A");
    f.remove(&pa).await.unwrap();
    f.apply(&a).await.unwrap();
    assert!(f.check(&a).await.unwrap() && f.check(&b).await.unwrap());
    assert!(!pair.first_reaches_second(net), "A after B");
}

/// Sends one UDP packet from `ns` to each of `count` ports of `to`, from one socket; returns
/// how many flows from `from` the host's connection tracking then holds.
fn udp_flows(ns: &str, from: &str, to: &str, first_port: u16, count: u16) -> usize {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c"])
        .arg(format!(
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             for p in range({first_port}, {}):\n    s.sendto(b'x', ('{to}', p))\n",
            first_port + count
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    std::fs::read_to_string("/proc/net/nf_conntrack")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" udp ") && l.contains(&format!("src={from} dst={to} ")))
        .count()
}

/// A workspace could fill the host's one connection-tracking table (262144 entries here) with
/// flows of its own, after which the host dropped every new connection, the gateways' too.
/// Each workspace's new flows past `connections_max` are dropped before they are tracked.
#[tokio::test]
async fn a_workspace_holds_at_most_its_connections_max_flows() {
    let id = &uuid::Uuid::new_v4().simple().to_string()[..4];
    let (pa, pb) = (format!("zc{id}"), format!("zd{id}"));
    let _ca = Cleanup(pa.clone());
    let net = 250;
    let pair = Pair::new([&pa, &pb], net);
    let mut rules = FilterRules {
        prefix: pa.clone(),
        pool: format!("10.{net}.0.0/16"),
        deny: vec![],
        connections_max: 64,
    };
    Iptables.apply(&rules).await.unwrap();
    let (from, to) = (format!("10.{net}.1.2"), format!("10.{net}.2.2"));
    // A link just set up drops what it is given until the kernel activates its queue (up to a
    // second later on a busy host): the flood waits until a TCP connect is answered (refused:
    // nothing listens there).
    let probe = format!(
        "import socket\ntry:\n    socket.create_connection(('{to}', 9), timeout=1)\n\
         except ConnectionRefusedError:\n    print('answered')\nexcept OSError:\n    pass\n"
    );
    let through = (0..20).any(|_| {
        std::process::Command::new("ip")
            .args(["netns", "exec", &pair.ns[0], "python3", "-c", &probe])
            .output()
            .is_ok_and(|o| o.stdout == b"answered\n")
    });
    assert!(through, "nothing from {from} reaches {to}");
    let held = udp_flows(&pair.ns[0], &from, &to, 20000, 200);
    assert!((1..=64).contains(&held), "{held} flows tracked past 64");
    // The limit is the rule's: with a higher one, the same flood is tracked whole.
    rules.connections_max = 100_000;
    Iptables.apply(&rules).await.unwrap();
    assert!(Iptables.check(&rules).await.unwrap());
    let held = udp_flows(&pair.ns[0], &from, &to, 30000, 200);
    assert!(held > 200, "{held} flows tracked");
}
