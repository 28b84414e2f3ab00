//! The block devices under paths, for limits the kernel keeps per device (disk I/O): each
//! path's mount, the one whose mount point is its longest prefix in `/proc/self/mountinfo`, and
//! that mount's source where it is a device (`/dev/loop1` under a btrfs pool, whose subvolumes
//! each have a device number of their own, so a path's `st_dev` names no device).

use std::path::{Component, Path, PathBuf};

/// A mount point as mountinfo writes it: space, tab, newline and backslash as octal escapes.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4);
        match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The source of the mount holding `path` (absolute, without `..`), where it is under `/dev/`.
pub(crate) fn device_in(mountinfo: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mountinfo.lines() {
        let (mount, source) = line.split_once(" - ").and_then(|(left, right)| {
            let point = left.split(' ').nth(4)?;
            let source = right.split(' ').nth(1)?;
            Some((unescape(point), unescape(source)))
        })?;
        let depth = Path::new(&mount).components().count();
        if path.starts_with(&mount) && best.as_ref().is_none_or(|(d, _)| depth >= *d) {
            best = Some((depth, source));
        }
    }
    best.map(|(_, s)| s).filter(|s| s.starts_with("/dev/"))
}

/// The devices under `paths` (each once, in order), as block-device paths; paths on no device
/// (tmpfs, overlay) add none.
pub(crate) fn backing_devices(paths: &[&Path]) -> Vec<String> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for path in paths {
        let Ok(real) = std::fs::canonicalize(path) else {
            continue;
        };
        let clean: PathBuf = real
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        if let Some(dev) = device_in(&mountinfo, &clean) {
            let block = std::fs::metadata(&dev).is_ok_and(|m| m.file_type().is_block_device());
            if block && !out.contains(&dev) {
                out.push(dev);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:40 / /var/lib/hostel/engine rw,noatime - btrfs /dev/loop0 rw,space_cache=v2
57 22 0:57 / /srv/hostel/users rw,nosuid,nodev - btrfs /dev/loop1 rw
58 57 0:58 / /srv/hostel/users/a\\040b/tmp rw - tmpfs tmpfs rw
60 22 0:60 / /run rw - tmpfs tmpfs rw
";

    #[test]
    fn a_path_is_on_the_device_of_its_deepest_mount() {
        let on = |p: &str| device_in(MOUNTINFO, Path::new(p));
        assert_eq!(
            on("/srv/hostel/users/alice/home").as_deref(),
            Some("/dev/loop1")
        );
        assert_eq!(on("/srv/hostel/users").as_deref(), Some("/dev/loop1"));
        assert_eq!(
            on("/var/lib/hostel/engine/x").as_deref(),
            Some("/dev/loop0")
        );
        assert_eq!(on("/srv/data").as_deref(), Some("/dev/vda"));
        // A prefix of a name is not its mount.
        assert_eq!(on("/srv/hostel/usersx").as_deref(), Some("/dev/vda"));
        assert_eq!(on("/run/x"), None, "tmpfs has no device");
        assert_eq!(
            on("/srv/hostel/users/a b/tmp/f"),
            None,
            "escaped mount points"
        );
    }
}
