//! How the homes pool takes room on the host: allocated, never sparse, and grown ahead of what
//! its homes use while the host has room.
//!
//! A sparse pool image let the host's disk fill under it: the next write the pool's loop device
//! passed down failed, btrfs aborted its transaction and turned the whole pool read-only for
//! every tenant, and a write already reported as done was lost. An allocated image never needs
//! room on the host to take a write, so a full pool answers `ENOSPC` to the write that does not
//! fit, at the moment it is made, and stays writable. The pool starts small and grows (the file
//! first, then the loop device, then the filesystem) when its free space runs low, as long as
//! the host keeps a reserve; it never shrinks on its own.

use super::btrfs::{io_err, run};
use crate::RuntimeError;
use hostel_core::ByteSize;
use serde::Serialize;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A new pool's size, or less where the host has less room.
pub const INITIAL: ByteSize = ByteSize::gib(1);
/// The homes pool keeps at least this much free, or a quarter of what it holds when that is
/// more.
pub const HEADROOM_MIN: ByteSize = ByteSize::gib(1);
/// The host's filesystem keeps at least this much free, or a twentieth of its size when that is
/// less, for the store, the audit log and everything else on it.
pub const HOST_RESERVE_MAX: ByteSize = ByteSize::gib(1);
/// A new home needs at least this much free in the pool.
pub const MIN_HOME_ROOM: ByteSize = ByteSize::mib(64);
/// Sizes are whole steps of this.
const STEP: u64 = 64 << 20;

/// The homes pool as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PoolState {
    /// The pool's size now.
    pub size: ByteSize,
    /// What its homes and btrfs's metadata use.
    pub used: ByteSize,
    /// The most it may grow to (`[storage] pool_size`, or the host filesystem's size).
    pub cap: ByteSize,
    /// The least free space it keeps, when a quarter of what it holds is less.
    pub headroom: ByteSize,
    /// Free on the host filesystem that holds the pool's image.
    pub host_free: ByteSize,
    /// What the pool leaves free on the host.
    pub host_reserve: ByteSize,
    /// Whether every byte of the image is allocated on the host (a pool made before this was
    /// sparse).
    pub allocated: bool,
    /// Whether the pool is mounted read-only (btrfs does that after a failed write).
    pub read_only: bool,
}

impl PoolState {
    /// Free in the pool now.
    pub fn free(&self) -> ByteSize {
        ByteSize::bytes(self.size.as_u64().saturating_sub(self.used.as_u64()))
    }

    /// Free in the pool once grown as far as the host allows.
    pub fn room(&self) -> ByteSize {
        let grown = self
            .cap
            .as_u64()
            .min(self.size.as_u64().saturating_add(self.spare()));
        ByteSize::bytes(
            grown
                .max(self.size.as_u64())
                .saturating_sub(self.used.as_u64()),
        )
    }

    /// What the host can still give the pool.
    fn spare(&self) -> u64 {
        self.host_free
            .as_u64()
            .saturating_sub(self.host_reserve.as_u64())
    }

    /// The size to grow to, when the pool should grow: its free space is under half the
    /// headroom it keeps and the host can give at least one step; never past the cap or the
    /// host's reserve.
    pub fn grow_to(&self) -> Option<ByteSize> {
        let (size, used) = (self.size.as_u64(), self.used.as_u64());
        let headroom = self.headroom.as_u64().max(used / 4);
        if size.saturating_sub(used) >= headroom / 2 {
            return None;
        }
        let want = round_up(used.saturating_add(headroom));
        let most = round_down(self.cap.as_u64().min(size.saturating_add(self.spare())));
        let to = want.min(most);
        (to >= size.saturating_add(STEP)).then(|| ByteSize::bytes(to))
    }

    /// Whether the pool is as good as full: under [`MIN_HOME_ROOM`] free, even once grown.
    pub fn is_full(&self) -> bool {
        self.room() < MIN_HOME_ROOM
    }

    /// Why `store` (`the homes pool`) cannot take `what`, with the numbers an admin needs.
    pub fn full_message(&self, what: &str, store: &str) -> String {
        if self.read_only {
            return format!("{what}: {store} is mounted read-only after a failed write");
        }
        format!(
            "{what}: {store} has {} free of {} and cannot grow: {} free on the host's \
             filesystem, of which {} stays free",
            self.free().human(),
            self.size.human(),
            self.host_free.human(),
            self.host_reserve.human()
        )
    }
}

/// What the pool leaves free on a host filesystem of `total` bytes.
pub fn host_reserve(total: u64) -> ByteSize {
    ByteSize::bytes(HOST_RESERVE_MAX.as_u64().min(total / 20))
}

/// The size of a new pool: [`INITIAL`], less on a host with less room, never past `cap`; `None`
/// when the host cannot give a pool [`MIN_HOME_ROOM`] and btrfs's own needs.
pub fn initial_size(host_free: u64, reserve: ByteSize, cap: ByteSize) -> Option<ByteSize> {
    let size = round_down(
        INITIAL
            .as_u64()
            .min(cap.as_u64())
            .min(host_free.saturating_sub(reserve.as_u64())),
    );
    (size >= 4 * MIN_HOME_ROOM.as_u64()).then(|| ByteSize::bytes(size))
}

/// A btrfs filesystem in an image file on a loop device, kept allocated and grown ahead of its
/// use: the homes pool, and the engine's storage where it is one.
#[derive(Debug, Clone)]
pub struct LoopFile {
    /// What it is, in messages (`the homes pool`).
    pub what: &'static str,
    /// The image file.
    pub image: PathBuf,
    /// Where it is mounted.
    pub mount: PathBuf,
    /// The most it may grow to.
    pub cap: ByteSize,
    /// The least free space it keeps (see [`PoolState::grow_to`]).
    pub headroom: ByteSize,
}

/// Keeps `file` (`keep`) or reads how it stands, off the executor; `None` when there is no
/// file to keep. `what` names it in an error.
pub async fn keep_or_look(
    file: Option<LoopFile>,
    keep: bool,
    what: &str,
) -> Result<Option<PoolState>, RuntimeError> {
    tokio::task::spawn_blocking(move || match file {
        Some(file) if keep => file.keep_up(),
        Some(file) => file.state(),
        None => Ok(None),
    })
    .await
    .map_err(|e| RuntimeError::Host {
        action: format!("keep {what}"),
        message: e.to_string(),
    })?
}

impl LoopFile {
    /// Its size, use and room on the host; `None` when it is not mounted.
    pub fn state(&self) -> Result<Option<PoolState>, RuntimeError> {
        let Some(options) = mount_options(&self.mount) else {
            return Ok(None);
        };
        let (free, size) = host_space(&self.mount)?;
        let (host_free, host_total) = host_space(self.image.parent().unwrap_or(Path::new("/")))?;
        let meta = std::fs::metadata(&self.image).map_err(io_err("read the image"))?;
        Ok(Some(PoolState {
            size: ByteSize::bytes(size),
            used: ByteSize::bytes(size.saturating_sub(free)),
            cap: self.cap,
            headroom: self.headroom,
            host_free: ByteSize::bytes(host_free),
            host_reserve: host_reserve(host_total),
            allocated: std::os::unix::fs::MetadataExt::blocks(&meta).saturating_mul(512)
                >= meta.len(),
            read_only: options.iter().any(|o| o == "ro"),
        }))
    }

    /// Keeps it able to take every write it accepts: mounted without discard, its image
    /// allocated, grown while its free space runs low and the host has room.
    pub fn keep_up(&self) -> Result<Option<PoolState>, RuntimeError> {
        // One keeper at a time (the daemon, a create, an image build): btrfs refuses a second
        // resize while one runs.
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.image.with_extension("keep.lock"))
            .map_err(io_err("open the grow lock"))?;
        let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io_err("take the grow lock")(std::io::Error::from(e)))?;
        if mount_options(&self.mount).is_some_and(|o| o.iter().any(|o| o.starts_with("discard"))) {
            run(
                &format!("stop discarding in {}", self.what),
                Command::new("mount")
                    .args(["-o", "remount,nodiscard"])
                    .arg(&self.mount),
            )?;
        }
        let Some(state) = self.state()? else {
            return Ok(None);
        };
        if state.read_only {
            return Ok(Some(state));
        }
        if !state.allocated {
            self.allocate_sparse(&state)?;
        } else if let Some(to) = state.grow_to() {
            tracing::info!(from = %state.size, to = %to, "growing {}", self.what);
            allocate(&self.image, to)?;
            self.refresh_loop()?;
            run(
                &format!("grow {}", self.what),
                Command::new("btrfs")
                    .args(["filesystem", "resize", "max"])
                    .arg(&self.mount),
            )?;
        }
        self.state()
    }

    /// Allocates an image made sparse by an earlier hostel: whole where the host has room,
    /// else first shrunk to what it holds and its headroom.
    fn allocate_sparse(&self, state: &PoolState) -> Result<(), RuntimeError> {
        let meta = std::fs::metadata(&self.image).map_err(io_err("read the image"))?;
        let held = std::os::unix::fs::MetadataExt::blocks(&meta).saturating_mul(512);
        let missing = meta.len().saturating_sub(held);
        let spare = state
            .host_free
            .as_u64()
            .saturating_sub(state.host_reserve.as_u64());
        if missing <= spare {
            return allocate(&self.image, ByteSize::bytes(meta.len()));
        }
        let target = round_up(
            state
                .used
                .as_u64()
                .saturating_add(self.headroom.as_u64())
                .min(held.saturating_add(spare)),
        );
        if target >= meta.len() || target <= state.used.as_u64() {
            return Ok(());
        }
        tracing::info!(from = %state.size, to = %ByteSize::bytes(target), "shrinking sparse {} to allocate it", self.what);
        run(
            &format!("shrink {}", self.what),
            Command::new("btrfs")
                .args(["filesystem", "resize", &target.to_string()])
                .arg(&self.mount),
        )?;
        OpenOptions::new()
            .write(true)
            .open(&self.image)
            .and_then(|f| f.set_len(target))
            .map_err(io_err("shorten the image"))?;
        self.refresh_loop()?;
        allocate(&self.image, ByteSize::bytes(target))
    }

    /// Makes its loop device take the image's size again.
    fn refresh_loop(&self) -> Result<(), RuntimeError> {
        let action = format!("find the loop device of {}", self.what);
        let listed = run(&action, Command::new("losetup").arg("-j").arg(&self.image))?;
        let device = listed
            .lines()
            .next()
            .and_then(|l| l.split_once(':'))
            .map(|(d, _)| d.to_owned())
            .ok_or_else(|| RuntimeError::Host {
                action,
                message: format!("no loop device has {}", self.image.display()),
            })?;
        run(
            &format!("resize the loop device of {}", self.what),
            Command::new("losetup").arg("-c").arg(&device),
        )?;
        Ok(())
    }
}

/// The options of the mount at `path`, its own and its filesystem's (`rw,noatime,discard=async`),
/// from /proc/self/mountinfo; `None` when nothing is mounted there.
pub(crate) fn mount_options(path: &Path) -> Option<Vec<String>> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.to_string_lossy().replace(' ', "\\040");
    info.lines().rev().find_map(|l| {
        let (mount, fs) = l.split_once(" - ")?;
        let mut fields = mount.split(' ');
        (fields.nth(4)? == want).then(|| {
            let own = fields.next().unwrap_or_default();
            let sup = fs.split(' ').nth(2).unwrap_or_default();
            own.split(',')
                .chain(sup.split(','))
                .map(str::to_owned)
                .collect()
        })
    })
}

/// Free bytes and total size of the filesystem holding `path`.
pub(crate) fn host_space(path: &Path) -> Result<(u64, u64), RuntimeError> {
    let s = nix::sys::statvfs::statvfs(path).map_err(|e| RuntimeError::Host {
        action: format!("read the free space of {}", path.display()),
        message: e.to_string(),
    })?;
    Ok((
        s.blocks_available() * s.fragment_size(),
        s.blocks() * s.fragment_size(),
    ))
}

/// Allocates the first `len` bytes of `image` on the host (growing the file to `len` when it
/// is shorter), so that no write to them needs room later.
pub(crate) fn allocate(image: &Path, len: ByteSize) -> Result<(), RuntimeError> {
    let file = OpenOptions::new()
        .write(true)
        .open(image)
        .map_err(io_err("open the homes pool image"))?;
    let len = i64::try_from(len.as_u64()).unwrap_or(i64::MAX);
    nix::fcntl::fallocate(&file, nix::fcntl::FallocateFlags::empty(), 0, len)
        .map_err(|e| io_err("allocate the homes pool image")(e.into()))
}

fn round_up(n: u64) -> u64 {
    n.div_ceil(STEP).saturating_mul(STEP)
}

fn round_down(n: u64) -> u64 {
    n / STEP * STEP
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const G: u64 = 1 << 30;
    const M: u64 = 1 << 20;

    fn state(size: u64, used: u64, host_free: u64) -> PoolState {
        PoolState {
            size: ByteSize::bytes(size),
            used: ByteSize::bytes(used),
            cap: ByteSize::bytes(100 * G),
            headroom: HEADROOM_MIN,
            host_free: ByteSize::bytes(host_free),
            host_reserve: ByteSize::gib(1),
            allocated: true,
            read_only: false,
        }
    }

    #[test]
    fn grows_when_free_space_runs_low_and_the_host_has_room() {
        assert_eq!(state(G, 100 * M, 50 * G).grow_to(), None, "900 MiB free");
        assert_eq!(
            state(G, 700 * M, 50 * G).grow_to(),
            Some(ByteSize::bytes(1728 * M)),
            "324 MiB free: grow to what is used and 1 GiB"
        );
        assert_eq!(
            state(8 * G, 7800 * M, 50 * G).grow_to(),
            Some(ByteSize::bytes(9792 * M)),
            "a quarter of what is used"
        );
        // The host's reserve bounds it; less than a step is not worth it.
        assert_eq!(
            state(G, 900 * M, G + 512 * M).grow_to(),
            Some(ByteSize::bytes(1536 * M))
        );
        assert_eq!(state(G, 900 * M, G + 32 * M).grow_to(), None);
        assert!(state(G, 1000 * M, G + 32 * M).is_full());
        assert!(!state(G, 1000 * M, 3 * G).is_full());
        // The cap bounds it.
        let capped = PoolState {
            cap: ByteSize::bytes(G + 128 * M),
            ..state(G, 900 * M, 50 * G)
        };
        assert_eq!(capped.grow_to(), Some(ByteSize::bytes(G + 128 * M)));
    }

    #[test]
    fn a_new_pool_fits_the_host() {
        let reserve = host_reserve(1536 * M);
        assert_eq!(reserve, ByteSize::bytes(1536 * M / 20));
        assert_eq!(host_reserve(500 * G), HOST_RESERVE_MAX);
        assert_eq!(
            initial_size(50 * G, ByteSize::gib(1), ByteSize::gib(8)),
            Some(INITIAL)
        );
        assert_eq!(
            initial_size(700 * M, ByteSize::mib(76), ByteSize::gib(8)),
            Some(ByteSize::bytes(576 * M))
        );
        assert_eq!(
            initial_size(300 * M, ByteSize::mib(76), ByteSize::gib(8)),
            None
        );
    }

    proptest! {
        /// Growing never shrinks, never passes the cap or takes the host's reserve, and leaves
        /// the pool with more free space than before.
        #[test]
        fn growth_is_bounded(
            size in 256 * M..64 * G,
            used_part in 0.0f64..1.0,
            host_free in 0..128 * G,
            cap in 256 * M..256 * G,
        ) {
            let used = (size as f64 * used_part) as u64;
            let s = PoolState { cap: ByteSize::bytes(cap), ..state(size, used, host_free) };
            if let Some(to) = s.grow_to() {
                let to = to.as_u64();
                prop_assert!(to > size);
                prop_assert!(to <= cap);
                prop_assert!(to - size <= host_free.saturating_sub(G));
                prop_assert!(to - used > size - used);
            }
            prop_assert!(s.room() >= s.free());
        }
    }
}
