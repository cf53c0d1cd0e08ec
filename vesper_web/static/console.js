// Shared helpers for the console pages: DOM building, time display, badges, event rows; and, from
// http.js and live.js, the API requests and the live stream (re-exported: pages import one module).
//
// Every string that came from a device (ids, subsystems, messages, melody uids, info types) or an
// operator (names, sites, notes, tags) reaches the page through textContent or a text node, never
// through HTML parsing.
import { deviceUrl } from "./http.js";

export const HEALTH_LABEL = {
  ok: "ok",
  warning: "warning",
  critical: "critical",
  offline: "offline",
  unknown: "unknown",
};

import { EVENT_TYPES } from "./rules.js";

export { STATE_RANK, STATE_SEVERITY } from "./rules.js";
export { deviceApi, deviceUrl, getJSON, nextCursor, sendJSON, shared, toSignIn } from "./http.js";
export { coalescing, follow, throttled } from "./live.js";

// --- roles (§14) ------------------------------------------------------------------------------

// The roles in order, each able to do all the ones before it can (shared/accounts.py's ROLES; a test keeps them equal).
export const ROLES = ["viewer", "operator", "admin"];

// True when the signed-in role (base.html's body data-role) includes `needed`: whether to offer a control at all.
// The server's 403 stays the guard; console.css hides .needs-operator and .needs-admin controls the same way.
export function may(needed, role = document.body.dataset.role) {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed) && ROLES.includes(needed);
}

// Build an element. `props`: className, text, dataset, attrs; children are nodes or strings.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.text !== undefined && props.text !== null) node.textContent = String(props.text);
  for (const [key, value] of Object.entries(props.dataset || {})) {
    if (value !== undefined && value !== null) node.dataset[key] = String(value);
  }
  for (const [key, value] of Object.entries(props.attrs || {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// --- time ------------------------------------------------------------------------------------

export function relativeTime(iso, now = Date.now()) {
  if (!iso) return "never";
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return "–";
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 2) return "just now";
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} d ago`;
}

// One time format on every page (§12): the browser's locale, its own 12 or 24 hour clock; the day
// is added when it is not today. Every page formats through formatTime, never a Date method of its own.
const clockFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const hhmmFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

// An instant (ISO text, a Date or ms) as "14:05:03" today, "Mar 3 14:05:03" on another day (without
// seconds when asked); "–" for nothing or nonsense.
export function formatTime(when, { seconds = true } = {}) {
  if (when === null || when === undefined || when === "") return "–";
  const d = new Date(when);
  if (Number.isNaN(d.getTime())) return "–";
  const clock = (seconds ? clockFmt : hhmmFmt).format(d);
  return new Date().toDateString() === d.toDateString() ? clock : `${dateFmt.format(d)} ${clock}`;
}

export function clockTime(iso) {
  return formatTime(iso);
}

// "14:05" today, "Mar 3 14:05" on another day.
export function shortTime(iso) {
  return formatTime(iso, { seconds: false });
}

export function fullTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : fullFmt.format(d);
}

// Point a <time> element at an instant; class "rel" keeps it ticking as "12 s ago".
export function setTime(node, iso, relative = true) {
  if (iso) node.setAttribute("datetime", iso);
  else node.removeAttribute("datetime");
  node.title = fullTime(iso);
  node.classList.toggle("rel", relative);
  node.textContent = relative ? relativeTime(iso) : clockTime(iso);
  return node;
}

export function timeEl(iso, relative = true) {
  return setTime(document.createElement("time"), iso, relative);
}

function tickClocks() {
  const now = Date.now();
  for (const node of document.querySelectorAll("time.rel:not(.full)")) {
    const text = relativeTime(node.getAttribute("datetime"), now);
    if (node.textContent !== text) node.textContent = text;
  }
}

// A tap (or click) on a time shows its full date and time, and a second tap its short form again:
// a phone has no hover for the title. A time inside a link is left to the link.
document.addEventListener("click", (event) => {
  const node = event.target instanceof Element ? event.target.closest("time[datetime]") : null;
  if (!node || node.closest("a")) return;
  const full = node.classList.toggle("full");
  const iso = node.getAttribute("datetime");
  if (full) node.textContent = fullTime(iso);
  else node.textContent = node.classList.contains("rel") ? relativeTime(iso) : clockTime(iso);
});

setInterval(tickClocks, 1000);

// --- ids -------------------------------------------------------------------------------------

// Ids shorten with an ellipsis (console.css); the whole id is the title (hover) of any that is cut,
// and a tap on one that is not a link shows it whole (a link's tap opens the device, which shows it).
export const ID_SELECTOR = ".c-id a.mono, .c-source a.mono, .device-title > .mono, .matcher .mono, h1 .subtle .mono, .only-subsystem .mono, .id";

function idAt(event) {
  return event.target instanceof Element ? event.target.closest(ID_SELECTOR) : null;
}

function titleIfCut(event) {
  const node = idAt(event);
  if (node && !node.title && node.scrollWidth > node.clientWidth) node.title = node.textContent;
}

document.addEventListener("pointerover", titleIfCut);
document.addEventListener("focusin", titleIfCut);
document.addEventListener("click", (event) => {
  const node = idAt(event);
  if (node && !node.closest("a") && (node.classList.contains("whole") || node.scrollWidth > node.clientWidth)) node.classList.toggle("whole");
});

// --- badges ----------------------------------------------------------------------------------

export function dot(health) {
  const h = HEALTH_LABEL[health] ? health : "unknown";
  return el("span", { className: "dot", dataset: { health: h }, attrs: { title: HEALTH_LABEL[h], "aria-hidden": "true" } });
}

export function healthBadge(health) {
  const h = HEALTH_LABEL[health] ? health : "unknown";
  return el("span", { className: "badge", dataset: { health: h }, text: HEALTH_LABEL[h] });
}

export function playbackText(playback) {
  if (!playback || !playback.active) return null;
  return playback.melody_uid ? String(playback.melody_uid) : "playing";
}

export function playbackEl(playback) {
  const melody = playbackText(playback);
  if (melody === null) return el("span", { className: "muted", text: "idle" });
  return el("span", { className: "playing" }, el("span", { className: "play-icon", attrs: { "aria-hidden": "true" } }), el("span", { className: "mono", text: melody }));
}

// --- events ----------------------------------------------------------------------------------

// Each type's label and words come from the server (shared/vocabulary.py), as notifications' do.
export const TYPE_LABEL = Object.freeze(Object.fromEntries(Object.entries(EVENT_TYPES).map(([type, t]) => [type, t.label])));

function text(value) {
  return value === null || value === undefined ? "" : String(value);
}

// A payload value as its words show it: {name}, {name:time} or {name:json}.
function shown(value, form) {
  if (form === "time") return clockTime(value);
  return form === "json" ? JSON.stringify(value) : text(value);
}

// One part of the words with its fields filled in, or null when one is missing (null or empty).
function fill(part, payload) {
  let missing = false;
  const filled = part.replace(/\{(\w+)(?::(\w+))?\}/g, (_, name, form) => {
    const value = Object.hasOwn(payload, name) ? payload[name] : null;
    if (value === null || value === undefined || value === "") missing = true;
    return missing ? "" : shown(value, form || "");
  });
  return missing ? null : filled;
}

// The words rendered as shared/vocabulary.py's render(): the first "|" choice whose fields are all
// there, a "[...]" part left out when one of its fields is not.
export function renderWords(words, payload) {
  for (const choice of words.split("|")) {
    const filled = choice.split(/\[([^\]]*)\]/).map((part) => fill(part, payload));
    if (filled.every((part, i) => i % 2 === 1 || part !== null)) return filled.map((part) => part ?? "").join("");
  }
  return "";
}

// One plain-text line describing an event (device strings stay strings).
export function describeEvent(event) {
  const p = event.payload && typeof event.payload === "object" ? event.payload : {};
  const known = Object.hasOwn(EVENT_TYPES, event.type) ? EVENT_TYPES[event.type] : null;
  return known ? renderWords(known.words, p) : JSON.stringify(p);
}

// A timeline row: time, severity, device (optional), event type, details.
export function eventRow(event, { withDevice = true } = {}) {
  const severity = ["info", "warning", "critical"].includes(event.severity) ? event.severity : "info";
  const cells = [
    el("td", { className: "c-time" }, timeEl(event.ts, false)),
    el("td", { className: "c-sev" }, el("span", { className: "sev", dataset: { severity }, text: severity })),
  ];
  if (withDevice) {
    cells.push(el("td", { className: "c-source" }, el("a", { className: "mono", attrs: { href: deviceUrl(text(event.source_id)) }, text: event.source_id })));
  }
  cells.push(
    el("td", { className: "c-type", text: TYPE_LABEL[event.type] || text(event.type) }),
    // The type is repeated inside the details for narrow screens, where its own column is hidden.
    el("td", { className: "c-detail" }, el("span", { className: "type-inline", text: TYPE_LABEL[event.type] || text(event.type) }), describeEvent(event)),
  );
  return el("tr", { className: "ev", dataset: { eventId: event.id, severity, type: event.type } }, ...cells);
}
