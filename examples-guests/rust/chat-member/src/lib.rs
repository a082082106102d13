//! A chat member: one actor per user, spawned by the room. Receives lines
//! with `deliver` (told by the room) and posts with `say`, which asks the
//! room and gets a typed `u32` back.

wit_bindgen::generate!({
    path: ["../../../wit", "../../wit/chat"],
    world: "example:chat/chat-member",
    with: {
        "troupe:actor/host@0.2.0": troupe_guest::bindings::troupe::actor::host,
        "troupe:actor/types@0.2.0": troupe_guest::bindings::troupe::actor::types,
    },
});

use std::cell::RefCell;

use exports::example::chat::member::{self, Line};
use exports::troupe::actor::lifecycle;
use troupe_guest::{ask, call};

thread_local! {
    static NAME: RefCell<String> = const { RefCell::new(String::new()) };
    static ROOM: RefCell<String> = const { RefCell::new(String::new()) };
    static INBOX: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

struct Member;

impl lifecycle::Guest for Member {
    fn init(config: Vec<(String, String)>) -> Result<(), String> {
        let name = troupe_guest::config_value(&config, "name").ok_or("config `name` is required")?;
        let room = troupe_guest::config_value(&config, "room").ok_or("config `room` is required")?;
        NAME.with(|n| *n.borrow_mut() = name.to_string());
        ROOM.with(|r| *r.borrow_mut() = room.to_string());
        Ok(())
    }
}

impl member::Guest for Member {
    fn deliver(sender: String, text: String) {
        INBOX.with(|i| i.borrow_mut().push(Line { sender, text }));
    }

    fn say(text: String) -> Result<u32, String> {
        let room = ROOM.with(|r| r.borrow().clone());
        let name = NAME.with(|n| n.borrow().clone());
        // A typed ask: the reply decodes as the room's `post` result, a u32.
        ask::<u32>(&room, call!("post", name.as_str(), text.as_str())).map_err(|e| e.to_string())
    }

    fn inbox() -> Vec<Line> {
        INBOX.with(|i| i.borrow().clone())
    }
}

export!(Member);
