//! Tenant networks: each tenant gets a bridge of its own with a small subnet from hostel's pool,
//! and an egress policy. Pure decisions: which subnet is free, what the bridge is called.

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Whether a workspace may open connections beyond its own network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Egress {
    /// To the internet (never to the host, other tenants or the denied ranges).
    #[default]
    All,
    /// Nowhere: the network has no route out.
    None,
}

impl Egress {
    /// The word used in flags, the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Egress::All => "all",
            Egress::None => "none",
        }
    }
}

impl fmt::Display for Egress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An egress word that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("egress {0:?}: use all or none")]
pub struct EgressError(pub String);

impl FromStr for Egress {
    type Err = EgressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Egress::All),
            "none" => Ok(Egress::None),
            _ => Err(EgressError(s.to_owned())),
        }
    }
}

/// The first subnet of `prefix_len` bits inside `pool` that overlaps none of `used`, skipping
/// `skip` free ones (to step past a subnet the engine refused because someone took it meanwhile).
pub fn free_subnet(
    pool: Ipv4Net,
    prefix_len: u8,
    used: &[Ipv4Net],
    skip: usize,
) -> Option<Ipv4Net> {
    pool.subnets(prefix_len)
        .ok()?
        .filter(|s| !used.iter().any(|u| overlaps(s, u)))
        .nth(skip)
}

/// Whether two networks share an address.
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The host interface of a tenant's bridge: `prefix` and a hash of the instance and tenant,
/// 15 characters at most (the kernel's limit), so one packet-filter rule on `prefix+` covers
/// every tenant of this hostel.
pub fn bridge_name(prefix: &str, instance: &str, tenant: &str) -> String {
    // FNV-1a: stable across versions and platforms, no dependency; collisions only rename.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in instance.bytes().chain([0]).chain(tenant.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let room = 15usize.saturating_sub(prefix.len());
    let hex = format!("{h:016x}");
    format!("{prefix}{}", hex.get(..room).unwrap_or(&hex))
}

/// Whether `prefix` can start bridge names: 1 to 7 of a-z and 0-9, starting with a letter.
pub fn valid_prefix(prefix: &str) -> bool {
    (1..=7).contains(&prefix.len())
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_are_handed_out_in_order_around_used_ones() {
        let pool = net("10.213.0.0/16");
        assert_eq!(free_subnet(pool, 28, &[], 0), Some(net("10.213.0.0/28")));
        let used = [net("10.213.0.0/28"), net("10.213.0.32/27")];
        assert_eq!(free_subnet(pool, 28, &used, 0), Some(net("10.213.0.16/28")));
        assert_eq!(free_subnet(pool, 28, &used, 1), Some(net("10.213.0.64/28")));
        // A used network larger than the pool covers all of it.
        assert_eq!(free_subnet(pool, 28, &[net("10.0.0.0/8")], 0), None);
        // A prefix shorter than the pool's has no subnets.
        assert_eq!(free_subnet(pool, 12, &[], 0), None);
        let tiny = net("10.9.0.0/27");
        let full = [net("10.9.0.0/28"), net("10.9.0.16/28")];
        assert_eq!(free_subnet(tiny, 28, &full, 0), None);
    }

    #[test]
    fn bridge_names_fit_the_kernel_and_differ_per_tenant() {
        let a = bridge_name("hsl", "inst", "alice");
        let b = bridge_name("hsl", "inst", "bob");
        let c = bridge_name("hsl", "other", "alice");
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("hsl"));
        assert!(a != b && a != c);
        assert_eq!(a, bridge_name("hsl", "inst", "alice"), "stable");
        assert_eq!(bridge_name("t1234ab", "i", "t").len(), 15);
    }

    #[test]
    fn prefixes_and_egress_words_are_checked() {
        assert!(valid_prefix("hsl") && valid_prefix("t1a2b3c"));
        assert!(!valid_prefix("") && !valid_prefix("HSL") && !valid_prefix("1ab"));
        assert!(!valid_prefix("toolong1"));
        assert_eq!("none".parse::<Egress>(), Ok(Egress::None));
        assert_eq!(Egress::default().to_string(), "all");
        assert!("some".parse::<Egress>().is_err());
    }
}
