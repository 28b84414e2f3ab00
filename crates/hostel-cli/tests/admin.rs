//! What an admin installs and types (#18): shell completions and man pages that work in the real
//! shell and `man`, generated from the same definitions as `--help`.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hostel_testkit::TestRun;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_hostel");

/// What bash's completion offers for the words typed so far (the last one being completed).
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        "source {}; COMP_WORDS=({line}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; \
         _hostel hostel \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.len() - 1
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn issue_18_bash_completes_commands_and_flags() {
    let t = TestRun::new(BIN);
    let r = t.hostel(&["completions", "bash"]).ok();
    let script = t.file("hostel.bash", &r.stdout);
    let commands = bash_completes(&script, &["hostel", "c"]);
    for c in ["create", "check", "cp", "cert", "config", "completions"] {
        assert!(
            commands.iter().any(|w| w == c),
            "{c} not offered: {commands:?}"
        );
    }
    assert!(!commands.iter().any(|w| w == "list"), "{commands:?}");
    let flags = bash_completes(&script, &["hostel", "create", "alice", "--e"]);
    for f in ["--egress", "--ephemeral"] {
        assert!(flags.iter().any(|w| w == f), "{f} not offered: {flags:?}");
    }
    let shells = bash_completes(&script, &["hostel", "completions", "f"]);
    assert_eq!(shells, ["fish"]);
}

#[test]
fn issue_18_zsh_and_fish_scripts_name_every_command() {
    let t = TestRun::new(BIN);
    let zsh = t.hostel(&["completions", "zsh"]).ok().stdout;
    let fish = t.hostel(&["completions", "fish"]).ok().stdout;
    assert!(zsh.starts_with("#compdef hostel"), "{}", &zsh[..40]);
    for c in ["create", "login-link", "ssh-config", "completions"] {
        assert!(zsh.contains(&format!("'{c}:")), "zsh lacks {c}");
        assert!(fish.contains(&format!("-a \"{c}\"")), "fish lacks {c}");
    }
    assert!(t.hostel(&["completions", "tcsh"]).code == 2);
}

#[test]
fn issue_18_man_pages_render_in_man() {
    let t = TestRun::new(BIN);
    let dir = t.root.join("man");
    t.hostel(&["man", "--dir", dir.to_str().unwrap()]).ok();
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for p in [
        "hostel.1",
        "hostel-create.1",
        "hostel-key-add.1",
        "hostel-config-show.1",
    ] {
        assert!(pages.iter().any(|x| x == p), "{p} missing: {pages:?}");
    }
    let out = Command::new("man")
        .arg("-l")
        .arg(dir.join("hostel-create.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("hostel-create - Create a tenant"), "{text}");
    assert!(text.contains("--idle-stop"), "{text}");
    let main = t.hostel(&["man"]).ok().stdout;
    assert!(main.contains(".TH hostel 1"), "{}", &main[..80]);
    assert!(main.contains("Isolated, persistent workspaces"));
}

#[test]
fn issue_18_help_speaks_to_an_admin() {
    let t = TestRun::new(BIN);
    let help = t.hostel(&["--help"]).ok().stdout;
    assert!(
        help.starts_with("Isolated, persistent workspaces for many tenants"),
        "{help}"
    );
    assert!(
        !help.contains("wiring"),
        "a developer's note in --help: {help}"
    );
    assert!(help.contains("--root <DIR>") && help.contains("--config <FILE>"));
    let serve = t.hostel(&["serve", "--help"]).ok().stdout;
    assert!(
        serve.contains("the HTTP API and the web gateway"),
        "{serve}"
    );
}

/// The Debian package in a clean Debian container made from the same debootstrap root as the
/// workspaces (`hostel-base:<suite>`), with no network: install, upgrade, remove and purge, and
/// the tenant data and the admin's settings through all of them.
#[test]
fn issue_18_the_package_installs_upgrades_and_purges_keeping_data() {
    let t = TestRun::new(BIN);
    let pkg = t.root.join("pkg");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/package");
    for v in ["0.1.0+test1", "0.1.0+test2"] {
        let out = Command::new(script)
            .args([
                "--binary",
                BIN,
                "--version",
                v,
                "--compression",
                "none",
                "--out",
            ])
            .arg(&pkg)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/package: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let base = format!(
        "hostel-base:{}",
        hostel_core::config::Config::default().image.suite
    );
    let steps = r#"
set -eux
deb1=$(ls /pkg/hostel_0.1.0+test1_*.deb); deb2=$(ls /pkg/hostel_0.1.0+test2_*.deb)
apt-get install -y "$deb1" 2>&1 | tr -d "\r" | tee /tmp/install.log
grep -q 'Finish with: sudo hostel setup' /tmp/install.log
hostel --version | grep -qx 'hostel 0.1.0'
test -f /usr/share/man/man1/hostel-create.1.gz
test -f /usr/share/bash-completion/completions/hostel
test -f /usr/share/zsh/vendor-completions/_hostel
test -f /usr/share/fish/vendor_completions.d/hostel.fish
test -x /usr/lib/hostel/setup -a -x /usr/lib/hostel/engine
grep -qx 'ExecStart=/usr/bin/hostel serve' /lib/systemd/system/hostel.service
grep -qx 'Requires=hostel-engine.service' /lib/systemd/system/hostel.service
hostel config example > /tmp/example.toml
cmp /tmp/example.toml /usr/share/doc/hostel/examples/hostel.toml
test -f /usr/share/doc/hostel/examples/grafana-dashboard.json
test -f /usr/share/doc/hostel/examples/prometheus.yml
# The admin's settings and a tenant's data.
echo 'HOSTEL_SSH_KEEPALIVE_SECS=11' >> /etc/default/hostel
mkdir -p /srv/hostel/etc /srv/hostel/users/alice
echo precious > /srv/hostel/users/alice/notes
printf '[ssh]\nban_secs = 77\n' > /srv/hostel/etc/hostel.toml
apt-get install -y "$deb2" 2>&1 | tr -d "\r" | tee /tmp/upgrade.log
grep -q 'upgraded from 0.1.0+test1' /tmp/upgrade.log
test "$(dpkg-query -W -f '${Version}' hostel)" = 0.1.0+test2
grep -qx 'HOSTEL_SSH_KEEPALIVE_SECS=11' /etc/default/hostel
set -a; . /etc/default/hostel; set +a
hostel --json config show ssh | tr -d ' \n' > /tmp/ssh.json
grep -q '"key":"ssh.keepalive_secs","value":11,"source":"HOSTEL_SSH_KEEPALIVE_SECS"' /tmp/ssh.json
grep -q '"key":"ssh.ban_secs","value":77,"source":"/srv/hostel/etc/hostel.toml"' /tmp/ssh.json
apt-get remove -y hostel 2>&1 | tr -d "\r" | tee /tmp/remove.log
test ! -e /usr/bin/hostel
test -f /etc/default/hostel
test "$(cat /srv/hostel/users/alice/notes)" = precious
apt-get purge -y hostel 2>&1 | tr -d "\r" | tee /tmp/purge.log
grep -q 'Left on purpose' /tmp/purge.log
grep -q '^  /srv/hostel$' /tmp/purge.log
test ! -e /etc/default/hostel
test "$(cat /srv/hostel/users/alice/notes)" = precious
test -f /srv/hostel/etc/hostel.toml
echo PACKAGE-OK
"#;
    let label = format!("{}={}", hostel_testkit::LABEL_TEST_RUN, t.id);
    let mount = format!("{}:/pkg:ro", pkg.display());
    let r = hostel_testkit::docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--label",
        &label,
        "-v",
        &mount,
        &base,
        "bash",
        "-c",
        steps,
    ]);
    assert!(
        r.code == 0 && r.stdout.contains("PACKAGE-OK"),
        "exit {}\n{}\n{}",
        r.code,
        r.stdout,
        r.stderr
    );
}

/// On a terminal each step of a create stays as a line with the time it took; in a pipe the
/// lines are the plain ones scripts read.
#[test]
fn issue_18_progress_on_a_terminal_times_each_step() {
    let t = TestRun::new(BIN);
    let name = t.tenant("tty");
    let key = t.keypair("tty-key");
    let line = format!(
        "{BIN} --root {} create {name} --key {} --memory 256M --disk 256M --pids 128",
        t.root.display(),
        key.display()
    );
    // `script` gives the command a pseudo-terminal, as an admin's shell would.
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("HOSTEL_ROOT")
        .env_remove("HOSTEL_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let timed = regex_lite_steps(&text);
    for step in [
        "recording tenant",
        "making the home",
        "starting the workspace",
    ] {
        assert!(
            timed.iter().any(|s| s.starts_with(step)),
            "no timed line for {step:?} in {timed:?}\n{text}"
        );
    }
    assert!(text.contains(&format!("tenant {name} is ready")), "{text}");
    // Without a terminal: the plain lines.
    let r = t.hostel(&["start", &name]).ok();
    assert!(
        !r.stderr.contains('\u{1b}'),
        "escapes in a pipe: {:?}",
        r.stderr
    );
    let r = t.hostel(&["image", "build"]).ok();
    assert!(
        r.stderr.is_empty() || r.stderr.lines().all(|l| l.starts_with("  - ")),
        "{}",
        r.stderr
    );
}

/// The steps a terminal run left as lines: `  - STEP (1.2s)`, escapes and spinner frames
/// aside (a printed line is padded to the terminal's width, so runs of spaces part them).
fn regex_lite_steps(text: &str) -> Vec<String> {
    let text = text.replace("\u{1b}[2K", "");
    text.split(['\r', '\n'])
        .flat_map(|l| l.split("   "))
        .filter_map(|l| {
            let l = l.trim_start().strip_prefix("- ")?.to_owned();
            let (step, time) = l.rsplit_once(" (")?;
            let secs = time.trim_end().strip_suffix("s)")?;
            secs.parse::<f64>().ok()?;
            Some(step.to_owned())
        })
        .collect()
}
