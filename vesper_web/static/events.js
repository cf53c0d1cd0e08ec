// Event timeline: a page of events from the API by the URL's filters, newest on top; at the head, live ones
// from the stream; "Older" pages back through everything kept (before=ID, a cursor).
import { eventRow, follow, getJSON, throttled } from "./console.js";
import { bindForm, fromSearch, matches, pageUrl, query } from "./timeline_filter.js";

const MAX_LIVE_ROWS = 500; // while only following the head; rows paged back to are never dropped
const PAGE = 200;
const tbody = document.getElementById("event-rows");
const empty = document.getElementById("events-empty");
const olderLink = document.getElementById("older");
const oldestNote = document.getElementById("oldest");
const filter = fromSearch(location.search);
filter.device = document.getElementById("timeline").dataset.device || ""; // the page refused an invalid id
const apiQuery = query(filter, { api: true });
const target = filter.before ? filter.before - 1 : 0; // the event a link to before=N+1 means

const shown = new Set();
let newest = 0;
let oldest = 0;
let pagedBack = false;
let refused = "";

function add(event, fresh) {
  if (typeof event.id !== "number" || shown.has(event.id)) return;
  shown.add(event.id);
  newest = Math.max(newest, event.id);
  oldest = oldest ? Math.min(oldest, event.id) : event.id;
  const row = eventRow(event);
  if (fresh) row.classList.add("changed");
  if (event.id === target) {
    row.classList.add("target");
    row.setAttribute("aria-current", "true");
  }
  // Rows are kept in descending id order even when a catch-up read and the stream interleave.
  let next = tbody.firstElementChild;
  while (next && Number(next.dataset.eventId) > event.id) next = next.nextElementSibling;
  tbody.insertBefore(row, next);
  while (!pagedBack && tbody.children.length > MAX_LIVE_ROWS) {
    shown.delete(Number(tbody.lastElementChild.dataset.eventId));
    tbody.lastElementChild.remove();
    oldest = Number(tbody.lastElementChild.dataset.eventId);
  }
}

function refresh(endReached) {
  empty.hidden = tbody.children.length > 0;
  empty.textContent = refused || (apiQuery.toString() ? "No events match these filters" : "No events yet");
  olderLink.hidden = endReached || tbody.children.length === 0;
  oldestNote.hidden = !endReached || tbody.children.length === 0;
  if (oldest) olderLink.href = pageUrl(filter, oldest);
}

async function read(params) {
  for (const [key, value] of apiQuery) params.append(key, value);
  const { ok, status, body } = await getJSON(`/api/events?${params}`);
  if (status === 400 && body && typeof body.error === "string") {
    refused = body.error; // a filter the API refuses (its error names it): say so, do not retry
    return [];
  }
  if (!ok || !body || !Array.isArray(body.events)) throw new Error("events unavailable");
  return body.events;
}

// One page older than the oldest row, added below it.
async function older() {
  const events = await read(new URLSearchParams({ before: String(oldest), limit: String(PAGE) }));
  pagedBack = true;
  for (const event of events) add(event, false);
  refresh(events.length < PAGE);
}

// On the first open read the newest page (or the one before the URL's cursor); on a reconnect what came after.
async function load() {
  if (newest && !filter.before) {
    const events = await read(new URLSearchParams({ after: String(newest), limit: String(MAX_LIVE_ROWS) }));
    if (events.length >= MAX_LIVE_ROWS && !pagedBack) {
      tbody.replaceChildren(); // too much was missed to splice in: start over from the newest page
      shown.clear();
      newest = oldest = 0;
      return load();
    }
    for (const event of events) add(event, true);
    return refresh(olderLink.hidden && !oldestNote.hidden);
  }
  if (newest) return; // a page of the past: nothing to follow
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (filter.before) params.set("before", String(filter.before));
  const events = await read(params);
  for (const event of events) add(event, false);
  refresh(events.length < PAGE);
  document.querySelector("tr.ev.target")?.scrollIntoView({ block: "center" });
}

const catchUp = throttled(() => load());

bindForm(document.getElementById("timeline-filter"), filter);
document.getElementById("timeline-past").hidden = !filter.before;
document.getElementById("to-newest").href = pageUrl(filter);
olderLink.addEventListener("click", (e) => {
  e.preventDefault();
  older().catch(() => {
    oldestNote.textContent = "Could not read older events; try again.";
    oldestNote.hidden = false;
  });
});

const streamDevice = filter.device ? `?device=${encodeURIComponent(filter.device)}` : "";
follow(`/events/stream${streamDevice}`, {
  onOpen: load,
  onEvent: (event) => {
    if (filter.before) return; // the past does not change
    const pass = matches(filter, event);
    if (pass === null) catchUp(); // site or tag: the API knows which devices they hold
    else if (pass) {
      add(event, true);
      refresh(olderLink.hidden && !oldestNote.hidden);
    }
  },
});
