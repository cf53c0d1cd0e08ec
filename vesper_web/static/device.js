// Device detail: the current alert set (not a log), liveness, playback, a health-check button.
import {
  HEALTH_LABEL,
  STATE_RANK,
  STATE_SEVERITY,
  coalescing,
  deviceApi,
  el,
  eventRow,
  follow,
  getJSON,
  playbackEl,
  setTime,
  timeEl,
  toSignIn,
} from "./console.js";

const root = document.getElementById("device");
const deviceId = root.dataset.deviceId;
const $ = (id) => document.getElementById(id);
const MAX_EVENTS = 25;

const alerts = new Map(); // subsystem -> {subsystem, state, message, updated_at}
const eventIds = new Set();
let seq = 0; // numbered reads and local changes: an answer older than what is shown is dropped
let shownSeq = 0;

// --- active alerts ---------------------------------------------------------------------------

function severityOf(state) {
  return STATE_SEVERITY[state] ?? "critical";
}

function renderAlerts() {
  const list = $("alert-list");
  const sorted = [...alerts.values()].sort(
    (a, b) => (STATE_RANK[a.state] ?? 9) - (STATE_RANK[b.state] ?? 9) || (a.subsystem < b.subsystem ? -1 : a.subsystem > b.subsystem ? 1 : 0),
  );
  list.replaceChildren(
    ...sorted.map((alert) =>
      el(
        "li",
        { className: "alert", dataset: { subsystem: alert.subsystem, state: alert.state, severity: severityOf(alert.state) } },
        el("span", { className: "state", dataset: { severity: severityOf(alert.state) }, text: alert.state }),
        el("span", { className: "subsystem", text: alert.subsystem }),
        el("span", { className: alert.message ? "message" : "message muted", text: alert.message || "no message" }),
        el("span", { className: "updated" }, "since ", timeEl(alert.updated_at)),
      ),
    ),
  );
  const known = root.dataset.state === "known";
  $("alert-count").textContent = String(alerts.size);
  $("alert-count").dataset.health = sorted.length ? severityOf(sorted[0].state) : known ? "ok" : "unknown";
  // "No active alerts" is a health statement: only make it about a device that exists.
  $("no-alerts").textContent = known ? "No active alerts" : "Nothing reported yet";
  $("no-alerts").classList.toggle("ok-text", known);
  $("no-alerts").hidden = alerts.size > 0;
}

function setAlerts(list) {
  alerts.clear();
  for (const alert of list || []) alerts.set(alert.subsystem, alert);
  renderAlerts();
}

// --- device facts ----------------------------------------------------------------------------

function showUnknown() {
  root.dataset.state = "unknown";
  $("device-unknown").hidden = false;
  $("device-dot").dataset.health = "unknown";
  $("device-health").dataset.health = "unknown";
  $("device-health").textContent = "never seen";
  $("health-check").disabled = true;
  setAlerts([]);
}

function showDevice(device) {
  const health = HEALTH_LABEL[device.health] ? device.health : "unknown";
  root.dataset.state = "known";
  root.dataset.health = health;
  $("device-unknown").hidden = true;
  $("device-dot").dataset.health = health;
  $("device-health").dataset.health = health;
  $("device-health").textContent = HEALTH_LABEL[health];
  $("health-check").disabled = false;
  $("fact-liveness").dataset.liveness = device.liveness;
  $("fact-liveness").textContent = device.liveness;
  setTime($("fact-last-seen"), device.last_seen);
  setTime($("fact-first-seen"), device.first_seen);
  $("fact-playback").replaceChildren(playbackEl(device.playback));
  $("fact-heartbeat").textContent = device.last_heartbeat ? JSON.stringify(device.last_heartbeat, null, 2) : "none received";
  setAlerts(device.alerts);
}

// True once the device exists: until then the device list is asked, because a 404 from the
// device endpoint would be logged by the browser as an error on every reconnect.
let known = root.dataset.state !== "unknown";

const refreshDevice = coalescing(async () => {
  const readSeq = ++seq;
  if (!known) {
    const list = await getJSON("/api/devices");
    if (!list.ok || !Array.isArray(list.body)) throw new Error(`device list read failed (${list.status})`);
    known = list.body.some((device) => device.id === deviceId);
    if (!known) {
      if (readSeq >= shownSeq) showUnknown();
      return;
    }
  }
  const { status, ok, body } = await getJSON(deviceApi(deviceId));
  if (readSeq < shownSeq) return;
  if (ok && body) {
    shownSeq = readSeq;
    showDevice(body);
  } else if (status === 404) {
    known = false;
    shownSeq = readSeq;
    showUnknown();
  } else {
    throw new Error(`device read failed (${status})`);
  }
});

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

function applyEvent(event) {
  if (event.source_id !== deviceId) return;
  const p = event.payload || {};
  // Apply alert changes at once (a CLEARED entry disappears now), then re-read the truth.
  if (event.type === "alert" && typeof p.subsystem === "string") {
    shownSeq = ++seq;
    alerts.set(p.subsystem, { subsystem: p.subsystem, state: p.state, message: p.message, updated_at: event.ts });
    renderAlerts();
  } else if (event.type === "alert_cleared" && typeof p.subsystem === "string") {
    shownSeq = ++seq;
    alerts.delete(p.subsystem);
    renderAlerts();
  }
  if (typeof event.id === "number") addEvent(event);
  refreshDevice(deviceId);
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
    let [kind, message] = RESULT[response.status] || ["error", `Failed: HTTP ${response.status}`];
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
    button.disabled = root.dataset.state !== "known";
  }
});

follow(`/events/stream?device=${encodeURIComponent(deviceId)}`, {
  onOpen: () => Promise.all([refreshDevice(deviceId), loadEvents()]),
  onEvent: applyEvent,
});
