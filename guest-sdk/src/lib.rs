//! Write troupe actors in Rust.
//!
//! A troupe actor is a WebAssembly component that exports a WIT interface:
//! its functions are the actor's message protocol. This crate gives such a
//! component typed access to the actor system through the
//! `troupe:actor/host` import — its own address, [`tell`], [`ask`],
//! [`spawn`], [`stop`], timers ([`send_after`]) and [`log`] — so that guest
//! code sends Rust values and gets Rust values back, never strings to parse.
//!
//! Messages travel as WAVE (WebAssembly Value Encoding) text, type-checked
//! by the host against the receiver's exported function types. [`Wave`]
//! converts Rust values to and from WAVE; the [`call!`] macro builds a
//! message:
//!
//! ```ignore
//! use troupe_guest::{ask, call, tell};
//!
//! tell("logger", call!("append", "hello"))?;
//! let n: u64 = ask("counter", call!("incr", 5u64))?;
//! ```
//!
//! See the crate README, "Write your first actor", for a complete actor.

#[cfg(feature = "http")]
pub mod http;
pub mod wave;

pub use wave::{Wave, WaveError};

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        inline: "
            package troupe:guest-sdk;
            world sdk {
                import troupe:actor/host@0.2.0;
            }
        ",
        world: "troupe:guest-sdk/sdk",
        additional_derives: [PartialEq],
        generate_all,
    });
}

use std::fmt;
use std::time::Duration;

use bindings::troupe::actor::host;
pub use bindings::troupe::actor::types::{
    Binding, BindingTarget, DownNotice, DownReason, Durability, Error as HostError, Failure, FailureKind, HttpGrant,
    Level, RestartType, Router, State,
};

/// An actor's address.
pub type Address = String;

/// Identifies a pending timer.
pub type TimerId = u64;

/// Why a call into the actor system failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The host refused or could not complete the request (unknown
    /// address, full mailbox, ill-typed message, timeout, the receiver
    /// failed, ...).
    Host(HostError),
    /// The reply did not decode as the type the caller asked for.
    Reply {
        /// The reply text.
        reply: String,
        /// Why it did not decode.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Host(e) => write!(f, "{}", describe(e)),
            Error::Reply { reply, reason } => write!(f, "unexpected reply `{reply}`: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<HostError> for Error {
    fn from(e: HostError) -> Self {
        Error::Host(e)
    }
}

fn describe(e: &HostError) -> String {
    match e {
        HostError::UnknownAddress(a) => format!("no actor at `{a}`"),
        HostError::MailboxFull(a) => format!("mailbox of `{a}` is full"),
        HostError::BadMessage(m) => m.clone(),
        HostError::TooLarge(n) => format!("message of {n} bytes is too large"),
        HostError::Timeout => "no reply in time".into(),
        HostError::ActorFailed(m) => format!("the receiver failed: {m}"),
        HostError::Stopped(a) => format!("`{a}` stopped"),
        HostError::Cycle(chain) => format!("ask cycle: {}", chain.join(" -> ")),
        HostError::NameTaken(a) => format!("address `{a}` is taken"),
        HostError::UnknownComponent(c) => format!("no component named `{c}`"),
        HostError::SpawnFailed(m) => format!("spawn failed: {m}"),
        HostError::QuotaExceeded(m) => format!("quota exceeded: {m}"),
        HostError::InvalidArgument(m) => format!("invalid argument: {m}"),
    }
}

/// A message: a call to one function of the receiver's protocol, as WAVE
/// text. Build one with [`call!`] or [`Call::new`], or write the text
/// yourself (`Call::raw("incr(5)")`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    text: String,
    args: usize,
}

impl Call {
    /// A call to `function` (optionally qualified, `iface.func`), with no
    /// arguments yet.
    pub fn new(function: &str) -> Self {
        let mut text = String::with_capacity(function.len() + 16);
        text.push_str(function);
        text.push('(');
        Call { text, args: 0 }
    }

    /// Appends an argument.
    pub fn arg<T: Wave + ?Sized>(mut self, value: &T) -> Self {
        if self.args > 0 {
            self.text.push_str(", ");
        }
        self.args += 1;
        self.text.push_str(&value.to_wave());
        self
    }

    /// A message written directly in WAVE: `func(arg, ...)`.
    pub fn raw(text: impl Into<String>) -> Self {
        let text = text.into();
        Call { text, args: usize::MAX }
    }

    /// The WAVE text of the call.
    pub fn text(&self) -> String {
        if self.args == usize::MAX { self.text.clone() } else { format!("{})", self.text) }
    }
}

impl From<&str> for Call {
    fn from(text: &str) -> Self {
        Call::raw(text)
    }
}

impl From<String> for Call {
    fn from(text: String) -> Self {
        Call::raw(text)
    }
}

/// Builds a [`Call`]: `call!("incr", 5u64)`, `call!("greet", "ada", 36u32)`.
#[macro_export]
macro_rules! call {
    ($function:expr $(, $arg:expr)* $(,)?) => {{
        #[allow(unused_mut)]
        let mut call = $crate::Call::new($function);
        $( call = call.arg(&$arg); )*
        call
    }};
}

/// This actor's own address.
pub fn me() -> Address {
    host::self_address()
}

/// Queues `call` for the actor at `to` and returns at once. `Ok` means the
/// message type-checked and was queued, not that it was handled.
///
/// # Errors
///
/// The host's [`HostError`]: unknown address, full mailbox, ill-typed message.
pub fn tell(to: &str, call: impl Into<Call>) -> Result<(), Error> {
    host::tell(to, &call.into().text()).map_err(Error::Host)
}

/// Sends `call` to `to`, waits for the reply (at most 5 s) and decodes it
/// as `R`. Use `()` for a function without a result.
///
/// # Errors
///
/// The host's [`HostError`] (including `timeout` and `actor-failed`), or
/// [`Error::Reply`] if the reply is not an `R`.
pub fn ask<R: Wave>(to: &str, call: impl Into<Call>) -> Result<R, Error> {
    ask_timeout(to, call, Duration::ZERO)
}

/// [`ask`] with an explicit timeout (`Duration::ZERO` means the host default).
///
/// # Errors
///
/// As [`ask`].
pub fn ask_timeout<R: Wave>(to: &str, call: impl Into<Call>, timeout: Duration) -> Result<R, Error> {
    let millis = timeout.as_millis().min(u32::MAX as u128) as u32;
    let reply = host::ask(to, &call.into().text(), millis)?;
    R::from_reply(&reply).map_err(|e| Error::Reply { reply, reason: e.to_string() })
}

/// Sends `call` and returns the raw WAVE reply.
///
/// # Errors
///
/// The host's [`HostError`].
pub fn ask_raw(to: &str, call: impl Into<Call>, timeout: Duration) -> Result<String, Error> {
    let millis = timeout.as_millis().min(u32::MAX as u128) as u32;
    host::ask(to, &call.into().text(), millis).map_err(Error::Host)
}

/// A pending spawn: set a name, configuration and supervision, then
/// [`Spawn::start`].
#[derive(Debug, Clone)]
pub struct Spawn {
    component: String,
    name: Option<String>,
    config: Vec<(String, String)>,
    restart: Option<RestartType>,
    durability: Option<Durability>,
    supervisor: Option<String>,
    link: bool,
    bindings: Vec<Binding>,
    http: Option<HttpGrant>,
}

/// Starts building a child actor from the component the host knows as
/// `component` (a name from the manifest). By default this actor
/// supervises the child, which is `permanent` and not linked.
pub fn spawn(component: &str) -> Spawn {
    Spawn {
        component: component.to_string(),
        name: None,
        config: Vec::new(),
        restart: None,
        durability: None,
        supervisor: None,
        link: false,
        bindings: Vec::new(),
        http: None,
    }
}

impl Spawn {
    /// The child's address. Without one, the host picks a unique address
    /// under this actor's.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A configuration entry handed to the child's `init`.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.push((key.into(), value.into()));
        self
    }

    /// How the child's supervisor restarts it (default `permanent`).
    pub fn restart(mut self, restart: RestartType) -> Self {
        self.restart = Some(restart);
        self
    }

    /// Make the child durable: its state and the tells it acknowledged
    /// survive a crash of the host, and it comes back after one (its
    /// component must export `troupe:actor/persistence`). By default the
    /// child is as durable as its manifest entry says.
    pub fn durable(mut self) -> Self {
        self.durability = Some(Durability::Durable);
        self
    }

    /// Place the child under a supervisor named in the manifest instead of
    /// under this actor.
    pub fn supervisor(mut self, name: impl Into<String>) -> Self {
        self.supervisor = Some(name.into());
        self
    }

    /// Link the child to this actor: when either fails, so does the other
    /// (unless it exports `troupe:actor/watcher`).
    pub fn link(mut self) -> Self {
        self.link = true;
        self
    }

    /// Binds one of the child's imported interfaces before it starts.
    pub fn bind(mut self, interface: impl Into<String>, target: BindingTarget) -> Self {
        self.bindings.push(Binding { interface: interface.into(), target });
        self
    }

    /// Grant the child outbound HTTP to the URLs of these patterns (e.g.
    /// `https://api.example.com/v1/users/*`), with this actor's own limits,
    /// in place of its manifest entry's `http` grant. Each pattern must lie
    /// within one of this actor's own: [`Spawn::start`] fails with
    /// `invalid-argument` otherwise.
    pub fn http<S: Into<String>>(self, patterns: impl IntoIterator<Item = S>) -> Self {
        self.http_grant(HttpGrant {
            allow: patterns.into_iter().map(Into::into).collect(),
            max_concurrent: None,
            max_request_bytes: None,
            max_response_bytes: None,
            connect_timeout_ms: None,
            first_byte_timeout_ms: None,
            between_bytes_timeout_ms: None,
            message_ceiling_ms: None,
        })
    }

    /// Grant the child outbound HTTP with limits of its own (each no larger
    /// than this actor's; absent ones are this actor's), as [`Spawn::http`].
    pub fn http_grant(mut self, grant: HttpGrant) -> Self {
        self.http = Some(grant);
        self
    }

    /// Starts the child and waits until its `init` has returned.
    ///
    /// # Errors
    ///
    /// The host's [`HostError`]: name taken, unknown component, quota,
    /// spawn failed.
    pub fn start(self) -> Result<Address, Error> {
        let options = bindings::troupe::actor::types::SpawnOptions {
            name: self.name,
            config: self.config,
            restart: self.restart,
            durability: self.durability,
            supervisor: self.supervisor,
            link: self.link,
            bindings: self.bindings,
            http: self.http,
        };
        host::spawn(&self.component, &options).map_err(Error::Host)
    }
}

/// Stops the actor at `address` after the message it is handling: this
/// actor (a normal exit: a `permanent` actor is restarted by its
/// supervisor) or one of its descendants (stopped for good).
///
/// # Errors
///
/// The host's [`HostError`].
pub fn stop(address: &str) -> Result<(), Error> {
    host::stop(address).map_err(Error::Host)
}

/// Watches the actor at `address`: this actor's `watcher.down` export gets
/// a notice each time it goes down. Needs the `troupe:actor/watcher` export.
///
/// # Errors
///
/// The host's [`HostError`]: unknown address, no watcher export.
pub fn monitor(address: &str) -> Result<u64, Error> {
    host::monitor(address).map_err(Error::Host)
}

/// Stops watching; false if the monitor is unknown.
pub fn demonitor(id: u64) -> bool {
    host::demonitor(id)
}

/// Links this actor with the one at `address`: when either fails, so does
/// the other, unless it exports `troupe:actor/watcher` (then it gets a
/// `down` notice instead).
///
/// # Errors
///
/// The host's [`HostError`]: unknown address.
pub fn link(address: &str) -> Result<(), Error> {
    host::link(address).map_err(Error::Host)
}

/// Binds this actor's imported protocol interface `interface` (for example
/// `"acme:counter/api"`) to `target`: from then on, calling the imported
/// functions calls the target — functions with a result are asks, others
/// tells. The target must export the interface with identical types.
///
/// # Errors
///
/// The host's [`HostError`]: unknown target, or a type mismatch naming the
/// function and both signatures.
pub fn bind(interface: &str, target: BindingTarget) -> Result<(), Error> {
    host::bind(interface, &target).map_err(Error::Host)
}

/// Removes a binding; false if there was none.
pub fn unbind(interface: &str) -> bool {
    host::unbind(interface)
}

/// Undoes a link; false if there was none.
pub fn unlink(address: &str) -> bool {
    host::unlink(address)
}

/// Delivers `call` to this actor itself after `delay`.
///
/// # Errors
///
/// The host's [`HostError`]: ill-typed message, too many timers.
pub fn send_after(delay: Duration, call: impl Into<Call>) -> Result<TimerId, Error> {
    let millis = delay.as_millis().min(u64::MAX as u128) as u64;
    host::send_after(millis, &call.into().text()).map_err(Error::Host)
}

/// Cancels a pending timer; false if it already fired.
pub fn cancel_timer(id: TimerId) -> bool {
    host::cancel_timer(id)
}

/// Structured logging through the host's log, tagged with this actor's address.
pub mod log {
    use super::{Level, host};

    /// Logs `message` with `fields` at `level`.
    pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
        let fields: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        host::log(level, message, &fields);
    }

    /// Logs at info level.
    pub fn info(message: &str) {
        log(Level::Info, message, &[]);
    }

    /// Logs at warn level.
    pub fn warn(message: &str) {
        log(Level::Warn, message, &[]);
    }

    /// Logs at error level.
    pub fn error(message: &str) {
        log(Level::Error, message, &[]);
    }

    /// Logs at debug level.
    pub fn debug(message: &str) {
        log(Level::Debug, message, &[]);
    }
}

/// Reads a configuration value handed to `init`.
pub fn config_value<'a>(config: &'a [(String, String)], key: &str) -> Option<&'a str> {
    config.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}
