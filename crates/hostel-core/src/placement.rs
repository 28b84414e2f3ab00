//! Placement: whether a quota fits the host it is asked of. One host today; the decision takes
//! the host's capacity as input so a cluster can ask it per node later.

use crate::quota::{Cpus, Gpus, Quota};
use crate::size::ByteSize;

/// What a host has to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCapacity {
    /// CPUs the engine can use.
    pub cpus: Cpus,
    /// Memory the engine can use.
    pub memory: ByteSize,
    /// Size of the filesystem that holds the tenants' homes.
    pub disk_total: ByteSize,
    /// GPUs the engine can give.
    pub gpus: u32,
}

/// A quota no workspace on this host could ever get.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// More CPUs than the host has.
    #[error("cpus {asked}: the host has only {host} CPUs")]
    TooManyCpus {
        /// Requested.
        asked: Cpus,
        /// Available.
        host: Cpus,
    },
    /// More memory than the host has.
    #[error("memory {asked}: the host has only {}", host.human())]
    TooMuchMemory {
        /// Requested.
        asked: ByteSize,
        /// Available.
        host: ByteSize,
    },
    /// GPUs on a host without them, or more than it has.
    #[error("gpus {asked}: the host has {host} GPUs")]
    TooManyGpus {
        /// Requested.
        asked: Gpus,
        /// Available.
        host: u32,
    },
    /// A home larger than the disk that holds it.
    #[error("disk {asked}: the filesystem holding the homes is only {}", host.human())]
    TooMuchDisk {
        /// Requested.
        asked: ByteSize,
        /// Available.
        host: ByteSize,
    },
}

/// Checks that `quota` fits on `host`. Homes are sparse, so the sum of disk quotas may exceed the
/// disk (overcommit, as with thin provisioning); a single home larger than the disk may not.
pub fn check_fits(quota: &Quota, host: &HostCapacity) -> Result<(), PlacementError> {
    if quota.cpus > host.cpus {
        return Err(PlacementError::TooManyCpus {
            asked: quota.cpus,
            host: host.cpus,
        });
    }
    if quota.memory > host.memory {
        return Err(PlacementError::TooMuchMemory {
            asked: quota.memory,
            host: host.memory,
        });
    }
    let too_many = match quota.gpus {
        Gpus::None => false,
        Gpus::All => host.gpus == 0,
        Gpus::Count(n) => n > host.gpus,
    };
    if too_many {
        return Err(PlacementError::TooManyGpus {
            asked: quota.gpus,
            host: host.gpus,
        });
    }
    if quota.disk > host.disk_total {
        return Err(PlacementError::TooMuchDisk {
            asked: quota.disk,
            host: host.disk_total,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn host() -> HostCapacity {
        HostCapacity {
            cpus: Cpus::millis(2000),
            memory: ByteSize::gib(24),
            disk_total: ByteSize::gib(250),
            gpus: 2,
        }
    }

    fn quota(cpus: u32, mem_gib: u64, disk_gib: u64) -> Quota {
        Quota {
            cpus: Cpus::millis(cpus),
            memory: ByteSize::gib(mem_gib),
            disk: ByteSize::gib(disk_gib),
            pids: 512,
            gpus: Gpus::None,
            disk_io: crate::quota::DiskIo::Unlimited,
        }
    }

    #[test]
    fn refuses_what_the_host_lacks() {
        assert_eq!(check_fits(&quota(2000, 24, 250), &host()), Ok(()));
        assert_eq!(
            check_fits(&quota(3000, 1, 1), &host()).map_err(|e| e.to_string()),
            Err("cpus 3: the host has only 2 CPUs".into())
        );
        assert_eq!(
            check_fits(&quota(1000, 64, 1), &host()),
            Err(PlacementError::TooMuchMemory {
                asked: ByteSize::gib(64),
                host: ByteSize::gib(24)
            })
        );
        assert_eq!(
            check_fits(&quota(1000, 1, 300), &host()),
            Err(PlacementError::TooMuchDisk {
                asked: ByteSize::gib(300),
                host: ByteSize::gib(250)
            })
        );
    }

    #[test]
    fn gpus_fit_what_the_host_has() {
        let with = |gpus| Quota {
            gpus,
            ..quota(1000, 1, 1)
        };
        assert_eq!(check_fits(&with(Gpus::Count(2)), &host()), Ok(()));
        assert_eq!(check_fits(&with(Gpus::All), &host()), Ok(()));
        assert_eq!(
            check_fits(&with(Gpus::Count(3)), &host()).map_err(|e| e.to_string()),
            Err("gpus 3: the host has 2 GPUs".into())
        );
        let none = HostCapacity { gpus: 0, ..host() };
        assert_eq!(check_fits(&with(Gpus::None), &none), Ok(()));
        assert_eq!(
            check_fits(&with(Gpus::All), &none),
            Err(PlacementError::TooManyGpus {
                asked: Gpus::All,
                host: 0
            })
        );
    }

    proptest! {
        #[test]
        fn fits_iff_every_dimension_fits(c in 1u32..4000, m in 1u64..48, d in 1u64..500) {
            let q = quota(c, m, d);
            let fits = c <= 2000 && m <= 24 && d <= 250;
            prop_assert_eq!(check_fits(&q, &host()).is_ok(), fits);
        }
    }
}
