//! hostel-core must stay free of I/O: its manifest and sources may not name an I/O crate or
//! std's I/O modules.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

const FORBIDDEN_CRATES: &[&str] = &[
    "tokio", "bollard", "rusqlite", "sqlx", "russh", "axum", "hyper", "reqwest", "nix", "libc",
];
const FORBIDDEN_PATHS: &[&str] = &["std::fs", "std::net", "std::process", "std::io::stdin"];

#[test]
fn manifest_has_no_io_dependency() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap();
    let deps = deps.split("\n[").next().unwrap();
    for line in deps.lines() {
        let name = line.split(['=', '.']).next().unwrap().trim();
        assert!(
            !FORBIDDEN_CRATES.contains(&name),
            "hostel-core depends on {name}"
        );
    }
}

#[test]
fn sources_use_no_io_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut scanned = 0;
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for bad in FORBIDDEN_PATHS.iter().chain(FORBIDDEN_CRATES) {
                let needle = if bad.contains("::") {
                    bad.to_string()
                } else {
                    format!("{bad}::")
                };
                assert!(!text.contains(&needle), "{} uses {needle}", path.display());
            }
            scanned += 1;
        }
    }
    assert!(scanned >= 8, "scanned only {scanned} files");
}
