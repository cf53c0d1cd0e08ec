// Silences (§9): the active and upcoming maintenance windows, a form to add one, "End now" per row.
// The page re-reads the list after its own actions, every 30 s while visible, and on coming back
// to the tab; it does not follow the stream (a silence makes no event).
//
// Comments, matchers and who created a silence are untrusted text: textContent and attributes only.
import { clockTime, deviceUrl, el, fullTime, getJSON, sendJSON, shared, timeEl } from "./console.js";
import { errorField, failure, localToIso } from "./alert_actions.js";

const POLL_MS = 30000;
const FIELDS = ["device", "tag", "subsystem", "starts_at", "ends_at", "comment"];
const $ = (id) => document.getElementById(id);
const tbody = $("silence-rows");
const empty = $("silences-empty");

function result(node, kind, message) {
  node.dataset.result = kind;
  node.textContent = message;
}

// --- the list --------------------------------------------------------------------------------

function matchers(s) {
  const parts = [];
  if (s.device) parts.push(el("span", { className: "matcher" }, "device ", el("a", { className: "mono", attrs: { href: deviceUrl(String(s.device)) }, text: s.device })));
  if (s.tag) parts.push(el("span", { className: "matcher" }, "tag ", el("span", { className: "tag", text: s.tag })));
  if (s.site) parts.push(el("span", { className: "matcher" }, "site ", el("span", { text: s.site })));
  if (s.device_count != null) parts.push(el("span", { className: "matcher", text: `${new Intl.NumberFormat().format(s.device_count)} device${s.device_count === 1 ? "" : "s"}` }));
  if (s.subsystem) parts.push(el("span", { className: "matcher" }, "subsystem ", el("span", { className: "mono", text: s.subsystem })));
  if (parts.length === 0) parts.push(el("span", { className: "matcher fleet", text: "whole fleet" }));
  return parts;
}

function row(s, now) {
  const active = Date.parse(s.starts_at) <= now;
  const end = el("button", { className: "button secondary small end-silence", attrs: { type: "button", "aria-label": `End silence ${s.id} now` }, text: "End now" });
  const outcome = el("span", { className: "action-result", attrs: { role: "status", "aria-live": "polite" } });
  end.addEventListener("click", () => endSilence(s.id, end, outcome));
  return el(
    "tr",
    { className: "silence", dataset: { silenceId: s.id, status: active ? "active" : "scheduled" } },
    el("td", { className: "c-status" }, el("span", { className: "badge", dataset: { health: active ? "offline" : "unknown" }, text: active ? "active" : "scheduled" })),
    el("td", { className: "c-match" }, ...matchers(s)),
    el("td", { className: "c-start" }, timeEl(s.starts_at, false)),
    el("td", { className: "c-end" }, timeEl(s.ends_at, false)),
    el("td", { className: s.comment ? "c-comment" : "c-comment muted", text: s.comment || "–" }),
    el("td", { className: "c-by", attrs: { title: s.created_at ? `created ${fullTime(s.created_at)}` : null }, text: s.created_by || "–" }),
    el("td", { className: "c-action needs-operator" }, end, outcome),
  );
}

async function read() {
  try {
    const { ok, status, body } = await getJSON("/api/silences");
    if (!ok || !body || !Array.isArray(body.silences)) throw new Error(`HTTP ${status}`);
    const now = Date.now();
    tbody.replaceChildren(...body.silences.map((s) => row(s, now)));
    empty.hidden = body.silences.length > 0;
    empty.textContent = "No silences: every alert and outage notifies as configured";
    result($("silences-status"), "ok", `Updated ${clockTime(new Date())}`);
  } catch (error) {
    if (error.message !== "signed out") result($("silences-status"), "error", "Could not read the silences; retrying");
  }
}

// Read the list and replace the table; calls made meanwhile share one request.
const load = shared(read);

async function endSilence(id, button, outcome) {
  button.disabled = true;
  result(outcome, "pending", "Ending…");
  try {
    const { status, body } = await sendJSON("DELETE", `/api/silences/${encodeURIComponent(id)}`);
    if (status === 204 || status === 404) {
      await load(); // 404: it had ended already; either way the list is re-read
      return;
    }
    result(outcome, "error", failure(status, body));
  } catch (error) {
    if (error.message !== "signed out") result(outcome, "error", "Failed: the console is unreachable");
  }
  button.disabled = false;
}

// --- the form --------------------------------------------------------------------------------

function clearErrors() {
  for (const node of document.querySelectorAll("#silence-form .field-error")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const input of document.querySelectorAll("#silence-form [aria-invalid]")) input.removeAttribute("aria-invalid");
}

const INPUT = { device: "silence-device", tag: "silence-tag", subsystem: "silence-subsystem", starts_at: "silence-starts", ends_at: "silence-until", comment: "silence-comment" };

function showError(message) {
  let field = errorField(message);
  if (field === "duration_s") field = "ends_at";
  if (!FIELDS.includes(field)) field = "form";
  const node = $(`error-${field}`);
  node.textContent = message;
  node.hidden = false;
  const input = field === "ends_at" && $("silence-until").hidden ? $("silence-length") : INPUT[field] && $(INPUT[field]);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-errormessage", node.id);
    input.focus();
  }
}

// The request body from the form, or a message naming the field the browser could not read.
function formBody() {
  const body = {};
  for (const field of ["device", "tag", "subsystem", "comment"]) {
    const value = $(INPUT[field]).value.trim();
    if (value) body[field] = value;
  }
  if ($("silence-starts").value) {
    body.starts_at = localToIso($("silence-starts").value);
    if (!body.starts_at) return "starts_at: a date and time, or empty for now";
  }
  if ($("silence-length").value === "until") {
    body.ends_at = localToIso($("silence-until").value);
    if (!body.ends_at) return "ends_at: pick the date and time the silence ends";
  } else {
    body.duration_s = Number($("silence-length").value);
  }
  return body;
}

$("silence-length").addEventListener("change", () => {
  const until = $("silence-length").value === "until";
  $("silence-until").hidden = !until;
  if (until) $("silence-until").focus();
});

$("silence-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  result($("silence-result"), "", "");
  const body = formBody();
  if (typeof body === "string") {
    showError(body);
    return;
  }
  $("silence-create").disabled = true;
  try {
    const { status, body: answer } = await sendJSON("POST", "/api/silences", body);
    if (status === 201 && answer && answer.id !== undefined) {
      for (const field of ["device", "tag", "subsystem", "starts_at", "comment"]) $(INPUT[field]).value = "";
      result($("silence-result"), "ok", `Silence ${answer.id} created`);
      await load();
    } else {
      showError(failure(status, answer));
    }
  } catch (error) {
    if (error.message !== "signed out") showError("Failed: the console is unreachable");
  } finally {
    $("silence-create").disabled = false;
  }
});

// A link from a device's page fills in its id (?device=ID): an input's value, never markup.
const preset = new URLSearchParams(window.location.search).get("device");
if (preset) $("silence-device").value = preset;

setInterval(() => document.visibilityState === "visible" && load(), POLL_MS);
document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && load());
load();
