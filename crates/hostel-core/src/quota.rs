//! Quotas: what a workspace may use. The kernel enforces them (cgroups for CPU, memory and pids;
//! a btrfs qgroup on the tenant's home for disk); this module only says which values make sense.

use crate::size::ByteSize;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// CPU share in thousandths of a CPU (`1.5` CPUs = 1500).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "crate::size::NumberOrText", into = "String")]
pub struct Cpus(u32);

impl Cpus {
    /// `n` thousandths of a CPU.
    pub const fn millis(n: u32) -> Self {
        Cpus(n)
    }
    /// Thousandths of a CPU.
    pub const fn as_millis(self) -> u32 {
        self.0
    }
    /// Nanoseconds of CPU time per second of wall time.
    pub const fn as_nanos(self) -> i64 {
        self.0 as i64 * 1_000_000
    }
}

impl FromStr for Cpus {
    type Err = QuotaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || QuotaError::BadCpus {
            input: s.to_owned(),
        };
        let v: f64 = s.trim().parse().map_err(|_| bad())?;
        if !v.is_finite() || v <= 0.0 || v > 4096.0 {
            return Err(bad());
        }
        let millis = (v * 1000.0).round() as u32;
        if millis == 0 {
            return Err(bad());
        }
        Ok(Cpus(millis))
    }
}

impl TryFrom<String> for Cpus {
    type Error = QuotaError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl TryFrom<crate::size::NumberOrText> for Cpus {
    type Error = QuotaError;
    fn try_from(v: crate::size::NumberOrText) -> Result<Self, Self::Error> {
        String::from(v).parse()
    }
}

impl From<Cpus> for String {
    fn from(c: Cpus) -> String {
        c.to_string()
    }
}

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", self.0 / 1000)
        } else {
            let s = format!("{:.3}", f64::from(self.0) / 1000.0);
            f.write_str(s.trim_end_matches('0'))
        }
    }
}

/// The GPUs a workspace gets: none, all the host's, or the first N of them (as `docker run
/// --gpus N` picks them). GPUs are shared between the workspaces given them, not reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Gpus {
    /// No GPU.
    #[default]
    None,
    /// Every GPU the host has.
    All,
    /// The first N.
    Count(u32),
}

/// The most GPUs a workspace may be given by number.
pub const MAX_GPUS: u32 = 64;

impl Gpus {
    /// Whether the workspace gets none.
    pub fn is_none(self) -> bool {
        self == Gpus::None
    }
}

impl FromStr for Gpus {
    type Err = QuotaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "none" | "0" => Ok(Gpus::None),
            "all" => Ok(Gpus::All),
            n => match n.parse::<u32>() {
                Ok(n) if (1..=MAX_GPUS).contains(&n) => Ok(Gpus::Count(n)),
                _ => Err(QuotaError::BadGpus {
                    input: s.to_owned(),
                }),
            },
        }
    }
}

impl TryFrom<String> for Gpus {
    type Error = QuotaError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Gpus> for String {
    fn from(g: Gpus) -> String {
        g.to_string()
    }
}

impl fmt::Display for Gpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gpus::None => f.write_str("none"),
            Gpus::All => f.write_str("all"),
            Gpus::Count(n) => write!(f, "{n}"),
        }
    }
}

/// How fast a workspace may read and write its disks (its home and its root filesystem), each
/// way: no limit, bytes a second, or operations a second. Kept by the kernel's block throttle
/// on the devices under them, so what a tenant's own `fsync` pushes out is slowed in the
/// tenant's time, not in its neighbours'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DiskIo {
    /// No limit.
    #[default]
    Unlimited,
    /// Bytes a second, each way.
    Bytes(ByteSize),
    /// Operations a second, each way.
    Ops(u32),
}

/// The slowest disk a workspace may be given in bytes: slower, it cannot boot or install.
pub const MIN_DISK_IO_BYTES: ByteSize = ByteSize::mib(1);
/// The slowest disk a workspace may be given in operations.
pub const MIN_DISK_IO_OPS: u32 = 10;

impl DiskIo {
    /// Whether it limits nothing.
    pub fn is_unlimited(self) -> bool {
        self == DiskIo::Unlimited
    }
}

impl FromStr for DiskIo {
    type Err = QuotaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || QuotaError::BadDiskIo {
            input: s.to_owned(),
        };
        let t = s.trim();
        let t = t.strip_suffix("/s").unwrap_or(t);
        if t == "none" {
            return Ok(DiskIo::Unlimited);
        }
        if let Some(n) = t.strip_suffix("iops") {
            return match n.trim().parse::<u32>() {
                Ok(n) if n >= MIN_DISK_IO_OPS => Ok(DiskIo::Ops(n)),
                _ => Err(bad()),
            };
        }
        match t.parse::<ByteSize>() {
            Ok(b) if b >= MIN_DISK_IO_BYTES => Ok(DiskIo::Bytes(b)),
            _ => Err(bad()),
        }
    }
}

impl TryFrom<String> for DiskIo {
    type Error = QuotaError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DiskIo> for String {
    fn from(d: DiskIo) -> String {
        d.to_string()
    }
}

impl fmt::Display for DiskIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskIo::Unlimited => f.write_str("none"),
            DiskIo::Bytes(b) => write!(f, "{b}/s"),
            DiskIo::Ops(n) => write!(f, "{n}iops"),
        }
    }
}

/// The limits of one workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    /// CPU share.
    pub cpus: Cpus,
    /// Memory limit (no swap beyond it).
    pub memory: ByteSize,
    /// Size of the tenant's home filesystem.
    pub disk: ByteSize,
    /// Most processes and threads at once.
    pub pids: u32,
    /// GPUs (given at the workspace's next start).
    #[serde(default)]
    pub gpus: Gpus,
    /// Disk reads and writes a second (given at the workspace's next start).
    #[serde(default)]
    pub disk_io: DiskIo,
}

impl Quota {
    /// The part of the quota the container engine enforces.
    pub fn limits(&self) -> Limits {
        Limits {
            cpus: self.cpus,
            memory: self.memory,
            pids: self.pids,
        }
    }
}

/// What the container engine enforces of a [`Quota`]: everything but the disk, which is the
/// home's and kept by its storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// CPU share.
    pub cpus: Cpus,
    /// Memory limit (no swap beyond it).
    pub memory: ByteSize,
    /// Most processes and threads at once.
    pub pids: u32,
}

/// A change to some of a quota's fields, as `hostel set` takes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaChange {
    /// New CPU share.
    pub cpus: Option<Cpus>,
    /// New memory limit.
    pub memory: Option<ByteSize>,
    /// New disk size.
    pub disk: Option<ByteSize>,
    /// New pids limit.
    pub pids: Option<u32>,
    /// New GPUs.
    pub gpus: Option<Gpus>,
    /// New disk I/O limit.
    pub disk_io: Option<DiskIo>,
}

impl QuotaChange {
    /// True when nothing is to change.
    pub fn is_empty(&self) -> bool {
        *self == QuotaChange::default()
    }

    /// The quota after this change.
    pub fn apply_to(&self, q: Quota) -> Quota {
        Quota {
            cpus: self.cpus.unwrap_or(q.cpus),
            memory: self.memory.unwrap_or(q.memory),
            disk: self.disk.unwrap_or(q.disk),
            pids: self.pids.unwrap_or(q.pids),
            gpus: self.gpus.unwrap_or(q.gpus),
            disk_io: self.disk_io.unwrap_or(q.disk_io),
        }
    }
}

/// The smallest memory limit: below it the shell and coreutils do not start reliably.
pub const MIN_MEMORY: ByteSize = ByteSize::mib(32);
/// The smallest home: below it a login shell's dotfiles and an editor's swap file do not fit.
pub const MIN_DISK: ByteSize = ByteSize::mib(32);
/// The fewest pids: a login shell, a pipeline and the init.
pub const MIN_PIDS: u32 = 16;

/// A quota value that cannot work, whatever the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// `--cpus` is not a positive number.
    #[error("cpus {input:?}: not a positive number of CPUs (e.g. 0.5, 2)")]
    BadCpus {
        /// The rejected input.
        input: String,
    },
    /// `--gpus` is neither `all`, `none` nor a count.
    #[error("gpus {input:?}: use all, none, or a number from 1 to {MAX_GPUS}")]
    BadGpus {
        /// The rejected input.
        input: String,
    },
    /// `--disk-io` is neither `none`, a size a second nor operations a second.
    #[error(
        "disk-io {input:?}: use none, a size a second of at least {MIN_DISK_IO_BYTES} \
         (50MiB), or at least {MIN_DISK_IO_OPS} operations a second (500iops)"
    )]
    BadDiskIo {
        /// The rejected input.
        input: String,
    },
    /// A limit under the smallest workable value.
    #[error("{field} {value}: below the minimum of {min}")]
    BelowMinimum {
        /// Which quota (`memory`, `disk`, `pids`).
        field: &'static str,
        /// The requested value, displayed.
        value: String,
        /// The minimum, displayed.
        min: String,
    },
}

impl Quota {
    /// Checks the host-independent rules (minimums).
    pub fn validate(&self) -> Result<(), QuotaError> {
        if self.memory < MIN_MEMORY {
            return Err(QuotaError::BelowMinimum {
                field: "memory",
                value: self.memory.to_string(),
                min: MIN_MEMORY.to_string(),
            });
        }
        if self.disk < MIN_DISK {
            return Err(QuotaError::BelowMinimum {
                field: "disk",
                value: self.disk.to_string(),
                min: MIN_DISK.to_string(),
            });
        }
        if self.pids < MIN_PIDS {
            return Err(QuotaError::BelowMinimum {
                field: "pids",
                value: self.pids.to_string(),
                min: MIN_PIDS.to_string(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn quota() -> Quota {
        Quota {
            cpus: Cpus(1000),
            memory: ByteSize::gib(1),
            disk: ByteSize::gib(5),
            pids: 512,
            gpus: Gpus::None,
            disk_io: DiskIo::Unlimited,
        }
    }

    #[test]
    fn disk_io_parses_and_displays() {
        for (text, io) in [
            ("none", DiskIo::Unlimited),
            ("50MiB", DiskIo::Bytes(ByteSize::mib(50))),
            ("50MiB/s", DiskIo::Bytes(ByteSize::mib(50))),
            ("500iops", DiskIo::Ops(500)),
            (" 500 iops ", DiskIo::Ops(500)),
        ] {
            assert_eq!(text.parse::<DiskIo>(), Ok(io), "{text}");
        }
        assert_eq!(DiskIo::Bytes(ByteSize::mib(50)).to_string(), "50MiB/s");
        assert_eq!(DiskIo::Ops(500).to_string(), "500iops");
        assert_eq!(DiskIo::default().to_string(), "none");
        for io in [
            DiskIo::Unlimited,
            DiskIo::Bytes(ByteSize::mib(3)),
            DiskIo::Ops(10),
        ] {
            assert_eq!(io.to_string().parse::<DiskIo>(), Ok(io));
        }
        for bad in ["", "fast", "9iops", "512KiB", "-1iops", "1.5iops", "0"] {
            assert_eq!(
                bad.parse::<DiskIo>(),
                Err(QuotaError::BadDiskIo { input: bad.into() }),
                "{bad}"
            );
        }
        let old: Quota = serde_json::from_value(serde_json::json!({
            "cpus": "1", "memory": "1GiB", "disk": "5GiB", "pids": 512
        }))
        .unwrap();
        assert_eq!(
            old.disk_io,
            DiskIo::Unlimited,
            "a quota from before reads as none"
        );
    }

    #[test]
    fn gpus_parse_and_display() {
        for (text, gpus) in [
            ("none", Gpus::None),
            ("0", Gpus::None),
            ("all", Gpus::All),
            ("2", Gpus::Count(2)),
        ] {
            assert_eq!(text.parse::<Gpus>(), Ok(gpus), "{text}");
        }
        assert_eq!(Gpus::Count(2).to_string(), "2");
        assert_eq!(Gpus::default().to_string(), "none");
        for bad in ["-1", "65", "some", "1.5", ""] {
            assert_eq!(
                bad.parse::<Gpus>(),
                Err(QuotaError::BadGpus { input: bad.into() }),
                "{bad}"
            );
        }
        // A quota written before GPUs existed reads as none.
        let old: Quota =
            serde_json::from_str(r#"{"cpus":"1","memory":"1GiB","disk":"5GiB","pids":512}"#)
                .unwrap();
        assert_eq!(old.gpus, Gpus::None);
    }

    #[test]
    fn cpus_parse_and_display() {
        assert_eq!("1.5".parse::<Cpus>(), Ok(Cpus(1500)));
        assert_eq!("2".parse::<Cpus>().map(|c| c.to_string()), Ok("2".into()));
        assert_eq!(Cpus(250).to_string(), "0.25");
        assert_eq!(Cpus(1500).as_nanos(), 1_500_000_000);
        for bad in ["0", "-1", "abc", "0.0001", "NaN", "inf", "5000"] {
            assert_eq!(
                bad.parse::<Cpus>(),
                Err(QuotaError::BadCpus { input: bad.into() }),
                "{bad}"
            );
        }
    }

    #[test]
    fn minimums_are_enforced() {
        assert_eq!(quota().validate(), Ok(()));
        let q = Quota {
            memory: ByteSize::mib(8),
            ..quota()
        };
        assert_eq!(
            q.validate(),
            Err(QuotaError::BelowMinimum {
                field: "memory",
                value: "8MiB".into(),
                min: "32MiB".into()
            })
        );
        let q = Quota { pids: 3, ..quota() };
        assert_eq!(
            q.validate().map_err(|e| e.to_string()),
            Err("pids 3: below the minimum of 16".into())
        );
    }

    #[test]
    fn change_applies_only_given_fields() {
        let c = QuotaChange {
            pids: Some(100),
            ..QuotaChange::default()
        };
        assert_eq!(
            c.apply_to(quota()),
            Quota {
                pids: 100,
                ..quota()
            }
        );
        assert!(QuotaChange::default().is_empty());
        assert!(!c.is_empty());
    }

    proptest! {
        #[test]
        fn cpus_display_parses_back(m in 1u32..4_096_000) {
            let c = Cpus(m);
            prop_assert_eq!(c.to_string().parse::<Cpus>(), Ok(c));
        }
    }
}
