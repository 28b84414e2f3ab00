//! What a writable-layer limit counts on Docker's btrfs driver: the quota mode of the btrfs
//! filesystem under the engine's data root, read from `/proc/self/mountinfo` and
//! `/sys/fs/btrfs/<uuid>/qgroups/mode`.

use crate::storage::pool::{LoopFile, host_space};
use crate::types::LayerQuota;
use hostel_core::ByteSize;
use std::path::{Path, PathBuf};

/// The quota mode of the filesystem holding `data_root`. Full quota groups count the image a
/// layer shares; so does a filesystem without quotas yet, where Docker turns full quota groups
/// on for the first limited container. When the filesystem cannot be found, the limit is set
/// as for full quota groups: the larger of the two, so that no workspace is refused writes it
/// is owed.
pub(crate) fn layer_quota(data_root: &Path) -> LayerQuota {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return LayerQuota::WholeRoot;
    };
    let Some(device) = btrfs_device(&mountinfo, data_root) else {
        return LayerQuota::WholeRoot;
    };
    match quota_mode(Path::new("/sys/fs/btrfs"), &device).as_deref() {
        Some("squota") => LayerQuota::OwnWrites,
        _ => LayerQuota::WholeRoot,
    }
}

/// The engine's storage under `data_root` as a [`LoopFile`], when it is a btrfs filesystem in
/// an image file on a loop device (as `scripts/engine` makes it for Docker, and Incus its
/// btrfs pools); `None` otherwise.
pub(crate) fn engine_file(data_root: &Path) -> Option<LoopFile> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (mount, device) = btrfs_mount(&mountinfo, data_root)?;
    let backing = std::fs::read_to_string(format!("/sys/block/{device}/loop/backing_file")).ok()?;
    let image = PathBuf::from(backing.trim());
    let (_, host_total) = host_space(image.parent()?).ok()?;
    Some(LoopFile {
        what: "the engine's storage",
        image,
        mount,
        cap: ByteSize::bytes(host_total),
        headroom: ENGINE_HEADROOM,
    })
}

/// The engine's storage keeps at least this much free: an image build writes gigabytes.
const ENGINE_HEADROOM: ByteSize = ByteSize::gib(4);

/// The device name (`loop0`) of the btrfs filesystem mounted deepest above `path`, from the
/// text of a mountinfo file; `None` when that mount is not btrfs.
fn btrfs_device(mountinfo: &str, path: &Path) -> Option<String> {
    btrfs_mount(mountinfo, path).map(|(_, device)| device)
}

/// The mount point and device name of the btrfs filesystem mounted deepest above `path`.
fn btrfs_mount(mountinfo: &str, path: &Path) -> Option<(PathBuf, String)> {
    let mut best: Option<(PathBuf, &str, &str)> = None;
    for line in mountinfo.lines() {
        let Some((mount, fs)) = line.split_once(" - ") else {
            continue;
        };
        let mut fs = fs.split(' ');
        let (Some(mount_point), Some(fstype), Some(source)) =
            (mount.split(' ').nth(4), fs.next(), fs.next())
        else {
            continue;
        };
        let mount_point = PathBuf::from(unescape(mount_point));
        let deeper = best
            .as_ref()
            .is_none_or(|(b, _, _)| mount_point.components().count() >= b.components().count());
        if path.starts_with(&mount_point) && deeper {
            best = Some((mount_point, fstype, source));
        }
    }
    let (mount_point, fstype, source) = best?;
    if fstype != "btrfs" {
        return None;
    }
    let device = Path::new(source)
        .file_name()?
        .to_string_lossy()
        .into_owned();
    Some((mount_point, device))
}

/// Mountinfo writes a space, tab, newline and backslash in a path as octal escapes.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Whether the btrfs filesystem mounted at `mount` has full quota groups that the kernel marked
/// inconsistent (deleting a large subvolume does): its numbers, and so its limits, are wrong
/// until a rescan.
pub(crate) fn qgroups_inconsistent(mount: &Path) -> bool {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let Some(device) = btrfs_device(&mountinfo, mount) else {
        return false;
    };
    std::fs::read_dir("/sys/fs/btrfs")
        .into_iter()
        .flatten()
        .flatten()
        .map(|fs| fs.path())
        .find(|fs| fs.join("devices").join(&device).exists())
        .and_then(|fs| std::fs::read_to_string(fs.join("qgroups/inconsistent")).ok())
        .is_some_and(|v| v.trim() == "1")
}

/// Starts a rescan of the quota groups of the btrfs filesystem at `mount` when the kernel marked
/// them inconsistent; one already running is left to finish. Returns whether they were.
pub(crate) fn rescan_if_inconsistent(mount: &Path) -> bool {
    if !qgroups_inconsistent(mount) {
        return false;
    }
    let started = std::process::Command::new("btrfs")
        .args(["quota", "rescan"])
        .arg(mount)
        .output();
    match started {
        Ok(out) if out.status.success() => {
            tracing::warn!(mount = %mount.display(), "quota groups were inconsistent; rescanning");
        }
        Ok(out) => tracing::info!(
            mount = %mount.display(),
            answer = %String::from_utf8_lossy(&out.stderr).trim(),
            "quota groups are inconsistent; a rescan is under way"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot rescan inconsistent quota groups"),
    }
    true
}

/// The quota mode (`squota`, `qgroup`) of the btrfs filesystem with `device` among its devices,
/// under `sysfs` (`/sys/fs/btrfs`); `None` when quotas are off or no filesystem has it.
fn quota_mode(sysfs: &Path, device: &str) -> Option<String> {
    std::fs::read_dir(sysfs)
        .ok()?
        .flatten()
        .map(|fs| fs.path())
        .find(|fs| fs.join("devices").join(device).exists())
        .and_then(|fs| std::fs::read_to_string(fs.join("qgroups/mode")).ok())
        .map(|mode| mode.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 22 0:26 / /var/lib/hostel rw shared:9 - tmpfs tmpfs rw
41 30 0:45 / /var/lib/hostel/engine rw,noatime shared:20 - btrfs /dev/loop3 rw,space_cache=v2
42 22 0:46 / /srv/my\\040disk rw shared:21 - btrfs /dev/sdb rw
";

    #[test]
    fn the_deepest_mount_above_the_path_names_the_device() {
        let device = |p: &str| btrfs_device(MOUNTINFO, Path::new(p));
        assert_eq!(device("/var/lib/hostel/engine").as_deref(), Some("loop3"));
        assert_eq!(
            device("/var/lib/hostel/engine/x/y").as_deref(),
            Some("loop3")
        );
        assert_eq!(device("/srv/my disk/docker").as_deref(), Some("sdb"));
        // Not btrfs: ext4 and tmpfs; a name that only starts like the mount is not under it.
        assert_eq!(device("/var/lib/docker"), None);
        assert_eq!(device("/var/lib/hostel/x"), None);
        assert_eq!(device("/var/lib/hostel/engine2"), None);
    }

    #[test]
    fn the_mode_is_read_from_the_filesystem_with_that_device() {
        let sysfs = tempfile::tempdir().unwrap();
        let fs = |uuid: &str, device: &str, mode: Option<&str>| {
            let dir = sysfs.path().join(uuid);
            std::fs::create_dir_all(dir.join("devices").join(device)).unwrap();
            if let Some(mode) = mode {
                std::fs::create_dir_all(dir.join("qgroups")).unwrap();
                std::fs::write(dir.join("qgroups/mode"), format!("{mode}\n")).unwrap();
            }
        };
        fs("aaaa", "loop3", Some("squota"));
        fs("bbbb", "sdb", Some("qgroup"));
        fs("cccc", "sdc", None);
        assert_eq!(quota_mode(sysfs.path(), "loop3").as_deref(), Some("squota"));
        assert_eq!(quota_mode(sysfs.path(), "sdb").as_deref(), Some("qgroup"));
        assert_eq!(quota_mode(sysfs.path(), "sdc"), None);
        assert_eq!(quota_mode(sysfs.path(), "loop9"), None);
    }
}
