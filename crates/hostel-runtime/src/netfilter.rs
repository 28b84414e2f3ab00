//! The host's packet filter as hostel uses it: one set of rules per tenant-bridge prefix, so that
//! nothing on the host is reachable from a workspace (the gateways, the API, the engine, other
//! host services, on any of the host's addresses), no tenant reaches another, and no workspace
//! reaches the denied destinations (cloud metadata). The engine filters none of this: a
//! container reaches a listener on its gateway address and on every other host address.
//!
//! [`Iptables`] keeps two chains per prefix, `HOSTEL-IN-<prefix>` (jumped to from `INPUT`) and
//! `HOSTEL-FWD-<prefix>` (from `DOCKER-USER`, or `FORWARD` when the engine manages no rules),
//! for IPv4 and IPv6. Replies to connections the host opened pass (the web gateway will proxy
//! into workspaces); everything else from a tenant bridge to the host is dropped.

use crate::RuntimeError;
use async_trait::async_trait;
use std::sync::{Arc, Mutex};

/// What the rules for one prefix say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRules {
    /// Tenant bridges are `<prefix>...`.
    pub prefix: String,
    /// IPv4 destinations no workspace may reach, in CIDR form.
    pub deny: Vec<String>,
}

impl FilterRules {
    fn input_chain(&self) -> String {
        format!("HOSTEL-IN-{}", self.prefix)
    }

    fn forward_chain(&self) -> String {
        format!("HOSTEL-FWD-{}", self.prefix)
    }

    /// The chains' rules as `iptables -S` prints them, IPv4 or IPv6.
    fn chain_rules(&self, v6: bool) -> Vec<(String, Vec<String>)> {
        let established = |chain: &str| {
            format!("-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN")
        };
        let input = self.input_chain();
        let forward = self.forward_chain();
        let mut fwd = vec![
            established(&forward),
            format!("-A {forward} -o {}+ -j DROP", self.prefix),
        ];
        if v6 {
            // Tenant networks have no IPv6; nothing of theirs is forwarded.
            fwd.push(format!("-A {forward} -j DROP"));
        } else {
            fwd.extend(
                self.deny
                    .iter()
                    .map(|d| format!("-A {forward} -d {d} -j DROP")),
            );
        }
        vec![
            (
                input.clone(),
                vec![established(&input), format!("-A {input} -j DROP")],
            ),
            (forward, fwd),
        ]
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

impl Iptables {
    /// One family's state: each chain's rules as expected, and both jumps in place.
    async fn family_ok(&self, rules: &FilterRules, v6: bool) -> Result<bool, RuntimeError> {
        for (chain, want) in rules.chain_rules(v6) {
            let (ok, listed) = ipt(v6, &["-S", &chain]).await?;
            let have: Vec<&str> = listed.lines().filter(|l| l.starts_with("-A ")).collect();
            if !ok || have != want.iter().map(String::as_str).collect::<Vec<_>>() {
                return Ok(false);
            }
        }
        let iface = format!("{}+", rules.prefix);
        let parent = forward_parent(v6).await?;
        for (from, to) in [
            ("INPUT", rules.input_chain()),
            (parent, rules.forward_chain()),
        ] {
            if !ipt(v6, &["-C", from, "-i", &iface, "-j", &to]).await?.0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn apply_family(&self, rules: &FilterRules, v6: bool) -> Result<(), RuntimeError> {
        if self.family_ok(rules, v6).await? {
            return Ok(());
        }
        let iface = format!("{}+", rules.prefix);
        let parent = forward_parent(v6).await?;
        // Jumps first: a chain that is new and empty passes everything for the moment it takes
        // to fill it, and a chain being refilled keeps its jump; the rules go in right after.
        for (chain, want) in rules.chain_rules(v6) {
            // -N fails when the chain exists: then it is flushed.
            if !ipt(v6, &["-N", &chain]).await?.0 {
                must(v6, &["-F", &chain]).await?;
            }
            for rule in want {
                let args: Vec<&str> = rule.split(' ').collect();
                must(v6, &args).await?;
            }
        }
        for (from, to) in [
            ("INPUT", rules.input_chain()),
            (parent, rules.forward_chain()),
        ] {
            if !ipt(v6, &["-C", from, "-i", &iface, "-j", &to]).await?.0 {
                must(v6, &["-I", from, "1", "-i", &iface, "-j", &to]).await?;
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
        let rules = FilterRules {
            prefix: prefix.to_owned(),
            deny: Vec::new(),
        };
        let iface = format!("{prefix}+");
        for v6 in [false, true] {
            for (from, to) in [
                ("INPUT", rules.input_chain()),
                ("DOCKER-USER", rules.forward_chain()),
                ("FORWARD", rules.forward_chain()),
            ] {
                while ipt(v6, &["-D", from, "-i", &iface, "-j", &to]).await?.0 {}
            }
            for chain in [rules.input_chain(), rules.forward_chain()] {
                if ipt(v6, &["-F", &chain]).await?.0 {
                    must(v6, &["-X", &chain]).await?;
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
    fn rules_drop_what_is_not_a_reply() {
        let r = FilterRules {
            prefix: "hsl".into(),
            deny: vec!["169.254.0.0/16".into()],
        };
        let v4 = r.chain_rules(false);
        assert_eq!(
            v4,
            vec![
                (
                    "HOSTEL-IN-hsl".to_owned(),
                    vec![
                        "-A HOSTEL-IN-hsl -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
                            .to_owned(),
                        "-A HOSTEL-IN-hsl -j DROP".to_owned()
                    ]
                ),
                (
                    "HOSTEL-FWD-hsl".to_owned(),
                    vec![
                        "-A HOSTEL-FWD-hsl -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
                            .to_owned(),
                        "-A HOSTEL-FWD-hsl -o hsl+ -j DROP".to_owned(),
                        "-A HOSTEL-FWD-hsl -d 169.254.0.0/16 -j DROP".to_owned()
                    ]
                )
            ]
        );
        let v6 = r.chain_rules(true);
        assert_eq!(
            v6[1].1.last().map(String::as_str),
            Some("-A HOSTEL-FWD-hsl -j DROP")
        );
    }
}
