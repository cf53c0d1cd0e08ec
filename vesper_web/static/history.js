// A device's history page (§13): its episodes over a window of whole days (from the URL, default the last 30
// days), and its availability over that window, read from GET /api/devices/{id}/history; times in the zone
// the page names (history.timezone).
import { deviceApi, el, getJSON } from "./console.js";
import { duration, episodeClass, pageZone, percent, ratioHealth, windowFromUrl, zonedFormat, zonedTime } from "./history_view.js";

const root = document.getElementById("history");
const deviceId = root.dataset.deviceId;
const format = zonedFormat(pageZone());
const $ = (id) => document.getElementById(id);
function text(value) {
  return value === null || value === undefined ? "" : String(value);
}

function episodeRow(e) {
  const ack = e.acknowledged ? el("span", {}, text(e.acknowledged.by), " ", zonedTime(e.acknowledged.at, format)) : el("span", { className: "muted", text: e.kind === "incident" ? "no" : "–" });
  return el(
    "tr",
    { className: "episode", dataset: { kind: e.kind, episodeId: e.id, worst: e.worst, open: e.ended ? "no" : "yes" } },
    el("td", { className: "c-kind" }, el("span", { className: `ep-key ${episodeClass(e)}`, attrs: { "aria-hidden": "true" } }), e.kind),
    el("td", { className: "c-subsystem mono", text: e.subsystem ?? "" }),
    el("td", { className: "c-start", dataset: { label: "from" } }, zonedTime(e.started, format)),
    el("td", { className: "c-end", dataset: { label: "to" } }, zonedTime(e.ended, format, "open")),
    el("td", { className: "c-duration", dataset: { label: "for" }, text: duration(e.duration_s) }),
    el("td", { className: "c-worst", dataset: { label: "worst" }, text: text(e.worst) }),
    el("td", { className: "c-changes", dataset: { label: "changes" }, text: text(e.changes) }),
    el("td", { className: "c-ack", dataset: { label: "acknowledged" } }, ack),
    el("td", { className: "c-silenced", text: e.silenced ? "silenced" : "" }),
  );
}

function showAvailability(history) {
  const a = history.availability || {};
  $("win-ratio").textContent = percent(a.ratio);
  $("win-ratio").dataset.health = ratioHealth(a.ratio);
  $("win-down").textContent = duration(a.down_s);
  $("win-outages").textContent = text(a.outages);
  $("win-incidents").textContent = text(a.incidents);
  $("win-counted").textContent = duration(a.counted_s);
  $("win-silenced").textContent = duration(a.silenced_s);
  $("win-unknown").textContent = duration(a.unknown_s);
  $("window-shown").textContent = `${format(history.from)} – ${format(history.to)}`;
  $("history-since").hidden = !history.history_since;
  if (history.history_since) $("history-since").textContent = `History knows from ${format(history.history_since)}; before it the time is unknown.`;
}

function show(history) {
  showAvailability(history);
  const episodes = history.episodes || [];
  $("episode-rows").replaceChildren(...episodes.map(episodeRow));
  $("episodes-empty").textContent = "No outages or incidents in this window";
  $("episodes-empty").hidden = episodes.length > 0;
  $("episodes-truncated").hidden = !history.truncated;
  root.dataset.state = "shown";
}

function fail(message) {
  $("history-error").textContent = message;
  $("history-error").hidden = false;
  $("episodes-empty").textContent = "";
  root.dataset.state = "error";
}

async function load() {
  const { query, error } = windowFromUrl($("window-from"), $("window-to"));
  if (error) return fail(error);
  const suffix = query.toString() ? `/history?${query}` : "/history";
  const { ok, status, body } = await getJSON(deviceApi(deviceId, suffix));
  if (ok && body) return show(body);
  fail(status === 404 ? "This device has never been seen." : (body && body.error) || `History unavailable (HTTP ${status})`);
}

load().catch(() => fail("History unavailable: the console is unreachable"));
