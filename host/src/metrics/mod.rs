//! The host's metrics, in the Prometheus text format: what the gateway
//! serves at `GET /metrics` ([`Host::metrics`]).
//!
//! # The series
//!
//! Every name starts with `troupe_`. Per component (label `component`):
//!
//! | series | type | what |
//! |--------|------|------|
//! | `troupe_messages_total{component, outcome}` | counter | messages by outcome: `handled` (the function returned), `failed` (the actor failed on it), `refused` (its mailbox was full; nothing was queued) |
//! | `troupe_message_handling_seconds{component}` | histogram | how long handling a message took, from the start of the call into the guest to its end (timed hosts only, see below) |
//! | `troupe_mailbox_wait_seconds{component}` | histogram | how long an ask waited in the mailbox before its handling began (timed hosts only; tells are not timed) |
//! | `troupe_mailbox_depth{component}` | gauge | messages waiting in the mailboxes of its live actors |
//! | `troupe_actors{component}` | gauge | its live actors (running, restarting, hibernating) |
//! | `troupe_restarts_total{component}` | counter | incarnations started after a failure |
//! | `troupe_failures_total{component, kind}` | counter | failures, by [`FailureKind`] (its WIT names: `out-of-fuel`, `deadline`, `panic`, ...), starts included |
//! | `troupe_fuel_used_total{component}` | counter | fuel its messages burnt (0 without a fuel budget) |
//! | `troupe_memory_bytes{component}` | gauge | linear memory of its live actors |
//! | `troupe_activations_total{component}` | counter | actors started at an address: spawns, and keys of a virtual component activated |
//! | `troupe_passivations_total{component}` | counter | keys of a virtual component that left the host idle |
//! | `troupe_swaps_total{component}` | counter | code changes of its actors: hot swaps, and their rollbacks |
//!
//! Per live actor (labels `actor`, `component`): `troupe_actor_messages_total`
//! (with `outcome`), `troupe_actor_mailbox_depth`,
//! `troupe_actor_restarts_total`, `troupe_actor_failures_total`,
//! `troupe_actor_fuel_used_total` and `troupe_actor_memory_bytes`, each
//! as its component's series. An actor's series are gone from the first
//! scrape after it stopped or passivated; what it counted stays in its
//! component's.
//!
//! Per circuit breaker of a live actor (labels `actor`, `component`,
//! `kind`: `binding` or `http`, and `dependency`: the imported interface
//! or the URL pattern): `troupe_actor_breaker_state` (with `state`:
//! `closed`, `open`, `half-open`; 1 for the state it is in, 0 for the
//! others, as of its last call) and `troupe_actor_breaker_changes_total`
//! (with `state`: the changes into that state). A breaker is shared by the
//! actors of one manifest entry: each of them shows it, so do not add
//! these up across actors.
//!
//! For the host: `troupe_dead_letters_total{reason}` (`failed`,
//! `stopped`, `mailbox-full`, `unknown-address`: see
//! [`DeadLetterReason`]) and, once a store is open,
//! `troupe_store_commit_seconds`, a histogram of the store's commits
//! (each one fsync'd transaction, however many actors' writes it takes).
//!
//! # What it costs
//!
//! The counters are the ones each actor keeps anyway (`troupe ps` shows
//! them): a scrape reads them, under the registry's lock, so that each
//! actor is counted once, live or gone. Nothing is added to the message
//! path for them.
//!
//! The two histograms of messages need a clock reading at each end of a
//! message, which costs about as much as a small handler takes: they are
//! kept only on a host built with [`HostConfig::time_messages`](crate::HostConfig::time_messages)
//! (`troupe run --http` turns it on). Observing is two relaxed atomic
//! adds into the actor's own histogram, with no lock. Mailbox waits are
//! measured on asks, whose envelope has room for a timestamp; a tell
//! carries none.

mod encode;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::actor::binding::BreakerReading;
use crate::actor::{ActorRef, FailureKind, Tallies};
pub use crate::histogram::{BOUNDS, Histogram, HistogramSnapshot};
use crate::host::Host;
use crate::message::DeadLetterReason;

/// The content type of [`Host::metrics`]' text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every dead-letter reason, in the order of [`DeadLetters`]' counts.
const REASONS: [DeadLetterReason; 4] = [
    DeadLetterReason::Failed,
    DeadLetterReason::Stopped,
    DeadLetterReason::MailboxFull,
    DeadLetterReason::UnknownAddress,
];

/// A reason's label: its JSON name.
fn reason_label(reason: DeadLetterReason) -> &'static str {
    match reason {
        DeadLetterReason::Failed => "failed",
        DeadLetterReason::Stopped => "stopped",
        DeadLetterReason::MailboxFull => "mailbox-full",
        DeadLetterReason::UnknownAddress => "unknown-address",
    }
}

/// The host's dead letters, by reason.
#[derive(Debug, Default)]
pub(crate) struct DeadLetters {
    counts: [AtomicU64; REASONS.len()],
}

impl DeadLetters {
    /// Counts one; returns how many there have been in all.
    pub fn add(&self, reason: DeadLetterReason) -> u64 {
        let at = REASONS.iter().position(|r| *r == reason).unwrap_or_default();
        self.counts[at].fetch_add(1, Ordering::Relaxed);
        self.total()
    }

    /// How many there have been in all.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn by_reason(&self) -> Vec<(&'static str, u64)> {
        REASONS.iter().zip(&self.counts).map(|(r, c)| (reason_label(*r), c.load(Ordering::Relaxed))).collect()
    }
}

/// What a component's actors counted, those gone and (in a scrape) those
/// live.
#[derive(Debug, Clone, Default)]
struct ComponentTotals {
    tallies: Tallies,
    swaps: u64,
    activations: u64,
    passivations: u64,
}

impl ComponentTotals {
    /// Adds an actor's counters.
    fn add(&mut self, tallies: &Tallies, swaps: u64) {
        let t = &mut self.tallies;
        t.handled += tallies.handled;
        t.failed_messages += tallies.failed_messages;
        t.refused += tallies.refused;
        t.restarts += tallies.restarts;
        t.fuel_used += tallies.fuel_used;
        for (total, n) in t.failures_by_kind.iter_mut().zip(tallies.failures_by_kind) {
            *total += n;
        }
        t.handling.merge(&tallies.handling);
        t.mailbox_wait.merge(&tallies.mailbox_wait);
        self.swaps += swaps;
    }
}

/// What the actors that came and went counted, per component: kept by
/// the registry as addresses are claimed and released.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    components: BTreeMap<String, ComponentTotals>,
}

impl Tally {
    /// `actor` claimed its address.
    pub fn arrived(&mut self, actor: &ActorRef) {
        self.components.entry(actor.component().name.clone()).or_default().activations += 1;
    }

    /// `actor` released its address (stopped, or passivated): its
    /// counters join its component's.
    pub fn departed(&mut self, actor: &ActorRef) {
        let (tallies, swaps) = actor.tallies();
        let totals = self.components.entry(actor.component().name.clone()).or_default();
        totals.add(&tallies, swaps);
        if actor.is_passivated() {
            totals.passivations += 1;
        }
    }
}

/// One live actor, as a scrape saw it.
#[derive(Debug)]
struct ActorRow {
    address: String,
    component: String,
    tallies: Tallies,
    mailbox: u64,
    memory: u64,
    /// Its breakers, each with its kind (`binding` or `http`).
    breakers: Vec<(&'static str, BreakerReading)>,
}

/// One component, as a scrape saw it.
#[derive(Debug, Default)]
struct ComponentRow {
    totals: ComponentTotals,
    live: u64,
    mailbox: u64,
    memory: u64,
}

/// Everything one scrape reports, read at one moment.
#[derive(Debug, Default)]
struct Scrape {
    components: BTreeMap<String, ComponentRow>,
    actors: Vec<ActorRow>,
    dead_letters: Vec<(&'static str, u64)>,
    store_commits: Option<HistogramSnapshot>,
}

/// The host's metrics as Prometheus text (see the module docs).
pub(crate) fn render(host: &Host, dead_letters: &DeadLetters, store_commits: Option<HistogramSnapshot>) -> String {
    let mut scrape = host.registry().read_with_tally(|live, tally| {
        let mut scrape = Scrape::default();
        for (name, totals) in &tally.components {
            scrape.components.insert(name.clone(), ComponentRow { totals: totals.clone(), ..ComponentRow::default() });
        }
        for actor in live {
            let (tallies, swaps) = actor.tallies();
            let info = actor.info();
            let row = scrape.components.entry(info.component.clone()).or_default();
            row.totals.add(&tallies, swaps);
            row.live += 1;
            row.mailbox += info.mailbox as u64;
            row.memory += info.memory;
            scrape.actors.push(ActorRow {
                address: info.address.to_string(),
                component: info.component,
                tallies,
                mailbox: info.mailbox as u64,
                memory: info.memory,
                breakers: actor.breaker_readings(),
            });
        }
        scrape
    });
    scrape.actors.sort_by(|a, b| a.address.cmp(&b.address));
    scrape.dead_letters = dead_letters.by_reason();
    scrape.store_commits = store_commits;
    encode::text(scrape)
}

/// A failure kind's label.
fn kind_label(kind: FailureKind) -> &'static str {
    kind.wit_name()
}
