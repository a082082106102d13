//! Batch delivery: a run of tells to one function goes into the guest in
//! one call, and every message keeps the outcome it would have had alone.
//!
//! The tests run on tokio's current-thread runtime: tells sent without an
//! `.await` between them are all queued before the actor's task runs, so
//! the run the actor finds is known.

use std::path::{Path, PathBuf};

use troupe::{ActorLimits, ActorTemplate, FailureKind};

use crate::support::{self, ask, component_from_wit, spawn};

/// A host that batches tells with string and list arguments too
/// (`BatchDelivery::All`), through the adapter's own memory.
fn host_with_memory_entries() -> troupe::Host {
    support::host_batching(troupe::BatchDelivery::All)
}

#[tokio::test]
async fn queued_tells_to_one_function_are_handled_in_order_several_per_call() {
    let host = support::host();
    let counter = spawn(&host, "counter", "c", ActorLimits::default()).await;
    for by in 1..=40 {
        host.tell("c", &format!("incr({by})")).unwrap();
    }
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), (1..=40u64).sum::<u64>().to_string());
    let info = counter.info();
    assert_eq!(info.handled, 41);
    assert!(info.batched >= 30, "most of the 40 tells went in batches: {info:?}");
}

#[tokio::test]
async fn a_failing_message_in_a_run_fails_alone_and_the_rest_reach_the_next_incarnation() {
    let host = support::host();
    let faulty = spawn(&host, "faulty", "f", ActorLimits::default()).await;
    for _ in 0..3 {
        host.tell("f", "ping()").unwrap();
    }
    host.tell("f", "recurse(100000000)").unwrap();
    for _ in 0..2 {
        host.tell("f", "ping()").unwrap();
    }
    // The three pings before the overflow were handled by the first
    // incarnation; the two after it, and this ask, by the second.
    assert_eq!(ask(&host, "f", "ping()").await.unwrap(), "3");
    let info = faulty.info();
    assert_eq!((info.failures, info.restarts), (1, 1));
    assert_eq!(info.last_failure.map(|f| f.kind), Some(FailureKind::StackOverflow));
    assert_eq!(info.handled, 6);
    assert_eq!(info.batched, 5, "both runs went in one call each");
    assert_eq!(host.dead_letters(), 1, "only the failed message is a dead letter");
}

#[tokio::test]
async fn a_runaway_in_a_run_hits_its_own_deadline_and_the_rest_are_delivered_after_the_restart() {
    let host = support::host();
    let limits = ActorLimits { deadline: std::time::Duration::from_millis(30), ..ActorLimits::default() };
    let faulty = spawn(&host, "faulty", "f", limits).await;
    for message in ["ping()", "ping()", "spin()", "ping()", "ping()"] {
        host.tell("f", message).unwrap();
    }
    assert_eq!(ask(&host, "f", "ping()").await.unwrap(), "3");
    let info = faulty.info();
    assert_eq!(info.last_failure.map(|f| f.kind), Some(FailureKind::Deadline));
    assert_eq!((info.failures, info.handled, info.batched), (1, 5, 4));
}

#[tokio::test]
async fn each_message_of_a_run_has_a_fuel_budget_of_its_own_and_all_fuel_is_counted() {
    let host = support::host();
    let probe =
        spawn(&host, "faulty", "measure", ActorLimits { fuel: Some(50_000_000), ..ActorLimits::default() }).await;
    // The second message's fuel: the first also pays one-time costs.
    ask(&host, "measure", "recurse(2000)").await.unwrap();
    let first = probe.info().fuel_used;
    ask(&host, "measure", "recurse(2000)").await.unwrap();
    let one = probe.info().fuel_used - first;
    assert!(one > 0);
    // Room for one and a half messages: a run sharing one budget would
    // run out of fuel in its second message.
    let limits = ActorLimits { fuel: Some(one * 3 / 2), ..ActorLimits::default() };
    let faulty = spawn(&host, "faulty", "f", limits).await;
    for _ in 0..5 {
        host.tell("f", "recurse(2000)").unwrap();
    }
    assert_eq!(ask(&host, "f", "ping()").await.unwrap(), "1");
    let info = faulty.info();
    assert_eq!((info.failures, info.handled, info.batched), (0, 6, 5));
    assert!(info.fuel_used >= 5 * one, "fuel of every message counted: {} < 5 x {one}", info.fuel_used);
}

#[tokio::test]
async fn a_stop_waits_for_the_message_in_progress_not_for_the_rest_of_its_run() {
    let host = support::host();
    let limits = ActorLimits { deadline: std::time::Duration::from_secs(30), ..ActorLimits::default() };
    let faulty = spawn(&host, "faulty", "f", limits).await;
    // Each message keeps the CPU busy for a good while.
    for _ in 0..5 {
        host.tell("f", "work(40)").unwrap();
    }
    let stopper = {
        let faulty = faulty.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            faulty.stop();
        })
    };
    faulty.stopped().await;
    stopper.join().unwrap();
    let info = faulty.info();
    assert!(info.handled < 5, "the stop ended the run: {info:?}");
    assert_eq!(
        host.dead_letters(),
        5 - info.handled,
        "the rest are dead letters, as queued messages of a stopped actor"
    );
}

#[tokio::test]
async fn interleaved_tells_to_several_functions_share_calls_through_the_mixed_entry_point() {
    let host = support::host();
    let counter = spawn(&host, "counter", "c", ActorLimits::default()).await;
    // Each function's own entry point would take one message at a time.
    for message in ["incr(5)", "reset()", "incr(2)", "get()", "incr(3)", "reset()", "incr(7)"] {
        host.tell("c", message).unwrap();
    }
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "7");
    let info = counter.info();
    assert_eq!((info.handled, info.batched), (8, 7), "{info:?}");
}

/// A component summing numbers that arrive as `f32`, `s8`, `f64` and
/// `u64`: the mixed entry point carries them all in one place per
/// message, as the canonical ABI's join of their types (`i64`).
const SUM: &str = r#"(component
  (core module $m
    (global $sum (mut f64) (f64.const 0))
    (func (export "add-f32") (param f32)
      (global.set $sum (f64.add (global.get $sum) (f64.promote_f32 (local.get 0)))))
    (func (export "add-s8") (param i32)
      (global.set $sum (f64.add (global.get $sum) (f64.convert_i32_s (local.get 0)))))
    (func (export "add-f64") (param f64)
      (global.set $sum (f64.add (global.get $sum) (local.get 0))))
    (func (export "add-u64") (param i64)
      (global.set $sum (f64.add (global.get $sum) (f64.convert_i64_u (local.get 0)))))
    (func (export "total") (result f64) (global.get $sum)))
  (core instance $i (instantiate $m))
  (func $add-f32 (param "x" f32) (canon lift (core func $i "add-f32")))
  (func $add-s8 (param "x" s8) (canon lift (core func $i "add-s8")))
  (func $add-f64 (param "x" f64) (canon lift (core func $i "add-f64")))
  (func $add-u64 (param "x" u64) (canon lift (core func $i "add-u64")))
  (func $total (result f64) (canon lift (core func $i "total")))
  (instance $api
    (export "add-f32" (func $add-f32))
    (export "add-s8" (func $add-s8))
    (export "add-f64" (func $add-f64))
    (export "add-u64" (func $add-u64))
    (export "total" (func $total)))
  (export "acme:sum/api" (instance $api)))"#;

#[tokio::test]
async fn arguments_of_different_types_survive_the_mixed_entry_point_exactly() {
    let host = support::host();
    let sum = support::spawn_bytes(&host, wat::parse_str(SUM).unwrap(), "sum").await;
    let messages = [
        "add-f32(1.5)",
        "add-s8(-3)",
        "add-f64(0.25)",
        "add-u64(10)",
        "add-f32(-0.5)",
        "add-s8(127)",
        "add-f64(-1e-3)",
    ];
    for message in messages {
        host.tell("sum", message).unwrap();
    }
    let expected = 1.5f64 - 3.0 + 0.25 + 10.0 - 0.5 + 127.0 - 1e-3;
    assert_eq!(ask(&host, "sum", "total()").await.unwrap(), expected.to_string());
    assert_eq!(sum.info().batched, messages.len() as u64, "all in one call");
}

#[tokio::test]
async fn runs_end_where_a_snapshot_is_due_so_a_restart_finds_the_state_it_would_have() {
    let host = support::host();
    let mut entry = support::define(&host, "counter");
    entry.policy.restore = troupe::RestartFrom::Snapshot;
    entry.policy.snapshot_every = Some(4);
    let counter = host.spawn(entry.spec("c".into())).await.unwrap();
    let faulty = spawn(&host, "faulty", "f", ActorLimits::default()).await;
    faulty.link(&counter);
    for _ in 0..10 {
        host.tell("c", "incr(1)").unwrap();
    }
    // Snapshots after the 4th and 8th messages; the 9th, 10th and this
    // ask are not in one.
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "10");
    assert_eq!(counter.info().batched, 10);
    // The linked actor's failure fails the counter, which restarts from
    // its last snapshot.
    ask(&host, "f", r#"panic("x")"#).await.unwrap_err();
    for _ in 0..500 {
        if counter.info().restarts == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(counter.info().restarts, 1);
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "8");
}

#[tokio::test]
async fn with_batch_delivery_off_every_message_is_a_call_of_its_own() {
    let host = support::host_batching(troupe::BatchDelivery::Off);
    let counter = spawn(&host, "counter", "c", ActorLimits::default()).await;
    for _ in 0..20 {
        host.tell("c", "incr(1)").unwrap();
    }
    assert_eq!(ask(&host, "c", "get()").await.unwrap(), "20");
    assert_eq!((counter.info().handled, counter.info().batched), (21, 0));
}

#[tokio::test]
async fn tells_with_string_arguments_go_several_per_call_through_the_adapters_memory() {
    let host = host_with_memory_entries();
    let mut entry = support::define(&host, "chat-member");
    entry.policy.config = vec![("name".into(), "m".into()), ("room".into(), "nowhere".into())];
    let member = host.spawn(entry.spec("m".into())).await.unwrap();
    for i in 0..20 {
        host.tell("m", &format!(r#"deliver("sender {i}", "text {i} ünïcode")"#)).unwrap();
    }
    let expected: Vec<String> =
        (0..20).map(|i| format!(r#"{{sender: "sender {i}", text: "text {i} ünïcode"}}"#)).collect();
    assert_eq!(ask(&host, "m", "inbox()").await.unwrap(), format!("[{}]", expected.join(", ")));
    assert_eq!(member.info().batched, 20);
}

#[tokio::test]
async fn results_that_come_back_through_memory_are_dropped_cleanly() {
    let host = host_with_memory_entries();
    let faulty = spawn(&host, "faulty", "f", ActorLimits::default()).await;
    for i in 0..10 {
        // `echo` returns a string: the adapter takes it into its memory.
        host.tell("f", &format!(r#"echo("{}")"#, "x".repeat(i * 1000))).unwrap();
    }
    assert_eq!(ask(&host, "f", "ping()").await.unwrap(), "1");
    let info = faulty.info();
    assert_eq!((info.failures, info.batched), (0, 10), "{info:?}");
}

#[tokio::test]
async fn a_message_put_back_after_a_failure_keeps_its_string_arguments() {
    let host = host_with_memory_entries();
    let faulty = spawn(&host, "faulty", "f", ActorLimits::default()).await;
    host.tell("f", r#"panic("first")"#).unwrap();
    host.tell("f", r#"panic("second")"#).unwrap();
    // The first panic fails alone; the second reaches the next
    // incarnation, with its argument, and fails there.
    assert_eq!(ask(&host, "f", "ping()").await.unwrap(), "1");
    let info = faulty.info();
    assert_eq!((info.failures, info.restarts), (2, 2));
    // A message without its argument would fail differently: it would
    // not even type-check into the call.
    assert_eq!(info.last_failure.unwrap().kind, FailureKind::Panic);
    assert_eq!(host.dead_letters(), 2);
}

#[tokio::test]
async fn by_default_tells_with_string_arguments_are_a_call_each() {
    let host = support::host();
    let faulty = spawn(&host, "faulty", "f", ActorLimits::default()).await;
    for _ in 0..10 {
        host.tell("f", r#"echo("x")"#).unwrap();
    }
    assert_eq!(ask(&host, "f", "ping()").await.unwrap(), "1");
    assert_eq!((faulty.info().handled, faulty.info().batched), (11, 0));
}

/// What the summing test modules below share: a memory, the running sum,
/// and a bump allocator for the strings the host copies in.
const SUMMING_MODULE: &str = r#"(memory (export "memory") 1)
  (global $sum (mut i32) (i32.const 0))
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))"#;

#[tokio::test]
async fn a_record_with_a_string_and_an_enum_arrives_field_by_field_through_memory() {
    // `set` adds up what it received: `x`, 1000 per `tag`, 100 per byte
    // of `name`, 10 per byte of `label`.
    let component = component_from_wit(
        "package acme:x@0.1.0;
         interface api {
           enum tag { a, b }
           record point { name: string, x: u32, tag: tag }
           set: func(p: point, label: string);
           total: func() -> u32;
         }
         world w { export api; }",
        r#"(module
             {SUMMING_MODULE}
             (func (export "acme:x/api@0.1.0#set")
               (param $name i32) (param $name-len i32) (param $x i32) (param $tag i32)
               (param $label i32) (param $label-len i32)
               (global.set $sum (i32.add (global.get $sum)
                 (i32.add (i32.add (local.get $x) (i32.mul (local.get $tag) (i32.const 1000)))
                   (i32.add (i32.mul (local.get $name-len) (i32.const 100))
                            (i32.mul (local.get $label-len) (i32.const 10)))))))
             (func (export "acme:x/api@0.1.0#total") (result i32) (global.get $sum)))"#
            .replace("{SUMMING_MODULE}", SUMMING_MODULE),
    );
    let host = host_with_memory_entries();
    let actor = support::spawn_bytes(&host, component, "s").await;
    host.tell("s", r#"set({name: "ab", x: 5, tag: b}, "xyz")"#).unwrap();
    host.tell("s", r#"set({name: "abcd", x: 7, tag: a}, "")"#).unwrap();
    assert_eq!(ask(&host, "s", "total()").await.unwrap(), (5 + 1000 + 200 + 30 + 7 + 400).to_string());
    assert_eq!(actor.info().batched, 2);
}

#[tokio::test]
async fn options_results_and_variants_arrive_through_memory_as_the_canonical_abi_joins_them() {
    // `set` adds up: for `opt`, its case and 10 per byte; for `res`, 100
    // for an error, 1000 per unit of an ok value; for `v`, 10000 per case,
    // 100000 per unit of `b`, a million per unit of `a` (an f32 that
    // travels in the low half of an i64).
    let component = component_from_wit(
        "package acme:x@0.1.0;
         interface api {
           variant v { a(f32), b(u64), c }
           set: func(opt: option<string>, res: result<u32, f32>, v: v);
           total: func() -> u32;
         }
         world w { export api; }",
        r#"(module
             {SUMMING_MODULE}
             (func $add (param i32) (global.set $sum (i32.add (global.get $sum) (local.get 0))))
             (func (export "acme:x/api@0.1.0#set")
               (param $opt i32) (param $ptr i32) (param $len i32)
               (param $res i32) (param $res-payload i32)
               (param $v i32) (param $v-payload i64)
               (call $add (i32.add (local.get $opt) (i32.mul (local.get $len) (i32.const 10))))
               (if (i32.eqz (local.get $res))
                 (then (call $add (i32.mul (local.get $res-payload) (i32.const 1000))))
                 (else (call $add (i32.const 100))))
               (call $add (i32.mul (local.get $v) (i32.const 10000)))
               (if (i32.eq (local.get $v) (i32.const 0))
                 (then (call $add (i32.mul (i32.trunc_f32_s (f32.reinterpret_i32 (i32.wrap_i64 (local.get $v-payload))))
                                           (i32.const 1000000)))))
               (if (i32.eq (local.get $v) (i32.const 1))
                 (then (call $add (i32.mul (i32.wrap_i64 (local.get $v-payload)) (i32.const 100000))))))
             (func (export "acme:x/api@0.1.0#total") (result i32) (global.get $sum)))"#
            .replace("{SUMMING_MODULE}", SUMMING_MODULE),
    );
    let host = host_with_memory_entries();
    let actor = support::spawn_bytes(&host, component, "s").await;
    host.tell("s", r#"set(some("abc"), ok(7), a(2.5))"#).unwrap();
    host.tell("s", r#"set(none, err(1.5), b(3))"#).unwrap();
    host.tell("s", r#"set(none, ok(0), c)"#).unwrap();
    let expected = (1 + 30 + 7000 + 2_000_000) + (100 + 10_000 + 300_000) + 20_000;
    assert_eq!(ask(&host, "s", "total()").await.unwrap(), expected.to_string());
    assert_eq!(actor.info().batched, 3);
}

#[tokio::test]
async fn a_record_of_another_interface_arrives_through_memory() {
    // `log` adds the reading's value and 10 per byte of its label.
    let component = component_from_wit(
        "package acme:x@0.1.0;
         interface types { record reading { label: string, value: u32 } }
         interface api {
           use types.{reading};
           log: func(r: reading);
           total: func() -> u32;
         }
         world w { export api; }",
        r#"(module
             {SUMMING_MODULE}
             (func (export "acme:x/api@0.1.0#log") (param $label i32) (param $len i32) (param $value i32)
               (global.set $sum (i32.add (global.get $sum)
                 (i32.add (local.get $value) (i32.mul (local.get $len) (i32.const 10))))))
             (func (export "acme:x/api@0.1.0#total") (result i32) (global.get $sum)))"#
            .replace("{SUMMING_MODULE}", SUMMING_MODULE),
    );
    let host = host_with_memory_entries();
    let actor = support::spawn_bytes(&host, component, "l").await;
    host.tell("l", r#"log({label: "abc", value: 4})"#).unwrap();
    host.tell("l", r#"log({label: "", value: 5})"#).unwrap();
    assert_eq!(ask(&host, "l", "total()").await.unwrap(), (30 + 4 + 5).to_string());
    assert_eq!(actor.info().batched, 2);
}

#[tokio::test]
async fn tells_to_getters_share_calls_and_their_results_land_in_scratch_space() {
    let host = host_with_memory_entries();
    let probe = spawn(&host, "probe", "p", ActorLimits::default()).await;
    // `remembered()` and `whoami()` return through memory; told, their
    // results are dropped. Interleaved, they go through the mixed entry.
    for message in [r#"remember("a")"#, "remembered()", "whoami()", "remembered()", r#"remember("b")"#] {
        host.tell("p", message).unwrap();
    }
    assert_eq!(ask(&host, "p", "remembered()").await.unwrap(), r#"["a", "b"]"#);
    let info = probe.info();
    assert_eq!((info.failures, info.handled, info.batched), (0, 6, 3), "{info:?}");
}

/// Functions of many argument and result types; `eight` has more flat
/// arguments than the call entry point takes, and `pick` returns an enum,
/// which it does not lift: both are called the ordinary way.
const TYPES_WIT: &str = "package acme:types@0.1.0;
    interface api {
      enum color { red, green, blue }
      flags perms { read, write, exec }
      record point { x: s32, y: f64 }
      neg: func(x: s8) -> s8;
      shift: func(x: s16) -> s16;
      half: func(x: f32) -> f32;
      twice: func(x: f64) -> f64;
      flip: func(b: bool) -> bool;
      mix: func(a: u16, b: s64, c: f32) -> s64;
      widen: func(x: u32) -> u64;
      code: func(c: color) -> u8;
      bits: func(p: perms) -> u32;
      dist: func(p: point) -> f64;
      wide: func(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64) -> u64;
      eight: func(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8, g: u8, h: u8) -> u32;
      pick: func(c: color) -> color;
      note: func(x: u32);
      last: func() -> u32;
    }
    world w { export api; }";

const TYPES_WAT: &str = r#"(module
    (global $last (mut i32) (i32.const 0))
    (func (export "acme:types/api@0.1.0#neg") (param i32) (result i32) (i32.sub (i32.const 0) (local.get 0)))
    (func (export "acme:types/api@0.1.0#shift") (param i32) (result i32) (i32.shl (local.get 0) (i32.const 8)))
    (func (export "acme:types/api@0.1.0#half") (param f32) (result f32) (f32.mul (local.get 0) (f32.const 0.5)))
    (func (export "acme:types/api@0.1.0#twice") (param f64) (result f64) (f64.add (local.get 0) (local.get 0)))
    (func (export "acme:types/api@0.1.0#flip") (param i32) (result i32) (i32.eqz (local.get 0)))
    (func (export "acme:types/api@0.1.0#mix") (param i32 i64 f32) (result i64)
      (i64.add (i64.add (i64.extend_i32_u (local.get 0)) (local.get 1)) (i64.trunc_f32_s (local.get 2))))
    (func (export "acme:types/api@0.1.0#widen") (param i32) (result i64) (i64.extend_i32_u (local.get 0)))
    (func (export "acme:types/api@0.1.0#code") (param i32) (result i32) (i32.add (local.get 0) (i32.const 10)))
    (func (export "acme:types/api@0.1.0#bits") (param i32) (result i32) (local.get 0))
    (func (export "acme:types/api@0.1.0#dist") (param i32 f64) (result f64)
      (f64.add (f64.convert_i32_s (local.get 0)) (local.get 1)))
    (func (export "acme:types/api@0.1.0#wide") (param i64 i64 i64 i64 i64 i64 i64) (result i64)
      (i64.add (local.get 0) (i64.add (local.get 1) (i64.add (local.get 2) (i64.add (local.get 3)
        (i64.add (local.get 4) (i64.add (local.get 5) (i64.mul (local.get 6) (i64.const 1000)))))))))
    (func (export "acme:types/api@0.1.0#eight") (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      (i32.add (local.get 0) (i32.add (local.get 1) (i32.add (local.get 2) (i32.add (local.get 3)
        (i32.add (local.get 4) (i32.add (local.get 5) (i32.add (local.get 6) (local.get 7)))))))))
    (func (export "acme:types/api@0.1.0#pick") (param i32) (result i32)
      (i32.rem_u (i32.add (local.get 0) (i32.const 1)) (i32.const 3)))
    (func (export "acme:types/api@0.1.0#note") (param i32) (global.set $last (local.get 0)))
    (func (export "acme:types/api@0.1.0#last") (result i32) (global.get $last)))"#;

/// Each message, and whether the call entry point serves its function.
const TYPED_MESSAGES: [(&str, bool); 17] = [
    ("neg(-128)", true),
    ("neg(5)", true),
    ("shift(385)", true),
    ("half(-3.0)", true),
    ("twice(0.1)", true),
    ("flip(false)", true),
    ("mix(65535, -70000, 2.75)", true),
    ("widen(4294967295)", true),
    ("code(blue)", true),
    ("bits({read, exec})", true),
    ("dist({x: -3, y: 0.25})", true),
    ("wide(1, 2, 3, 4, 5, 6, 7)", true),
    ("eight(1, 2, 3, 4, 5, 6, 7, 8)", false),
    ("pick(blue)", false),
    ("note(42)", true),
    ("last()", true),
    ("note(7)", true),
];

#[tokio::test]
async fn asks_of_plain_number_functions_go_through_the_typed_call_entry_point_and_answer_as_wasmtime_lifts() {
    let component = component_from_wit(TYPES_WIT, TYPES_WAT);
    let mut answers = Vec::new();
    for mode in [troupe::BatchDelivery::Off, troupe::BatchDelivery::Registers] {
        let host = support::host_batching(mode);
        let actor = support::spawn_bytes(&host, component.clone(), "types").await;
        let mut replies = Vec::new();
        for (message, _) in TYPED_MESSAGES {
            replies.push(ask(&host, "types", message).await.unwrap_or_else(|e| panic!("{message}: {e}")));
        }
        let typed = TYPED_MESSAGES.iter().filter(|(_, typed)| *typed).count() as u64;
        let expected = if mode == troupe::BatchDelivery::Off { 0 } else { typed };
        assert_eq!(actor.info().typed, expected, "{mode:?}: {:?}", actor.info());
        answers.push(replies);
    }
    // wasmtime's own lifting (batch delivery off) is the oracle.
    assert_eq!(answers[1], answers[0]);
    // Narrow integers keep their low bits, as the canonical ABI lifts them.
    assert_eq!(answers[0][..3], ["-128", "-5", "-32512"]);
    assert_eq!(answers[0][7], "4294967295");
    assert_eq!(answers[0][15], "42");
}

#[tokio::test]
async fn a_trap_behind_the_typed_call_entry_point_fails_the_message_and_the_actor_restarts() {
    let host = support::host();
    let counter = spawn(&host, "counter", "c", ActorLimits::default()).await;
    ask(&host, "c", "incr(18446744073709551615)").await.unwrap();
    // Overflow is a bug in the counter: it traps.
    let failure = ask(&host, "c", "incr(1)").await.unwrap_err();
    assert!(
        matches!(failure, troupe::CallError::ActorFailed { ref failure, .. } if failure.kind == FailureKind::Panic),
        "{failure:?}"
    );
    assert_eq!(ask(&host, "c", "incr(2)").await.unwrap(), "2", "a fresh incarnation");
    let info = counter.info();
    assert_eq!((info.restarts, info.typed), (1, 2), "{info:?}");
}

/// A host (batch delivery as by default) whose compile cache is `cache`.
fn host_with_cache(cache: &Path) -> troupe::Host {
    let mut engine = troupe::EngineConfig::new();
    engine.max_instances(20).cache_dir(Some(cache.to_path_buf()));
    troupe::Host::new(troupe::HostConfig { engine, ..Default::default() }).expect("host builds")
}

/// Spawns a counter at `c`, tells it `incr(1)` twenty times and asks for
/// its total: the answer, and how many messages went in batches and
/// through the typed call entry point.
async fn count_to_twenty(host: &troupe::Host) -> (String, u64, u64) {
    let component = host.load("counter", &support::guest("counter"), None).expect("the counter loads");
    let counter = host.spawn(ActorTemplate::new(component).spec("c".into())).await.expect("the counter starts");
    for _ in 0..20 {
        host.tell("c", "incr(1)").unwrap();
    }
    let total = ask(host, "c", "get()").await.unwrap();
    let info = counter.info();
    (total, info.batched, info.typed)
}

/// The sidecars (batch layouts) in the compile cache at `dir`.
fn sidecars(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for engine_dir in std::fs::read_dir(dir).unwrap().flatten() {
        for file in std::fs::read_dir(engine_dir.path()).into_iter().flatten().flatten() {
            if file.path().extension().is_some_and(|e| e == "sidecar") {
                found.push(file.path());
            }
        }
    }
    found
}

#[tokio::test]
async fn a_component_from_the_compile_cache_keeps_its_batch_entry_points() {
    let cache = tempfile::tempdir().unwrap();
    let compiled = count_to_twenty(&host_with_cache(cache.path())).await;
    assert!(compiled.1 > 0 && compiled.2 > 0, "batches and typed calls: {compiled:?}");
    let restarted = host_with_cache(cache.path());
    assert_eq!(count_to_twenty(&restarted).await, compiled, "the layout travelled with the cached artifact");
    assert_eq!(restarted.engine().cache_stats(), troupe::engine::CacheStats { hits: 1, misses: 0 });
}

#[tokio::test]
async fn a_component_whose_layout_is_missing_unreadable_or_lying_runs_one_call_per_message() {
    let cache = tempfile::tempdir().unwrap();
    let compiled = count_to_twenty(&host_with_cache(cache.path())).await;
    assert!(compiled.1 > 0, "{compiled:?}");
    let [sidecar] = &sidecars(cache.path())[..] else { panic!("one layout beside the one artifact") };
    let layout = std::fs::read(sidecar).unwrap();
    // The first function's entry point claims the call entry point's
    // name: an export that exists, of other types.
    let mut lying: serde_json::Value = serde_json::from_slice(&layout).unwrap();
    lying["entries"][0]["export"] = lying["call"]["export"].clone();
    let lying = serde_json::to_vec(&lying).unwrap();
    let cases: [(&str, Option<&[u8]>); 4] = [
        ("missing", None),
        ("unreadable", Some(b"{not json")),
        ("of another version", Some(br#"{"version": 99}"#)),
        ("lying about an export", Some(&lying)),
    ];
    for (what, contents) in cases {
        match contents {
            Some(contents) => std::fs::write(sidecar, contents).unwrap(),
            None => std::fs::remove_file(sidecar).unwrap(),
        }
        let host = host_with_cache(cache.path());
        assert_eq!(count_to_twenty(&host).await, ("20".to_string(), 0, 0), "a layout {what}");
        assert_eq!(host.engine().cache_stats().hits, 1, "a layout {what}: the artifact came from the cache");
    }
}
