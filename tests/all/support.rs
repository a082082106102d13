//! Shared helpers: building the example guests once, starting hosts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use troupe::{ActorLimits, ActorRef, ActorTemplate, BatchDelivery, EngineConfig, Host, HostConfig};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// The cargo target directory this test binary was built into.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() { dir } else { workspace().join(dir) };
    }
    // target/<profile>/deps/all-<hash>
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors().nth(3).expect("test binary lives in target/<profile>/deps").to_path_buf()
}

/// The compiled example guest `name` (e.g. `counter`), running
/// `scripts/build-guests` once per test run to build (or refresh) them.
pub fn guest(name: &str) -> PathBuf {
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
    let path = workspace().join("examples-guests/build").join(format!("{name}.wasm"));
    assert!(path.is_file(), "guest {name} was not built at {}", path.display());
    path
}

/// A component that wit-component builds from `wit` and the core module
/// `wat`, as a guest toolchain would.
pub fn component_from_wit(wit: &str, wat: impl AsRef<str>) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_source("test.wit", wit).unwrap();
    let world = resolve.select_world(&[package], None).unwrap();
    let mut module = wat::parse_str(wat.as_ref()).unwrap();
    wit_component::embed_component_metadata(&mut module, &resolve, world, wit_component::StringEncoding::UTF8).unwrap();
    wit_component::ComponentEncoder::default().module(&module).unwrap().validate(true).encode().unwrap()
}

/// A host with a small pool, an isolated compile cache, and a short tick.
pub fn host() -> Host {
    host_batching(BatchDelivery::default())
}

/// [`host`], with `batch` for batch delivery.
pub fn host_batching(batch: BatchDelivery) -> Host {
    let mut engine = EngineConfig::new();
    engine.max_instances(200).cache_dir(Some(target_dir().join("troupe-test-cache"))).batch_delivery(batch);
    Host::new(HostConfig { engine, ..Default::default() }).expect("host builds")
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
pub async fn ask(host: &Host, address: &str, message: &str) -> Result<String, troupe::CallError> {
    let reply = host.ask(address, message, Duration::from_secs(10)).await?;
    Ok(reply.map(|v| v.to_wave().expect("replies render")).unwrap_or_default())
}
