// The weather actor in JavaScript: the `example:weather/weather` world
// (examples-guests/wit/weather/weather.wit). It calls a JSON API with
// `fetch`, which componentize-js implements over `wasi:http` (the actor
// needs an `http` grant naming the API's URL). An `async` export runs
// the event loop until its promise settles; waiting on the response
// suspends the actor without holding a host thread.

export const api = {
    async temperature(url) {
        let response;
        try {
            response = await fetch(url);
        } catch (e) {
            // The host's refusal or a network error, e.g. "HTTP-request-denied".
            throw String(e && e.message ? e.message : e);
        }
        if (!response.ok) {
            throw `status ${response.status}`;
        }
        const doc = await response.json();
        if (typeof doc.temperature !== 'number') {
            throw 'no `temperature` number in the document';
        }
        return String(doc.temperature);
    },
};
