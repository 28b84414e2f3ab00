//! What the gateway counts per client address before a login: connections still unauthenticated
//! (capped, against slowloris floods) and failed logins (too many within a window ban the
//! address). In memory: a daemon restart forgets counts, never bans (those are in the store).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per-address counters, shared by all connections.
#[derive(Debug, Default)]
pub struct AddressGuard {
    unauthenticated: Mutex<HashMap<IpAddr, u32>>,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
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

    /// Records a failed login; returns true when `ip` has now failed `limit` times within
    /// `window` (and forgets those failures, so one ban follows one burst).
    pub fn fail(&self, ip: IpAddr, limit: u32, window: Duration, now: Instant) -> bool {
        if limit == 0 {
            return false;
        }
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let times = map.entry(ip).or_default();
        times.push_back(now);
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            times.pop_front();
        }
        if times.len() >= limit as usize {
            map.remove(&ip);
            return true;
        }
        false
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

    #[test]
    fn failures_ban_at_the_limit_within_the_window() {
        let g = AddressGuard::default();
        let w = Duration::from_secs(60);
        let t = Instant::now();
        assert_eq!(
            [g.fail(A, 3, w, t), g.fail(A, 3, w, t), g.fail(B, 3, w, t)],
            [false, false, false]
        );
        assert!(g.fail(A, 3, w, t));
        assert!(!g.fail(A, 3, w, t), "counting starts over after a ban");
        assert!(!g.fail(A, 0, w, t), "0 never bans");
    }

    #[test]
    fn old_failures_fall_out_of_the_window() {
        let g = AddressGuard::default();
        let w = Duration::from_secs(10);
        let t = Instant::now();
        assert!(!g.fail(A, 2, w, t));
        assert!(!g.fail(A, 2, w, t + Duration::from_secs(11)));
        assert!(g.fail(A, 2, w, t + Duration::from_secs(12)));
    }
}
