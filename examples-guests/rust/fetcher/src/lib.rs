//! A fetcher actor: fetches documents over outbound HTTP
//! (`troupe_guest::http`, so it needs an `http` grant naming the URLs) and
//! caches them, so that asking for a document again costs no request.

wit_bindgen::generate!({
    path: ["../../../wit", "../../wit/fetcher"],
    world: "example:fetcher/fetcher",
    with: {
        "troupe:actor/host@0.2.0": troupe_guest::bindings::troupe::actor::host,
        "troupe:actor/types@0.2.0": troupe_guest::bindings::troupe::actor::types,
    },
});

use std::cell::RefCell;
use std::collections::HashMap;

use exports::example::fetcher::api;
use troupe_guest::http::{self, Request, Response};

/// Redirects `fetch` follows.
const MAX_REDIRECTS: u32 = 5;

thread_local! {
    static CACHE: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

fn status_and_body(response: Result<Response, http::Error>) -> Result<String, String> {
    let response = response.map_err(|e| e.to_string())?;
    Ok(format!("{} {}", response.status, response.text()))
}

struct Fetcher;

impl api::Guest for Fetcher {
    fn fetch(url: String) -> Result<String, String> {
        if let Some(doc) = CACHE.with(|c| c.borrow().get(&url).cloned()) {
            return Ok(doc);
        }
        let response = http::get_following(&url, MAX_REDIRECTS).map_err(|e| e.to_string())?;
        if response.status != 200 {
            return Err(format!("{} {}", response.status, response.text()));
        }
        let doc = response.text();
        CACHE.with(|c| c.borrow_mut().insert(url, doc.clone()));
        Ok(doc)
    }

    fn get(url: String) -> Result<String, String> {
        status_and_body(http::get(&url))
    }

    fn get_within(url: String, timeout_ms: u64) -> Result<String, String> {
        let request = Request { timeout_ms: Some(timeout_ms), ..Request::get(url) };
        status_and_body(http::send(&request))
    }

    fn post(url: String, body: String) -> Result<String, String> {
        status_and_body(http::send(&Request::post(url, body)))
    }

    fn fan_out(url: String, count: u32) -> Vec<String> {
        let started: Vec<_> = (0..count).map(|_| http::start(&Request::get(url.clone()))).collect();
        started
            .into_iter()
            .map(|pending| match pending.and_then(http::Pending::wait) {
                Ok(response) => response.status.to_string(),
                Err(e) => e.to_string(),
            })
            .collect()
    }

    fn cached() -> u32 {
        CACHE.with(|c| c.borrow().len() as u32)
    }

    fn forget() {
        CACHE.with(|c| c.borrow_mut().clear());
    }

    fn spawn_fetcher(component: String, name: String, allow: Vec<String>) -> Result<String, String> {
        troupe_guest::spawn(&component).name(name).http(allow).start().map_err(|e| e.to_string())
    }
}

export!(Fetcher);
