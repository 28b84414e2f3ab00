//! The host's packet filter as hostel uses it: one set of rules per tenant-bridge prefix, so that
//! nothing on the host is reachable from a workspace (the gateways, the API, the engine, other
//! host services, on any of the host's addresses), no tenant reaches another, no workspace
//! reaches the denied destinations (cloud metadata), and a workspace with egress gets out
//! through the host's NAT. The engine filters none of the first three (a container reaches a
//! listener on its gateway address and on every other host address), and hostel's own engine
//! runs without iptables of its own, so these rules are all there is.
//!
//! [`Iptables`] keeps, per prefix, for IPv4 and IPv6:
//! - `HOSTEL-IN-<prefix>`, jumped to from `INPUT` for `<prefix>+`: replies to connections the
//!   host opened pass (the web gateway will proxy into workspaces); everything else is dropped;
//! - `HOSTEL-FWD-<prefix>`, jumped to from the top of `DOCKER-USER` (or `FORWARD`) for traffic
//!   from and to `<prefix>+`: only drops: nothing new enters a tenant bridge, egress-`none`
//!   bridges (`<prefix>n...`) and the denied destinations are dropped, and a workspace's new
//!   connection past its `connections_max` tracked ones (the host's connection-tracking table
//!   is one for all; full, it drops every new connection, the gateways' too) (IPv6:
//!   everything);
//! - `HOSTEL-OK-<prefix>` (IPv4), jumped to from the end of the same chain: replies pass and a
//!   tenant's own new traffic goes out;
//! - `HOSTEL-NAT-<prefix>` (IPv4 `nat` table, from `POSTROUTING` for the pool): masquerades
//!   traffic leaving for anything but a tenant bridge;
//! - `HOSTEL-RPF-<prefix>` (IPv4 `raw` table, from `PREROUTING` for `<prefix>+`): drops what a
//!   workspace sends from an address the host would not route back to its bridge. Root inside
//!   may add addresses to its interface (Incus) or forge packets (a workspace running
//!   containers keeps raw sockets); without this it could pose as another tenant, whose
//!   workspace would then get the replies, or send unmasqueraded packets out of the host.
//!
//! Drops and accepts are apart so that several instances on one host (each with its prefix)
//! stay apart whatever order they installed in: every instance's drops come before any
//! instance's accepts, so one instance's egress accept never lets its tenants into another
//! instance's bridges. A chain's rules are replaced in one `iptables-restore` transaction, so
//! re-applying never leaves a moment without the drops.

use crate::RuntimeError;
use async_trait::async_trait;
use std::sync::{Arc, Mutex};

/// What the rules for one prefix say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRules {
    /// Tenant bridges are `<prefix>...`; egress-`none` ones `<prefix>n...`.
    pub prefix: String,
    /// The IPv4 pool tenant subnets come from, in CIDR form.
    pub pool: String,
    /// IPv4 destinations no workspace may reach, in CIDR form.
    pub deny: Vec<String>,
    /// Most connections one workspace (one source address) may have tracked at once.
    pub connections_max: u32,
}

/// One chain of ours and its rules, as `iptables -S` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chain {
    table: &'static str,
    name: String,
    rules: Vec<String>,
}

/// A rule in a chain not ours that leads into one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Jump {
    table: &'static str,
    /// `None`: the engine's `DOCKER-USER`, or `FORWARD` without it.
    parent: Option<&'static str>,
    matches: Vec<String>,
    target: String,
    /// Where it goes: at the top, or last (before a final `RETURN`).
    last: bool,
}

impl FilterRules {
    fn chains(&self, v6: bool) -> Vec<Chain> {
        let p = &self.prefix;
        let input = format!("HOSTEL-IN-{p}");
        let fwd = format!("HOSTEL-FWD-{p}");
        let ok = format!("HOSTEL-OK-{p}");
        let reply = "-m conntrack --ctstate RELATED,ESTABLISHED -j";
        let mut forward = vec![
            format!("-A {fwd} -o {p}+ {reply} RETURN"),
            format!("-A {fwd} -o {p}+ -j DROP"),
        ];
        if v6 {
            // Tenant networks have no IPv6; nothing of theirs is forwarded.
            forward.push(format!("-A {fwd} -j DROP"));
        } else {
            forward.push(format!("-A {fwd} -i {p}n+ -j DROP"));
            forward.extend(self.deny.iter().map(|d| format!("-A {fwd} -d {d} -j DROP")));
            forward.push(format!(
                "-A {fwd} -i {p}+ -m conntrack --ctstate NEW -m connlimit --connlimit-above {} \
                 --connlimit-mask 32 --connlimit-saddr -j DROP",
                self.connections_max
            ));
        }
        let mut chains = vec![
            Chain {
                table: "filter",
                name: input.clone(),
                rules: vec![
                    format!("-A {input} {reply} RETURN"),
                    format!("-A {input} -j DROP"),
                ],
            },
            Chain {
                table: "filter",
                name: fwd,
                rules: forward,
            },
        ];
        if !v6 {
            chains.push(Chain {
                table: "filter",
                name: ok.clone(),
                rules: vec![
                    format!("-A {ok} -o {p}+ {reply} ACCEPT"),
                    format!("-A {ok} -i {p}+ {reply} ACCEPT"),
                    format!("-A {ok} -i {p}+ -j ACCEPT"),
                ],
            });
            let nat = format!("HOSTEL-NAT-{p}");
            chains.push(Chain {
                table: "nat",
                name: nat.clone(),
                rules: vec![format!("-A {nat} ! -o {p}+ -j MASQUERADE")],
            });
            let rpf = format!("HOSTEL-RPF-{p}");
            chains.push(Chain {
                table: "raw",
                name: rpf.clone(),
                rules: vec![format!("-A {rpf} -m rpfilter --invert -j DROP")],
            });
        }
        chains
    }

    fn jumps(&self, v6: bool) -> Vec<Jump> {
        let p = &self.prefix;
        let iface = format!("{p}+");
        let jump = |parent, dir: &str, target: &str, last| Jump {
            table: "filter",
            parent,
            matches: vec![dir.to_owned(), iface.clone()],
            target: format!("{target}-{p}"),
            last,
        };
        let mut jumps = vec![
            jump(Some("INPUT"), "-i", "HOSTEL-IN", false),
            jump(None, "-i", "HOSTEL-FWD", false),
            jump(None, "-o", "HOSTEL-FWD", false),
        ];
        if !v6 {
            jumps.push(jump(None, "-i", "HOSTEL-OK", true));
            jumps.push(jump(None, "-o", "HOSTEL-OK", true));
            jumps.push(Jump {
                table: "nat",
                parent: Some("POSTROUTING"),
                matches: vec!["-s".into(), self.pool.clone()],
                target: format!("HOSTEL-NAT-{p}"),
                last: false,
            });
            jumps.push(Jump {
                table: "raw",
                parent: Some("PREROUTING"),
                matches: vec!["-i".into(), iface.clone()],
                target: format!("HOSTEL-RPF-{p}"),
                last: false,
            });
        }
        jumps
    }
}

/// A host packet filter.
#[async_trait]
pub trait PacketFilter: Send + Sync + std::fmt::Debug {
    /// Installs the rules (idempotent; replaces rules of the same prefix that differ).
    async fn apply(&self, rules: &FilterRules) -> Result<(), RuntimeError>;
    /// Whether exactly these rules are in force.
    async fn check(&self, rules: &FilterRules) -> Result<bool, RuntimeError>;
    /// Removes every rule of `prefix`.
    async fn remove(&self, prefix: &str) -> Result<(), RuntimeError>;
    /// What it is, for `hostel check`.
    fn describe(&self) -> &'static str;
}

/// `iptables` and `ip6tables` (either backend).
#[derive(Debug, Default)]
pub struct Iptables;

/// Runs one iptables command; `Ok(false)` when it exits non-zero (a `-C` that finds nothing).
async fn ipt(v6: bool, args: &[&str]) -> Result<(bool, String), RuntimeError> {
    let bin = if v6 { "ip6tables" } else { "iptables" };
    let out = tokio::process::Command::new(bin)
        .arg("-w")
        .args(args)
        .output()
        .await
        .map_err(|e| RuntimeError::Host {
            action: format!("run {bin}"),
            message: format!("{e} (install the iptables package; scripts/engine does)"),
        })?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

/// Replaces the rules of `chains` (made when missing) in one transaction per table:
/// `iptables-restore --noflush` flushes a chain it declares and fills it before it commits,
/// so the old rules hold until the new ones do.
async fn restore(v6: bool, chains: &[Chain]) -> Result<(), RuntimeError> {
    use tokio::io::AsyncWriteExt;
    let bin = if v6 {
        "ip6tables-restore"
    } else {
        "iptables-restore"
    };
    let mut script = String::new();
    for table in ["raw", "filter", "nat"] {
        let mine: Vec<&Chain> = chains.iter().filter(|c| c.table == table).collect();
        if mine.is_empty() {
            continue;
        }
        script.push_str(&format!("*{table}\n"));
        for c in &mine {
            script.push_str(&format!(":{} - [0:0]\n", c.name));
        }
        for c in &mine {
            for rule in &c.rules {
                script.push_str(rule);
                script.push('\n');
            }
        }
        script.push_str("COMMIT\n");
    }
    let host = |message: String| RuntimeError::Host {
        action: format!("run {bin}"),
        message,
    };
    let mut child = tokio::process::Command::new(bin)
        .args(["-w", "--noflush"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            host(format!(
                "{e} (install the iptables package; scripts/engine does)"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| host(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| host(e.to_string()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(host(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
}

async fn must(v6: bool, args: &[&str]) -> Result<(), RuntimeError> {
    let bin = if v6 { "ip6tables" } else { "iptables" };
    let out = tokio::process::Command::new(bin)
        .arg("-w")
        .args(args)
        .output()
        .await
        .map_err(|e| RuntimeError::Host {
            action: format!("run {bin}"),
            message: e.to_string(),
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(RuntimeError::Host {
        action: format!("{bin} {}", args.join(" ")),
        message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// The chain that leads to hostel's forward chain: the engine's `DOCKER-USER` when it exists.
async fn forward_parent(v6: bool) -> Result<&'static str, RuntimeError> {
    Ok(if ipt(v6, &["-S", "DOCKER-USER"]).await?.0 {
        "DOCKER-USER"
    } else {
        "FORWARD"
    })
}

/// `-t TABLE -C|-I|-D PARENT MATCHES -j TARGET` for a jump; whether iptables did it. `-I`
/// puts it at the top, or for a last jump before the chain's final `RETURN` (the engine ends
/// `DOCKER-USER` with one), else at the end.
async fn jump(v6: bool, op: &str, j: &Jump, parent: &str) -> Result<bool, RuntimeError> {
    let mut at = "1".to_owned();
    let mut op = op;
    if op == "-I" && j.last {
        let (_, listed) = ipt(v6, &["-t", j.table, "-S", parent]).await?;
        let rules: Vec<&str> = listed.lines().filter(|l| l.starts_with("-A ")).collect();
        if rules.last() == Some(&format!("-A {parent} -j RETURN").as_str()) {
            at = rules.len().to_string();
        } else {
            op = "-A";
        }
    }
    let mut args = vec!["-t", j.table, op, parent];
    if op == "-I" {
        args.push(&at);
    }
    args.extend(j.matches.iter().map(String::as_str));
    args.extend(["-j", j.target.as_str()]);
    Ok(ipt(v6, &args).await?.0)
}

impl Iptables {
    /// One family's state: each chain's rules as expected, and every jump in place.
    async fn family_ok(&self, rules: &FilterRules, v6: bool) -> Result<bool, RuntimeError> {
        for c in rules.chains(v6) {
            let (ok, listed) = ipt(v6, &["-t", c.table, "-S", &c.name]).await?;
            let have: Vec<&str> = listed.lines().filter(|l| l.starts_with("-A ")).collect();
            if !ok || have != c.rules.iter().map(String::as_str).collect::<Vec<_>>() {
                return Ok(false);
            }
        }
        let fwd = forward_parent(v6).await?;
        for j in rules.jumps(v6) {
            if !jump(v6, "-C", &j, j.parent.unwrap_or(fwd)).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn apply_family(&self, rules: &FilterRules, v6: bool) -> Result<(), RuntimeError> {
        if self.family_ok(rules, v6).await? {
            return Ok(());
        }
        let fwd = forward_parent(v6).await?;
        restore(v6, &rules.chains(v6)).await?;
        for j in rules.jumps(v6) {
            let parent = j.parent.unwrap_or(fwd);
            if !jump(v6, "-C", &j, parent).await? && !jump(v6, "-I", &j, parent).await? {
                return Err(RuntimeError::Host {
                    action: format!("jump from {parent} to {}", j.target),
                    message: "iptables refused the rule".into(),
                });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl PacketFilter for Iptables {
    async fn apply(&self, rules: &FilterRules) -> Result<(), RuntimeError> {
        let _held = HeldLock::take()?;
        self.apply_family(rules, false).await?;
        self.apply_family(rules, true).await
    }

    async fn check(&self, rules: &FilterRules) -> Result<bool, RuntimeError> {
        Ok(self.family_ok(rules, false).await? && self.family_ok(rules, true).await?)
    }

    async fn remove(&self, prefix: &str) -> Result<(), RuntimeError> {
        let _held = HeldLock::take()?;
        for v6 in [false, true] {
            // The jumps whatever their match (the pool may have changed): every rule of the
            // parents that leads into one of this prefix's chains.
            for (table, parent) in [
                ("filter", "INPUT"),
                ("filter", "DOCKER-USER"),
                ("filter", "FORWARD"),
                ("nat", "POSTROUTING"),
                ("raw", "PREROUTING"),
            ] {
                let (_, listed) = ipt(v6, &["-t", table, "-S", parent]).await?;
                for rule in listed.lines() {
                    let ours = [
                        format!("-j HOSTEL-IN-{prefix}"),
                        format!("-j HOSTEL-FWD-{prefix}"),
                        format!("-j HOSTEL-OK-{prefix}"),
                        format!("-j HOSTEL-NAT-{prefix}"),
                        format!("-j HOSTEL-RPF-{prefix}"),
                    ]
                    .iter()
                    .any(|t| rule.ends_with(t.as_str()));
                    if let Some(spec) = rule.strip_prefix("-A ").filter(|_| ours) {
                        let mut args = vec!["-t", table, "-D"];
                        args.extend(spec.split(' '));
                        must(v6, &args).await?;
                    }
                }
            }
            for (table, chain) in [
                ("filter", format!("HOSTEL-IN-{prefix}")),
                ("filter", format!("HOSTEL-FWD-{prefix}")),
                ("filter", format!("HOSTEL-OK-{prefix}")),
                ("nat", format!("HOSTEL-NAT-{prefix}")),
                ("raw", format!("HOSTEL-RPF-{prefix}")),
            ] {
                if ipt(v6, &["-t", table, "-F", &chain]).await?.0 {
                    must(v6, &["-t", table, "-X", &chain]).await?;
                }
            }
        }
        Ok(())
    }

    fn describe(&self) -> &'static str {
        "iptables"
    }
}

/// Serializes changes to the rules across processes (a create and the daemon at once); held
/// while the value lives.
struct HeldLock {
    _flock: nix::fcntl::Flock<std::fs::File>,
}

impl HeldLock {
    fn take() -> Result<HeldLock, RuntimeError> {
        let path = "/run/hostel-netfilter.lock";
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| RuntimeError::Host {
                action: format!("open {path}"),
                message: e.to_string(),
            })?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map(|f| HeldLock { _flock: f })
            .map_err(|(_, e)| RuntimeError::Host {
                action: format!("lock {path}"),
                message: e.to_string(),
            })
    }
}

/// No filter: `[network] packet_filter = false`. Workspaces then reach the host.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFilter;

#[async_trait]
impl PacketFilter for NoFilter {
    async fn apply(&self, _rules: &FilterRules) -> Result<(), RuntimeError> {
        Ok(())
    }

    async fn check(&self, _rules: &FilterRules) -> Result<bool, RuntimeError> {
        Ok(true)
    }

    async fn remove(&self, _prefix: &str) -> Result<(), RuntimeError> {
        Ok(())
    }

    fn describe(&self) -> &'static str {
        "off ([network] packet_filter = false): workspaces reach the host"
    }
}

/// A filter that only records what it was asked: what tests with the in-memory engine use.
#[derive(Debug, Clone, Default)]
pub struct RecordingFilter {
    applied: Arc<Mutex<Vec<FilterRules>>>,
}

impl RecordingFilter {
    /// The rules in force.
    pub fn applied(&self) -> Vec<FilterRules> {
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait]
impl PacketFilter for RecordingFilter {
    async fn apply(&self, rules: &FilterRules) -> Result<(), RuntimeError> {
        let mut a = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        a.retain(|r| r.prefix != rules.prefix);
        a.push(rules.clone());
        Ok(())
    }

    async fn check(&self, rules: &FilterRules) -> Result<bool, RuntimeError> {
        Ok(self.applied().contains(rules))
    }

    async fn remove(&self, prefix: &str) -> Result<(), RuntimeError> {
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|r| r.prefix != prefix);
        Ok(())
    }

    fn describe(&self) -> &'static str {
        "recording (tests)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_pass_replies_and_egress_and_drop_the_rest() {
        let r = FilterRules {
            prefix: "hsl".into(),
            pool: "10.213.0.0/16".into(),
            deny: vec!["169.254.0.0/16".into()],
            connections_max: 4096,
        };
        let v4 = r.chains(false);
        let reply = "-m conntrack --ctstate RELATED,ESTABLISHED -j";
        assert_eq!(
            v4[0].rules,
            [
                format!("-A HOSTEL-IN-hsl {reply} RETURN"),
                "-A HOSTEL-IN-hsl -j DROP".to_owned()
            ]
        );
        assert_eq!(
            v4[1].rules,
            [
                format!("-A HOSTEL-FWD-hsl -o hsl+ {reply} RETURN"),
                "-A HOSTEL-FWD-hsl -o hsl+ -j DROP".to_owned(),
                "-A HOSTEL-FWD-hsl -i hsln+ -j DROP".to_owned(),
                "-A HOSTEL-FWD-hsl -d 169.254.0.0/16 -j DROP".to_owned(),
                "-A HOSTEL-FWD-hsl -i hsl+ -m conntrack --ctstate NEW -m connlimit \
                 --connlimit-above 4096 --connlimit-mask 32 --connlimit-saddr -j DROP"
                    .to_owned(),
            ],
            "only drops: every instance's come before any accept"
        );
        assert_eq!(
            v4[2].rules,
            [
                format!("-A HOSTEL-OK-hsl -o hsl+ {reply} ACCEPT"),
                format!("-A HOSTEL-OK-hsl -i hsl+ {reply} ACCEPT"),
                "-A HOSTEL-OK-hsl -i hsl+ -j ACCEPT".to_owned(),
            ]
        );
        assert_eq!(
            (v4[3].table, v4[3].rules.clone()),
            (
                "nat",
                vec!["-A HOSTEL-NAT-hsl ! -o hsl+ -j MASQUERADE".to_owned()]
            )
        );
        assert_eq!(
            (v4[4].table, v4[4].rules.clone()),
            (
                "raw",
                vec!["-A HOSTEL-RPF-hsl -m rpfilter --invert -j DROP".to_owned()]
            ),
            "no address the host would not route back to the bridge"
        );
        let v6 = r.chains(true);
        assert_eq!(v6.len(), 2, "no NAT for IPv6");
        assert_eq!(
            v6[1].rules.last().map(String::as_str),
            Some("-A HOSTEL-FWD-hsl -j DROP")
        );
        let last: Vec<bool> = r.jumps(false).iter().map(|j| j.last).collect();
        assert_eq!(last, [false, false, false, true, true, false, false]);
        assert_eq!(r.jumps(true).len(), 3);
    }
}
