// The timeline's filters (docs/events.md#reading-the-timeline): read from the page's URL, written back to it,
// turned into GET /api/events's query, and matched against a streamed event where the page can tell.
// URL: /events?type=A&type=B&severity=critical&device=X&site=S&tag=T&playback=1&before=ID
import { TYPE_LABEL, el } from "./console.js";

export const PLAYBACK = ["playback_started", "playback_stopped"];
const SEVERITIES = ["info", "warning", "critical"];
const TEXT = ["device", "site", "tag"];

// The filter the URL's query string asks for (unknown values are kept: the API names them in a 400).
export function fromSearch(search) {
  const params = new URLSearchParams(search);
  const list = (name) => [...new Set(params.getAll(name).flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean))];
  const filter = { types: list("type"), severities: list("severity"), playback: params.get("playback") === "1" };
  for (const name of TEXT) filter[name] = (params.get(name) || "").trim();
  const before = Number(params.get("before"));
  filter.before = Number.isSafeInteger(before) && before > 0 ? before : 0;
  return filter;
}

// Playback is hidden unless asked: by the checkbox, or by naming a playback type.
function hidesPlayback(filter) {
  return !filter.playback && filter.types.length === 0;
}

// The filter as a query string (without before/after): for the URL, or for the API (`api`: playback as not_type).
export function query(filter, { api = false } = {}) {
  const params = new URLSearchParams();
  for (const type of filter.types) params.append("type", type);
  for (const severity of filter.severities) params.append("severity", severity);
  for (const name of TEXT) if (filter[name]) params.set(name, filter[name]);
  if (api && hidesPlayback(filter)) params.set("not_type", PLAYBACK.join(","));
  if (!api && filter.playback) params.set("playback", "1");
  return params;
}

// The page's URL for this filter (and a before=ID cursor, or none: the newest, live).
export function pageUrl(filter, before = 0) {
  const params = query(filter);
  if (before) params.set("before", String(before));
  const text = params.toString();
  return text ? `/events?${text}` : "/events";
}

// Whether a streamed event passes; null when the page cannot tell (site and tag are the registry's: ask the API).
export function matches(filter, event) {
  if (filter.types.length && !filter.types.includes(event.type)) return false;
  if (hidesPlayback(filter) && PLAYBACK.includes(event.type)) return false;
  if (filter.severities.length && !filter.severities.includes(event.severity)) return false;
  if (filter.device && event.source_id !== filter.device) return false;
  return filter.site || filter.tag ? null : true;
}

// Fill the form from the filter; on submit, go to the URL of what it says (empty fields left out).
export function bindForm(form, filter) {
  const choices = form.querySelector("#type-choices");
  for (const [type, label] of Object.entries(TYPE_LABEL)) {
    const box = el("input", { attrs: { type: "checkbox", name: "type", value: type } });
    box.checked = filter.types.includes(type);
    choices.append(el("label", { dataset: { type } }, box, ` ${label}`));
  }
  if (filter.types.length) form.querySelector("#type-filter").open = true;
  for (const box of form.querySelectorAll('input[name="severity"]')) box.checked = filter.severities.includes(box.value);
  for (const name of TEXT) form.elements[name].value = filter[name];
  form.elements.playback.checked = filter.playback;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const chosen = { types: data.getAll("type"), severities: data.getAll("severity").filter((s) => SEVERITIES.includes(s)), playback: data.get("playback") === "1" };
    for (const name of TEXT) chosen[name] = String(data.get(name) || "").trim();
    location.assign(pageUrl(chosen));
  });
}
