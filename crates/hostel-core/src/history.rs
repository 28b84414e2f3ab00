//! A bounded history of usage, per tenant and for the host, for charts.
//!
//! The daemon's reconciler reads each workspace's counters once per look (`[lifecycle]
//! check_secs`); [`History::record`] turns two readings into rates (CPUs in use, network bytes a
//! second) and keeps two tiers: every look for the last [`FINE_KEEP_SECS`], and
//! [`COARSE_STEP_SECS`] averages for [`COARSE_KEEP_SECS`]. Both are rings of fixed size, so the
//! memory a tenant costs is bounded whatever the uptime ([`History::memory_bytes`]). A page
//! that draws a chart reads from here and never asks the engine.
//!
//! It lives in memory only: a daemon restart starts the charts afresh.

use serde::Serialize;
use std::collections::{HashMap, VecDeque};

/// How long every look is kept.
pub const FINE_KEEP_SECS: u32 = 2 * 3600;
/// The width of one averaged point of the longer tier.
pub const COARSE_STEP_SECS: u32 = 15 * 60;
/// How long the averages are kept.
pub const COARSE_KEEP_SECS: u32 = 7 * 24 * 3600;
const COARSE_KEEP: usize = (COARSE_KEEP_SECS / COARSE_STEP_SECS) as usize;
/// The most looks a tier of fine points holds, whatever `check_secs` is: an hour of looks a
/// second.
const FINE_MAX: usize = 3600;

/// One point of a chart: rates and levels over the interval that ends at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Point {
    /// The end of the interval, in seconds since the Unix epoch.
    pub at: u32,
    /// CPUs in use (1.0: one whole CPU).
    pub cpu: f32,
    /// Memory in use, in bytes.
    pub memory: f32,
    /// Bytes used in the homes.
    pub disk: f32,
    /// Network bytes received a second.
    pub rx: f32,
    /// Network bytes sent a second.
    pub tx: f32,
    /// Open sessions.
    pub sessions: f32,
    /// Running workspaces (for a tenant 0 or 1; averaged, the share of the time it ran).
    pub running: f32,
}

impl Point {
    /// Each measure divided by `n` (`at` kept): the mean of `n` points summed.
    fn divided(self, n: f32) -> Point {
        Point {
            at: self.at,
            cpu: self.cpu / n,
            memory: self.memory / n,
            disk: self.disk / n,
            rx: self.rx / n,
            tx: self.tx / n,
            sessions: self.sessions / n,
            running: self.running / n,
        }
    }
}

/// Adds each measure (`at` kept): tenants summed into the host, points into an average.
impl std::ops::AddAssign<&Point> for Point {
    fn add_assign(&mut self, p: &Point) {
        self.cpu += p.cpu;
        self.memory += p.memory;
        self.disk += p.disk;
        self.rx += p.rx;
        self.tx += p.tx;
        self.sessions += p.sessions;
        self.running += p.running;
    }
}

/// What one look saw of a tenant: counters as the engine keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reading {
    /// When, in seconds since the Unix epoch.
    pub at: i64,
    /// Whether the workspace runs.
    pub running: bool,
    /// CPU time used since the workspace started, in nanoseconds.
    pub cpu_ns: Option<u64>,
    /// Memory in use, in bytes.
    pub memory: Option<u64>,
    /// Bytes used in the home.
    pub disk: Option<u64>,
    /// Network bytes received since the workspace started.
    pub rx_bytes: Option<u64>,
    /// Network bytes sent since the workspace started.
    pub tx_bytes: Option<u64>,
    /// Open sessions.
    pub sessions: u32,
}

/// How far back a chart looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Range {
    /// The last hour, from every look.
    #[default]
    Hour,
    /// The last day, from the averages.
    Day,
    /// The last week, from the averages.
    Week,
}

impl Range {
    /// Its length in seconds.
    pub fn secs(self) -> u32 {
        match self {
            Range::Hour => 3600,
            Range::Day => 24 * 3600,
            Range::Week => 7 * 24 * 3600,
        }
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Week => "7d",
        })
    }
}

/// A range that is none of `1h`, `24h`, `7d`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("range {0:?}: one of 1h, 24h, 7d")]
pub struct RangeError(pub String);

impl std::str::FromStr for Range {
    type Err = RangeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1h" => Ok(Range::Hour),
            "24h" | "1d" => Ok(Range::Day),
            "7d" => Ok(Range::Week),
            _ => Err(RangeError(s.to_owned())),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Counters {
    at: i64,
    cpu_ns: u64,
    rx: u64,
    tx: u64,
}

/// The running sums of the averaged point being made.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    start: u32,
    n: u32,
    sum: Point,
    latest_disk: f32,
}

impl Bucket {
    fn add(&mut self, p: &Point) {
        self.n += 1;
        self.sum += p;
        self.sum.at = p.at;
        // A level, not a rate: the latest, not the mean.
        self.latest_disk = p.disk;
    }

    fn average(&self) -> Point {
        Point {
            disk: self.latest_disk,
            ..self.sum.divided(self.n.max(1) as f32)
        }
    }
}

/// One tenant's (or the host's) two tiers.
#[derive(Debug)]
struct Series {
    fine: VecDeque<Point>,
    coarse: VecDeque<Point>,
    bucket: Option<Bucket>,
    last: Option<Counters>,
}

impl Series {
    /// Rings with room for what they keep, allocated once.
    fn with_capacity(fine_cap: usize) -> Series {
        Series {
            fine: VecDeque::with_capacity(fine_cap),
            coarse: VecDeque::with_capacity(COARSE_KEEP),
            bucket: None,
            last: None,
        }
    }

    fn push(&mut self, p: Point, fine_cap: usize) {
        if self.fine.len() == fine_cap {
            self.fine.pop_front();
        }
        self.fine.push_back(p);
        let start = p.at - p.at % COARSE_STEP_SECS;
        match &mut self.bucket {
            Some(b) if b.start == start => b.add(&p),
            open => {
                if let Some(done) = open.take() {
                    if self.coarse.len() == COARSE_KEEP {
                        self.coarse.pop_front();
                    }
                    self.coarse.push_back(done.average());
                }
                let mut b = Bucket {
                    start,
                    ..Bucket::default()
                };
                b.add(&p);
                *open = Some(b);
            }
        }
    }

    fn points(&self, range: Range, now: u32) -> Vec<Point> {
        let from = now.saturating_sub(range.secs());
        match range {
            Range::Hour => self.fine.iter().filter(|p| p.at > from).copied().collect(),
            Range::Day | Range::Week => self
                .coarse
                .iter()
                .copied()
                .chain(self.bucket.map(|b| b.average()))
                .filter(|p| p.at > from)
                .collect(),
        }
    }

    fn capacity(&self) -> usize {
        self.fine.capacity() + self.coarse.capacity()
    }
}

/// Usage history of every tenant and of the host.
#[derive(Debug)]
pub struct History {
    fine_cap: usize,
    tenants: HashMap<String, Series>,
    host: Series,
    /// Each tenant's point since the last [`History::close_round`] (a later one replaces it).
    round: HashMap<String, Point>,
}

fn rate(now: u64, before: u64, secs: f64) -> f32 {
    if now < before || secs <= 0.0 {
        return 0.0;
    }
    ((now - before) as f64 / secs) as f32
}

fn epoch_secs(at: i64) -> u32 {
    u32::try_from(at.max(0)).unwrap_or(u32::MAX)
}

impl History {
    /// An empty history for looks every `check_secs`.
    pub fn new(check_secs: u64) -> History {
        let per = usize::try_from(u64::from(FINE_KEEP_SECS) / check_secs.max(1)).unwrap_or(1);
        History {
            fine_cap: per.clamp(1, FINE_MAX),
            tenants: HashMap::new(),
            host: Series::with_capacity(per.clamp(1, FINE_MAX)),
            round: HashMap::new(),
        }
    }

    /// Adds a tenant's reading; returns the point it made. A reading no later than the
    /// tenant's last one (a clock set back) is left out: the last point is returned.
    pub fn record(&mut self, tenant: &str, r: Reading) -> Point {
        let fine_cap = self.fine_cap;
        let series = self
            .tenants
            .entry(tenant.to_owned())
            .or_insert_with(|| Series::with_capacity(fine_cap));
        if let Some(last) = series.fine.back().filter(|l| l.at >= epoch_secs(r.at)) {
            return *last;
        }
        let counters = match (r.running, r.cpu_ns) {
            (true, Some(cpu_ns)) => Some(Counters {
                at: r.at,
                cpu_ns,
                rx: r.rx_bytes.unwrap_or(0),
                tx: r.tx_bytes.unwrap_or(0),
            }),
            _ => None,
        };
        let (cpu, rx, tx) = match (series.last, counters) {
            (Some(b), Some(c)) => {
                let secs = c.at.saturating_sub(b.at) as f64;
                (
                    rate(c.cpu_ns, b.cpu_ns, secs * 1e9),
                    rate(c.rx, b.rx, secs),
                    rate(c.tx, b.tx, secs),
                )
            }
            _ => (0.0, 0.0, 0.0),
        };
        series.last = counters;
        let p = Point {
            at: epoch_secs(r.at),
            cpu,
            memory: if r.running {
                r.memory.unwrap_or(0) as f32
            } else {
                0.0
            },
            disk: r.disk.unwrap_or(0) as f32,
            rx,
            tx,
            sessions: r.sessions as f32,
            running: if r.running { 1.0 } else { 0.0 },
        };
        series.push(p, fine_cap);
        self.round.insert(tenant.to_owned(), p);
        p
    }

    /// Ends one look over every tenant: the host's point is the sum of the tenants' points
    /// of this look. A look that read no tenant (the engine did not answer) leaves a gap, not
    /// a point of zeros: `None`.
    pub fn close_round(&mut self, at: i64) -> Option<Point> {
        if self.round.is_empty() {
            return None;
        }
        let mut host = Point {
            at: epoch_secs(at),
            ..Point::default()
        };
        for (_, p) in self.round.drain() {
            host += &p;
        }
        self.host.push(host, self.fine_cap);
        Some(host)
    }

    /// Forgets the tenants `keep` says no to (purged ones).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.tenants.retain(|name, _| keep(name));
        self.round.retain(|name, _| keep(name));
    }

    /// The tenants it holds a history of (those of the last look, until the next one forgets
    /// the purged).
    pub fn tenant_names(&self) -> impl Iterator<Item = &str> {
        self.tenants.keys().map(String::as_str)
    }

    /// The latest point of a tenant.
    pub fn latest(&self, tenant: &str) -> Option<Point> {
        self.tenants
            .get(tenant)
            .and_then(|s| s.fine.back().copied())
    }

    /// A tenant's points over `range` up to `now`, at most `points` of them (neighbours
    /// averaged); empty for a tenant never seen.
    pub fn tenant(&self, tenant: &str, range: Range, now: i64, points: usize) -> Vec<Point> {
        self.tenants
            .get(tenant)
            .map(|s| thin(s.points(range, epoch_secs(now)), points))
            .unwrap_or_default()
    }

    /// The host's points, as [`History::tenant`].
    pub fn host(&self, range: Range, now: i64, points: usize) -> Vec<Point> {
        thin(self.host.points(range, epoch_secs(now)), points)
    }

    /// Bytes the points take (what the rings have room for), without the map's overhead.
    pub fn memory_bytes(&self) -> usize {
        let points: usize = self
            .tenants
            .values()
            .map(Series::capacity)
            .chain([self.host.capacity(), self.round.capacity()])
            .sum();
        points * std::mem::size_of::<Point>()
            + self.tenants.len() * (std::mem::size_of::<Series>() + std::mem::size_of::<String>())
    }
}

/// At most `max` points: consecutive groups averaged (the disk level: the group's last).
fn thin(points: Vec<Point>, max: usize) -> Vec<Point> {
    if max == 0 || points.len() <= max {
        return points;
    }
    let per = points.len().div_ceil(max);
    points
        .chunks(per)
        .map(|group| {
            let mut b = Bucket::default();
            for p in group {
                b.add(p);
            }
            b.average()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn reading(at: i64, cpu_s: u64, rx: u64) -> Reading {
        Reading {
            at,
            running: true,
            cpu_ns: Some(cpu_s * 1_000_000_000),
            memory: Some(GIB),
            disk: Some(2 * GIB),
            rx_bytes: Some(rx),
            tx_bytes: Some(0),
            sessions: 2,
        }
    }

    #[test]
    fn two_readings_make_rates() {
        let mut h = History::new(30);
        let first = h.record("alice", reading(1_000, 10, 0));
        assert_eq!(first.cpu, 0.0, "nothing to compare the first reading with");
        let p = h.record("alice", reading(1_030, 25, 3_000));
        assert_eq!(p.cpu, 0.5);
        assert_eq!(p.rx, 100.0);
        assert_eq!(p.memory, GIB as f32);
        assert_eq!((p.sessions, p.running), (2.0, 1.0));
        // A counter that went back (the workspace started again) is no negative rate.
        let p = h.record("alice", reading(1_060, 1, 10));
        assert_eq!((p.cpu, p.rx), (0.0, 0.0));
        let stopped = h.record(
            "alice",
            Reading {
                at: 1_090,
                disk: Some(GIB),
                ..Reading::default()
            },
        );
        assert_eq!(
            (stopped.cpu, stopped.memory, stopped.running),
            (0.0, 0.0, 0.0)
        );
        assert_eq!(stopped.disk, GIB as f32);
    }

    #[test]
    fn the_host_is_the_sum_of_a_round() {
        let mut h = History::new(30);
        for (name, cpu) in [("a", 0), ("b", 0)] {
            h.record(name, reading(1_000, cpu, 0));
        }
        h.close_round(1_000);
        h.record("a", reading(1_030, 30, 0));
        h.record("b", reading(1_030, 15, 0));
        let host = h.close_round(1_030).unwrap();
        assert_eq!(host.cpu, 1.5);
        assert_eq!(host.running, 2.0);
        assert_eq!(host.memory, 2.0 * GIB as f32);
        assert_eq!(h.host(Range::Hour, 1_030, 100).len(), 2);
    }

    #[test]
    fn averages_keep_the_latest_disk_level() {
        let mut h = History::new(30);
        let start = 1_700_000_100 - 1_700_000_100 % i64::from(COARSE_STEP_SECS);
        for (i, disk) in [GIB, 3 * GIB].into_iter().enumerate() {
            h.record(
                "a",
                Reading {
                    disk: Some(disk),
                    ..reading(start + 30 * i as i64, 30 * i as u64, 0)
                },
            );
        }
        let week = h.tenant("a", Range::Week, start + 60, 100);
        assert_eq!(week.len(), 1, "{week:?}");
        assert_eq!(week[0].disk, (3 * GIB) as f32, "the latest, not the mean");
        assert_eq!(week[0].memory, GIB as f32);
        assert_eq!(week[0].cpu, 0.5, "a rate of 1 after a first look of 0");
    }

    #[test]
    fn a_look_that_read_nobody_leaves_a_gap() {
        let mut h = History::new(30);
        h.record("a", reading(1_000, 0, 0));
        assert!(h.close_round(1_000).is_some());
        assert_eq!(h.close_round(1_030), None, "the engine did not answer");
        assert_eq!(h.host(Range::Hour, 1_030, 100).len(), 1);
    }

    #[test]
    fn a_clock_set_back_adds_nothing() {
        let mut h = History::new(30);
        h.record("a", reading(1_000, 0, 0));
        let last = h.record("a", reading(1_030, 30, 0));
        assert_eq!(h.record("a", reading(1_010, 90, 0)), last);
        assert_eq!(h.record("a", reading(1_030, 90, 0)), last);
        let p = h.record("a", reading(1_060, 60, 0));
        assert_eq!(p.cpu, 1.0, "rates from the last reading kept");
        assert_eq!(h.tenant("a", Range::Hour, 1_060, 100).len(), 3);
    }

    #[test]
    fn an_hour_of_looks_a_second_is_kept() {
        let mut h = History::new(1);
        for i in 0..4_000 {
            h.record("a", reading(10_000 + i, i as u64, 0));
        }
        let hour = h.tenant("a", Range::Hour, 14_000, 10_000);
        assert_eq!(hour.len(), 3_599, "{}", hour.len());
    }

    #[test]
    fn a_week_stays_bounded_and_averaged() {
        let mut h = History::new(30);
        let start = 1_700_000_000;
        let week = i64::from(COARSE_KEEP_SECS) * 2;
        let mut cpu = 0;
        for i in 0..(week / 30) {
            cpu += 15; // half a CPU
            h.record("alice", reading(start + i * 30, cpu, 0));
        }
        let now = start + week;
        let hour = h.tenant("alice", Range::Hour, now, 10_000);
        assert_eq!(hour.len(), 119, "every look of the last hour");
        let all = h.tenant("alice", Range::Week, now, 10_000);
        assert!(all.len() <= COARSE_KEEP + 1, "{}", all.len());
        assert!(all.len() >= COARSE_KEEP - 1, "{}", all.len());
        assert!(
            all.iter().skip(1).all(|p| (p.cpu - 0.5).abs() < 1e-3),
            "averages of 0.5"
        );
        let thinned = h.tenant("alice", Range::Week, now, 60);
        assert!(
            thinned.len() <= 60 && thinned.len() >= 50,
            "{}",
            thinned.len()
        );
        let day = h.tenant("alice", Range::Day, now, 10_000);
        assert!((95..=97).contains(&day.len()), "{}", day.len());
        let bytes = h.memory_bytes();
        assert!(
            bytes < 2 * 30 * 1024,
            "{bytes} bytes for one tenant and the host"
        );
    }

    #[test]
    fn two_hundred_tenants_for_a_week_fit_in_a_few_mebibytes() {
        let mut h = History::new(30);
        let start = 1_700_000_000;
        let looks = i64::from(COARSE_KEEP_SECS) / 30 + 10;
        for i in 0..looks {
            for t in 0..200 {
                h.record(&format!("t{t}"), reading(start + i * 30, i as u64, 0));
            }
            h.close_round(start + i * 30);
        }
        let bytes = h.memory_bytes();
        assert!(bytes < 8 << 20, "{bytes}");
        eprintln!(
            "history of 200 tenants for 7 days: {:.1} MiB",
            bytes as f64 / (1 << 20) as f64
        );
    }

    #[test]
    fn purged_tenants_are_forgotten() {
        let mut h = History::new(30);
        h.record("a", reading(1, 0, 0));
        h.record("b", reading(1, 0, 0));
        h.retain(|n| n == "a");
        assert!(h.latest("a").is_some());
        assert!(h.latest("b").is_none());
        assert!(h.tenant("b", Range::Hour, 1, 10).is_empty());
    }

    #[test]
    fn ranges_read_as_written() {
        for (s, r) in [
            ("1h", Range::Hour),
            ("24h", Range::Day),
            ("7d", Range::Week),
        ] {
            assert_eq!(s.parse::<Range>().unwrap(), r);
            assert_eq!(r.to_string(), s);
        }
        assert!("2h".parse::<Range>().is_err());
    }
}
