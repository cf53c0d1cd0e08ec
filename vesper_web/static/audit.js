// The audit log (§14): a page of GET /api/audit by the URL's filters, newest first; "Older" follows the API's
// Link cursor, the CSV link carries the same filters. Times in the browser's locale (console.js's formatTime);
// the filters' times are the browser's zone too, sent to the API as ISO-8601 with its offset.
//
// Every value shown (actors, the names a failed sign-in tried, paths, details) is untrusted: textContent only.
import { el, getJSON, nextCursor, timeEl } from "./console.js";

const PAGE = 100;
const FILTERS = ["from", "to", "actor", "action"];
const $ = (id) => document.getElementById(id);
const tbody = $("audit-rows");
const empty = $("audit-empty");
const given = new URLSearchParams(location.search);

function text(value) {
  return value === null || value === undefined ? "" : String(value);
}

// A datetime-local value (or any time Date reads) as ISO-8601 UTC; null when it is not a time.
function instant(value) {
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

// The API's query for the URL's filters, or an error naming the one that is not a time.
function apiFilters() {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const value = given.get(name);
    if (!value) continue;
    if (name === "from" || name === "to") {
      const iso = instant(value);
      if (!iso) return { error: `${name}: not a date and time` };
      params.set(name, iso);
    } else params.set(name, value);
  }
  return { params };
}

function statusHealth(status) {
  if (status < 400) return "ok";
  return status < 500 ? "warning" : "critical";
}

function row(entry) {
  const anonymous = entry.kind === "anonymous";
  return el(
    "tr",
    { className: "audit-entry", dataset: { entryId: entry.id, actor: entry.actor, action: entry.action, status: entry.status } },
    el("td", { className: "c-time" }, timeEl(entry.at, false)),
    el("td", { className: "c-actor" }, el("span", { className: "mono", text: entry.actor }), " ", el("span", { className: anonymous ? "muted" : "subtle", text: text(entry.kind) })),
    el("td", { className: "c-role", text: text(entry.role) || "–" }),
    el("td", { className: "c-address mono", text: text(entry.address) }),
    el("td", { className: "c-action" }, el("span", { className: "muted", text: `${text(entry.method)} ` }), el("span", { className: "mono", text: entry.action })),
    el("td", { className: "c-target mono", text: text(entry.target) }),
    el("td", { className: "c-status" }, el("span", { className: "badge", dataset: { health: statusHealth(Number(entry.status)) }, text: text(entry.status) })),
    el("td", { className: entry.detail ? "c-detail" : "c-detail muted", text: text(entry.detail) || "–" }),
  );
}

function fail(message) {
  $("audit-error").textContent = message;
  $("audit-error").hidden = false;
  empty.textContent = "";
  tbody.closest("table").dataset.state = "error";
}

// This page's URL with a cursor (the next page) or without one (the newest).
function pageUrl(cursor) {
  const params = new URLSearchParams();
  for (const name of FILTERS) if (given.get(name)) params.set(name, given.get(name));
  if (cursor) params.set("cursor", cursor);
  return params.toString() ? `/audit?${params}` : "/audit";
}

function fillForm() {
  for (const name of FILTERS) {
    const input = $(`audit-${name}`);
    if (input && given.get(name)) input.value = given.get(name);
  }
}

async function load() {
  fillForm();
  const { params, error } = apiFilters();
  if (error) return fail(error);
  $("audit-csv").href = `/api/audit?${new URLSearchParams([...params, ["format", "csv"]])}`;
  const cursor = given.get("cursor");
  $("audit-past").hidden = !cursor;
  $("audit-newest").href = pageUrl(null);
  const query = new URLSearchParams([...params, ["limit", String(PAGE)]]);
  if (cursor) query.set("cursor", cursor);
  const { ok, status, body, headers } = await getJSON(`/api/audit?${query}`);
  if (!ok || !Array.isArray(body)) return fail((body && body.error) || `The audit log is unavailable (HTTP ${status})`);
  tbody.replaceChildren(...body.map(row));
  empty.hidden = body.length > 0;
  empty.textContent = params.toString() ? "No entries match these filters" : "No entries yet";
  const next = nextCursor(headers.get("Link"));
  $("older").hidden = !next;
  if (next) $("older").href = pageUrl(next);
  $("oldest").hidden = Boolean(next) || body.length === 0;
  tbody.closest("table").dataset.state = "shown";
}

load().catch((error) => {
  if (error.message !== "signed out") fail("The audit log is unavailable: the console is unreachable");
});
