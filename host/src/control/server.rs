//! The control endpoint: accepts connections on a Unix socket and turns
//! requests into calls on the [`Host`].

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt as _, stream};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, info, warn};

use super::protocol::{ErrorBody, Request, Response, SpawnReply, StateFile};
use crate::actor::durable::{DeadLetter, Durability};
use crate::actor::{ActorComponent, DEFAULT_PROBATION, LoadError, SwapOptions};
use crate::error_code::{ErrorCode, HasErrorCode};
use crate::host::{ActorTemplate, ChildSpawn, ClusterSwap, Host, HostView, ROOT, TreeNode};
use crate::message::{Address, DEFAULT_ASK_TIMEOUT};

/// Largest request line accepted: a request is small; anything bigger is
/// a broken client.
pub const MAX_REQUEST_BYTES: usize = 4 << 20;

/// Why the control endpoint could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Another host answers on this socket.
    #[error(
        "another troupe host is already running at {0}; stop it, or start this one with \
         `--control OTHER_PATH`"
    )]
    AlreadyRunning(PathBuf),
    /// Something that is not a socket is in the way.
    #[error("{0} exists and is not a socket; remove it or choose another `--control` path")]
    NotASocket(PathBuf),
    /// The socket directory is not private.
    #[error(
        "the control directory {path} is {problem}; it must belong to you with mode 0700 \
         (choose another path with `--control`)"
    )]
    UnsafeDirectory {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// An I/O error.
    #[error("cannot open the control socket {path}: {error}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
}

/// A bound control endpoint. Removes its socket file when dropped.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlServer {
    /// Binds the control socket at `path`. `private_dir` asks for the
    /// parent directory to be created owner-only, and refused if it exists
    /// with looser permissions (used for the default location).
    ///
    /// # Errors
    ///
    /// [`ServeError`]: another host is running there, the path is not a
    /// socket, the directory is not private, or an I/O error.
    pub async fn bind(path: &Path, private_dir: bool) -> Result<ControlServer, ServeError> {
        let io = |error| ServeError::Io { path: path.to_path_buf(), error };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if private_dir {
                ensure_private_dir(dir)?;
            } else if !dir.exists() {
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
            }
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if UnixStream::connect(path).await.is_ok() {
                    return Err(ServeError::AlreadyRunning(path.to_path_buf()));
                }
                debug!(path = %path.display(), "removing stale control socket");
                std::fs::remove_file(path).map_err(io)?;
            }
            Ok(_) => return Err(ServeError::NotASocket(path.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        Ok(ControlServer { listener, path: path.to_path_buf() })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves requests for `host` until `shutdown` resolves.
    pub async fn serve(&self, host: Host, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        info!(path = %self.path.display(), "control endpoint listening");
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(connection(host.clone(), stream));
                    }
                    Err(e) => {
                        warn!(error = %e, "control accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn ensure_private_dir(dir: &Path) -> Result<(), ServeError> {
    let unsafe_dir = |problem: String| ServeError::UnsafeDirectory { path: dir.to_path_buf(), problem };
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|error| ServeError::Io { path: dir.to_path_buf(), error }),
        Err(error) => Err(ServeError::Io { path: dir.to_path_buf(), error }),
        Ok(meta) => {
            if !meta.is_dir() {
                return Err(unsafe_dir("not a directory".into()));
            }
            let uid = rustix::process::getuid().as_raw();
            if meta.uid() != uid {
                return Err(unsafe_dir(format!("owned by uid {}", meta.uid())));
            }
            if meta.mode() & 0o077 != 0 {
                return Err(unsafe_dir(format!("mode {:04o}", meta.mode() & 0o7777)));
            }
            Ok(())
        }
    }
}

async fn connection(host: Host, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        let n = match (&mut lines).take(MAX_REQUEST_BYTES as u64 + 1).read_line(&mut line).await {
            Ok(n) => n,
            Err(e) => {
                debug!(error = %e, "control connection read failed");
                return;
            }
        };
        if n == 0 {
            return;
        }
        let response = if line.len() > MAX_REQUEST_BYTES {
            error(ErrorCode::BadRequest, format!("request larger than {MAX_REQUEST_BYTES} bytes"))
        } else {
            match serde_json::from_str::<Request>(&line) {
                Ok(Request::Events) => {
                    stream_events(&host, &mut write).await;
                    return;
                }
                Ok(request) => answer(&host, request).await,
                Err(e) => error(ErrorCode::BadRequest, format!("malformed request: {e}")),
            }
        };
        let mut out = serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec());
        out.push(b'\n');
        if write.write_all(&out).await.is_err() {
            return;
        }
        if line.len() > MAX_REQUEST_BYTES {
            return;
        }
    }
}

/// Writes every event as an `ok` line until the client goes away.
async fn stream_events(host: &Host, write: &mut tokio::net::unix::OwnedWriteHalf) {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = host.events();
    loop {
        let response = match events.recv().await {
            Ok(event) => ok(json!(event)),
            Err(RecvError::Lagged(n)) => ok(json!({ "event": "lagged", "missed": n })),
            Err(RecvError::Closed) => return,
        };
        let mut out = serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec());
        out.push(b'\n');
        if write.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn ok(value: serde_json::Value) -> Response {
    Response { ok: Some(value), error: None }
}

fn error(code: ErrorCode, message: impl Into<String>) -> Response {
    Response { ok: None, error: Some(ErrorBody { code: code.as_str().into(), message: message.into() }) }
}

/// The response for any error: its code and its message.
fn failed(e: impl HasErrorCode) -> Response {
    error(e.code(), e.to_string())
}

/// How many recorded actors recovery starts at once.
const RECOVERY_CONCURRENCY: usize = 16;

/// The component in the file at `path`, named after the file (as `troupe
/// spawn` names it).
fn load_named_by_file(host: &Host, path: &Path) -> Result<Arc<ActorComponent>, LoadError> {
    let component_name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    host.load(&component_name, path, None)
}

/// Starts again the durable actors spawned at run time that a host with
/// this store ran before (see [`crate::actor::durable`]), and the run-time
/// supervisors they were spawned under: first the supervisors, each after
/// its own supervisor, then the actors, each spawned as its recorded
/// request said, then the children guests spawned, each after its parent,
/// then the keys of virtual components with work waiting in the store.
/// Each recovers its committed state and acknowledged tells. Those the
/// host already runs (from its manifest) are left alone. Returns each
/// supervisor's and actor's address and the error that kept it from
/// starting, if any.
pub async fn respawn_durable(host: &Host) -> Vec<(String, Option<String>)> {
    let Some(journal) = host.journal() else { return Vec::new() };
    let recorded = match journal.spawned() {
        Ok(recorded) => recorded,
        Err(e) => return vec![("(store)".into(), Some(e.to_string()))],
    };
    let mut outcomes = Vec::new();
    let (mut supervisors, mut actors, mut children) = (Vec::new(), Vec::new(), Vec::new());
    for (address, how) in recorded {
        match serde_json::from_slice::<Request>(&how) {
            Ok(request @ Request::Supervise { .. }) => supervisors.push((address, request)),
            Ok(request @ Request::Spawn { .. }) => actors.push((address, request)),
            Ok(_) | Err(_) => match serde_json::from_slice::<ChildSpawn>(&how) {
                Ok(child) => children.push((address, child)),
                Err(_) => outcomes.push((address.to_string(), Some("its record cannot be read".to_string()))),
            },
        }
    }
    // Parents first: each pass creates those whose parent is there.
    while !supervisors.is_empty() {
        let (ready, waiting): (Vec<_>, Vec<_>) = supervisors.into_iter().partition(|(_, request)| match request {
            Request::Supervise { parent, .. } => parent.as_deref().is_none_or(|p| host.supervisor(p).is_some()),
            _ => true,
        });
        if ready.is_empty() {
            for (address, _) in waiting {
                outcomes.push((address.to_string(), Some("its supervisor was not recovered".to_string())));
            }
            break;
        }
        for (address, request) in ready {
            if host.supervisor(address.as_str()).is_none() {
                outcomes.push((address.to_string(), answer(host, request).await.error.map(|e| e.message)));
            }
        }
        supervisors = waiting;
    }
    // Each component once, then the actors a few at a time: most start
    // asleep, so recovery is mostly bookkeeping that both cores can share.
    let mut components: HashMap<PathBuf, Result<Arc<ActorComponent>, String>> = HashMap::new();
    let mut starts = Vec::new();
    for (address, request) in actors {
        if host.lookup(&address).is_ok() {
            continue;
        }
        let Request::Spawn { path, .. } = &request else { continue };
        let component = components
            .entry(path.clone())
            .or_insert_with(|| load_named_by_file(host, path).map_err(|e| e.to_string()))
            .clone();
        starts.push(async move {
            let outcome = match component {
                Ok(component) => spawn_loaded(host, request, false, Some(component)).await.error.map(|e| e.message),
                Err(e) => Some(e),
            };
            (address.to_string(), outcome)
        });
    }
    outcomes.extend(stream::iter(starts).buffer_unordered(RECOVERY_CONCURRENCY).collect::<Vec<_>>().await);
    // Children a guest spawned, each after its parent; those whose parent
    // is gone for good last, under a supervisor.
    while !children.is_empty() {
        let pending: Vec<&Address> = children.iter().map(|(address, _)| address).collect();
        let (ready, waiting): (Vec<_>, Vec<_>) =
            children.iter().cloned().partition(|(_, child)| !pending.contains(&&child.parent));
        let stuck = ready.is_empty();
        let (ready, waiting) = if stuck { (waiting, Vec::new()) } else { (ready, waiting) };
        for (address, child) in ready {
            if host.lookup(&address).is_ok() {
                continue;
            }
            let outcome = host.respawn_child(child).await.err().map(|e| e.to_string());
            outcomes.push((address.to_string(), outcome));
        }
        children = waiting;
    }
    // Keys of virtual components with tells or reminders waiting.
    for (address, outcome) in host.activate_waiting_keys() {
        outcomes.push((address.to_string(), outcome));
    }
    outcomes
}

/// The run-time supervisors from the root down to `name` (included), each
/// as the request that creates it again, parents first.
fn supervisor_chain(host: &Host, name: &str) -> Vec<(Address, Request)> {
    fn path_to<'t>(node: &'t TreeNode, name: &str, path: &mut Vec<&'t Address>) -> bool {
        let TreeNode::Supervisor { info, nodes } = node else { return false };
        path.push(&info.address);
        if info.address.as_str() == name || nodes.iter().any(|child| path_to(child, name, path)) {
            return true;
        }
        path.pop();
        false
    }
    let tree = host.tree();
    let mut path = Vec::new();
    if !path_to(&tree, name, &mut path) {
        return Vec::new();
    }
    let mut chain = Vec::new();
    for pair in path.windows(2) {
        let (parent, address) = (pair[0], pair[1]);
        let Some(node) = host.supervisor(address.as_str()) else { continue };
        let parent = (parent.as_str() != ROOT).then(|| parent.to_string());
        chain.push((
            address.clone(),
            Request::Supervise { name: address.to_string(), spec: node.spec().clone(), parent },
        ));
    }
    chain
}

/// Records, before a durable actor spawned under the supervisor `name`,
/// that supervisor and those above it, so that recovery creates them
/// again before the actor.
async fn record_supervisors(host: &Host, name: &str) -> Result<(), String> {
    let Some(journal) = host.journal() else { return Ok(()) };
    for (address, request) in supervisor_chain(host, name) {
        let how = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
        journal.record_spawn(&address, how).await.map_err(|e| format!("its supervisor `{address}`: {e}"))?;
    }
    Ok(())
}

/// A dead letter as `dead-letters` shows it, with its id.
fn dead_letter_json(letter: &DeadLetter) -> serde_json::Value {
    json!({
        "id": format!("{}:{}", letter.message.to, letter.seq),
        "address": letter.message.to,
        "message": letter.message.message,
        "from": letter.message.from,
        "error": letter.error,
        "attempts": letter.attempts,
        "at_ms": letter.at_ms,
    })
}

/// Sends dead letter `id` (`ADDRESS:SEQ`) to its actor again, and removes
/// it once the actor has it.
async fn redeliver(host: &Host, id: &str) -> Response {
    let bad = || {
        error(
            ErrorCode::InvalidArgument,
            format!("`{id}` is not a dead letter's id (ADDRESS:SEQ, as `troupe dead-letters` lists them)"),
        )
    };
    let Some((address, seq)) = id.rsplit_once(':') else { return bad() };
    let Ok(seq) = seq.parse::<u64>() else { return bad() };
    let Some(journal) = host.journal() else { return bad() };
    let address = Address::from(address);
    let letter = match journal.dead_letters(Some(&address)) {
        Ok(letters) => letters.into_iter().find(|l| l.seq == seq),
        Err(e) => return error(ErrorCode::NotDurable, e.to_string()),
    };
    let Some(letter) = letter else { return bad() };
    if let Err(e) = host.send(&address, &letter.message.message).await {
        return failed(e);
    }
    match journal.remove_dead_letter(&address, seq).await {
        Ok(()) => ok(json!({ "id": id, "redelivered": true })),
        Err(e) => error(ErrorCode::NotDurable, format!("redelivered, but still listed: {e}")),
    }
}

/// Spawns the actor a [`Request::Spawn`] asks for. A durable one is
/// recorded as it was asked for, to be started again when the host
/// restarts, if `record` (not when recovery starts it from its record).
async fn spawn(host: &Host, request: Request, record: bool) -> Response {
    spawn_loaded(host, request, record, None).await
}

/// [`spawn`], with the component already loaded if `loaded` is given.
async fn spawn_loaded(host: &Host, request: Request, record: bool, loaded: Option<Arc<ActorComponent>>) -> Response {
    let record = (record && matches!(request, Request::Spawn { durable: true, .. })).then(|| request.clone());
    let Request::Spawn { name, path, limits, config, supervisor, restart, durable, http } = request else {
        return error(ErrorCode::InvalidArgument, "not a spawn request");
    };
    let component = match loaded.map_or_else(|| load_named_by_file(host, &path), Ok) {
        Ok(c) => c,
        Err(e) => return failed(crate::actor::SpawnError::from(e)),
    };
    let mut entry = ActorTemplate::new(component);
    entry.policy.limits = limits.apply();
    entry.policy.config = config;
    entry.policy.restart = restart.unwrap_or_default();
    if let Some(grant) = http {
        match crate::outbound::HttpClient::access(grant) {
            Ok(access) => entry.policy.grants.http = Some(access),
            Err(e) => return error(ErrorCode::InvalidArgument, format!("invalid `http` grant: {e}")),
        }
    }
    if durable {
        entry.policy.durability = Durability::Durable;
    }
    if record.is_some()
        && let Some(supervisor) = &supervisor
        && let Err(e) = record_supervisors(host, supervisor).await
    {
        return error(ErrorCode::NotDurable, format!("`{name}` could not be recorded: {e}"));
    }
    // In a cluster, it commits to the shared store under a claim of its
    // own, and fails over.
    if record.is_some()
        && let Err(e) = host.claim_spawned(&name).await
    {
        return error(ErrorCode::NameTaken, format!("`{name}` cannot be spawned here: {e}"));
    }
    match host.spawn_under(entry.spec(name.as_str().into()), supervisor.as_deref()).await {
        Ok(actor) => {
            let how = record.map(|spawn| match host.peers() {
                // The code too, for a host taking it over without the file.
                Some(_) => {
                    serde_json::to_vec(&SharedSpawn { spawn, code: actor.component().hash.to_hex().to_string() })
                }
                None => serde_json::to_vec(&spawn),
            });
            if let (Some(Ok(how)), Some(journal)) = (how, host.journal_of(&name))
                && let Err(e) = journal.record_spawn(actor.address(), how).await
            {
                // Running, but not durable as a whole: say so, and stop it.
                let _ = host.stop(actor.address()).await;
                return error(ErrorCode::NotDurable, format!("`{name}` could not be recorded: {e}"));
            }
            let component = actor.component();
            ok(json!(SpawnReply {
                address: actor.address().to_string(),
                component: component.name.clone(),
                hash: component.short_hash(),
            }))
        }
        Err(e) => failed(e),
    }
}

/// A durable actor's run-time spawn as a host of a cluster records it in
/// the shared store: the request, and the content hash of the code it
/// started, so that a host taking it over runs it without the file.
#[derive(serde::Serialize, serde::Deserialize)]
struct SharedSpawn {
    spawn: Request,
    code: String,
}

/// How a host of a cluster starts again a durable actor spawned at run
/// time on a host that is gone, from its record in the shared store (see
/// [`Host::take_over_spawned`]): as the record asks, without recording it
/// again, with the code it ran (loaded here already, or fetched from the
/// cluster); under the root if the supervisor it named does not run here.
pub fn respawner() -> crate::host::Respawner {
    Arc::new(|host: Host, how: Vec<u8>| {
        Box::pin(async move {
            let SharedSpawn { spawn: mut request, code } =
                serde_json::from_slice(&how).map_err(|e| format!("its record: {e}"))?;
            let Request::Spawn { supervisor, name, path, .. } = &mut request else {
                return Err("its record is no spawn".into());
            };
            if let Some(named) = supervisor.as_deref()
                && host.supervisor(named).is_none()
            {
                warn!(actor = %name, supervisor = %named, "its supervisor does not run here: under the root");
                *supervisor = None;
            }
            let hash = blake3::Hash::from_hex(&code).map_err(|e| format!("its code hash `{code}`: {e}"))?;
            // The code it ran, not what its file holds now.
            let component = match host.component_by_hash(&hash) {
                Some(component) => component,
                None => {
                    let peers = host.peers().ok_or("this host is in no cluster")?;
                    let named = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                    peers.fetch_code(&code, &named).await?
                }
            };
            match spawn_loaded(&host, request, false, Some(component)).await.error {
                None => Ok(()),
                Some(e) => Err(e.message),
            }
        })
    })
}

/// The answer to a request `--cluster` to a host that joined none.
fn not_in_a_cluster() -> Response {
    error(
        ErrorCode::InvalidArgument,
        "this host is not part of a cluster; start it with `troupe run --cluster URLS --node NAME`",
    )
}

/// `view` of every host of the cluster this host joined.
async fn cluster_view(host: &Host, view: HostView) -> Response {
    let Some(peers) = host.peers() else { return not_in_a_cluster() };
    match peers.gather(view).await {
        Ok(nodes) => ok(json!({ "node": peers.node(), "nodes": nodes })),
        Err(e) => error(ErrorCode::Unreachable, format!("the cluster's members could not be listed: {e}")),
    }
}

/// The host's answer to one request, as the control endpoint writes it
/// back: every request but [`Request::Events`] (a stream, which only a
/// connection can carry) is answered here, so that another front end (the
/// HTTP gateway) does what the control socket does, word for word.
pub async fn answer(host: &Host, request: Request) -> Response {
    match request {
        request @ Request::Spawn { .. } => spawn(host, request, true).await,
        Request::Call { address, message, timeout_ms } => {
            let timeout = timeout_ms.map(Duration::from_millis).unwrap_or(DEFAULT_ASK_TIMEOUT);
            match host.ask(&address, &message, timeout).await {
                Ok(reply) => {
                    let result = match reply.map(|v| v.to_wave()).transpose() {
                        Ok(r) => r,
                        Err(e) => {
                            return error(ErrorCode::Internal, format!("cannot render the reply: {e}"));
                        }
                    };
                    ok(json!({ "address": address, "result": result }))
                }
                Err(e) => failed(e),
            }
        }
        Request::Send { address, message, numbered, timeout_ms } => {
            let sending = async {
                match &numbered {
                    Some(n) => host.send_numbered(&address, &message, &n.publisher, n.seq).await,
                    None => host.send(&address, &message).await,
                }
            };
            // Past it, the tell may still take effect: not heard of is not
            // undone (a numbered tell is sent again with its number).
            let sent = match timeout_ms.map(Duration::from_millis) {
                Some(timeout) => {
                    tokio::time::timeout(timeout, sending).await.unwrap_or(Err(crate::CallError::Timeout(timeout)))
                }
                None => sending.await,
            };
            match sent {
                Ok(()) => ok(json!({ "address": address, "queued": true })),
                Err(e) => failed(e),
            }
        }
        Request::Ps { cluster: true, .. } => cluster_view(host, HostView::Ps).await,
        Request::Tree { cluster: true } => cluster_view(host, HostView::Tree).await,
        Request::Ps { virtual_component: None, .. } => {
            let mut components = Vec::new();
            for name in host.virtual_components() {
                // The actors are listed even when the store that counts
                // the passivated keys cannot be read (the cluster's,
                // without a majority of its servers).
                let entry = match host.virtual_keys(&name) {
                    Ok(counts) => {
                        let counts = counts.unwrap_or_default();
                        json!({ "name": name, "active": counts.active, "passivated": counts.passivated })
                    }
                    Err(e) => json!({
                        "name": name,
                        "active": host.active_keys(&name),
                        "passivated": null,
                        "store_error": e.to_string(),
                    }),
                };
                components.push(entry);
            }
            let mut standbys = host.standbys();
            standbys.sort();
            ok(json!({
                "actors": host.actors(),
                "dead_letters": host.dead_letters(),
                "virtual": components,
                "standby": standbys,
            }))
        }
        Request::Ps { virtual_component: Some(name), .. } => {
            let keys: Vec<_> = host
                .actors()
                .into_iter()
                .filter(|a| a.address.as_str().rsplit_once('/').is_some_and(|(prefix, _)| prefix == name))
                .collect();
            let activations = host.activations(&name);
            let counts = match host.virtual_keys(&name) {
                Ok(counts) => counts.unwrap_or_default(),
                Err(e) => return error(ErrorCode::NotDurable, format!("the store could not be read: {e}")),
            };
            ok(json!({
                "virtual": name,
                "active": counts.active,
                "passivated": counts.passivated,
                "activations": activations,
                "actors": keys,
                "dead_letters": host.dead_letters(),
            }))
        }
        Request::Supervise { name, spec, parent } => match host.supervise(&name, spec, parent.as_deref()) {
            Ok(node) => ok(json!({ "address": node.address(), "strategy": node.spec().strategy })),
            Err(e) => failed(e),
        },
        Request::Tree { cluster: false } => ok(json!(host.tree())),
        Request::Swap { target, path, force, probation_ms, canary_ms, version, cluster } => {
            // Keep the component's name: it is the same actor's code, newer.
            let name = match host.lookup(&target) {
                Ok(actor) => actor.component().name.clone(),
                Err(_) => host.template(&target).map(|t| t.component.name.clone()).unwrap_or_else(|| target.clone()),
            };
            let component = match host.load(&name, &path, version) {
                Ok(c) => c,
                Err(e) => return failed(e),
            };
            let options =
                SwapOptions { force, probation: probation_ms.map(Duration::from_millis).unwrap_or(DEFAULT_PROBATION) };
            if cluster {
                let Some(peers) = host.peers() else { return not_in_a_cluster() };
                let swap = ClusterSwap { target, component, options, canary: canary_ms.map(Duration::from_millis) };
                return match peers.swap(swap).await {
                    Ok(nodes) => ok(json!({ "node": peers.node(), "nodes": nodes })),
                    Err(e) => failed(e),
                };
            }
            match host.swap_target(&target, component, options, canary_ms.map(Duration::from_millis)).await {
                Ok(reports) => ok(json!({ "reports": reports })),
                Err(e) => failed(e),
            }
        }
        Request::Events => error(ErrorCode::BadRequest, "events are streamed by the connection handler"),
        Request::DeadLetters { address } => {
            let Some(journal) = host.journal() else { return ok(json!({ "dead_letters": [] })) };
            match journal.dead_letters(address.map(Address::from).as_ref()) {
                Ok(letters) => ok(json!({ "dead_letters": letters.iter().map(dead_letter_json).collect::<Vec<_>>() })),
                Err(e) => error(ErrorCode::NotDurable, e.to_string()),
            }
        }
        Request::Redeliver { id } => redeliver(host, &id).await,
        Request::StateExport { address } => {
            let no_state = || {
                error(
                    ErrorCode::InvalidArgument,
                    format!("`{address}` has no committed state here (it is not a durable actor of this host)"),
                )
            };
            let Some(journal) = host.journal() else { return no_state() };
            match journal.recover(&address.as_str().into()) {
                Ok(recovered) => match recovered.state {
                    Some(state) => ok(json!(StateFile::new(&address, &state))),
                    None => no_state(),
                },
                Err(e) => error(ErrorCode::NotDurable, e.to_string()),
            }
        }
        Request::StateImport { address, state } => {
            if host.lookup(&address).is_ok() {
                return error(
                    ErrorCode::InvalidArgument,
                    format!(
                        "`{address}` runs on this host: import into an address that does not, then spawn it there with --durable"
                    ),
                );
            }
            let state = match state.state() {
                Ok(state) => state,
                Err(e) => return error(ErrorCode::BadRequest, e),
            };
            if let Err(e) = Address::validate(&address) {
                return error(ErrorCode::InvalidArgument, e.to_string());
            }
            let Some(journal) = host.journal() else { return error(ErrorCode::NotDurable, "this host has no store") };
            match journal.import(&address.as_str().into(), state).await {
                Ok(()) => ok(json!({ "address": address, "imported": true })),
                Err(e) => error(ErrorCode::NotDurable, e.to_string()),
            }
        }
        Request::Passivate { address } => match host.passivate(&address).await {
            Ok(true) => ok(json!({ "address": address, "passivated": true })),
            Ok(false) => error(
                ErrorCode::InvalidArgument,
                format!(
                    "`{address}` did not passivate: it has messages queued, is not running, or its component does \
                     not export `troupe:actor/persistence` (its state would be lost)"
                ),
            ),
            Err(e) => failed(e),
        },
        Request::Stop { address } => match host.stop(&address).await {
            // Stopped by hand for good, with what is under it: the durable
            // actors among them are forgotten too.
            Ok(()) => ok(json!({ "address": address, "stopped": true })),
            Err(e) => failed(e),
        },
    }
}
