// An active alert's controls on the device page (§9): acknowledge it with a note; silence the
// device (or only this subsystem) for 1 h, 4 h or until a time. Also the time helpers the
// silences page shares. A refused request's "field: rule" is shown next to its control.
//
// Subsystems and notes are untrusted text: textContent, attributes and input values only.
import { deviceApi, el, sendJSON, shortTime } from "./console.js";

const HOUR_S = 3600;
const MAX_TEXT = 500; // a note's and a comment's limit (vesper_web/lifecycle_rules.py)

// shortTime lives in console.js (one time format); kept importable from here for alert_list.js.
export { shortTime };

// A datetime-local value ("2026-03-03T14:05", the browser's zone) as an ISO time with its zone, or null.
export function localToIso(value) {
  if (!value) return null;
  const d = new Date(value); // a date-time without an offset is local time (ECMA-262 Date.parse)
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

// The field a 400 names ("ends_at: ..." -> "ends_at").
export function errorField(message) {
  const match = /^([a-z_]+):/.exec(String(message || ""));
  return match ? match[1] : "";
}

export function failure(status, body) {
  return body && typeof body.error === "string" ? body.error : `Failed: HTTP ${status}`;
}

// --- controls --------------------------------------------------------------------------------

function result(node, kind, message) {
  node.dataset.result = kind;
  node.textContent = message;
  node.hidden = !message;
}

// The API takes the subsystem in its path (<path:subsystem>): encodeURIComponent sends a "/" as %2F,
// which the server decodes and the route takes whole. Only a name that is all one dot segment
// ("." or "..", even encoded) is resolved away by the browser's URL parser before it is sent.
function pathSafe(subsystem) {
  return subsystem !== "." && subsystem !== "..";
}

function ackForm({ deviceId, subsystem, onAcked, onChanged }) {
  const note = el("input", {
    className: "search ack-note-input",
    attrs: { type: "text", name: "note", maxlength: MAX_TEXT, placeholder: "Note (optional)", autocomplete: "off", "aria-label": `Acknowledgement note for ${subsystem}` },
  });
  const button = el("button", { className: "button small ack-button", attrs: { type: "submit" }, text: "Acknowledge" });
  const outcome = el("span", { className: "action-result ack-result", attrs: { role: "status", "aria-live": "polite" } });
  const form = el("form", { className: "ack-form", attrs: { novalidate: true } }, note, button, outcome);
  outcome.hidden = true;
  if (!pathSafe(subsystem)) {
    // A dot segment cannot travel in a URL's path (see pathSafe).
    note.disabled = button.disabled = true;
    result(outcome, "", "This subsystem's name cannot be sent to the API: acknowledge it with another tool");
    return form;
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    note.removeAttribute("aria-invalid");
    result(outcome, "pending", "Acknowledging…");
    try {
      const url = deviceApi(deviceId, `/alerts/${encodeURIComponent(subsystem)}/ack`);
      const { status, ok, body } = await sendJSON("POST", url, note.value.trim() ? { note: note.value } : {});
      if (status === 200 && body && typeof body.subsystem === "string") {
        note.value = "";
        result(outcome, "", "");
        onAcked(body);
      } else if (status === 202) {
        note.value = "";
        result(outcome, "ok", "Queued: the ingest records it shortly");
        onChanged();
      } else if (status === 404) {
        result(outcome, "error", "This alert is no longer active");
        onChanged();
      } else {
        const message = ok ? `Unexpected answer: HTTP ${status}` : failure(status, body);
        if (errorField(message) === "note") note.setAttribute("aria-invalid", "true");
        result(outcome, "error", message);
      }
    } catch (error) {
      if (error.message !== "signed out") result(outcome, "error", "Failed: the console is unreachable");
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function silenceControls({ deviceId, subsystem, onChanged }) {
  const hour = el("button", { className: "button secondary small", attrs: { type: "button" }, dataset: { hours: 1 }, text: "1 h" });
  const four = el("button", { className: "button secondary small", attrs: { type: "button" }, dataset: { hours: 4 }, text: "4 h" });
  const until = el("input", { className: "search until-input", attrs: { type: "datetime-local", "aria-label": `Silence until (your local time), ${subsystem}` } });
  const untilButton = el("button", { className: "button secondary small until-button", attrs: { type: "button" }, text: "Until" });
  const only = el("input", { attrs: { type: "checkbox" } });
  const onlyLabel = el("label", { className: "only-subsystem" }, only, "only ", el("span", { className: "mono", text: subsystem }));
  const outcome = el("span", { className: "action-result silence-result", attrs: { role: "status", "aria-live": "polite" } });
  outcome.hidden = true;
  const buttons = [hour, four, untilButton];

  const send = async (timing) => {
    for (const b of buttons) b.disabled = true;
    until.removeAttribute("aria-invalid");
    result(outcome, "pending", "Silencing…");
    const body = { device: deviceId, ...timing };
    if (only.checked) body.subsystem = subsystem;
    try {
      const { status, body: answer } = await sendJSON("POST", "/api/silences", body);
      if (status === 201 && answer && answer.ends_at) {
        result(outcome, "ok", `Silenced until ${shortTime(answer.ends_at)}`);
        until.value = "";
        onChanged();
      } else {
        const message = failure(status, answer);
        if (errorField(message) === "ends_at") until.setAttribute("aria-invalid", "true");
        result(outcome, "error", message);
      }
    } catch (error) {
      if (error.message !== "signed out") result(outcome, "error", "Failed: the console is unreachable");
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  };
  for (const b of [hour, four]) b.addEventListener("click", () => send({ duration_s: Number(b.dataset.hours) * HOUR_S }));
  untilButton.addEventListener("click", () => {
    const endsAt = localToIso(until.value);
    if (!endsAt) {
      until.setAttribute("aria-invalid", "true");
      result(outcome, "error", "ends_at: pick the date and time the silence ends");
      return;
    }
    send({ ends_at: endsAt });
  });
  return el("div", { className: "silence-controls", attrs: { role: "group", "aria-label": `Silence ${deviceId}` } }, el("span", { className: "muted", text: "Silence" }), hour, four, until, untilButton, onlyLabel, outcome);
}

// The controls of one alert (an operator's: hidden below that role, console.css), built once per subsystem and kept across re-reads (a half-typed note
// survives). `onAcked(alert)` gets the alert the API answered; `onChanged()` asks for a re-read.
export function alertActions(options) {
  return el("div", { className: "alert-actions needs-operator" }, ackForm(options), silenceControls(options));
}

// Reflect the alert's state in its kept controls: no Acknowledge control once acknowledged, and
// no "done" message left standing that the alert no longer bears out (a silence ended since).
export function updateActions(node, alert) {
  node.querySelector(".ack-form").hidden = Boolean(alert.acknowledged);
  const stale = [[".ack-result", Boolean(alert.acknowledged)], [".silence-result", !alert.silenced_until]];
  for (const [selector, outdated] of stale) {
    const outcome = node.querySelector(selector);
    if (outdated && outcome.dataset.result === "ok") result(outcome, "", "");
  }
}
