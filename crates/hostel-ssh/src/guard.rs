//! What the gateway counts per client address before a login: connections still unauthenticated
//! (capped, against slowloris floods). Failed logins are counted by the service, with the API's
//! (`Hostel::login_failed`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Per-address counters, shared by all connections.
#[derive(Debug, Default)]
pub struct AddressGuard {
    unauthenticated: Mutex<HashMap<IpAddr, u32>>,
}

/// One unauthenticated connection's place in the count; freed on login or drop.
#[derive(Debug)]
pub struct Pending {
    guard: Arc<AddressGuard>,
    ip: IpAddr,
    done: bool,
}

impl AddressGuard {
    /// Takes a place for a new connection from `ip`, unless `max` are already pending.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, max: u32) -> Option<Pending> {
        let mut map = self
            .unauthenticated
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Pending {
            guard: self.clone(),
            ip,
            done: false,
        })
    }
}

impl Pending {
    /// The connection logged in: it no longer counts as pending.
    pub fn authenticated(&mut self) {
        self.release();
    }

    fn release(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        let mut map = self
            .guard
            .unauthenticated
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn pending_connections_are_capped_per_address() {
        let g = Arc::new(AddressGuard::default());
        let first = g.admit(A, 2);
        let mut second = g.admit(A, 2).unwrap();
        assert!(g.admit(A, 2).is_none());
        assert!(g.admit(B, 2).is_some(), "another address is unaffected");
        second.authenticated();
        assert!(g.admit(A, 2).is_some());
        drop(first);
        drop(second);
    }
}
