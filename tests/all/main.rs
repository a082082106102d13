//! The troupe integration suite: one binary, one module per concern.
//! Every test runs real guests compiled from `examples-guests/` (built on
//! first use by `support::guest`) or tiny components built in the test.

mod support;

mod actors;
mod batching;
mod bindings;
mod cli;
mod cluster;
mod cluster_store;
mod dashboard;
mod durable;
mod durable_crashes;
mod durable_effects;
mod durable_journal;
mod durable_model;
mod fuzz;
mod gateway;
mod gateway_load;
mod guests;
mod hibernation;
mod host_api;
mod hostile;
mod http_actors;
mod languages;
mod limits;
mod manifest;
mod metrics;
mod outbound;
mod sandbox;
mod supervision;
mod swap;
mod traces;
mod virtual_actors;
