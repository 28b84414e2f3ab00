//! The runtime contract: one scenario, run unchanged against the in-memory fake and the real
//! Docker and Incus engines, so that the fake the service tests rely on behaves like the
//! engines, and the engines like each other.

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use futures_util::StreamExt;
use hostel_core::{ByteSize, Cpus, Limits, Signal, WorkspaceState};
use hostel_runtime::docker::DockerRuntime;
use hostel_runtime::fake::FakeRuntime;
use hostel_runtime::incus::{self, IncusRuntime};
use hostel_runtime::{
    ExecOutput, ExecRequest, LABEL_MANAGED, LABEL_TEST_RUN, Loopback, Mount, NetworkSpec,
    Privileges, Runtime, RuntimeError, WorkspaceSpec,
};
use std::collections::BTreeMap;

const IMAGE: &str = "hostel-workspace:latest";

fn spec(name: &str, run: &str, home: &std::path::Path, image: &str) -> WorkspaceSpec {
    WorkspaceSpec {
        name: name.to_owned(),
        image: image.to_owned(),
        hostname: "contract".to_owned(),
        env: vec!["HOSTEL_TENANT=contract".to_owned()],
        labels: BTreeMap::from([
            (LABEL_MANAGED.to_owned(), "1".to_owned()),
            (LABEL_TEST_RUN.to_owned(), run.to_owned()),
        ]),
        limits: Limits {
            cpus: Cpus::millis(500),
            memory: ByteSize::mib(128),
            pids: 64,
        },
        mounts: vec![Mount {
            source: home.display().to_string(),
            target: "/home/contract".to_owned(),
            read_only: false,
        }],
        privileges: Privileges::InitOnly,
        network: None,
        output_log_max: 1 << 20,
        hidden_paths: vec!["/sys/fs/btrfs".to_owned()],
        layer_max: None,
        syscalls: Default::default(),
        gpus: hostel_core::Gpus::None,
        disk_io: hostel_core::DiskIo::Unlimited,
    }
}

/// Networks: made with a free subnet of their own, refused on a taken name or an overlapping
/// subnet, not removable while a container on it runs.
/// The subnets of every network the engine has.
async fn used_subnets(rt: &dyn Runtime) -> Vec<ipnet::Ipv4Net> {
    rt.networks(&[])
        .await
        .unwrap()
        .iter()
        .flat_map(|n| n.subnets.iter().filter_map(|s| s.parse().ok()))
        .collect()
}

async fn network_contract(rt: &dyn Runtime, run: &str, image: &str) {
    let labels = BTreeMap::from([
        (LABEL_MANAGED.to_owned(), "1".to_owned()),
        (LABEL_TEST_RUN.to_owned(), run.to_owned()),
    ]);
    let name = format!("hostel-contract-{run}");
    let pool: ipnet::Ipv4Net = "10.214.0.0/16".parse().unwrap();
    let mut made = None;
    for skip in 0..8 {
        let subnet =
            hostel_core::network::free_subnet(pool, 28, &used_subnets(rt).await, skip).unwrap();
        let candidate = NetworkSpec {
            name: name.clone(),
            bridge: hostel_core::network::bridge_name("tc", run, "contract"),
            subnet: subnet.to_string(),
            internal: true,
            labels: labels.clone(),
        };
        match rt.network_create(&candidate).await {
            Ok(info) => {
                made = Some((candidate, info));
                break;
            }
            Err(RuntimeError::Conflict { .. }) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    let (net, info) = made.expect("a free subnet within 8 tries");
    assert_eq!(
        (info.name.as_str(), info.subnets.clone(), info.internal),
        (name.as_str(), vec![net.subnet.clone()], true)
    );
    assert_eq!(info.bridge.as_deref(), Some(net.bridge.as_str()));
    assert!(matches!(
        rt.network_create(&net).await,
        Err(RuntimeError::Conflict { .. })
    ));
    let mut overlapping = net.clone();
    overlapping.name = format!("{name}-b");
    overlapping.bridge = hostel_core::network::bridge_name("tc", run, "b");
    assert!(matches!(
        rt.network_create(&overlapping).await,
        Err(RuntimeError::Conflict { .. })
    ));
    assert_eq!(rt.network_inspect(&name).await.unwrap(), Some(info.clone()));
    let listed = rt
        .networks(&[(LABEL_TEST_RUN.to_owned(), run.to_owned())])
        .await
        .unwrap();
    assert_eq!(listed, vec![info]);

    let home = tempfile::tempdir().unwrap();
    let mut attached = spec(&name, run, home.path(), image);
    attached.network = Some(name.clone());
    rt.create(&attached).await.unwrap();
    rt.start(&name).await.unwrap();
    assert!(matches!(
        rt.network_remove(&name).await,
        Err(RuntimeError::Conflict { .. })
    ));
    rt.remove(&name).await.unwrap();
    rt.network_remove(&name).await.unwrap();
    rt.network_remove(&name).await.unwrap();
    assert_eq!(rt.network_inspect(&name).await.unwrap(), None);
}

async fn run_exec(
    rt: &dyn Runtime,
    name: &str,
    cmd: &[&str],
) -> Result<(i64, String, String), RuntimeError> {
    let req = ExecRequest {
        cmd: cmd.iter().map(|c| (*c).to_owned()).collect(),
        user: "root".to_owned(),
        ..ExecRequest::default()
    };
    let mut s = rt.exec(name, &req).await?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(c) = s.output.next().await {
        match c? {
            ExecOutput::Stdout(b) => out.extend(b),
            ExecOutput::Stderr(b) => err.extend(b),
        }
    }
    let code = s.control.wait().await?;
    Ok((
        code,
        String::from_utf8_lossy(&out).into(),
        String::from_utf8_lossy(&err).into(),
    ))
}

/// The scenario; `rt` must have `image`, and the tenant's files in a home are `home_uid`'s on
/// the host.
async fn contract(rt: &dyn Runtime, run: &str, image: &str, home_uid: u32) {
    let home = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(home.path(), Some(home_uid), Some(home_uid)).unwrap();
    let name = format!("hostel-contract-{run}");
    let s = spec(&name, run, home.path(), image);

    assert!(rt.ping().await.unwrap().cpus >= 1);
    assert_eq!(rt.inspect(&name).await.unwrap(), None);

    let made = rt.create(&s).await.unwrap();
    assert_eq!(
        (made.name.as_str(), made.state),
        (name.as_str(), WorkspaceState::Stopped)
    );
    assert_eq!(
        made.labels.get(LABEL_TEST_RUN).map(String::as_str),
        Some(run)
    );
    assert_eq!(made.limits, Some(s.limits));
    assert!(matches!(
        rt.create(&s).await,
        Err(RuntimeError::Conflict { .. })
    ));
    let mut missing = s.clone();
    missing.name = format!("{name}-x");
    missing.image = "hostel-no-such-image:1".into();
    assert!(matches!(
        rt.create(&missing).await,
        Err(RuntimeError::NotFound { what: "image", .. })
    ));

    assert!(matches!(
        run_exec(rt, &name, &["true"]).await,
        Err(RuntimeError::Conflict { .. })
    ));
    rt.start(&name).await.unwrap();
    rt.start(&name).await.unwrap();
    let running = rt.inspect(&name).await.unwrap().unwrap();
    assert_eq!(running.state, WorkspaceState::Running);
    assert!(running.started_at.is_some());

    let (code, out, _) = run_exec(rt, &name, &["echo", "contract"]).await.unwrap();
    assert_eq!((code, out.as_str()), (0, "contract\n"));

    // A handle reaches its own command: a resize of its terminal takes, a signal ends it as
    // that signal does (128 + its number), and one sent after the end changes nothing.
    // It says when it runs: a signal sent while the engine still sets the process up can be
    // lost (seen once in CI as a 300 s hang here), which this part does not test.
    let req = ExecRequest {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "echo ready; exec sleep 600".into(),
        ],
        user: "root".into(),
        tty: true,
        ..ExecRequest::default()
    };
    let mut long = rt.exec(&name, &req).await.unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("ready") {
        match long.output.next().await {
            Some(Ok(ExecOutput::Stdout(b) | ExecOutput::Stderr(b))) => seen.extend(b),
            other => panic!("the command ended before it was ready: {other:?}"),
        }
    }
    long.control.resize(100, 30).await.unwrap();
    long.control.signal(Signal::Term).await.unwrap();
    assert_eq!(long.control.wait().await.unwrap(), 143);
    long.control.signal(Signal::Kill).await.unwrap();
    assert_eq!(long.control.wait().await.unwrap(), 143);

    let new_limits = Limits {
        cpus: Cpus::millis(1000),
        memory: ByteSize::mib(256),
        pids: 128,
    };
    rt.update_limits(&name, &new_limits).await.unwrap();
    assert_eq!(
        rt.inspect(&name).await.unwrap().unwrap().limits,
        Some(new_limits)
    );
    assert!(rt.stats(&name).await.unwrap().pids >= 1);

    let listed = rt
        .list(&[(LABEL_TEST_RUN.to_owned(), run.to_owned())])
        .await
        .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|c| (c.name.as_str(), c.state))
            .collect::<Vec<_>>(),
        [(name.as_str(), WorkspaceState::Running)]
    );

    // Nothing listens on this port inside: refused, not hung.
    let refused = rt.connect(&name, 9, Loopback::V4).await;
    assert!(
        matches!(refused, Err(RuntimeError::Refused { port: 9, .. })),
        "{:?}",
        refused.map(|_| ())
    );

    rt.stop(&name, 5).await.unwrap();
    assert!(matches!(
        rt.connect(&name, 9, Loopback::V4).await,
        Err(RuntimeError::Conflict { .. })
    ));
    rt.stop(&name, 5).await.unwrap();
    assert_eq!(
        rt.inspect(&name).await.unwrap().unwrap().state,
        WorkspaceState::Stopped
    );
    rt.remove(&name).await.unwrap();
    rt.remove(&name).await.unwrap();
    assert_eq!(rt.inspect(&name).await.unwrap(), None);
    assert!(matches!(
        rt.start(&name).await,
        Err(RuntimeError::NotFound { .. })
    ));
}

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

#[tokio::test]
async fn fake_honours_the_contract() {
    let fake = FakeRuntime::new();
    fake.add_image(IMAGE, BTreeMap::new());
    fake.on_exec(|_, req| {
        let mut out = req.cmd.get(1..).unwrap_or_default().join(" ").into_bytes();
        out.push(b'\n');
        (0, out, Vec::new())
    });
    let run = run_id();
    contract(&fake, &run, IMAGE, 1000).await;
    network_contract(&fake, &run, IMAGE).await;
}

#[tokio::test]
async fn docker_honours_the_contract() {
    let run = run_id();
    let docker = DockerRuntime::new(hostel_core::config::DEFAULT_ENGINE_SOCKET);
    let guard = Cleanup(run.clone());
    contract(&docker, &run, IMAGE, hostel_testkit::tenant_host_uid()).await;
    network_contract(&docker, &run, IMAGE).await;
    drop(guard);
}

#[tokio::test]
async fn incus_honours_the_contract() {
    let run = run_id();
    let incus = IncusRuntime::new(incus::DEFAULT_SOCKET, incus::DEFAULT_POOL);
    let image = format!("hostel-test-contract:{run}");
    let guard = IncusCleanup {
        run: run.clone(),
        image: image.clone(),
    };
    incus
        .import(hostel_testkit::busybox_tar("", &[]), &image)
        .await
        .unwrap();
    let info = incus
        .image(&image)
        .await
        .unwrap()
        .expect("the imported image");
    assert!(info.tags.contains(&image), "{info:?}");
    contract(&incus, &run, &image, 1000).await;
    network_contract(&incus, &run, &image).await;
    bridges_come_and_go_while_links_churn(&incus, &run).await;

    // A build killed mid-way leaves its instance; the next build removes it, and refuses
    // what it cannot build by name.
    let orphan = format!("hostel-build-{run}");
    incus
        .client()
        .run(
            "POST",
            "/1.0/instances",
            &serde_json::json!({
                "name": orphan,
                "profiles": [],
                "source": {"type": "image", "alias": image},
                "config": {
                    "user.hostel.builder": "4194304000:1",
                    format!("user.label.{LABEL_TEST_RUN}"): run,
                },
                "devices": {"root": {"type": "disk", "path": "/", "pool": incus::DEFAULT_POOL}},
            }),
            "instance",
            &orphan,
        )
        .await
        .unwrap();
    let mut context = tar::Builder::new(Vec::new());
    let dockerfile = b"FROM hostel-no-such-image:1\nVOLUME /data\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(dockerfile.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    context
        .append_data(&mut h, "Dockerfile", &dockerfile[..])
        .unwrap();
    let req = hostel_runtime::BuildRequest {
        context_tar: context.into_inner().unwrap(),
        tags: vec![format!("hostel-test-build:{run}")],
        build_args: BTreeMap::new(),
        labels: BTreeMap::new(),
        no_cache: false,
        network: None,
    };
    let refused = incus.build(&req, &|_| {}).await;
    assert!(
        matches!(&refused, Err(RuntimeError::Unsupported(m)) if m.contains("VOLUME")),
        "{refused:?}"
    );
    assert_eq!(incus.inspect(&orphan).await.unwrap(), None);

    // A build runs its steps in an instance of its parent and publishes it with its tags;
    // built again with nothing to rebuild, it only points a lost tag at it again.
    let mut context = tar::Builder::new(Vec::new());
    let dockerfile = "ARG BASE\nFROM ${BASE}\nLABEL io.hostel.test=1\nENV GREETING=hi\n\
                      RUN echo \"$GREETING\" > /etc/greeting\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(dockerfile.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    context
        .append_data(&mut h, "Dockerfile", dockerfile.as_bytes())
        .unwrap();
    let (versioned, moving) = (
        format!("hostel-test-build:{run}-v1"),
        format!("hostel-test-build:{run}-latest"),
    );
    let req = hostel_runtime::BuildRequest {
        context_tar: context.into_inner().unwrap(),
        tags: vec![versioned.clone(), moving.clone()],
        build_args: BTreeMap::from([("BASE".to_owned(), image.clone())]),
        labels: BTreeMap::from([(LABEL_MANAGED.to_owned(), "1".to_owned())]),
        no_cache: false,
        network: None,
    };
    let lines = std::sync::Mutex::new(Vec::new());
    incus
        .build(&req, &|l| lines.lock().unwrap().push(l))
        .await
        .unwrap();
    assert!(
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("Step 1/1 : RUN")),
        "{lines:?}"
    );
    let built = incus.image(&versioned).await.unwrap().expect("the build");
    assert_eq!(
        incus.image(&moving).await.unwrap().map(|i| i.id),
        Some(built.id.clone())
    );
    assert_eq!(
        built.labels.get("io.hostel.test").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        built.labels.get("hostel.env.GREETING").map(String::as_str),
        Some("hi")
    );
    incus
        .client()
        .run(
            "DELETE",
            &format!("/1.0/images/aliases/{moving}"),
            &serde_json::Value::Null,
            "image",
            &moving,
        )
        .await
        .unwrap();
    lines.lock().unwrap().clear();
    incus
        .build(&req, &|l| lines.lock().unwrap().push(l))
        .await
        .unwrap();
    assert!(lines.lock().unwrap().is_empty(), "no step ran again");
    assert_eq!(
        incus.image(&moving).await.unwrap().map(|i| i.id),
        Some(built.id.clone())
    );
    incus.image_remove(&versioned).await.unwrap();
    assert_eq!(incus.image(&moving).await.unwrap(), None);
    drop(guard);

    // Incus makes its btrfs pool a sparse image mounted with discard; hostel keeps it able to
    // take every write it accepts, as it keeps Docker's.
    let kept = incus
        .keep_storage()
        .await
        .unwrap()
        .expect("scripts/incus makes a loop-backed btrfs pool");
    assert!(kept.allocated && !kept.read_only, "{kept:?}");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let pool = mounts
        .lines()
        .find(|l| l.contains(" /var/lib/incus/storage-pools/hostel "))
        .unwrap();
    assert!(!pool.contains("discard"), "{pool}");
    let seen = incus.storage_state().await.unwrap().unwrap();
    assert_eq!((seen.size, seen.allocated), (kept.size, true));
}

/// Makes and removes veth pairs on the host, as another engine starting and stopping
/// containers does, until dropped.
struct LinkChurn {
    on: std::sync::Arc<std::sync::atomic::AtomicBool>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl LinkChurn {
    fn start(tag: &str) -> LinkChurn {
        let on = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let running = on.clone();
        let tag = tag.to_owned();
        let worker = std::thread::spawn(move || {
            let ip = |args: &[&str]| {
                std::process::Command::new("ip")
                    .args(args)
                    .status()
                    .expect("ip runs")
            };
            let mut i = 0u32;
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                i = (i + 1) % 1000;
                let (a, b) = (format!("{tag}a{i}"), format!("{tag}b{i}"));
                ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
                ip(&["link", "del", &a]);
                // As busy as a host starting and stopping containers, not a flood that slows
                // every engine on the machine.
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        LinkChurn {
            on,
            worker: Some(worker),
        }
    }
}

impl Drop for LinkChurn {
    fn drop(&mut self) {
        self.on.store(false, std::sync::atomic::Ordering::Relaxed);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Incus 6.0 lists the host's links when it sets a bridge up or removes it and fails when
/// one vanishes meanwhile; on a host where Docker churns veths, hostel's networks must still
/// come and go.
async fn bridges_come_and_go_while_links_churn(rt: &dyn Runtime, run: &str) {
    let _churn = LinkChurn::start(&format!("hv{}", &run[run.len() - 4..]));
    let pool: ipnet::Ipv4Net = "10.215.0.0/16".parse().unwrap();
    for round in 0..6 {
        let used = used_subnets(rt).await;
        let net = NetworkSpec {
            name: format!("hostel-churn-{run}-{round}"),
            bridge: hostel_core::network::bridge_name("tv", run, &round.to_string()),
            subnet: hostel_core::network::free_subnet(pool, 28, &used, 0)
                .unwrap()
                .to_string(),
            internal: true,
            labels: BTreeMap::from([
                (LABEL_MANAGED.to_owned(), "1".to_owned()),
                (LABEL_TEST_RUN.to_owned(), run.to_owned()),
            ]),
        };
        rt.network_create(&net)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        rt.network_remove(&net.name)
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(rt.network_inspect(&net.name).await.unwrap(), None);
    }
}

/// Removes what an Incus run made (instances and networks with its label, its image) even
/// when the test panics.
struct IncusCleanup {
    run: String,
    image: String,
}

impl Drop for IncusCleanup {
    fn drop(&mut self) {
        let incus = |args: &[&str]| {
            std::process::Command::new("incus")
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        hostel_testkit::incus_sweep(&self.run);
        let alias: serde_json::Value = serde_json::from_str(&incus(&[
            "query",
            &format!("/1.0/images/aliases/{}", self.image),
        ]))
        .unwrap_or_default();
        if let Some(fingerprint) = alias["target"].as_str() {
            incus(&["image", "delete", fingerprint]);
        }
    }
}

/// A running container of this run on Docker, removed (with its home) when dropped.
struct Started {
    docker: DockerRuntime,
    name: String,
    _home: tempfile::TempDir,
    _guard: Cleanup,
}

async fn started() -> Started {
    let run = run_id();
    let guard = Cleanup(run.clone());
    let docker = DockerRuntime::new(hostel_core::config::DEFAULT_ENGINE_SOCKET);
    let home = tempfile::tempdir().unwrap();
    let uid = hostel_testkit::tenant_host_uid();
    std::os::unix::fs::chown(home.path(), Some(uid), Some(uid)).unwrap();
    let name = format!("hostel-contract-{run}");
    docker
        .create(&spec(&name, &run, home.path(), IMAGE))
        .await
        .unwrap();
    docker.start(&name).await.unwrap();
    Started {
        docker,
        name,
        _home: home,
        _guard: guard,
    }
}

#[tokio::test]
async fn docker_exec_keeps_streams_apart_and_returns_the_code() {
    let Started {
        docker,
        name,
        _home,
        _guard,
    } = started().await;
    let (code, out, err) = run_exec(
        &docker,
        &name,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    )
    .await
    .unwrap();
    assert_eq!((code, out.as_str(), err.as_str()), (3, "out\n", "err\n"));
}

#[tokio::test]
async fn dead_engine_is_unreachable_not_a_panic() {
    let docker = DockerRuntime::new("/run/hostel-no-such.sock");
    let err = docker.ping().await.unwrap_err();
    assert_eq!(err.code(), hostel_core::ErrorCode::EngineUnreachable);
    assert_eq!(
        err.to_string(),
        "container engine at /run/hostel-no-such.sock does not answer"
    );
}

/// Removes this run's containers even when the test panics.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ids = hostel_testkit::docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label={LABEL_TEST_RUN}={}", self.0),
        ]);
        for id in ids.stdout.split_whitespace() {
            hostel_testkit::docker(&["rm", "-f", id]);
        }
        let nets = hostel_testkit::docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label={LABEL_TEST_RUN}={}", self.0),
        ]);
        for id in nets.stdout.split_whitespace() {
            hostel_testkit::docker(&["network", "rm", id]);
        }
    }
}

#[tokio::test]
async fn docker_exec_signals_reach_the_command() {
    let Started {
        docker,
        name,
        _home,
        _guard,
    } = started().await;
    let sleep = ExecRequest {
        cmd: vec!["sleep".into(), "600".into()],
        user: "root".to_owned(),
        ..ExecRequest::default()
    };
    // At once: the engine answers the start before the process runs, and a kill in that
    // moment must still end it.
    let session = docker.exec(&name, &sleep).await.unwrap();
    session.control.signal(Signal::Kill).await.unwrap();
    let code = tokio::time::timeout(std::time::Duration::from_secs(20), session.control.wait())
        .await
        .expect("the killed command ended")
        .unwrap();
    assert_eq!(code, 137);

    // The signal sent is the one asked for: a command that catches TERM says so.
    let trap = ExecRequest {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "trap 'echo caught; exit 7' TERM; echo ready; while :; do sleep 0.1; done".into(),
        ],
        user: "root".to_owned(),
        ..ExecRequest::default()
    };
    let mut session = docker.exec(&name, &trap).await.unwrap();
    let mut out = Vec::new();
    while !out.ends_with(b"ready\n") {
        match session.output.next().await {
            Some(Ok(ExecOutput::Stdout(b))) => out.extend(b),
            other => panic!("{other:?} before ready"),
        }
    }
    session.control.signal(Signal::Term).await.unwrap();
    while let Some(Ok(ExecOutput::Stdout(b))) = session.output.next().await {
        out.extend(b);
    }
    assert_eq!(String::from_utf8_lossy(&out), "ready\ncaught\n");
    assert_eq!(session.control.wait().await.unwrap(), 7);
}

/// A connection reaches a server that listens only on the workspace's own loopback, both
/// ways, with a half-close.
#[tokio::test]
async fn docker_connect_reaches_the_workspace_loopback() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Started {
        docker,
        name,
        _home,
        _guard,
    } = started().await;
    let server = "import socket\n\
        s = socket.socket(socket.AF_INET6)\n\
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n\
        s.bind(('::', 7000)); s.listen(); print('ready', flush=True)\n\
        while True:\n\
        \x20   c, _ = s.accept(); data = c.makefile('rb').read()\n\
        \x20   c.sendall(b'got ' + data); c.close()\n";
    let req = ExecRequest {
        cmd: vec!["python3".into(), "-c".into(), server.into()],
        user: "root".to_owned(),
        ..ExecRequest::default()
    };
    let mut session = docker.exec(&name, &req).await.unwrap();
    match session.output.next().await {
        Some(Ok(ExecOutput::Stdout(b))) => assert_eq!(b, b"ready\n"),
        other => panic!("the server did not start: {other:?}"),
    }
    for loopback in [Loopback::V4, Loopback::V6] {
        let mut conn = match docker.connect(&name, 7000, loopback).await {
            Ok(c) => c,
            // Docker turns IPv6 off in containers unless told otherwise.
            Err(RuntimeError::Refused { .. }) if loopback == Loopback::V6 => continue,
            Err(e) => panic!("{loopback:?}: {e}"),
        };
        conn.write_all(b"ping").await.unwrap();
        conn.shutdown().await.unwrap();
        let mut reply = String::new();
        conn.read_to_string(&mut reply).await.unwrap();
        assert_eq!(reply, "got ping", "{loopback:?}");
    }
    session.control.signal(Signal::Kill).await.unwrap();
    assert_eq!(session.control.wait().await.unwrap(), 137);
}

#[tokio::test]
async fn docker_exec_gives_a_terminal_its_size_and_stdin() {
    use tokio::io::AsyncWriteExt;
    let Started {
        docker,
        name,
        _home,
        _guard,
    } = started().await;
    let req = ExecRequest {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "read line; echo \"size $(stty size) got $line\"; tty".into(),
        ],
        user: "root".to_owned(),
        stdin: true,
        tty: true,
        ..ExecRequest::default()
    };
    let mut session = docker.exec(&name, &req).await.unwrap();
    session.control.resize(100, 30).await.unwrap();
    session.input.write_all(b"hello\n").await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = session.output.next().await {
        match chunk.unwrap() {
            ExecOutput::Stdout(b) => out.extend(b),
            ExecOutput::Stderr(b) => panic!("a terminal has one stream: {b:?}"),
        }
    }
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("size 30 100 got hello"), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert_eq!(session.control.wait().await.unwrap(), 0);
}

/// Regression (#12): root inside wrote to its init's output (`/proc/1/fd/1`), which the
/// engine kept on the host without bound, outside the home and its quota. And btrfs's sysfs
/// showed every tenant's disk use.
#[tokio::test]
async fn issue_12_docker_bounds_the_output_log_and_hides_paths() {
    let Started {
        docker,
        name,
        _home,
        _guard,
    } = started().await;
    let (code, _, err) = run_exec(
        &docker,
        &name,
        &[
            "sh",
            "-c",
            "head -c 20000000 /dev/zero | tr '\\0' x > /proc/1/fd/1",
        ],
    )
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let (_, listing, _) = run_exec(&docker, &name, &["sh", "-c", "ls -A /sys/fs/btrfs | wc -l"])
        .await
        .unwrap();
    assert_eq!(listing.trim(), "0");
    let out = std::process::Command::new("docker")
        .args(["inspect", "-f", "{{.LogPath}}", &name])
        .output()
        .unwrap();
    let log = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let dir = log.parent().unwrap();
    let kept: u64 = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("-json.log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        kept <= 1_200_000,
        "20 MB written, {kept} bytes kept in {}",
        dir.display()
    );
}

/// Regression (#12): io_uring was open in workspaces, and the btrfs ioctl that makes a
/// subvolume (a quota group of its own) needed only write permission. The engine's filter
/// refuses what the spec denies, compares ioctl requests on the 32 bits the kernel reads, and
/// still allows every other ioctl.
#[tokio::test]
async fn issue_12_docker_refuses_the_filtered_calls() {
    let run = run_id();
    let _guard = Cleanup(run.clone());
    let docker = DockerRuntime::new(hostel_core::config::DEFAULT_ENGINE_SOCKET);
    let home = tempfile::tempdir().unwrap();
    // The init stops a workspace whose home is not the tenant's (exit 78), and the exec with it.
    let uid = hostel_testkit::tenant_host_uid();
    std::os::unix::fs::chown(home.path(), Some(uid), Some(uid)).unwrap();
    let name = format!("hostel-contract-{run}");
    let mut s = spec(&name, &run, home.path(), IMAGE);
    s.syscalls = hostel_runtime::SyscallFilter {
        denied: vec!["io_uring_setup".to_owned()],
        denied_ioctls: vec![0x5000_940e],
        new_namespaces: false,
        personalities: vec![0, 0xffff_ffff],
        unimplemented: Vec::new(),
    };
    docker.create(&s).await.unwrap();
    docker.start(&name).await.unwrap();
    // Each probe prints the errno its call got (0: it worked).
    let probe = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L = ctypes.c_ulong
def call(*args):
    ctypes.set_errno(0)
    r = libc.syscall(*[L(a) for a in args])
    if r == 0 and args[0] == 56:
        os._exit(0)
    return 0 if r >= 0 else ctypes.get_errno()
buf = ctypes.create_string_buffer(4096)
fd = os.open("/", os.O_RDONLY)
r, w = os.pipe()
print("io_uring", call(425, 1, ctypes.addressof(buf)))
print("subvol", call(16, fd, 0x5000940e, ctypes.addressof(buf)))
print("subvol_high", call(16, fd, 0xffffffff5000940e, ctypes.addressof(buf)))
print("fionread", call(16, r, 0x541b, ctypes.addressof(buf)))
print("clone_newuser", call(56, 0x10000000 | 17, 0, 0, 0, 0))
print("clone3", call(435, 0, 0))
print("personality_norandom", call(135, 0x0040000))
print("personality_query", call(135, 0xffffffff))
"#;
    let (code, out, err) = run_exec(&docker, &name, &["python3", "-c", probe])
        .await
        .unwrap();
    assert_eq!(code, 0, "{err}");
    let got: BTreeMap<&str, &str> = out.lines().filter_map(|l| l.split_once(' ')).collect();
    let want = BTreeMap::from([
        ("io_uring", "1"),
        ("subvol", "1"),
        ("subvol_high", "1"),
        ("fionread", "0"),
        ("clone_newuser", "1"),
        ("clone3", "38"),
        ("personality_norandom", "1"),
        ("personality_query", "0"),
    ]);
    assert_eq!(got, want, "{out}");
}
