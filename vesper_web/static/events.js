// Event timeline: recent events from the API, then live ones from the stream, newest on top.
import { eventRow, follow, getJSON } from "./console.js";

const MAX_ROWS = 500;
const PAGE = 200;
const table = document.getElementById("timeline");
const tbody = document.getElementById("event-rows");
const empty = document.getElementById("events-empty");
const device = table.dataset.device || "";
const deviceQuery = device ? `&device=${encodeURIComponent(device)}` : "";

const shown = new Set();
let newest = 0;

function add(event, fresh) {
  if (typeof event.id !== "number" || shown.has(event.id)) return;
  if (device && event.source_id !== device) return;
  shown.add(event.id);
  newest = Math.max(newest, event.id);
  const row = eventRow(event);
  if (fresh) row.classList.add("changed");
  // Rows are kept in descending id order even when a catch-up read and the stream interleave.
  let before = tbody.firstElementChild;
  while (before && Number(before.dataset.eventId) > event.id) before = before.nextElementSibling;
  tbody.insertBefore(row, before);
  while (tbody.children.length > MAX_ROWS) {
    shown.delete(Number(tbody.lastElementChild.dataset.eventId));
    tbody.lastElementChild.remove();
  }
}

function refreshEmpty() {
  empty.hidden = tbody.children.length > 0;
  empty.textContent = device ? "No events for this device yet" : "No events yet";
}

// On the first open load the most recent events; on a reconnect read what came after the newest.
async function load() {
  const url = newest ? `/api/events?after=${newest}&limit=${MAX_ROWS}${deviceQuery}` : `/api/events?limit=${PAGE}${deviceQuery}`;
  const { ok, body } = await getJSON(url);
  if (!ok || !body || !Array.isArray(body.events)) throw new Error("events unavailable");
  if (newest && body.events.length >= MAX_ROWS) {
    // Too much was missed to splice in: start over from the most recent page.
    tbody.replaceChildren();
    shown.clear();
    newest = 0;
    return load();
  }
  const catchingUp = newest > 0;
  for (const event of body.events) add(event, catchingUp);
  refreshEmpty();
}

follow(`/events/stream${device ? "?device=" + encodeURIComponent(device) : ""}`, {
  onOpen: load,
  onEvent: (event) => {
    add(event, true);
    refreshEmpty();
  },
});
