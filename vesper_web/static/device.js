// Device detail: the current alert set (not a log) with each alert's lifecycle and its acknowledge
// and silence controls (alert_list.js, alert_actions.js), liveness, playback, the registry fields
// and their form (registry_form.js), a health-check button. Events are applied at once; the device
// is re-read at most once a second however fast they come.
import {
  HEALTH_LABEL,
  STATE_RANK,
  deviceApi,
  eventRow,
  follow,
  getJSON,
  may,
  nextCursor,
  setTime,
  throttled,
  toSignIn,
} from "./console.js";
import { failure } from "./alert_actions.js";
import { alertList as makeAlertList, severityOf } from "./alert_list.js";
import { playbackShown } from "./device_rows.js";
import { initRegistryForm, showRegistry } from "./registry_form.js";

const root = document.getElementById("device");
const deviceId = root.dataset.deviceId;
const $ = (id) => document.getElementById(id);
const MAX_EVENTS = 25;
const LOOKUP_LIMIT = 100;
const REREAD_MS = 1000;
const IDLE_REREAD_MS = 15000; // heartbeats are no events: keep "last seen" roughly current
const FLAPPING_REREAD_MS = 3000;

const alerts = new Map(); // subsystem -> the API's alert object (state, message, lifecycle)
const eventIds = new Set();
let seq = 0; // numbered reads and local changes: an answer older than what is shown is dropped
let shownSeq = 0;
let shown = null; // the device as last shown; null while it is neither seen nor registered

// --- active alerts ---------------------------------------------------------------------------

function worstAlert() {
  let worst = null;
  for (const alert of alerts.values()) if (!worst || (STATE_RANK[alert.state] ?? 9) < (STATE_RANK[worst.state] ?? 9)) worst = alert;
  return worst;
}

function setHealth(health, label = HEALTH_LABEL[health]) {
  root.dataset.health = health;
  $("device-dot").dataset.health = health;
  $("device-health").dataset.health = health;
  $("device-health").textContent = label;
}

function renderAlerts() {
  const sorted = [...alerts.values()].sort(
    (a, b) => (STATE_RANK[a.state] ?? 9) - (STATE_RANK[b.state] ?? 9) || (a.subsystem < b.subsystem ? -1 : a.subsystem > b.subsystem ? 1 : 0),
  );
  alertList.render(sorted);
  const known = root.dataset.state === "known";
  $("alert-count").textContent = String(alerts.size);
  $("alert-count").dataset.health = sorted.length ? severityOf(sorted[0].state) : known ? "ok" : "unknown";
  // "No active alerts" is a health statement: only make it about a device that exists.
  $("no-alerts").textContent = known ? "No active alerts" : "Nothing reported yet";
  $("no-alerts").classList.toggle("ok-text", known);
  $("no-alerts").hidden = alerts.size > 0;
}

// An alert as an answer of the API gave it (an acknowledgement's), shown before the next re-read.
function showAlert(alert) {
  shownSeq = ++seq;
  alerts.set(alert.subsystem, alert);
  renderAlerts();
}

function setAlerts(list) {
  alerts.clear();
  for (const alert of list || []) alerts.set(alert.subsystem, alert);
  renderAlerts();
}

const alertList = makeAlertList($("alert-list"), { deviceId, onAcked: showAlert, onChanged: () => askRefresh() });

// --- device facts ----------------------------------------------------------------------------

function showUnknown() {
  shown = null;
  root.dataset.state = "unknown";
  $("device-unknown").hidden = false;
  $("device-registered").hidden = true;
  setHealth("unknown", "never seen");
  $("health-check").disabled = true;
  showRegistry({});
  setAlerts([]);
}

// A device the API knows: one that reported, or one registered that never did (first_seen null).
function showDevice(device) {
  shown = device;
  const reported = device.first_seen !== null && device.first_seen !== undefined;
  root.dataset.state = reported ? "known" : "registered";
  $("device-unknown").hidden = true;
  $("device-registered").hidden = reported;
  setHealth(Object.hasOwn(HEALTH_LABEL, device.health) ? device.health : "unknown");
  $("health-check").disabled = !reported || !may("operator"); // the API refuses it until the device has reported
  showRegistry(device);
  $("fact-liveness").dataset.liveness = device.liveness;
  $("fact-liveness").textContent = device.liveness;
  setTime($("fact-last-seen"), device.last_seen);
  setTime($("fact-first-seen"), device.first_seen);
  $("fact-playback").replaceChildren(playbackShown(device));
  if ($("fact-firmware")) $("fact-firmware").textContent = device.firmware ?? "–";
  $("fact-heartbeat").textContent = device.last_heartbeat ? JSON.stringify(device.last_heartbeat, null, 2) : "none received";
  setAlerts(device.alerts);
}

// True once the API knows the device (reported or registered). Until then the list is searched
// for its id instead, because a 404 from the device endpoint would be logged by the browser as an
// error on every reconnect. The template knows only "reported"; a registered device is found here.
let exists = root.dataset.state !== "unknown";

// true: the list has it; false: it has not; null: too many others match the id to tell.
async function lookUp() {
  const { ok, status, body, headers } = await getJSON(`/api/devices?q=${encodeURIComponent(deviceId)}&sort=id&limit=${LOOKUP_LIMIT}`);
  if (!ok || !Array.isArray(body)) throw new Error(`device list read failed (${status})`);
  if (body.some((device) => device && device.id === deviceId)) return true;
  return nextCursor(headers.get("Link")) ? null : false;
}

async function refreshDevice() {
  const readSeq = ++seq;
  if (!exists) {
    const found = await lookUp();
    if (found === false) {
      if (readSeq >= shownSeq) {
        shownSeq = readSeq;
        showUnknown();
      }
      return;
    }
    exists = true;
  }
  const { status, ok, body } = await getJSON(deviceApi(deviceId));
  if (readSeq < shownSeq) return;
  if (ok && body) {
    shownSeq = readSeq;
    showDevice(body);
  } else if (status === 404) {
    exists = false;
    shownSeq = readSeq;
    showUnknown();
  } else {
    throw new Error(`device read failed (${status})`);
  }
}

const askRefresh = throttled(refreshDevice, REREAD_MS);
setInterval(() => document.visibilityState === "visible" && askRefresh(), IDLE_REREAD_MS);
// A flapping subsystem's changes make no events (§9), so while one is shown its state is re-read.
const flapping = () => [...alerts.values()].some((alert) => alert.flapping);
setInterval(() => document.visibilityState === "visible" && flapping() && askRefresh(), FLAPPING_REREAD_MS);

// --- recent events ---------------------------------------------------------------------------

function addEvent(event) {
  if (eventIds.has(event.id)) return;
  eventIds.add(event.id);
  const tbody = $("device-events");
  const row = eventRow(event, { withDevice: false });
  const after = [...tbody.children].find((other) => Number(other.dataset.eventId) < event.id);
  tbody.insertBefore(row, after || null);
  while (tbody.children.length > MAX_EVENTS) {
    eventIds.delete(Number(tbody.lastElementChild.dataset.eventId));
    tbody.lastElementChild.remove();
  }
  $("device-events-empty").hidden = true;
}

async function loadEvents() {
  const { ok, body } = await getJSON(`/api/events?device=${encodeURIComponent(deviceId)}&limit=${MAX_EVENTS}`);
  if (!ok || !body || !Array.isArray(body.events)) throw new Error("events unavailable");
  for (const event of body.events) addEvent(event);
  $("device-events-empty").hidden = eventIds.size > 0;
}

// --- live ------------------------------------------------------------------------------------

// What an event changes in the alert it names, at once (null: the alert is gone); the re-read
// that follows brings the rest. A new state makes the alert unacknowledged again (§9).
const ALERT_CHANGE = {
  alert: (alert, p, event) => ({
    flapping: false,
    confirmed: true,
    unconfirmed_since: null,
    silenced_until: null,
    ...alert,
    subsystem: p.subsystem,
    state: p.state,
    message: p.message,
    updated_at: event.ts,
    acknowledged: null,
  }),
  alert_cleared: () => null,
  alert_acknowledged: (alert, p, event) => alert && { ...alert, acknowledged: { by: p.by, at: event.ts, note: p.note ?? null } },
  alert_flapping: (alert) => alert && { ...alert, flapping: true },
  alert_flapping_ended: (alert, p) => (p.state === "CLEARED" ? null : alert && { ...alert, flapping: false }),
};

function applyEvent(event) {
  if (event.source_id !== deviceId) return;
  const p = event.payload || {};
  const change = Object.hasOwn(ALERT_CHANGE, event.type) ? ALERT_CHANGE[event.type] : null;
  if (change && typeof p.subsystem === "string") {
    shownSeq = ++seq;
    const next = change(alerts.get(p.subsystem), p, event);
    if (next) alerts.set(p.subsystem, next);
    else alerts.delete(p.subsystem);
    renderAlerts();
    // The page holds the whole alert set, so an online device's health follows from it.
    if (root.dataset.state === "known" && root.dataset.health !== "offline") {
      const worst = worstAlert();
      setHealth(worst ? severityOf(worst.state) : "ok");
    }
  }
  if (typeof event.id === "number") addEvent(event);
  askRefresh(); // every event of the device, the lifecycle's included, is followed by one re-read
}

// --- health check ----------------------------------------------------------------------------

const RESULT = {
  202: ["ok", "Health check sent; the device answers through its alerts"],
  404: ["error", "Unknown device: it has never been seen"],
  503: ["error", "Broker unavailable: the command was not sent"],
};

$("health-check").addEventListener("click", async () => {
  const button = $("health-check");
  const result = $("health-check-result");
  button.disabled = true;
  result.dataset.result = "pending";
  result.textContent = "Sending…";
  try {
    const response = await fetch(deviceApi(deviceId, "/health-check"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Requested-With": "vesper-console", Accept: "application/json" },
    });
    if (response.status === 401) {
      toSignIn();
      return;
    }
    const body = (response.headers.get("Content-Type") || "").includes("json") ? await response.json() : null;
    let [kind, message] = RESULT[response.status] || ["error", failure(response.status, body)]; // a 403 says why
    if (response.status === 429) {
      const wait = Number(response.headers.get("Retry-After")) || 10;
      [kind, message] = ["error", `A health check was sent moments ago; try again in ${wait} s`];
    }
    result.dataset.result = kind;
    result.textContent = message;
  } catch {
    result.dataset.result = "error";
    result.textContent = "Failed: the console is unreachable";
  } finally {
    button.disabled = root.dataset.state !== "known" || !may("operator");
  }
});

initRegistryForm({
  deviceId,
  current: () => shown || {},
  onSaved: (device) => {
    exists = true;
    shownSeq = ++seq;
    showDevice(device);
  },
});

follow(`/events/stream?device=${encodeURIComponent(deviceId)}`, {
  onOpen: () => Promise.all([refreshDevice(), loadEvents()]),
  onEvent: applyEvent,
});
