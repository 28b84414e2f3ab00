//! A tenant cannot starve the daemon (#12): every byte that comes out of a workspace is
//! streamed or capped. The daemon's peak memory is measured against the real engine while a
//! tenant makes it carry far more than that.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_testkit::TestRun;

const BIN: &str = env!("CARGO_BIN_EXE_hostel");

const MIB: u64 = 1 << 20;

/// Regression (#12): a 1 GiB sparse file downloaded through the file API grew the daemon by
/// 1 GiB, since the download was read whole before it was sent. It now streams through a
/// bounded channel.
#[test]
fn issue_12_a_1_gib_download_streams_through_the_daemon() {
    let t = TestRun::new(BIN);
    let token = t
        .hostel(&["token", "create", "files"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let a = t.create_tenant("big", &[]);
    // Sparse: it takes no room in the home, whatever its size.
    t.sh(&a, "truncate -s 1G ~/sparse && echo tail >> ~/sparse")
        .ok();
    let d = t.serve();
    let before = d.memory("VmRSS");
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-m",
            "300",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
        ])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!(
            "http://127.0.0.1:{}/api/tenants/{a}/files/sparse",
            d.http_port
        ))
        .output()
        .unwrap();
    let got = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(got, format!("200 {}", (1u64 << 30) + 5));
    let peak = d.memory("VmHWM");
    eprintln!(
        "daemon RSS {} MiB before, peak {} MiB while sending 1 GiB",
        before / MIB,
        peak / MIB
    );
    assert!(
        peak < before + 128 * MIB,
        "the daemon grew from {} MiB to a peak of {} MiB",
        before / MIB,
        peak / MIB
    );
}

/// Regression (#12): 200 MB written on the app supervisor's stderr grew the daemon by about
/// 500 MB, since it kept all of it for the error message. Output the daemon collects is now
/// capped; the rest is read and dropped.
#[test]
fn issue_12_a_flood_on_the_app_supervisors_stderr_is_capped() {
    let t = TestRun::new(BIN);
    let a = t.create_tenant("flood", &["--image", "dev"]);
    // Root inside the workspace replaces the supervisor with one that floods and fails.
    t.sh(
        &a,
        "printf '#!/bin/sh\\nhead -c 200000000 /dev/zero | tr \"\\\\0\" x >&2\\nexit 1\\n' > /tmp/app \
         && sudo -n install -m 0755 /tmp/app /usr/local/bin/hostel-app",
    )
    .ok();
    t.hostel_with_stdin(&["passwd", &a], b"a long and secret phrase\n")
        .ok();
    let d = t.serve();
    let base = format!("http://127.0.0.1:{}", d.http_port);
    let jar = t.root.join("cookies.txt");
    let curl = |args: &[&str], url: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-m", "120", "-b"])
            .arg(&jar)
            .arg("-c")
            .arg(&jar)
            .args(["-w", "\n%{http_code}"])
            .args(args)
            .arg(url)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.to_owned(), body.to_owned())
    };
    let (code, _) = curl(
        &[
            "--data-urlencode",
            &format!("name={a}"),
            "--data-urlencode",
            "password=a long and secret phrase",
        ],
        &format!("{base}/login"),
    );
    assert_eq!(code, "303");
    let before = d.memory("VmRSS");
    let (code, page) = curl(&[], &format!("{base}/u/{a}/jupyter/"));
    let peak = d.memory("VmHWM");
    eprintln!(
        "daemon RSS {} MiB before, peak {} MiB after 200 MB on the supervisor's stderr",
        before / MIB,
        peak / MIB
    );
    assert_eq!(code, "503", "{}", &page[..page.len().min(300)]);
    assert!(
        page.len() < 200_000,
        "an error page of {} bytes",
        page.len()
    );
    assert!(
        peak < before + 64 * MIB,
        "the daemon grew from {} MiB to a peak of {} MiB",
        before / MIB,
        peak / MIB
    );
}
