//! The actor model: typed messages, one at a time, crash isolation.

use troupe::protocol::MessageError;
use troupe::{ActorLimits, ActorStatus, CallError, FailureKind};

use crate::support::{self, ask, spawn};

#[tokio::test]
async fn typed_call_returns_typed_result() {
    let host = support::host();
    spawn(&host, "counter", "counter", ActorLimits::default()).await;
    assert_eq!(ask(&host, "counter", "incr(5)").await.unwrap(), "5");
    assert_eq!(ask(&host, "counter", "incr(37)").await.unwrap(), "42");
    assert_eq!(ask(&host, "counter", "get()").await.unwrap(), "42");
    assert_eq!(ask(&host, "counter", "reset()").await.unwrap(), "");
    assert_eq!(ask(&host, "counter", "get()").await.unwrap(), "0");
}

#[tokio::test]
async fn qualified_function_names_resolve() {
    let host = support::host();
    spawn(&host, "counter", "counter", ActorLimits::default()).await;
    assert_eq!(ask(&host, "counter", "api.incr(2)").await.unwrap(), "2");
    assert_eq!(ask(&host, "counter", "example:counter/api.incr(2)").await.unwrap(), "4");
    assert_eq!(ask(&host, "counter", "example:counter/api@0.1.0.get()").await.unwrap(), "4");
}

#[tokio::test]
async fn ill_typed_message_is_rejected_with_the_expected_signature() {
    let host = support::host();
    let counter = spawn(&host, "counter", "counter", ActorLimits::default()).await;
    let err = ask(&host, "counter", r#"incr("five")"#).await.unwrap_err();
    match &err {
        CallError::BadMessage(MessageError::IllTyped { signature, .. }) => {
            assert_eq!(signature, "incr(by: u64) -> u64")
        }
        other => panic!("expected an ill-typed message error, got {other:?}"),
    }
    assert!(err.to_string().contains("incr(by: u64) -> u64"), "{err}");
    // The reason names the argument, its type and the offending text.
    assert!(err.to_string().contains(r#"argument `by` expects u64, got `"five"`"#), "{err}");
    let err = ask(&host, "counter", "incr(-1)").await.unwrap_err();
    assert!(err.to_string().contains("argument `by` expects u64, got `-1`"), "{err}");
    // Wrong arity is ill-typed too.
    let err = ask(&host, "counter", "incr(1, 2)").await.unwrap_err();
    assert!(matches!(err, CallError::BadMessage(MessageError::IllTyped { .. })), "{err:?}");
    assert!(err.to_string().contains("expected 1 argument(s), got 2"), "{err}");
    // The actor never saw them.
    assert_eq!(counter.info().handled, 0);
    assert_eq!(ask(&host, "counter", "get()").await.unwrap(), "0");
}

#[tokio::test]
async fn an_ill_typed_message_names_the_argument_that_does_not_fit() {
    let host = support::host();
    let room = support::define(&host, "chat-room");
    let protocol = room.component.protocol();
    let err = protocol.parse(r#"post("ada", 7)"#, 1 << 20).unwrap_err().to_string();
    assert!(err.contains("post(sender: string, text: string) -> u32"), "{err}");
    assert!(err.contains("argument `text` expects string, got `7`"), "{err}");
    let err = protocol.parse(r#"post(["ada"], "hi")"#, 1 << 20).unwrap_err().to_string();
    assert!(err.contains(r#"argument `sender` expects string, got `["ada"]`"#), "{err}");
    assert!(protocol.parse(r#"post("ada", "hi")"#, 1 << 20).is_ok());
}

/// A component whose `greet` takes a record and answers with its `age`.
fn greeter() -> Vec<u8> {
    support::component_from_wit(
        "package acme:people@0.1.0;
         interface api {
           record person { name: string, age: u8 }
           greet: func(p: person) -> u8;
         }
         world w { export api; }",
        r#"(module
             (memory (export "memory") 1)
             (global $heap (mut i32) (i32.const 1024))
             (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
               (local.set $p (global.get $heap))
               (global.set $heap (i32.add (local.get $p) (local.get 3)))
               (local.get $p))
             (func (export "acme:people/api@0.1.0#greet")
               (param $name i32) (param $name-len i32) (param $age i32) (result i32)
               (local.get $age)))"#,
    )
}

#[tokio::test]
async fn a_record_missing_a_field_or_naming_one_it_lacks_is_refused_naming_the_field() {
    let host = support::host();
    let greeter = support::spawn_bytes(&host, greeter(), "g").await;
    let ill_typed = |reason: &str| {
        CallError::BadMessage(MessageError::IllTyped {
            signature: "greet(p: record { name: string, age: u8 }) -> u8".into(),
            reason: reason.into(),
        })
    };
    assert_eq!(
        ask(&host, "g", r#"greet({name: "a"})"#).await,
        Err(ill_typed(
            r#"argument `p` expects record { name: string, age: u8 }, got `{name: "a"}`: missing field `p.age` (u8)"#
        ))
    );
    assert_eq!(
        host.tell("g", r#"greet({name: "a", age: 7, title: "dr"})"#),
        Err(ill_typed(
            r#"argument `p` expects record { name: string, age: u8 }, got `{name: "a", age: 7, title: "dr"}`: unknown field `p.title`; the record has `name`, `age`"#
        ))
    );
    assert_eq!(
        host.tell("g", r#"greet({name: "a", age: "seven"})"#),
        Err(ill_typed(
            r#"argument `p` expects record { name: string, age: u8 }, got `{name: "a", age: "seven"}`: field `p.age` expects u8, got `"seven"`: invalid value type"#
        ))
    );
    // The actor saw none of them, and takes the record whole.
    assert_eq!(ask(&host, "g", r#"greet({name: "ada", age: 36})"#).await.unwrap(), "36");
    assert_eq!(greeter.info().handled, 1);
}

#[tokio::test]
async fn unknown_function_lists_the_protocol() {
    let host = support::host();
    spawn(&host, "counter", "counter", ActorLimits::default()).await;
    let err = ask(&host, "counter", "decr(1)").await.unwrap_err();
    let CallError::BadMessage(MessageError::UnknownFunction { name, accepted }) = &err else {
        panic!("expected unknown function, got {err:?}");
    };
    assert_eq!(name, "decr");
    assert!(accepted.contains("incr(by: u64) -> u64") && accepted.contains("get() -> u64"), "{accepted}");
}

#[tokio::test]
async fn malformed_message_is_a_syntax_error() {
    let host = support::host();
    spawn(&host, "counter", "counter", ActorLimits::default()).await;
    let err = ask(&host, "counter", "incr(5").await.unwrap_err();
    assert!(matches!(err, CallError::BadMessage(MessageError::Syntax { .. })), "{err:?}");
}

#[tokio::test]
async fn unknown_address_is_an_error() {
    let host = support::host();
    let err = ask(&host, "nobody", "get()").await.unwrap_err();
    assert_eq!(err, CallError::UnknownAddress("nobody".into()));
}

#[tokio::test]
async fn actor_answers_again_after_a_panic() {
    let host = support::host();
    let faulty = spawn(&host, "faulty", "faulty", ActorLimits::default()).await;
    assert_eq!(ask(&host, "faulty", "ping()").await.unwrap(), "1");
    let err = ask(&host, "faulty", r#"panic("boom")"#).await.unwrap_err();
    let CallError::ActorFailed { failure, .. } = &err else { panic!("expected a failure, got {err:?}") };
    assert_eq!(failure.kind, FailureKind::Panic);
    assert!(!failure.backtrace.is_empty(), "a panic carries a wasm backtrace");
    let stderr = failure.stderr.as_deref().unwrap_or_default();
    assert!(stderr.contains("boom"), "and what the guest printed: {stderr:?}");
    // A fresh incarnation: its state starts over.
    assert_eq!(ask(&host, "faulty", "ping()").await.unwrap(), "1");
    let info = faulty.info();
    assert_eq!((info.failures, info.restarts), (1, 1));
    assert_eq!(info.status, ActorStatus::Running);
    assert_eq!(host.dead_letters(), 1, "the failed message is a dead letter");
}

#[tokio::test]
async fn stack_overflow_is_reported_as_such() {
    let host = support::host();
    spawn(&host, "faulty", "faulty", ActorLimits::default()).await;
    assert_eq!(ask(&host, "faulty", "recurse(10)").await.unwrap(), "10");
    let err = ask(&host, "faulty", "recurse(10000000)").await.unwrap_err();
    let CallError::ActorFailed { failure, .. } = err else { panic!("expected a failure") };
    assert_eq!(failure.kind, FailureKind::StackOverflow);
    assert_eq!(ask(&host, "faulty", "ping()").await.unwrap(), "1");
}

#[tokio::test]
async fn a_started_actor_takes_messages_before_its_init_has_run() {
    let host = support::host();
    let entry = support::define(&host, "counter");
    let starting = host.start(entry.spec("c".into())).unwrap();
    // Queued at once (this runtime has one thread: the actor's task has
    // not run yet, so `init` has not either).
    assert_eq!(starting.actor().info().status, ActorStatus::Starting);
    host.tell("c", "incr(2)").unwrap();
    let counter = starting.started().await.unwrap();
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "2");
    assert_eq!(counter.info().handled, 2);
}

#[tokio::test]
async fn a_started_actor_whose_init_fails_answers_what_was_queued_with_its_failure() {
    let host = support::host();
    let mut entry = support::define(&host, "faulty");
    entry.policy.config = vec![("fail-init".into(), "true".into())];
    let starting = host.start(entry.spec("f".into())).unwrap();
    let actor = starting.actor().clone();
    let reply = host.ask("f", "ping()", std::time::Duration::from_secs(10)).await;
    match reply.unwrap_err() {
        CallError::ActorFailed { address, failure } => {
            assert_eq!((address.as_str(), failure.kind), ("f", FailureKind::Init), "the asker learns why");
        }
        other => panic!("expected the failure of its `init`, got {other:?}"),
    }
    let err = starting.started().await.unwrap_err();
    assert!(matches!(err, troupe::SpawnError::Start { .. }), "{err:?}");
    assert_eq!(actor.info().status, ActorStatus::Failed);
    assert_eq!(actor.info().last_failure.map(|f| f.kind), Some(FailureKind::Init));
    assert!(host.lookup("f").is_err(), "the address is free again");
}

#[tokio::test]
async fn init_failure_fails_the_spawn_and_frees_the_address() {
    let host = support::host();
    let mut entry = support::define(&host, "faulty");
    entry.policy.config = vec![("fail-init".into(), "true".into())];
    let err = host.spawn(entry.spec("f".into())).await.unwrap_err();
    let troupe::SpawnError::Start { failure, .. } = &err else { panic!("expected a start failure, got {err:?}") };
    assert_eq!(failure.kind, FailureKind::Init);
    assert!(failure.detail.contains("fail-init"), "{}", failure.detail);
    assert!(host.lookup("f").is_err(), "the address is free again");
    // A panic in init is an init failure too.
    entry.policy.config = vec![("panic-init".into(), "true".into())];
    let err = host.spawn(entry.spec("f".into())).await.unwrap_err();
    let troupe::SpawnError::Start { failure, .. } = &err else { panic!("expected a start failure, got {err:?}") };
    assert_eq!(failure.kind, FailureKind::Init);
    assert!(failure.detail.starts_with("panic"), "{}", failure.detail);
}

#[tokio::test]
async fn messages_are_handled_one_at_a_time_in_order() {
    let host = support::host();
    spawn(&host, "counter", "counter", ActorLimits::default()).await;
    for i in 1..=200u64 {
        host.tell("counter", &format!("incr({i})")).unwrap();
    }
    assert_eq!(ask(&host, "counter", "get()").await.unwrap(), (200 * 201 / 2).to_string());
}

#[tokio::test]
async fn restart_from_snapshot_keeps_the_state_before_the_failed_message() {
    let host = support::host();
    let mut entry = support::define(&host, "counter");
    entry.policy.restore = troupe::RestartFrom::Snapshot;
    entry.policy.config = vec![("start".into(), "10".into())];
    let counter = host.spawn(entry.spec("c".into())).await.unwrap();
    assert_eq!(ask(&host, "c", "incr(5)").await.unwrap(), "15");
    // Overflow panics in the guest.
    let err = ask(&host, "c", &format!("incr({})", u64::MAX)).await.unwrap_err();
    let CallError::ActorFailed { failure, .. } = err else { panic!("expected a failure") };
    assert_eq!(failure.kind, FailureKind::Panic);
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "15", "restored from the last snapshot");
    assert_eq!(counter.info().restarts, 1);
}

#[tokio::test]
async fn restart_from_init_starts_over() {
    let host = support::host();
    let mut entry = support::define(&host, "counter");
    entry.policy.config = vec![("start".into(), "10".into())];
    host.spawn(entry.spec("c".into())).await.unwrap();
    assert_eq!(ask(&host, "c", "incr(5)").await.unwrap(), "15");
    ask(&host, "c", &format!("incr({})", u64::MAX)).await.unwrap_err();
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "10", "a fresh init");
}

/// A component written for some other protocol, importing nothing at all,
/// is an actor too: its exported interface is its protocol.
#[tokio::test]
async fn a_component_that_imports_nothing_is_an_actor() {
    let wat = r#"
        (component
          (core module $m
            (func (export "add") (param i32 i32) (result i32)
              local.get 0 local.get 1 i32.add))
          (core instance $i (instantiate $m))
          (func $add (param "a" u32) (param "b" u32) (result u32)
            (canon lift (core func $i "add")))
          (instance $api (export "add" (func $add)))
          (export "acme:calc/api@1.0.0" (instance $api)))
    "#;
    let bytes = wat::parse_str(wat).unwrap();
    let host = support::host();
    let component = host.load_bytes("calc", "calc.wat", bytes, None).unwrap();
    assert_eq!(component.protocol().summary(), "add(a: u32, b: u32) -> u32");
    host.spawn(troupe::ActorTemplate::new(component).spec("calc".into())).await.unwrap();
    assert_eq!(ask(&host, "calc", "add(40, 2)").await.unwrap(), "42");
    assert_eq!(ask(&host, "calc", "acme:calc/api.add(1, 2)").await.unwrap(), "3");
}

#[tokio::test]
async fn a_component_that_exports_nothing_is_refused_with_the_fix() {
    let bytes = wat::parse_str("(component (core module $m))").unwrap();
    let host = support::host();
    let err = host.load_bytes("empty", "empty.wat", bytes, None).unwrap_err();
    assert!(err.to_string().contains("exports no interface"), "{err}");
    assert!(err.to_string().contains("export my-protocol;"), "the error names the fix: {err}");
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let config = || {
        let mut engine = troupe::EngineConfig::new();
        engine.max_instances(10).cache_dir(Some(cache.path().to_path_buf()));
        troupe::HostConfig { engine, ..Default::default() }
    };
    let first = troupe::Host::new(config()).unwrap();
    first.load("counter", &support::guest("counter"), None).unwrap();
    assert_eq!(first.engine().cache_stats(), troupe::engine::CacheStats { hits: 0, misses: 1 });
    // A second host (a restart) finds the artifact instead of compiling.
    let second = troupe::Host::new(config()).unwrap();
    let component = second.load("counter", &support::guest("counter"), None).unwrap();
    assert_eq!(second.engine().cache_stats(), troupe::engine::CacheStats { hits: 1, misses: 0 });
    second.spawn(troupe::ActorTemplate::new(component).spec("c".into())).await.unwrap();
    assert_eq!(ask(&second, "c", "incr(3)").await.unwrap(), "3", "the cached code runs");
}

/// Envelopes are plain data once they leave the host: serialize one, parse
/// it back against the receiver's protocol, and get the same typed values.
#[tokio::test]
async fn envelopes_serialize_independently_of_where_the_actor_runs() {
    let host = support::host();
    let component = support::define(&host, "chat-member").component;
    let protocol = component.protocol();
    let call = protocol.parse(r#"deliver("ada", "hi \"there\"")"#, 1 << 20).unwrap();
    let envelope = troupe::message::Envelope::tell(call.clone(), Some("room".into()));
    let wire = envelope.to_wire(&"room/bob".into(), protocol);
    assert_eq!(wire.message, r#"example:chat/member@0.1.0.deliver("ada", "hi \"there\"")"#);
    let json = serde_json::to_string(&wire).unwrap();
    let back: troupe::message::WireMessage = serde_json::from_str(&json).unwrap();
    assert_eq!(back, wire);
    let reparsed = protocol.parse(&back.message, 1 << 20).unwrap();
    assert_eq!((reparsed.func, reparsed.args), (call.func, call.args));
}

#[tokio::test]
async fn an_ask_without_a_timeout_waits_for_a_slow_message_and_ends_with_the_actors_failure_or_stop() {
    let host = support::host();
    // A slow message is throttled once it is long-running, and its deadline
    // counts the pauses: give it room.
    let limits = ActorLimits { deadline: std::time::Duration::from_secs(30), ..ActorLimits::default() };
    let actor = spawn(&host, "faulty", "f", limits).await;
    let ask_untimed = |message: &str| {
        let call = actor.parse(message).unwrap();
        actor.ask(call, None, None, troupe::NO_TIMEOUT)
    };
    let slow = ask_untimed("work(100)").await.unwrap();
    assert_eq!(slow, Some(wasmtime::component::Val::U32(100)));
    let failed = ask_untimed("panic(\"boom\")").await.unwrap_err();
    assert!(matches!(failed, CallError::ActorFailed { ref failure, .. } if failure.kind == FailureKind::Panic));
    // Queued behind a slow message when the actor stops: answered, not left waiting.
    let call = actor.parse("ping()").unwrap();
    actor.tell(actor.parse("work(100)").unwrap(), None).unwrap();
    let queued = tokio::spawn({
        let actor = actor.clone();
        async move { actor.ask(call, None, None, troupe::NO_TIMEOUT).await }
    });
    tokio::task::yield_now().await;
    host.stop("f").await.unwrap();
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), queued).await.unwrap().unwrap();
    assert!(matches!(outcome, Err(CallError::Stopped(_))), "{outcome:?}");
}
