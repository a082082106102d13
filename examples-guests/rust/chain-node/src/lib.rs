//! A node of a chain: it exports `example:chain/node` and imports the same
//! interface as its downstream, bound (by the manifest, its spawner or
//! itself) to the next node. Calls down the chain are plain typed Rust
//! calls — `node::put(&key, value)` returns an `Outcome` — that the host
//! turns into asks and tells between actors.

wit_bindgen::generate!({
    path: ["../../../wit", "../../wit/chain"],
    world: "example:chain/node-actor",
    with: {
        "troupe:actor/host@0.2.0": troupe_guest::bindings::troupe::actor::host,
        "troupe:actor/types@0.2.0": troupe_guest::bindings::troupe::actor::types,
    },
});

use std::cell::{Cell, RefCell};

use example::chain::node as downstream;
use exports::example::chain::{control, node};
use exports::troupe::actor::lifecycle;
use troupe_guest::bindings::troupe::actor::types::BindingTarget;

thread_local! {
    static LEAF: Cell<bool> = const { Cell::new(false) };
    static NOTES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

struct Node;

impl lifecycle::Guest for Node {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        LEAF.with(|l| l.set(troupe_guest::config_value(&config, "leaf") == Some("true")));
        Ok(())
    }
}

impl node::Guest for Node {
    fn put(key: String, value: u64) -> node::Outcome {
        let me = troupe_guest::me();
        if LEAF.with(Cell::get) {
            if value == 0 {
                panic!("a zero reached the leaf");
            }
            if value == u64::MAX {
                let mut spin = 0u64;
                loop {
                    spin = std::hint::black_box(spin.wrapping_add(1));
                }
            }
            if key.starts_with("bad") {
                return node::Outcome::Rejected(format!("`{me}` rejects `{key}`"));
            }
            return node::Outcome::Stored(node::Entry { key, value, path: vec![me] });
        }
        // A typed ask through the import: the host routes it to the actor
        // the downstream is bound to.
        match downstream::put(&key, value) {
            downstream::Outcome::Stored(mut entry) => {
                entry.path.insert(0, me);
                node::Outcome::Stored(node::Entry { key: entry.key, value: entry.value, path: entry.path })
            }
            downstream::Outcome::Rejected(why) => node::Outcome::Rejected(why),
        }
    }

    fn note(text: String) {
        NOTES.with(|n| n.borrow_mut().push(text));
    }

    fn notes() -> Vec<String> {
        NOTES.with(|n| n.borrow().clone())
    }
}

impl control::Guest for Node {
    fn pass_note(text: String) {
        // A typed tell through the import: returns at once.
        downstream::note(&text);
    }

    fn grow() -> Result<String, String> {
        let child = troupe_guest::spawn("node").config("leaf", "true").start().map_err(|e| e.to_string())?;
        troupe_guest::bind("example:chain/node", BindingTarget::Actor(child.clone())).map_err(|e| e.to_string())?;
        LEAF.with(|l| l.set(false));
        Ok(child)
    }
}

export!(Node);
