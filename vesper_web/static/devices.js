// Device list: one row per device, re-read from the API whenever an event names the device.
import { coalescing, deviceApi, deviceUrl, dot, el, follow, getJSON, healthBadge, playbackEl, timeEl } from "./console.js";

const tbody = document.getElementById("device-rows");
const empty = document.getElementById("devices-empty");
const search = document.getElementById("device-filter");
const chips = [...document.querySelectorAll("#fleet-summary .chip")];

const rows = new Map(); // device id -> <tr>
const appliedSeq = new Map(); // device id -> sequence number of the read its row shows
let seq = 0; // reads are numbered as they start, so an older answer never overwrites a newer one
let healthFilter = "";
let loaded = false;

function buildRow(device) {
  const alerts = Number(device.active_alerts) || 0;
  return el(
    "tr",
    { dataset: { deviceId: device.id, health: device.health } },
    el("td", { className: "c-dot" }, dot(device.health)),
    el("td", { className: "c-id" }, el("a", { className: "mono", attrs: { href: deviceUrl(device.id) }, text: device.id })),
    el("td", { className: "c-health" }, healthBadge(device.health)),
    el("td", { className: "c-liveness" }, el("span", { className: "liveness", dataset: { liveness: device.liveness }, text: device.liveness })),
    el("td", { className: "c-seen" }, timeEl(device.last_seen)),
    el("td", { className: "c-playback" }, playbackEl(device.playback)),
    el("td", { className: "c-alerts" }, el("span", { className: alerts ? "count-pill" : "muted", dataset: { health: device.health }, text: alerts })),
  );
}

function place(row, id) {
  for (const other of tbody.children) {
    if (other.dataset.deviceId > id) {
      tbody.insertBefore(row, other);
      return;
    }
  }
  tbody.append(row);
}

function applyDevice(device, readSeq) {
  if (!device || typeof device.id !== "string") return;
  if ((appliedSeq.get(device.id) || 0) > readSeq) return;
  appliedSeq.set(device.id, readSeq);
  const row = buildRow(device);
  const old = rows.get(device.id);
  if (old) {
    if (old.dataset.health !== device.health) row.classList.add("changed");
    old.replaceWith(row);
  } else {
    if (loaded) row.classList.add("changed");
    place(row, device.id);
  }
  rows.set(device.id, row);
  filterRow(row);
}

function filterRow(row) {
  const needle = search.value.trim().toLowerCase();
  row.hidden = (healthFilter && row.dataset.health !== healthFilter) || (needle && !row.dataset.deviceId.toLowerCase().includes(needle));
}

function refreshView() {
  const counts = { all: rows.size, ok: 0, warning: 0, critical: 0, offline: 0, unknown: 0 };
  for (const row of rows.values()) counts[row.dataset.health] = (counts[row.dataset.health] || 0) + 1;
  for (const node of document.querySelectorAll("#fleet-summary [data-count]")) {
    node.textContent = String(counts[node.dataset.count] || 0);
  }
  const visible = [...rows.values()].some((row) => !row.hidden);
  empty.hidden = visible;
  if (!visible) empty.textContent = rows.size ? "No device matches the filter" : "No devices yet: they appear as soon as they publish";
}

async function loadAll() {
  const readSeq = ++seq;
  const { ok, body } = await getJSON("/api/devices");
  if (!ok || !Array.isArray(body)) throw new Error("device list unavailable");
  const seen = new Set();
  for (const device of body) {
    seen.add(device.id);
    applyDevice(device, readSeq);
  }
  for (const [id, row] of rows) {
    if (!seen.has(id) && (appliedSeq.get(id) || 0) < readSeq) {
      row.remove();
      rows.delete(id);
      appliedSeq.delete(id);
    }
  }
  loaded = true;
  refreshView();
}

const refreshDevice = coalescing(async (id) => {
  const readSeq = ++seq;
  const { ok, body } = await getJSON(deviceApi(id));
  if (ok) {
    applyDevice(body, readSeq);
    refreshView();
  }
});

function setFilter(value) {
  healthFilter = value;
  for (const chip of chips) chip.setAttribute("aria-pressed", String(chip.dataset.filter === value));
  for (const row of rows.values()) filterRow(row);
  refreshView();
}

for (const chip of chips) {
  chip.addEventListener("click", () => setFilter(chip.dataset.filter === healthFilter ? "" : chip.dataset.filter));
}
search.addEventListener("input", () => {
  for (const row of rows.values()) filterRow(row);
  refreshView();
});

follow("/events/stream", {
  onOpen: loadAll,
  onEvent: (event) => {
    if (typeof event.source_id === "string" && event.source_id) refreshDevice(event.source_id);
  },
});
