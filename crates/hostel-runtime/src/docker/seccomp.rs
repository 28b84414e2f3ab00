//! A [`SyscallFilter`] as a Docker seccomp profile (the JSON `--security-opt seccomp=` takes).

use crate::types::SyscallFilter;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use syscalls::Sysno;

/// "Not implemented": what a call the filter does not know gets, so programs fall back.
const ENOSYS: u32 = 38;
/// "Operation not permitted": what a refused call gets.
const EPERM: u32 = 1;

/// The `clone` flags that make new namespaces.
const CLONE_NEW_NAMESPACES: u64 = 0x0000_0080 // CLONE_NEWTIME
    | 0x0002_0000 // CLONE_NEWNS
    | 0x0200_0000 // CLONE_NEWCGROUP
    | 0x0400_0000 // CLONE_NEWUTS
    | 0x0800_0000 // CLONE_NEWIPC
    | 0x1000_0000 // CLONE_NEWUSER
    | 0x2000_0000 // CLONE_NEWPID
    | 0x4000_0000; // CLONE_NEWNET

/// Calls whose arguments the profile checks, so they are never allowed whole.
const CHECKED: &[&str] = &["clone", "clone3", "ioctl", "personality"];

/// The profile: every call of this architecture allowed but the filter's refusals.
pub(super) fn profile(filter: &SyscallFilter) -> Value {
    let denied: BTreeSet<&str> = filter.denied.iter().map(String::as_str).collect();
    let absent: BTreeSet<&str> = filter.unimplemented.iter().map(String::as_str).collect();
    let allowed: Vec<&str> = Sysno::iter()
        .map(|s| s.name())
        .filter(|n| !denied.contains(n) && !absent.contains(n) && !CHECKED.contains(n))
        .collect();
    let mut rules = vec![
        json!({"names": allowed, "action": "SCMP_ACT_ALLOW"}),
        json!({"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM}),
    ];
    if !absent.is_empty() {
        rules.push(json!({
            "names": absent,
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": ENOSYS,
        }));
    }
    if filter.new_namespaces {
        rules.push(json!({"names": ["clone", "clone3"], "action": "SCMP_ACT_ALLOW"}));
    } else {
        rules.push(json!({
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [masked_eq(0, CLONE_NEW_NAMESPACES, 0)],
        }));
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
    }
    // Every request but the refused ones, as allow rules only: where an unconditional allow
    // and a conditional refusal meet on one call, the engine's seccomp library lets the allow
    // win. The kernel reads the request as 32 bits, so only those are compared: set upper bits
    // must not slip a request past.
    for (mask, value) in complement(&filter.denied_ioctls) {
        rules.push(json!({
            "names": ["ioctl"],
            "action": "SCMP_ACT_ALLOW",
            "args": [masked_eq(1, u64::from(mask), u64::from(value))],
        }));
    }
    if filter.personalities.is_empty() {
        rules.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW"}));
    }
    for value in &filter.personalities {
        rules.push(json!({
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [masked_eq(0, u64::from(u32::MAX), u64::from(*value))],
        }));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": ENOSYS,
        "syscalls": rules,
    })
}

/// The 32-bit values outside `denied`, as `(mask, value)` pairs (`v & mask == value`) that
/// never overlap: walking the bits from the top, each branch no denied value takes is one pair.
fn complement(denied: &[u32]) -> Vec<(u32, u32)> {
    fn walk(bit: u32, mask: u32, value: u32, denied: &[u32], out: &mut Vec<(u32, u32)>) {
        if denied.is_empty() {
            out.push((mask, value));
            return;
        }
        let Some(bit) = bit.checked_sub(1) else {
            return;
        };
        let b = 1u32 << bit;
        let (ones, zeros): (Vec<u32>, Vec<u32>) = denied.iter().partition(|d| *d & b != 0);
        walk(bit, mask | b, value, &zeros, out);
        walk(bit, mask | b, value | b, &ones, out);
    }
    let mut out = Vec::new();
    walk(32, 0, 0, denied, &mut out);
    out
}

/// A rule argument: `(arg[index] & mask) == value`.
fn masked_eq(index: u32, mask: u64, value: u64) -> Value {
    json!({"index": index, "value": mask, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ"})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> SyscallFilter {
        SyscallFilter {
            denied: vec!["io_uring_setup".into(), "unshare".into()],
            denied_ioctls: vec![0x5000_940e],
            new_namespaces: false,
            personalities: vec![0, 8],
            unimplemented: vec!["keyctl".into()],
        }
    }

    fn rules_for<'a>(p: &'a Value, name: &str) -> Vec<&'a Value> {
        p["syscalls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| {
                r["names"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|x| x == name))
            })
            .collect()
    }

    #[test]
    fn every_known_call_but_the_refused_is_allowed() {
        let p = profile(&filter());
        assert_eq!(p["defaultErrnoRet"], ENOSYS);
        for name in [
            "read",
            "openat",
            "execve",
            "ptrace",
            "io_uring_setup",
            "unshare",
        ] {
            let rules = rules_for(&p, name);
            assert_eq!(rules.len(), 1, "{name}: {rules:?}");
        }
        let allow = |n| rules_for(&p, n)[0]["action"] == "SCMP_ACT_ALLOW";
        assert!(allow("read") && allow("execve"));
        assert!(!allow("io_uring_setup") && !allow("unshare"));
        let keyctl = rules_for(&p, "keyctl");
        assert_eq!(keyctl.len(), 1, "{keyctl:?}");
        assert_eq!(
            (&keyctl[0]["action"], &keyctl[0]["errnoRet"]),
            (&json!("SCMP_ACT_ERRNO"), &json!(ENOSYS)),
            "not implemented, so that a container runtime carries on without keyrings"
        );
        assert_eq!(rules_for(&p, "io_uring_setup")[0]["errnoRet"], EPERM);
    }

    #[test]
    fn clone_may_not_make_namespaces_and_clone3_falls_back() {
        let p = profile(&filter());
        let clone = rules_for(&p, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0]["args"][0]["value"], CLONE_NEW_NAMESPACES);
        assert_eq!(clone[0]["args"][0]["valueTwo"], 0);
        assert_eq!(rules_for(&p, "clone3")[0]["errnoRet"], ENOSYS);
        let open = profile(&SyscallFilter {
            new_namespaces: true,
            ..filter()
        });
        assert!(
            rules_for(&open, "clone")
                .iter()
                .all(|r| r["args"].is_null())
        );
    }

    #[test]
    fn ioctl_is_allowed_only_outside_the_refused_requests_on_32_bits() {
        let p = profile(&filter());
        let ioctl = rules_for(&p, "ioctl");
        assert_eq!(
            ioctl.len(),
            32,
            "one pair per bit of the one refused request"
        );
        for rule in ioctl {
            assert_eq!(rule["action"], "SCMP_ACT_ALLOW");
            assert_eq!(rule["args"][0]["index"], 1);
            assert!(rule["args"][0]["value"].as_u64().unwrap() <= u64::from(u32::MAX));
        }
        let none = profile(&SyscallFilter::default());
        assert_eq!(rules_for(&none, "ioctl").len(), 1);
        assert_eq!(rules_for(&none, "ioctl")[0]["args"][0]["value"], 0);
    }

    proptest::proptest! {
        #[test]
        fn the_complement_holds_every_value_but_the_denied_once(
            denied in proptest::collection::vec(proptest::prelude::any::<u32>(), 0..6),
            probe in proptest::prelude::any::<u32>(),
            pick in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let pairs = complement(&denied);
            let hits = |v: u32| pairs.iter().filter(|(m, x)| v & m == *x).count();
            proptest::prop_assert_eq!(hits(probe), usize::from(!denied.contains(&probe)));
            if !denied.is_empty() {
                proptest::prop_assert_eq!(hits(denied[pick.index(denied.len())]), 0);
            }
            proptest::prop_assert!(pairs.len() <= 32 * denied.len().max(1));
        }
    }

    #[test]
    fn personality_takes_only_the_listed_values() {
        let p = profile(&filter());
        let values: Vec<_> = rules_for(&p, "personality")
            .iter()
            .map(|r| r["args"][0]["valueTwo"].clone())
            .collect();
        assert_eq!(values, [json!(0), json!(8)]);
    }
}
