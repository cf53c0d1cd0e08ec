// The device page's Availability section (§13): 24 h / 7 d / 30 d / 90 d and a strip of the last 30 days'
// outages and incidents, read from GET /api/devices/{id}/history. It is history, apart from the Active alerts
// section (the current state, never a log); the episodes are listed on the device's history page.
import { deviceApi, getJSON } from "./console.js";
import { drawStrip, pageZone, percent, ratioHealth, zonedFormat } from "./history_view.js";

const section = document.getElementById("availability");
const deviceId = document.getElementById("device").dataset.deviceId;
const format = zonedFormat(pageZone());
const REREAD_MS = 60000;
const PERIODS = ["24h", "7d", "30d", "90d"];

function show(history) {
  for (const key of PERIODS) {
    const ratio = history.periods ? history.periods[key] : null;
    const node = document.getElementById(`avail-${key}`);
    node.textContent = percent(ratio);
    node.dataset.health = ratioHealth(ratio);
  }
  drawStrip(document.getElementById("avail-strip"), history.episodes || [], Date.parse(history.from), Date.parse(history.to), format);
  section.dataset.state = "shown";
  section.dataset.episodes = String((history.episodes || []).length);
}

async function load() {
  const { ok, status, body } = await getJSON(deviceApi(deviceId, "/history"));
  if (ok && body) show(body);
  else if (status === 404) section.dataset.state = "unknown"; // registered, never reported: nothing to tell yet
}

// A device never seen has no history (its 404 would be logged by the browser): read once the page knows it.
function known() {
  return section.dataset.known === "yes" || document.getElementById("device").dataset.state === "known";
}

async function refresh() {
  if (!known() || document.visibilityState !== "visible") return;
  try {
    await load();
  } catch {
    section.dataset.state = "error";
  }
}

refresh();
setInterval(refresh, REREAD_MS);
