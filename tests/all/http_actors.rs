//! Components of the `wasi:http/proxy` world, which export
//! `wasi:http/incoming-handler`, as actors: a third-party hello world
//! (`examples-guests/rust/hello-http`, the `wasi` crate's own example)
//! starts as any actor does, under its limits and supervision. Its handler
//! takes resource handles, so it is no message: serving it through routes
//! of the gateway is the next step of issue 19.

use troupe::ActorLimits;

use crate::support::{self, ask};

#[tokio::test]
async fn a_third_party_wasi_http_component_starts_as_an_actor_and_its_handler_is_no_message() {
    let host = support::host();
    support::spawn(&host, "hello-http", "hello", ActorLimits::default()).await;
    let err = ask(&host, "hello", "handle()").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "`handle(request: own<resource>, response-out: own<resource>)` cannot be called as a message: \
         it passes a resource handle, which cannot leave its actor"
    );
}
