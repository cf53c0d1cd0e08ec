// Device list at fleet scale.
//
// The server pages the list: it keeps an index per sort order (shared/store/listing.py), so a page
// of 100 costs about 100 index entries at any depth, with keyset cursors in its Link header. So
// the page never holds the fleet: it shows a window of at most MAX_ROWS rows (the API's largest
// page, so one request re-reads the whole window) and keeps nothing about devices it does not show.
//
// Live: an event for a device on screen is applied from its own content at once (device_rows.js).
// Every event then asks for one re-read of the window and of /api/summary, run at most once a
// second however many events arrive, because a device off screen may now belong on it and what a
// cleared alert leaves is not in the event. A re-read that took long (a search over a large fleet
// reads every row: no index serves a substring) waits SLOW_FACTOR times as long before the next.
// Reads are numbered as they start: an answer older than an event already applied to a row leaves
// that row as the event made it.
import { coalescing, follow, getJSON, nextCursor, throttled } from "./console.js";
import { buildRow, signature, withEvent } from "./device_rows.js";
import { bindControls, fromLocation, isFiltered, listParams, showSummary, toLocation } from "./device_filters.js";

const PAGE = 100;
const MAX_ROWS = 1000;
const REREAD_MS = 1000;
const SLOW_FACTOR = 10; // a re-read of 200 ms is followed by 2 s without one
const SEEN_IDS = 2048; // event ids remembered to drop a replayed event
// Heartbeats are no events: without one, "last seen" and newly heard devices would wait for the
// next event. A slow re-read while the tab is visible keeps them roughly current.
const IDLE_REREAD_MS = 15000;

const $ = (id) => document.getElementById(id);
const tbody = $("device-rows");
const empty = $("devices-empty");
const more = $("load-more");

const query = fromLocation();
const rows = new Map(); // device id -> {device, tr, sig}: exactly the rows shown
const touched = new Map(); // device id -> clock when an event last changed its row here
let clock = 0; // numbers reads as they start and events as they are applied
let gen = 0; // the query's generation: an answer for an older query is dropped
let chain = Promise.resolve(); // the list reads of this generation, one at a time
let windowStart = null; // the cursor the window starts after (null: the top)
let moves = 0; // counts the window's moves and restarts
const earlier = []; // [{cursor, offset}] of the windows before this one
let offset = 0; // rows before the window
let next = null; // the cursor after the window's last row
let total = null;
let failure = "";
let firstRows = false;

// --- rows ------------------------------------------------------------------------------------

function put(device, flash) {
  const entry = rows.get(device.id);
  const sig = signature(device);
  if (entry && entry.sig === sig) {
    entry.device = device;
    return entry.tr;
  }
  const tr = buildRow(device);
  if (flash && (!entry || entry.device.health !== device.health)) tr.classList.add("changed");
  if (entry) entry.tr.replaceWith(tr);
  rows.set(device.id, { device, tr, sig });
  return tr;
}

// Show an answer: the whole window (replace) or one more page after it (append).
function show(answer, { append = false, flash = false } = {}) {
  const order = [];
  const ids = new Set();
  for (const incoming of answer.devices) {
    if (ids.has(incoming.id) || (append && rows.has(incoming.id))) continue;
    ids.add(incoming.id);
    const newer = (touched.get(incoming.id) || 0) > answer.stamp ? rows.get(incoming.id) : null;
    order.push(put(newer ? newer.device : incoming, flash));
  }
  if (append) {
    tbody.append(...order);
  } else {
    for (const [id, entry] of rows) {
      if (!ids.has(id)) {
        entry.tr.remove();
        rows.delete(id);
      }
    }
    let at = tbody.firstElementChild;
    for (const tr of order) {
      if (at === tr) at = at.nextElementSibling;
      else tbody.insertBefore(tr, at);
    }
  }
  for (const [id, stamp] of touched) if (stamp <= answer.stamp || !rows.has(id)) touched.delete(id);
  next = answer.next;
  total = answer.total;
  failure = "";
  refreshView();
  if (!firstRows && rows.size) {
    firstRows = true;
    performance.mark("vesper:first-rows"); // the browser tests read the time to first rows
  }
}

function refreshView() {
  const n = rows.size;
  const counted = Number.isFinite(total) ? total.toLocaleString() : "–";
  const status = failure || (total === null ? "Loading…" : n ? `Showing ${(offset + 1).toLocaleString()}–${(offset + n).toLocaleString()} of ${counted}` : "");
  if ($("list-status").textContent !== status) $("list-status").textContent = status; // a live region: say only news
  $("list-status").dataset.result = failure ? "error" : "";
  empty.hidden = n > 0;
  if (!n) empty.textContent = total === null && !failure ? "Loading devices…" : isFiltered(query) || offset ? "No device matches the filter" : "No devices yet: they appear as soon as they publish";
  more.hidden = !next || n >= MAX_ROWS;
  $("window-next").hidden = !next || n < MAX_ROWS;
  $("window-prev").hidden = earlier.length === 0;
}

// --- reads -----------------------------------------------------------------------------------

// Queue a list read behind the others of this query; a job finds the generation it belongs to.
function enqueue(job) {
  const mine = gen;
  const run = chain.then(() => (mine === gen ? job(mine) : undefined));
  chain = run.catch(() => {});
  return run;
}

async function readList(mine, cursor, limit) {
  const stamp = ++clock;
  const { ok, status, body, headers } = await getJSON(`/api/devices?${listParams(query, cursor, limit)}`);
  if (mine !== gen) return null;
  if (status === 400) {
    // The query itself was refused (the server names the parameter): no retry would help.
    show({ devices: [], stamp, next: null, total: 0 });
    failure = body && typeof body.error === "string" ? `Not a valid filter: ${body.error}` : "Not a valid filter";
    refreshView();
    return null;
  }
  if (!ok || !Array.isArray(body)) throw new Error(`device list read failed (${status})`);
  const devices = body.filter((d) => d && typeof d.id === "string");
  return { devices, stamp, next: nextCursor(headers.get("Link")), total: Number(headers.get("X-Total-Count")) };
}

// The query changed: start again at the top of the list.
function restart() {
  gen += 1;
  moves += 1;
  chain = Promise.resolve();
  toLocation(query);
  return enqueue(async (mine) => {
    const answer = await readList(mine, null, PAGE);
    if (!answer) return;
    windowStart = null;
    earlier.length = 0;
    offset = 0;
    show(answer);
    window.scrollTo({ top: 0 });
  });
}

// Re-read the rows shown, with the same query, in one request.
function reread() {
  return enqueue(async (mine) => {
    const answer = await readList(mine, windowStart, Math.min(MAX_ROWS, Math.max(PAGE, rows.size)));
    if (answer) show(answer, { flash: true });
  });
}

let loadingMore = false;

// The "load more" row is on screen: the reader reached the bottom of the rows shown.
const atBottom = () => !more.hidden && more.getBoundingClientRect().top < window.innerHeight;

function loadMore() {
  if (loadingMore || !next || rows.size >= MAX_ROWS) return;
  loadingMore = true;
  const asked = moves; // the window it was asked in: moving to another (a click that scrolled it into view) drops it
  enqueue(async (mine) => {
    // An intersection seen before a window move can be delivered after it: it asks only if still at the bottom.
    if (moves !== asked || !next || rows.size >= MAX_ROWS || !atBottom()) return false;
    const answer = await readList(mine, next, Math.min(PAGE, MAX_ROWS - rows.size));
    if (answer) show(answer, { append: true });
    return Boolean(answer);
  })
    .catch(() => false)
    .then((shown) => {
      loadingMore = false;
      // Still at the bottom (a tall screen, or a short page): keep filling.
      if (shown && atBottom()) loadMore();
    });
}

// Show the next (or previous) window of MAX_ROWS rows.
function moveWindow(forward) {
  moves += 1;
  enqueue(async (mine) => {
    const target = forward ? { cursor: next, offset: offset + rows.size } : earlier[earlier.length - 1];
    if (!target || (forward && !next)) return;
    const answer = await readList(mine, target.cursor, PAGE);
    if (!answer) return;
    if (forward) earlier.push({ cursor: windowStart, offset });
    else earlier.pop();
    windowStart = target.cursor;
    offset = target.offset;
    $("devices").scrollIntoView(); // first: were the rows replaced at the bottom, "load more" would be in view
    show(answer);
  });
}

const readSummary = coalescing(async () => {
  const { ok, status, body } = await getJSON("/api/summary");
  if (!ok || !body || typeof body !== "object") throw new Error(`summary read failed (${status})`);
  showSummary(body, query);
});

// --- live ------------------------------------------------------------------------------------

const refresh = () => Promise.all([reread(), readSummary()]);
let restUntil = 0; // performance.now() before which no event-driven re-read starts
const askRefresh = throttled(async () => {
  const rest = restUntil - performance.now();
  if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest)); // asks meanwhile coalesce
  const started = performance.now();
  try {
    await refresh();
  } finally {
    restUntil = performance.now() + SLOW_FACTOR * (performance.now() - started) - REREAD_MS;
  }
}, REREAD_MS);
const seen = new Set();

function onEvent(event) {
  if (typeof event.id === "number") {
    if (seen.has(event.id)) return; // a replay after a reconnect: applied already
    seen.add(event.id);
    if (seen.size > SEEN_IDS) seen.delete(seen.values().next().value);
  }
  const entry = typeof event.source_id === "string" ? rows.get(event.source_id) : undefined;
  if (entry) {
    touched.set(event.source_id, ++clock);
    put(withEvent(entry.device, event), true);
  }
  askRefresh();
}

bindControls(query, restart);
new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && loadMore()).observe(more);
more.addEventListener("click", loadMore);
$("window-next").addEventListener("click", () => moveWindow(true));
$("window-prev").addEventListener("click", () => moveWindow(false));

// The first page is asked for at once, not after the stream opens; the stream's open (and every
// reopen) re-reads, so nothing between that first answer and the subscription is missed.
setInterval(() => document.visibilityState === "visible" && askRefresh(), IDLE_REREAD_MS);

restart().catch(() => {});
readSummary();
follow("/events/stream", { onOpen: refresh, onEvent });
