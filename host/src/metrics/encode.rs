//! A scrape in the Prometheus text format, through prometheus-client: a
//! registry made for the scrape, with one collector that writes what the
//! scrape read. Counters are named without `_total`: the encoder adds it.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{Scrape, kind_label};
use crate::actor::{FailureKind, Tallies};
use crate::histogram::HistogramSnapshot;

/// `scrape` as Prometheus text.
pub(super) fn text(scrape: Scrape) -> String {
    let mut registry = Registry::with_prefix("troupe");
    registry.register_collector(Box::new(ScrapeCollector(scrape)));
    let mut text = String::new();
    // Writing to a `String` does not fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
    text
}

#[derive(Debug)]
struct ScrapeCollector(Scrape);

type Result = std::result::Result<(), std::fmt::Error>;

/// Where an outcome of `troupe_messages_total` is counted.
type Count = fn(&Tallies) -> u64;

/// The outcomes of `troupe_messages_total`, and where each is counted.
const OUTCOMES: [(&str, Count); 3] =
    [("handled", |t| t.handled), ("failed", |t| t.failed_messages), ("refused", |t| t.refused)];

/// Labels: `(name, value)` pairs.
type Labels<'a> = Vec<(&'static str, &'a str)>;

impl Collector for ScrapeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result {
        let e = &mut encoder;
        let s = &self.0;
        let rows = || s.components.iter().map(|(name, row)| (name.as_str(), row));

        let by_outcome = rows().flat_map(|(name, row)| {
            OUTCOMES.iter().map(move |(outcome, count)| {
                (vec![("component", name), ("outcome", *outcome)], count(&row.totals.tallies))
            })
        });
        family(e, "messages", "Messages by outcome.", MetricType::Counter, by_outcome)?;
        let handling = rows().map(|(name, row)| (of(name), &row.totals.tallies.handling));
        histograms(
            e,
            "message_handling_seconds",
            "Time handling a message, from the call into the guest to its end.",
            handling,
        )?;
        let waits = rows().map(|(name, row)| (of(name), &row.totals.tallies.mailbox_wait));
        histograms(e, "mailbox_wait_seconds", "Time an ask waited in the mailbox before its handling began.", waits)?;
        let depth = rows().map(|(name, row)| (of(name), row.mailbox));
        family(e, "mailbox_depth", "Messages waiting in the mailboxes of live actors.", MetricType::Gauge, depth)?;
        family(e, "actors", "Live actors.", MetricType::Gauge, rows().map(|(name, row)| (of(name), row.live)))?;
        let restarts = rows().map(|(name, row)| (of(name), row.totals.tallies.restarts));
        family(e, "restarts", "Incarnations started after a failure.", MetricType::Counter, restarts)?;
        let failures = rows().flat_map(|(name, row)| {
            FailureKind::ALL
                .iter()
                .zip(row.totals.tallies.failures_by_kind)
                .map(move |(kind, count)| (vec![("component", name), ("kind", kind_label(*kind))], count))
        });
        family(e, "failures", "Failures by kind, starts included.", MetricType::Counter, failures)?;
        let fuel = rows().map(|(name, row)| (of(name), row.totals.tallies.fuel_used));
        family(e, "fuel_used", "Fuel burnt by messages.", MetricType::Counter, fuel)?;
        let memory = rows().map(|(name, row)| (of(name), row.memory));
        family(e, "memory_bytes", "Linear memory of live actors.", MetricType::Gauge, memory)?;
        let activations = rows().map(|(name, row)| (of(name), row.totals.activations));
        let help = "Actors started at an address: spawns and activated keys.";
        family(e, "activations", help, MetricType::Counter, activations)?;
        let passivations = rows().map(|(name, row)| (of(name), row.totals.passivations));
        let help = "Keys of a virtual component that left the host idle.";
        family(e, "passivations", help, MetricType::Counter, passivations)?;
        let swaps = rows().map(|(name, row)| (of(name), row.totals.swaps));
        family(e, "swaps", "Code changes of actors: hot swaps and their rollbacks.", MetricType::Counter, swaps)?;

        let by_outcome = s.actors.iter().flat_map(|a| {
            OUTCOMES.iter().map(move |(outcome, count)| {
                let mut labels = actor(a);
                labels.push(("outcome", *outcome));
                (labels, count(&a.tallies))
            })
        });
        family(e, "actor_messages", "A live actor's messages by outcome.", MetricType::Counter, by_outcome)?;
        let depth = s.actors.iter().map(|a| (actor(a), a.mailbox));
        family(e, "actor_mailbox_depth", "Messages waiting in a live actor's mailbox.", MetricType::Gauge, depth)?;
        let restarts = s.actors.iter().map(|a| (actor(a), a.tallies.restarts));
        family(e, "actor_restarts", "A live actor's restarts.", MetricType::Counter, restarts)?;
        let failures = s.actors.iter().map(|a| (actor(a), a.tallies.failures_by_kind.iter().sum()));
        family(e, "actor_failures", "A live actor's failures, starts included.", MetricType::Counter, failures)?;
        let fuel = s.actors.iter().map(|a| (actor(a), a.tallies.fuel_used));
        family(e, "actor_fuel_used", "Fuel burnt by a live actor's messages.", MetricType::Counter, fuel)?;
        let memory = s.actors.iter().map(|a| (actor(a), a.memory));
        family(e, "actor_memory_bytes", "A live actor's linear memory.", MetricType::Gauge, memory)?;
        let breakers = || {
            s.actors.iter().flat_map(|a| {
                a.breakers.iter().flat_map(move |(kind, b)| {
                    b.entered.iter().map(move |(state, changes)| {
                        let mut labels = actor(a);
                        labels.extend([("kind", *kind), ("dependency", b.dependency.as_str()), ("state", *state)]);
                        (labels, u64::from(b.state == *state), *changes)
                    })
                })
            })
        };
        let state = breakers().map(|(labels, is, _)| (labels, is));
        let help = "A live actor's circuit breaker: 1 for the state it is in, 0 for the others.";
        family(e, "actor_breaker_state", help, MetricType::Gauge, state)?;
        let changes = breakers().map(|(labels, _, changes)| (labels, changes));
        let help = "Changes of a live actor's circuit breaker, by the state entered.";
        family(e, "actor_breaker_changes", help, MetricType::Counter, changes)?;

        let dead = s.dead_letters.iter().map(|(reason, count)| (vec![("reason", *reason)], *count));
        let help = "Messages not delivered or not handled, by reason.";
        family(e, "dead_letters", help, MetricType::Counter, dead)?;
        if let Some(commits) = &s.store_commits {
            let help = "Time of the store's commits (each one fsync'd transaction).";
            let mut m = e.encode_descriptor("store_commit_seconds", help, None, MetricType::Histogram)?;
            m.encode_histogram::<NoLabelSet>(commits.sum_seconds(), commits.count(), &commits.buckets(), None)?;
        }
        Ok(())
    }
}

/// The labels of a component's sample.
fn of(component: &str) -> Labels<'_> {
    vec![("component", component)]
}

/// The labels of a live actor's sample.
fn actor(a: &super::ActorRow) -> Labels<'_> {
    vec![("actor", a.address.as_str()), ("component", a.component.as_str())]
}

/// A counter or gauge family `name`, one sample per row.
fn family<'a>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: impl IntoIterator<Item = (Labels<'a>, u64)>,
) -> Result {
    let counter = matches!(kind, MetricType::Counter);
    let mut m = e.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in rows {
        let mut sample = m.encode_family(&labels)?;
        if counter {
            sample.encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        } else {
            sample.encode_gauge(&value)?;
        }
    }
    Ok(())
}

/// A histogram family `name`, one histogram per row.
fn histograms<'a, 'h>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels<'a>, &'h HistogramSnapshot)>,
) -> Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, h) in rows {
        m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(h.sum_seconds(), h.count(), &h.buckets(), None)?;
    }
    Ok(())
}
