//! Helpers shared by the integration tests (`tests/all`) and the benchmark
//! suite (`host/benches/suite`): where the workspace and its build live,
//! building and finding the example guests, making hosts, spawning and
//! asking.
//!
//! Both include this file with `#[path]` rather than reaching it through
//! a `testkit` feature of the library: the helpers panic on the first
//! error, as a test should, and that is nothing to offer an embedder. Each
//! includer uses part of it, so each allows dead code at the include.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use troupe::protocol::Call;
use troupe::{ActorLimits, ActorRef, ActorTemplate, BatchDelivery, CallError, EngineConfig, Host, HostConfig};
use wasmtime::component::Val;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// The cargo target directory this binary was built into.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() { dir } else { workspace().join(dir) };
    }
    // target/<profile>/deps/<binary>-<hash>
    let exe = std::env::current_exe().expect("the binary's path");
    exe.ancestors().nth(3).expect("a test or benchmark lives in target/<profile>/deps").to_path_buf()
}

/// The compile cache of every host made here: the tests and the
/// benchmarks share it, so a smoke pass after the tests compiles nothing.
pub fn cache_dir() -> PathBuf {
    target_dir().join("troupe-test-cache")
}

/// Runs `scripts/build-guests` (the Rust example guests) once per process,
/// to build or refresh them.
///
/// # Panics
///
/// If the script cannot run or fails.
pub fn build_guests() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let status = Command::new(workspace().join("scripts/build-guests"))
            .env("CARGO_TARGET_DIR", target_dir())
            .status()
            .map_err(|e| format!("cannot run scripts/build-guests: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("scripts/build-guests failed ({status}); see its output above"))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
}

/// Where the compiled example guest `name` (e.g. `counter`) is, built or
/// not (the JavaScript, Python and C ones are built only by
/// `scripts/build-guests all`).
pub fn guest_path(name: &str) -> PathBuf {
    workspace().join("examples-guests/build").join(format!("{name}.wasm"))
}

/// The compiled example guest `name`, after [`build_guests`].
///
/// # Panics
///
/// If the guests cannot be built, or `name` is not among them.
pub fn guest(name: &str) -> PathBuf {
    build_guests();
    let path = guest_path(name);
    assert!(path.is_file(), "guest {name} was not built at {}", path.display());
    path
}

/// Engine settings with at most `max_instances` awake actors and the
/// shared compile cache ([`cache_dir`]).
pub fn engine_config(max_instances: u32) -> EngineConfig {
    let mut engine = EngineConfig::new();
    engine.max_instances(max_instances).cache_dir(Some(cache_dir()));
    engine
}

/// A host on `engine`, everything else by default.
pub fn host_on(engine: EngineConfig) -> Host {
    host_on_batching(engine, BatchDelivery::default())
}

/// A host on `engine` with `batch` for batch delivery.
pub fn host_on_batching(engine: EngineConfig, batch: BatchDelivery) -> Host {
    Host::new(HostConfig { engine, batch_delivery: batch, ..Default::default() }).expect("host builds")
}

/// A host with a small pool, the shared compile cache, and a short tick.
pub fn host() -> Host {
    host_batching(BatchDelivery::default())
}

/// [`host`], with `batch` for batch delivery.
pub fn host_batching(batch: BatchDelivery) -> Host {
    host_on_batching(engine_config(200), batch)
}

/// Loads a component from `bytes` into `host` and spawns it at `address`.
pub async fn spawn_bytes(host: &Host, bytes: Vec<u8>, address: &str) -> ActorRef {
    let component = host.load_bytes(address, &format!("{address}.wasm"), bytes, None).expect("component loads");
    host.spawn(ActorTemplate::new(component).spec(address.into())).await.expect("actor starts")
}

/// Loads example guest `name` into `host` and defines it under `name`.
pub fn define(host: &Host, name: &str) -> ActorTemplate {
    let component = host.load(name, &guest(name), None).expect("example guest loads");
    let entry = ActorTemplate::new(component);
    host.define(name, entry.clone());
    entry
}

/// Spawns an actor at `address` from example guest `name` with `limits`.
pub async fn spawn(host: &Host, name: &str, address: &str, limits: ActorLimits) -> ActorRef {
    let mut entry = define(host, name);
    entry.policy.limits = limits;
    host.spawn(entry.spec(address.into())).await.expect("actor starts")
}

/// Asks and renders the reply as WAVE ("" for no result).
pub async fn ask(host: &Host, address: &str, message: &str) -> Result<String, CallError> {
    let reply = host.ask(address, message, Duration::from_secs(10)).await?;
    Ok(reply.map(|v| v.to_wave().expect("replies render")).unwrap_or_default())
}

/// Tells `actor` the parsed `call`, yielding while its mailbox is full (as
/// the senders of a burst do).
///
/// # Panics
///
/// On any other error.
pub async fn tell_call(actor: &ActorRef, call: &Call) {
    loop {
        match actor.tell(call.clone(), None) {
            Ok(()) => return,
            Err(CallError::MailboxFull(_)) => tokio::task::yield_now().await,
            Err(e) => panic!("tell failed: {e}"),
        }
    }
}

/// Asks `actor` the parsed `call` with `timeout` (`troupe::NO_TIMEOUT` for
/// none), yielding while its mailbox is full (as after a burst of tells).
///
/// # Panics
///
/// On any other error.
pub async fn ask_call(actor: &ActorRef, call: &Call, timeout: Duration) -> Option<Val> {
    loop {
        match actor.ask(call.clone(), None, None, timeout).await {
            Err(CallError::MailboxFull(_)) => tokio::task::yield_now().await,
            reply => return reply.expect("ask"),
        }
    }
}
