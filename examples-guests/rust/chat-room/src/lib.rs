//! A chat room: spawns one `chat-member` child actor per user who joins,
//! fans posts out to the members with tells, and stops a member's actor
//! when it leaves. Members post through the room with typed asks.

wit_bindgen::generate!({
    path: ["../../../wit", "../../wit/chat"],
    world: "example:chat/chat-room",
    with: {
        "troupe:actor/host@0.2.0": troupe_guest::bindings::troupe::actor::host,
        "troupe:actor/types@0.2.0": troupe_guest::bindings::troupe::actor::types,
    },
});

use std::cell::RefCell;

use exports::example::chat::room;
use troupe_guest::{call, log};

thread_local! {
    /// (name, address) of each member, in join order.
    static MEMBERS: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// The component name members are spawned from (see the demo manifest).
const MEMBER_COMPONENT: &str = "chat-member";

struct Room;

impl room::Guest for Room {
    fn join(name: String) -> Result<String, String> {
        if MEMBERS.with(|m| m.borrow().iter().any(|(n, _)| *n == name)) {
            return Err(format!("`{name}` is already in the room"));
        }
        let address = troupe_guest::spawn(MEMBER_COMPONENT)
            .name(format!("{}/{name}", troupe_guest::me()))
            .config("name", &name)
            .config("room", troupe_guest::me())
            .start()
            .map_err(|e| e.to_string())?;
        log::log(troupe_guest::Level::Info, "member joined", &[("name", &name), ("address", &address)]);
        MEMBERS.with(|m| m.borrow_mut().push((name, address.clone())));
        Ok(address)
    }

    fn post(sender: String, text: String) -> u32 {
        let members = MEMBERS.with(|m| m.borrow().clone());
        let mut delivered = 0;
        for (name, address) in members.iter().filter(|(n, _)| *n != sender) {
            match troupe_guest::tell(address, call!("deliver", sender.as_str(), text.as_str())) {
                Ok(()) => delivered += 1,
                Err(e) => log::warn(&format!("could not deliver to {name}: {e}")),
            }
        }
        delivered
    }

    fn members() -> Vec<String> {
        MEMBERS.with(|m| m.borrow().iter().map(|(n, _)| n.clone()).collect())
    }

    fn leave(name: String) -> Result<(), String> {
        let address = MEMBERS.with(|m| {
            let mut m = m.borrow_mut();
            let i = m.iter().position(|(n, _)| *n == name)?;
            Some(m.remove(i).1)
        });
        let address = address.ok_or_else(|| format!("`{name}` is not in the room"))?;
        troupe_guest::stop(&address).map_err(|e| e.to_string())
    }
}

export!(Room);
