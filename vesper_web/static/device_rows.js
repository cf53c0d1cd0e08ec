// Rows of the device list: built from a device object, and a device object moved on by one event's
// own content (docs/events.md), so an event changes a row without a request of its own.
//
// Names, sites and tags are operators' text, ids and melody uids devices': all of it reaches the
// page through textContent (el's `text`) and attributes, never through HTML parsing.
import { STATE_RANK, STATE_SEVERITY, deviceUrl, dot, el, healthBadge, playbackEl, timeEl } from "./console.js";

// How bad an alert makes a device: the rank of the worst state of that severity, derived from
// rules.js (critical 0, warning 2). The other healths (ok, unknown, offline) are no alert at all.
const ALERT_RANK = {};
for (const [state, rank] of Object.entries(STATE_RANK)) {
  const health = STATE_SEVERITY[state];
  ALERT_RANK[health] = Math.min(ALERT_RANK[health] ?? Infinity, rank);
}
const alertRank = (health) => (Object.hasOwn(ALERT_RANK, health) ? ALERT_RANK[health] : Infinity);

function worse(health, severity) {
  return alertRank(health) <= alertRank(severity) ? health : severity;
}

function textCell(className, value) {
  const empty = value === null || value === undefined || value === "";
  return el("td", { className: empty ? `${className} muted` : className, text: empty ? "–" : value });
}

// Playback while offline is not known (§12): what was last said may have stopped since.
export function playbackShown(device) {
  if (device.liveness === "offline") return el("span", { className: "muted playback-unknown", text: "unknown (offline)" });
  return playbackEl(device.playback);
}

// What is being handled (§12): acknowledged, silenced (until when), flapping, unconfirmed.
export function markersEl(markers) {
  const m = markers && typeof markers === "object" ? markers : {};
  const n = (key) => Number(m[key]) || 0;
  const parts = [];
  if (n("acknowledged")) parts.push(el("span", { className: "marker", dataset: { marker: "acknowledged" }, text: `${n("acknowledged")} acked` }));
  if (m.silenced_until) parts.push(el("span", { className: "marker", dataset: { marker: "silenced" } }, "silenced until ", timeEl(m.silenced_until, false)));
  else if (n("silenced")) parts.push(el("span", { className: "marker", dataset: { marker: "silenced" }, text: `${n("silenced")} silenced` }));
  if (n("flapping")) parts.push(el("span", { className: "marker", dataset: { marker: "flapping" }, text: "flapping" }));
  if (n("unconfirmed")) parts.push(el("span", { className: "marker", dataset: { marker: "unconfirmed" }, text: `${n("unconfirmed")} unconfirmed` }));
  return parts.length ? el("span", { className: "markers" }, ...parts) : null;
}

function nameCell(device) {
  const tags = Array.isArray(device.tags) ? device.tags : [];
  const cell = textCell("c-name", device.name);
  if (tags.length) cell.append(" ", el("span", { className: "tags" }, ...tags.map((tag) => el("span", { className: "tag", text: tag }))));
  return cell;
}

export function buildRow(device) {
  const alerts = Number(device.active_alerts) || 0;
  return el(
    "tr",
    { dataset: { deviceId: device.id, health: device.health } },
    el("td", { className: "c-dot" }, dot(device.health)),
    el("td", { className: "c-id" }, el("a", { className: "mono", attrs: { href: deviceUrl(device.id) }, text: device.id })),
    nameCell(device),
    textCell("c-site", device.site),
    textCell("c-firmware", device.firmware),
    el("td", { className: "c-health" }, healthBadge(device.health)),
    el("td", { className: "c-liveness" }, el("span", { className: "liveness", dataset: { liveness: device.liveness }, text: device.liveness })),
    el("td", { className: "c-seen" }, timeEl(device.last_seen)),
    el("td", { className: "c-playback" }, playbackShown(device)),
    el("td", { className: "c-alerts" }, el("span", { className: alerts ? "count-pill" : "muted", dataset: { health: device.health }, text: alerts }), markersEl(device.markers)),
  );
}

// What a row shows: two devices with the same signature need no new row.
export function signature(device) {
  const p = device.playback || {};
  return JSON.stringify([device.health, device.liveness, device.last_seen, p.active, p.melody_uid, device.active_alerts, device.name, device.site, device.tags, device.firmware, device.markers]);
}

// A sign of life (any event but device_offline) makes a device online; its health is then ok
// without alerts, and at least warning with some (which one, only a re-read can tell).
function alive(device, ts) {
  const d = { ...device, liveness: "online" };
  if (typeof ts === "string") {
    d.last_seen = ts;
    d.first_seen = d.first_seen || ts;
  }
  if (device.liveness !== "online" || device.health === "offline" || device.health === "unknown") {
    d.health = (Number(d.active_alerts) || 0) > 0 ? worse(device.health, "warning") : "ok";
  }
  return d;
}

// The device after one event from the stream, or the same object when the event says nothing of it.
export function withEvent(device, event) {
  const p = event.payload && typeof event.payload === "object" ? event.payload : {};
  const count = Number(device.active_alerts) || 0;
  switch (event.type) {
    case "device_offline": {
      const markers = device.markers ? { ...device.markers, unconfirmed: count } : device.markers;
      return { ...device, liveness: "offline", health: "offline", markers };
    }
    case "device_online":
      return alive(device, typeof p.last_seen === "string" ? p.last_seen : event.ts);
    case "alert": {
      const d = alive({ ...device, active_alerts: p.previous_state ? count : count + 1 }, event.ts);
      d.health = worse(d.health, Object.hasOwn(STATE_SEVERITY, p.state) ? STATE_SEVERITY[p.state] : "critical");
      return d;
    }
    case "alert_cleared": {
      const d = alive({ ...device, active_alerts: Math.max(0, count - 1) }, event.ts);
      if (d.active_alerts === 0) d.health = "ok";
      return d;
    }
    case "playback_started":
    case "playback_stopped": {
      const d = alive(device, event.ts);
      d.playback = { active: event.type === "playback_started", melody_uid: typeof p.melody_uid === "string" ? p.melody_uid : null };
      return d;
    }
    case "info":
      return alive(device, event.ts);
    default:
      return device;
  }
}
