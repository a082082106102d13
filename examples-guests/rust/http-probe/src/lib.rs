//! An HTTP actor that misbehaves on request, for the tests of HTTP actors:
//! `/loop` never returns (its deadline ends it), `/trap` panics,
//! `/silent` returns without a response; any other path is answered with
//! `200` and `PATH (N)`, N counting the requests this incarnation served
//! (so a restart shows).

use std::sync::atomic::{AtomicU32, Ordering};

use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

wasi::http::proxy::export!(Probe);

static SERVED: AtomicU32 = AtomicU32::new(0);

struct Probe;

impl wasi::exports::http::incoming_handler::Guest for Probe {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        match path.as_str() {
            "/probe/loop" =>
            {
                #[allow(clippy::empty_loop)]
                loop {}
            }
            "/probe/trap" => panic!("asked to"),
            "/probe/silent" => return,
            _ => {}
        }
        let n = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
        let resp = OutgoingResponse::new(Fields::new());
        let body = resp.body().unwrap();
        ResponseOutparam::set(response_out, Ok(resp));
        let out = body.write().unwrap();
        out.blocking_write_and_flush(format!("{path} ({n})").as_bytes()).unwrap();
        drop(out);
        OutgoingBody::finish(body, None).unwrap();
    }
}
