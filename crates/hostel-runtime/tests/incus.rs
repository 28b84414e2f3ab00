//! Incus's REST API as hostel drives it, against the real daemon (`scripts/incus` starts it):
//! an image uploaded, an instance made and started, and commands run through the exec
//! WebSockets with their streams, stdin, exit codes, a terminal's size and signals.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use futures_util::StreamExt;
use hostel_core::Signal;
use hostel_runtime::incus::{Client, DEFAULT_SOCKET, ExecArgs, exec};
use hostel_runtime::{ExecOutput, ExecSession};
use serde_json::json;
use tokio::io::AsyncWriteExt;

/// The storage pool `scripts/incus` makes.
const POOL: &str = "hostel";

/// The smallest system to run commands in, as an Incus unified image (metadata.yaml and
/// rootfs/).
fn busybox_image(run: &str) -> Vec<u8> {
    let meta = format!(
        "architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  description: hostel test {run}\n"
    );
    hostel_testkit::busybox_tar("rootfs/", &[("metadata.yaml", meta.as_bytes())])
}

/// Removes this run's instance and image even when the test panics.
struct Cleanup {
    instance: String,
    image: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("incus")
            .args(["delete", "--force", &self.instance])
            .output();
        if let Some(fp) = &self.image {
            let _ = std::process::Command::new("incus")
                .args(["image", "delete", fp])
                .output();
        }
    }
}

async fn collect(session: &mut ExecSession) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while let Some(chunk) = tokio::time::timeout_at(deadline, session.output.next())
        .await
        .expect("the output ends")
    {
        let chunk = chunk.unwrap();
        match chunk {
            ExecOutput::Stdout(b) => out.extend(b),
            ExecOutput::Stderr(b) => err.extend(b),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

fn args(script: &str) -> ExecArgs {
    ExecArgs {
        cmd: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: [("PATH".to_owned(), "/bin:/sbin".to_owned())].into(),
        ..ExecArgs::default()
    }
}

#[tokio::test]
async fn incus_runs_commands_through_its_websockets() {
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let name = format!("hostel-test-{run}");
    let mut guard = Cleanup {
        instance: name.clone(),
        image: None,
    };
    let incus = Client::new(DEFAULT_SOCKET);
    let server = incus
        .get("/1.0", "engine", DEFAULT_SOCKET)
        .await
        .expect("incusd answers (start it with scripts/incus)");
    assert_eq!(server["api_status"], "stable");

    let uploaded = incus
        .upload("/1.0/images", busybox_image(&run), &[], "image", &run)
        .await
        .unwrap();
    let hostel_runtime::incus::Answer::Async(op) = uploaded else {
        panic!("an upload is an operation");
    };
    let done = incus.wait(&op.id, "image", &run).await.unwrap();
    let fingerprint = done.metadata.unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    guard.image = Some(fingerprint.clone());

    let spec = json!({
        "name": name,
        "type": "container",
        "profiles": [],
        "source": {"type": "image", "fingerprint": fingerprint},
        "config": {
            "security.idmap.isolated": "true",
            "limits.processes": "64",
            "user.hostel-test-run": run,
        },
        "devices": {"root": {"type": "disk", "path": "/", "pool": POOL, "size": "64MiB"}},
    });
    incus
        .run("POST", "/1.0/instances", &spec, "instance", &name)
        .await
        .unwrap();
    // A second one by that name is a conflict, not an engine failure.
    let again = incus
        .run("POST", "/1.0/instances", &spec, "instance", &name)
        .await;
    assert!(
        matches!(again, Err(hostel_runtime::RuntimeError::Conflict { .. })),
        "{again:?}"
    );
    incus
        .run(
            "PUT",
            &format!("/1.0/instances/{name}/state"),
            &json!({"action": "start", "timeout": 30}),
            "instance",
            &name,
        )
        .await
        .unwrap();

    // Streams apart, exit code, stdin to its EOF.
    let mut s = exec(&incus, &name, &args("echo out; echo err >&2; exit 3"))
        .await
        .unwrap();
    assert_eq!(collect(&mut s).await, ("out\n".into(), "err\n".into()));
    assert_eq!(s.control.wait().await.unwrap(), 3);
    let mut s = exec(&incus, &name, &args("cat; echo end")).await.unwrap();
    s.input.write_all(b"through stdin\n").await.unwrap();
    s.input.shutdown().await.unwrap();
    assert_eq!(collect(&mut s).await.0, "through stdin\nend\n");
    assert_eq!(s.control.wait().await.unwrap(), 0);

    // A terminal: its size set, then changed, and one stream.
    let mut tty = args("read line; stty size; echo got $line; tty");
    tty.tty = Some((80, 24));
    let mut s = exec(&incus, &name, &tty).await.unwrap();
    s.control.resize(100, 30).await.unwrap();
    s.input.write_all(b"hello\n").await.unwrap();
    let (out, err) = collect(&mut s).await;
    assert!(out.contains("30 100") && out.contains("got hello"), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert_eq!(err, "");
    assert_eq!(s.control.wait().await.unwrap(), 0);

    // The signal asked for reaches the command; one sent after its end changes nothing.
    let mut s = exec(
        &incus,
        &name,
        &args("trap 'echo caught; exit 7' TERM; echo ready; while :; do sleep 0.1; done"),
    )
    .await
    .unwrap();
    match s.output.next().await {
        Some(Ok(ExecOutput::Stdout(b))) => assert_eq!(b, b"ready\n"),
        other => panic!("{other:?} before ready"),
    }
    s.control.signal(Signal::Term).await.unwrap();
    assert_eq!(collect(&mut s).await.0, "caught\n");
    assert_eq!(s.control.wait().await.unwrap(), 7);
    s.control.signal(Signal::Kill).await.unwrap();

    // A command in a stopped instance is refused plainly.
    incus
        .run(
            "PUT",
            &format!("/1.0/instances/{name}/state"),
            &json!({"action": "stop", "force": true}),
            "instance",
            &name,
        )
        .await
        .unwrap();
    assert!(exec(&incus, &name, &args("true")).await.is_err());
    incus
        .run(
            "DELETE",
            &format!("/1.0/instances/{name}"),
            &serde_json::Value::Null,
            "instance",
            &name,
        )
        .await
        .unwrap();
    assert!(matches!(
        incus
            .get(&format!("/1.0/instances/{name}"), "instance", &name)
            .await,
        Err(hostel_runtime::RuntimeError::NotFound { .. })
    ));
}
