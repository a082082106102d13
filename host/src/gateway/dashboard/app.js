// The troupe dashboard: one page over the gateway's read endpoints
// (/v1/tree, /v1/actors, /v1/actors/ADDRESS, /v1/events, /metrics) and
// its call endpoint. No framework and no build step: the host serves this
// file as it is. Every value from the host goes into the page as text
// (textContent), never as markup.
"use strict";

/** Where the token lives: this tab's sessionStorage, never a URL. */
const TOKEN_KEY = "troupe.token";
/** How often the table and the rates are read again, in milliseconds. */
const POLL_MS = 1000;
/** Readings of the message counters kept for the charts (a minute). */
const RATE_SAMPLES = 61;
/** Events listed on the overview. */
const EVENTS_SHOWN = 100;
/** The least time between two reads prompted by events: a burst of events
 * costs a read every so often, not one per event. */
const REFRESH_GAP_MS = 100;

const $ = (id) => document.getElementById(id);

const state = {
  actors: [],
  sort: { key: "mailbox", direction: -1 },
  /** Readings of troupe_messages_total: { at, counts: Map(component -> {handled, failed, refused}) }. */
  samples: [],
  /** The actor page's address, or null on the overview. */
  page: null,
  /** The functions the call form lists, for the page's actor. */
  pageFunctions: null,
};

// ---------------------------------------------------------------- tokens

/** A request the host refused for want of a (wider) token. */
class Denied extends Error {}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Shows the token form with `reason`; `blocked`: nothing can be read without one. */
function askForToken(reason, blocked) {
  $("token-reason").textContent = reason;
  $("token-form").hidden = false;
  if (blocked) setConnection("needs-token", "needs a token");
}

/** Resolved each time a token is saved: what waits for one goes on. */
let tokenSaved;
let onTokenSaved;
function resetTokenWait() {
  tokenSaved = new Promise((resolve) => { onTokenSaved = resolve; });
}
resetTokenWait();

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const value = $("token-input").value.trim();
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  $("token-input").value = "";
  $("token-form").hidden = true;
  const resume = onTokenSaved;
  resetTokenWait();
  resume();
  refresh();
});
$("token-forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  $("token-form").hidden = true;
});
$("token-change").addEventListener("click", () => askForToken("Give a token (read to look, admin to call).", false));

/** fetch() with the token; a 401 or 403 asks for one and throws Denied. */
async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const t = token();
  if (t) headers.set("Authorization", "Bearer " + t);
  const response = await fetch(path, { ...options, headers, cache: "no-store" });
  if (response.status === 401 || response.status === 403) {
    let message = response.status === 401 ? "This host needs a token." : "This token may not do that.";
    try { message = (await response.json()).message || message; } catch (_) { /* not JSON */ }
    askForToken(message, response.status === 401);
    throw new Denied(message);
  }
  return response;
}

async function apiJson(path) {
  const response = await api(path);
  if (!response.ok) throw new Error(path + ": " + response.status);
  return response.json();
}

// ---------------------------------------------------------------- helpers

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attributes = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function bytes(n) {
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + " GiB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
  return n + " B";
}

function count(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return String(n);
}

function time(ms) {
  return new Date(ms).toISOString().slice(11, 23);
}

/** The path of an actor's endpoint: its address's segments escaped, its slashes kept. */
function actorPath(address) {
  return "/v1/actors/" + address.split("/").map(encodeURIComponent).join("/");
}

function actorLink(address) {
  return element("a", { href: "#/actor/" + encodeURIComponent(address), text: address });
}

function setConnection(stateName, text) {
  const badge = $("connection");
  badge.dataset.state = stateName;
  badge.textContent = text;
}

/** One line about an event, as `troupe events` would say it. */
function describe(event) {
  const { at_ms, address, event: kind, ...rest } = event;
  const details = [];
  for (const [name, value] of Object.entries(rest)) {
    if (name === "phases" || name === "stderr") continue;
    details.push(name + "=" + (typeof value === "object" ? JSON.stringify(value) : value));
  }
  return { at: time(at_ms), address, kind, details: details.join(" ") };
}

function eventItem(event) {
  const d = describe(event);
  return element("li", { "data-event": d.kind, "data-address": d.address },
    element("time", { text: d.at }), " ", actorLink(d.address), " ",
    element("strong", { text: d.kind }), " ", d.details);
}

// ---------------------------------------------------------------- the tree

function treeNode(node) {
  const item = element("li", {
    "data-address": node.address,
    "data-type": node.type,
    "data-status": node.status,
    "data-restarts": String(node.restarts ?? 0),
  });
  const label = element("span", { class: "node status-" + node.status });
  if (node.type === "actor") {
    label.append(actorLink(node.address), " ", element("small", {
      text: `${node.status} · ${node.component} · restarts ${node.restarts} · mailbox ${node.mailbox}`,
    }));
  } else {
    label.append(element("strong", { text: node.address }), " ", element("small", {
      text: `${node.type} · ${node.strategy ?? ""} · ${node.status} · restarts ${node.recent_restarts ?? 0}/${node.intensity ?? "?"}`,
    }));
  }
  item.append(label);
  if (node.nodes && node.nodes.length) {
    item.append(element("ul", {}, ...node.nodes.map(treeNode)));
  }
  return item;
}

function renderTree(tree) {
  $("tree").replaceChildren(element("ul", { class: "tree" }, treeNode(tree)));
}

// ---------------------------------------------------------------- the table

const COLUMNS = [
  ["address", (a) => actorLink(a.address)],
  ["component", (a) => a.component],
  ["status", (a) => a.status],
  ["mailbox", (a) => `${a.mailbox} / ${a.mailbox_capacity}`],
  ["memory", (a) => bytes(a.memory)],
  ["fuel_used", (a) => count(a.fuel_used)],
  ["handled", (a) => count(a.handled)],
  ["failures", (a) => count(a.failures)],
  ["restarts", (a) => count(a.restarts)],
];

function sortedActors() {
  const { key, direction } = state.sort;
  return [...state.actors].sort((a, b) => {
    const x = a[key];
    const y = b[key];
    const order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
    // Ties keep a stable, readable order: by address.
    return order * direction || a.address.localeCompare(b.address);
  });
}

function renderTable() {
  const rows = sortedActors().map((actor) => {
    const row = element("tr", { "data-address": actor.address, "data-status": actor.status });
    for (const [key, show] of COLUMNS) {
      const value = actor[key];
      row.append(element("td", { "data-col": key, "data-value": String(value) }, show(actor)));
    }
    return row;
  });
  $("actors").tBodies[0].replaceChildren(...rows);
  $("actor-count").textContent = `(${state.actors.length})`;
  for (const th of $("actors").tHead.rows[0].cells) {
    const sorted = th.dataset.sort === state.sort.key;
    th.setAttribute("aria-sort", sorted ? (state.sort.direction < 0 ? "descending" : "ascending") : "none");
  }
}

for (const th of $("actors").tHead.rows[0].cells) {
  th.addEventListener("click", () => {
    const key = th.dataset.sort;
    if (state.sort.key === key) {
      state.sort.direction = -state.sort.direction;
    } else {
      // Numbers largest first (the busiest actor on top), text A to Z.
      state.sort = { key, direction: th.dataset.kind === "number" ? -1 : 1 };
    }
    renderTable();
  });
}

// ---------------------------------------------------------------- rates

/** troupe_messages_total by component and outcome, from the Prometheus text. */
function parseMessageCounts(text) {
  const counts = new Map();
  for (const line of text.split("\n")) {
    const match = /^troupe_messages_total\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const [, name, value] of match[1].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[name] = value;
    if (!counts.has(labels.component)) counts.set(labels.component, { handled: 0, failed: 0, refused: 0 });
    counts.get(labels.component)[labels.outcome] = Number(match[2]);
  }
  return counts;
}

/** Per component, [messages/s, errors/s] between each two readings. */
function rates() {
  const series = new Map();
  for (let i = 1; i < state.samples.length; i++) {
    const before = state.samples[i - 1];
    const after = state.samples[i];
    const seconds = (after.at - before.at) / 1000;
    if (seconds <= 0) continue;
    for (const [component, now] of after.counts) {
      const then = before.counts.get(component) || { handled: 0, failed: 0, refused: 0 };
      // A counter that went down belongs to a host that started again.
      const delta = (name) => Math.max(0, now[name] - then[name]);
      if (!series.has(component)) series.set(component, []);
      series.get(component).push([
        (delta("handled") + delta("failed")) / seconds,
        (delta("failed") + delta("refused")) / seconds,
      ]);
    }
  }
  return series;
}

function chart(component, points) {
  const width = 240;
  const height = 60;
  const top = Math.max(1, ...points.map(([m, e]) => Math.max(m, e)));
  const step = width / (RATE_SAMPLES - 2);
  const line = (index) => points
    .map((p, i) => `${(width - (points.length - 1 - i) * step).toFixed(1)},${(height - (p[index] / top) * (height - 2)).toFixed(1)}`)
    .join(" ");
  const picture = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
  picture.append(svg("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: "axis" }));
  picture.append(svg("polyline", { points: line(0), class: "rate-messages" }));
  picture.append(svg("polyline", { points: line(1), class: "rate-errors" }));
  const [messages, errors] = points.length ? points[points.length - 1] : [0, 0];
  const peak = (index) => Math.max(0, ...points.map((p) => p[index])).toFixed(1);
  return element("figure", {
    "data-component": component,
    "data-messages-per-second": messages.toFixed(1),
    "data-errors-per-second": errors.toFixed(1),
    "data-peak-messages-per-second": peak(0),
    "data-peak-errors-per-second": peak(1),
  },
  picture,
  element("figcaption", {}, element("strong", { text: component }), " ",
    element("span", { class: "key-messages", text: messages.toFixed(1) + "/s" }), " ",
    element("span", { class: "key-errors", text: errors.toFixed(1) + "/s" }), " ",
    element("small", { text: "peak " + top.toFixed(1) + "/s" })));
}

async function sampleRates() {
  const response = await api("/metrics");
  if (!response.ok) return;
  state.samples.push({ at: performance.now(), counts: parseMessageCounts(await response.text()) });
  if (state.samples.length > RATE_SAMPLES) state.samples.shift();
  const charts = [...rates()].sort(([a], [b]) => a.localeCompare(b)).map(([c, p]) => chart(c, p));
  $("charts").replaceChildren(...(charts.length ? charts : [element("p", { text: "measuring…" })]));
}

// ---------------------------------------------------------------- an actor's page

/** A JSON value to start a parameter of WIT type `type` with. */
function placeholder(type) {
  if (/^[us](8|16|32|64)$|^f(32|64)$/.test(type)) return 0;
  if (type === "string" || type === "char") return "";
  if (type === "bool") return false;
  if (type.startsWith("list<")) return [];
  return null;
}

/** The parameters of a signature `name(a: t, b: list<tuple<x, y>>) -> r`. */
function parameters(signature) {
  const open = signature.indexOf("(");
  let depth = 0;
  let close = open;
  for (let i = open; i < signature.length; i++) {
    if (signature[i] === "(" || signature[i] === "<") depth++;
    if (signature[i] === ")" || signature[i] === ">") depth--;
    if (depth === 0) { close = i; break; }
  }
  const inner = signature.slice(open + 1, close);
  const params = [];
  let start = 0;
  depth = 0;
  for (let i = 0; i <= inner.length; i++) {
    const c = inner[i];
    if (c === "<" || c === "(") depth++;
    if (c === ">" || c === ")") depth--;
    if ((c === "," && depth === 0) || i === inner.length) {
      const part = inner.slice(start, i).trim();
      if (part) {
        const colon = part.indexOf(":");
        params.push([part.slice(0, colon).trim(), part.slice(colon + 1).trim()]);
      }
      start = i + 1;
    }
  }
  return params;
}

function fillArguments() {
  const option = $("call-function").selectedOptions[0];
  if (!option) return;
  $("call-signature").textContent = option.dataset.signature;
  const args = {};
  for (const [name, type] of parameters(option.dataset.signature)) args[name] = placeholder(type);
  $("call-args").value = Object.keys(args).length ? JSON.stringify(args) : "";
}
$("call-function").addEventListener("change", fillArguments);

function renderFailure(failure) {
  const box = $("last-failure");
  if (!failure) {
    box.replaceChildren(element("p", { text: "none" }));
    return;
  }
  const parts = [element("p", {}, element("strong", { text: failure.kind }), " ", failure.detail)];
  if (failure.stderr) parts.push(element("pre", { class: "stderr", text: failure.stderr }));
  if (failure.backtrace && failure.backtrace.length) {
    parts.push(element("ol", { class: "backtrace" }, ...failure.backtrace.map((f) => element("li", { text: f }))));
  }
  box.replaceChildren(...parts);
}

const STATS = [
  ["status", (a) => a.status], ["component", (a) => `${a.component} ${a.version ?? ""} (${a.hash})`],
  ["mailbox", (a) => `${a.mailbox} / ${a.mailbox_capacity}`], ["handled", (a) => a.handled],
  ["failures", (a) => a.failures], ["restarts", (a) => a.restarts], ["fuel used", (a) => a.fuel_used],
  ["memory", (a) => `${bytes(a.memory)} (peak ${bytes(a.memory_peak)})`], ["durability", (a) => a.durability],
];

async function refreshPage() {
  const address = state.page;
  // The WIT once per page: the host decodes it from the component.
  const first = state.pageFunctions === null;
  const response = await api(actorPath(address) + (first ? "?wit=true" : ""));
  if (address !== state.page) return;
  if (!response.ok) {
    $("actor-missing").hidden = false;
    return;
  }
  const { actor, functions, wit, events } = await response.json();
  $("actor-missing").hidden = true;
  $("actor-stats").replaceChildren(...STATS.flatMap(([name, show]) =>
    [element("dt", { text: name }), element("dd", { "data-stat": name, text: String(show(actor)) })]));
  renderFailure(actor.last_failure);
  $("actor-events").replaceChildren(...events.map(eventItem));
  if (first && state.pageFunctions === null) {
    state.pageFunctions = functions;
    $("call-function").replaceChildren(...functions.map((f) => element("option", {
      value: f.name, "data-signature": f.signature, text: f.signature,
    })));
    fillArguments();
    $("actor-wit").textContent = wit ?? "(not available)";
  }
}

$("call-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const reply = $("call-reply");
  const name = $("call-function").value;
  const args = $("call-args").value.trim();
  try {
    if (args) JSON.parse(args);
  } catch (error) {
    reply.dataset.status = "invalid";
    reply.textContent = "The arguments are not JSON: " + error.message;
    return;
  }
  reply.dataset.status = "pending";
  reply.textContent = "asking…";
  const started = performance.now();
  try {
    const response = await api(actorPath(state.page) + "/call/" + encodeURI(name), {
      method: "POST", headers: { "Content-Type": "application/json" }, body: args,
    });
    const body = await response.json();
    const took = (performance.now() - started).toFixed(1);
    reply.dataset.status = String(response.status);
    reply.textContent = response.ok
      ? JSON.stringify(body.result, null, 2)
      : `${response.status} ${body.code}: ${body.message}`;
    reply.title = `answered in ${took} ms`;
  } catch (error) {
    reply.dataset.status = error instanceof Denied ? "denied" : "error";
    reply.textContent = error instanceof Denied ? error.message + " Calling needs an admin token." : String(error);
  }
});

// ---------------------------------------------------------------- navigation

function route() {
  const match = /^#\/actor\/(.+)$/.exec(location.hash);
  const address = match ? decodeURIComponent(match[1]) : null;
  $("overview").hidden = address !== null;
  $("actor-page").hidden = address === null;
  if (address !== state.page) {
    state.page = address;
    state.pageFunctions = null;
    $("call-reply").textContent = "";
    $("call-reply").dataset.status = "";
    $("actor-wit").textContent = "";
    if (address !== null) $("actor-address").textContent = address;
  }
  refresh();
}
window.addEventListener("hashchange", route);

// ---------------------------------------------------------------- refreshing

let refreshing = false;
let refreshAgain = false;

/** Reads the tree and the actors (and the page's actor) again. A call
 * while one runs makes it run once more after, so that the last event
 * is always reflected, and never more than one read is in flight. */
async function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  try {
    do {
      refreshAgain = false;
      const [tree, ps] = await Promise.all([apiJson("/v1/tree"), apiJson("/v1/actors")]);
      renderTree(tree);
      state.actors = ps.actors;
      renderTable();
      if (state.page !== null) await refreshPage();
      if (refreshAgain) await new Promise((resolve) => setTimeout(resolve, REFRESH_GAP_MS));
    } while (refreshAgain);
  } catch (error) {
    if (!(error instanceof Denied)) setConnection("error", "cannot reach the host");
  } finally {
    refreshing = false;
  }
}

function onEvent(event) {
  if (event.event === "lagged") return;
  const list = $("events");
  list.prepend(eventItem(event));
  while (list.children.length > EVENTS_SHOWN) list.lastElementChild.remove();
  refresh();
}

/** Reads GET /v1/events for as long as the page is open, with fetch (an
 * EventSource cannot send the token), starting again after a drop. */
async function followEvents() {
  for (;;) {
    try {
      const response = await api("/v1/events", { headers: { Accept: "text/event-stream" } });
      if (!response.ok) throw new Error("events: " + response.status);
      setConnection("live", "live");
      // Anything that happened while not following is read afresh.
      refresh();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
          if (data) onEvent(JSON.parse(data));
        }
      }
      setConnection("reconnecting", "reconnecting");
    } catch (error) {
      if (error instanceof Denied) {
        await tokenSaved;
        continue;
      }
      setConnection("reconnecting", "reconnecting");
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function poll() {
  for (;;) {
    try {
      await Promise.all([refresh(), sampleRates()]);
    } catch (_) {
      // Shown by the connection badge; the next round tries again.
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

route();
followEvents();
poll();
