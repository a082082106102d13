//! The native baselines troupe is compared with: a bare tokio actor (a task
//! and a bounded mpsc mailbox) and kameo actors.

use kameo::actor::Spawn as _;
use tokio::sync::{mpsc, oneshot};

/// A message to the bare tokio counter.
pub enum TokioMsg {
    Incr(u64),
    Get(oneshot::Sender<u64>),
}

/// A bare tokio actor: a task and a bounded mpsc mailbox.
pub fn tokio_counter() -> mpsc::Sender<TokioMsg> {
    let (tx, mut rx) = mpsc::channel::<TokioMsg>(1024);
    tokio::spawn(async move {
        let mut value = 0u64;
        while let Some(msg) = rx.recv().await {
            match msg {
                TokioMsg::Incr(by) => value += by,
                TokioMsg::Get(reply) => {
                    let _ = reply.send(value);
                }
            }
        }
    });
    tx
}

/// Asks the bare tokio counter for its value.
pub async fn tokio_get(tx: &mpsc::Sender<TokioMsg>) -> u64 {
    let (reply, rx) = oneshot::channel();
    tx.send(TokioMsg::Get(reply)).await.expect("send");
    rx.await.expect("reply")
}

/// The kameo twin of the counter guest.
pub mod kameo_counter {
    use kameo::Actor;
    use kameo::message::{Context, Message};

    #[derive(Actor, Default)]
    pub struct Counter {
        pub value: u64,
    }

    pub struct Incr(pub u64);
    pub struct Get;

    impl Message<Incr> for Counter {
        type Reply = u64;
        async fn handle(&mut self, msg: Incr, _ctx: &mut Context<Self, Self::Reply>) -> u64 {
            self.value += msg.0;
            self.value
        }
    }

    impl Message<Get> for Counter {
        type Reply = u64;
        async fn handle(&mut self, _: Get, _ctx: &mut Context<Self, Self::Reply>) -> u64 {
            self.value
        }
    }
}

/// The kameo twin of the probe's `remember(item: string)`.
pub mod kameo_notebook {
    use kameo::Actor;
    use kameo::message::{Context, Message};

    #[derive(Actor, Default)]
    pub struct Notebook {
        pub items: Vec<String>,
    }

    pub struct Remember(pub String);
    pub struct Count;

    impl Message<Remember> for Notebook {
        type Reply = ();
        async fn handle(&mut self, msg: Remember, _ctx: &mut Context<Self, Self::Reply>) {
            self.items.push(msg.0);
        }
    }

    impl Message<Count> for Notebook {
        type Reply = usize;
        async fn handle(&mut self, _: Count, _ctx: &mut Context<Self, Self::Reply>) -> usize {
            self.items.len()
        }
    }
}

pub use kameo_counter::{Counter as KameoCounter, Get as KGet, Incr as KIncr};

/// A kameo counter with a bounded mailbox, as large as the tokio one.
pub fn kameo_counter() -> kameo::actor::ActorRef<KameoCounter> {
    KameoCounter::spawn_with_mailbox(KameoCounter::default(), kameo::mailbox::bounded(1024))
}
