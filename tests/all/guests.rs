//! Actors talking to actors: tell, typed ask, spawn and stop from inside
//! guests (the chat example: a room spawns one member actor per user).

use std::time::Duration;

use troupe::{ActorLimits, ActorStatus};

use crate::support::{self, ask, spawn};

async fn chat() -> troupe::Host {
    let host = support::host();
    support::define(&host, "chat-member");
    spawn(&host, "chat-room", "room", ActorLimits::default()).await;
    host
}

#[tokio::test]
async fn a_guest_spawns_children_that_talk_with_typed_tells_and_asks() {
    let host = chat().await;
    assert_eq!(ask(&host, "room", r#"join("ada")"#).await.unwrap(), r#"ok("room/ada")"#);
    assert_eq!(ask(&host, "room", r#"join("bob")"#).await.unwrap(), r#"ok("room/bob")"#);
    assert_eq!(ask(&host, "room", r#"join("cy")"#).await.unwrap(), r#"ok("room/cy")"#);

    // ada's `say` asks the room (a typed u32 reply), which tells bob and cy.
    assert_eq!(ask(&host, "room/ada", r#"say("hello")"#).await.unwrap(), "ok(2)");
    assert_eq!(ask(&host, "room/bob", r#"say("hi ada")"#).await.unwrap(), "ok(2)");
    assert_eq!(
        ask(&host, "room/cy", "inbox()").await.unwrap(),
        r#"[{sender: "ada", text: "hello"}, {sender: "bob", text: "hi ada"}]"#
    );
    assert_eq!(ask(&host, "room/ada", "inbox()").await.unwrap(), r#"[{sender: "bob", text: "hi ada"}]"#);
    assert_eq!(ask(&host, "room", "members()").await.unwrap(), r#"["ada", "bob", "cy"]"#);

    let children: Vec<troupe::Address> = vec!["room/ada".into(), "room/bob".into(), "room/cy".into()];
    assert_eq!(host.children_of("room"), children);
    let member = host.lookup("room/ada").unwrap();
    assert_eq!(member.parent(), Some(&"room".into()));
}

#[tokio::test]
async fn a_guest_stops_its_child() {
    let host = chat().await;
    ask(&host, "room", r#"join("ada")"#).await.unwrap();
    let ada = host.lookup("room/ada").unwrap();
    assert_eq!(ask(&host, "room", r#"leave("ada")"#).await.unwrap(), "ok");
    tokio::time::timeout(Duration::from_secs(5), ada.stopped()).await.expect("the child stops");
    assert_eq!(ada.status(), ActorStatus::Stopped);
    assert!(host.lookup("room/ada").is_err());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !host.children_of("room").is_empty() {
        assert!(std::time::Instant::now() < deadline, "the room forgets its stopped child");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn stopping_a_parent_stops_its_children_first() {
    let host = chat().await;
    ask(&host, "room", r#"join("ada")"#).await.unwrap();
    ask(&host, "room", r#"join("bob")"#).await.unwrap();
    let (ada, bob) = (host.lookup("room/ada").unwrap(), host.lookup("room/bob").unwrap());
    host.stop("room").await.unwrap();
    assert_eq!((ada.status(), bob.status()), (ActorStatus::Stopped, ActorStatus::Stopped));
    assert!(host.actors().is_empty());
}

#[tokio::test]
async fn spawning_an_unknown_component_is_an_error_to_the_guest() {
    let host = support::host();
    spawn(&host, "chat-room", "room", ActorLimits::default()).await;
    let reply = ask(&host, "room", r#"join("ada")"#).await.unwrap();
    assert!(reply.starts_with("err(") && reply.contains("no component named `chat-member`"), "{reply}");
}

#[tokio::test]
async fn a_taken_name_is_an_error_to_the_spawner() {
    let host = chat().await;
    spawn(&host, "counter", "room/ada", ActorLimits::default()).await;
    let reply = ask(&host, "room", r#"join("ada")"#).await.unwrap();
    assert!(reply.contains("address `room/ada` is taken"), "{reply}");
}
