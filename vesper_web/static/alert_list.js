// The device page's list of active alerts (§9): each alert's state and message, what the
// lifecycle adds (flapping, unconfirmed while the device is offline, silenced, acknowledged), and
// its controls (alert_actions.js), kept across re-reads.
//
// Subsystems, messages, notes and who acknowledged are untrusted text: textContent only.
import { alertActions, shortTime, updateActions } from "./alert_actions.js";
import { STATE_SEVERITY, el, fullTime, timeEl } from "./console.js";

export function severityOf(state) {
  return Object.hasOwn(STATE_SEVERITY, state) ? STATE_SEVERITY[state] : "critical";
}

// --- what is known ---------------------------------------------------------------------------

function timeSpan(iso) {
  const node = timeEl(iso, false);
  node.textContent = shortTime(iso);
  return node;
}

// The line under an alert: flapping, unconfirmed, silenced, acknowledged; empty when none applies.
function lifecycleLine(alert) {
  const parts = [];
  if (alert.flapping) parts.push(el("span", { className: "badge flap-badge", attrs: { title: "Changing state too often: its changes are not announced until it settles" }, text: "flapping" }));
  if (alert.confirmed === false) {
    parts.push(el("span", { className: "unconfirmed" }, "unconfirmed since ", alert.unconfirmed_since ? timeEl(alert.unconfirmed_since, false) : "the device went silent"));
  }
  if (alert.silenced_until) {
    parts.push(el("span", { className: "silenced", attrs: { title: `Notifies no one until ${fullTime(alert.silenced_until)}` } }, "silenced until ", timeSpan(alert.silenced_until)));
  }
  const ack = alert.acknowledged;
  if (ack && typeof ack === "object") {
    const who = el("span", { className: "ack-by", text: ack.by });
    const line = el("span", { className: "acknowledged" }, "acknowledged by ", who, " ", timeEl(ack.at, false));
    if (ack.note) line.append(": ", el("q", { className: "ack-note", text: ack.note }));
    parts.push(line);
  }
  return el("div", { className: "lifecycle" }, ...parts);
}

// --- the list --------------------------------------------------------------------------------

// One <li> per subsystem, kept while the alert is active: its controls (a half-typed note, the
// focus) survive the re-reads; only the facts before them are rebuilt.
function alertItem(items, options, alert) {
  let item = items.get(alert.subsystem);
  if (!item) {
    const actions = alertActions({ ...options, subsystem: alert.subsystem });
    item = { li: el("li", { className: "alert" }, actions), actions };
    items.set(alert.subsystem, item);
  }
  const { li, actions } = item;
  const severity = severityOf(alert.state);
  Object.assign(li.dataset, {
    subsystem: alert.subsystem,
    state: alert.state,
    severity,
    confirmed: String(alert.confirmed !== false),
    flapping: String(Boolean(alert.flapping)),
    acknowledged: String(Boolean(alert.acknowledged)),
    silenced: String(Boolean(alert.silenced_until)),
  });
  for (const child of [...li.children]) if (child !== actions) child.remove();
  actions.before(
    el("span", { className: "state", dataset: { severity }, text: alert.state }),
    el("span", { className: "subsystem", text: alert.subsystem }),
    el("span", { className: alert.message ? "message" : "message muted", text: alert.message || "no message" }),
    el("span", { className: "updated" }, "since ", timeEl(alert.updated_at)),
    lifecycleLine(alert),
  );
  updateActions(actions, alert);
  return li;
}


// The list in `ul`; render(sorted) shows these alerts in this order. `options`: deviceId,
// onAcked(alert) with the alert an acknowledgement answered, onChanged() to ask for a re-read.
export function alertList(ul, options) {
  const items = new Map(); // subsystem -> {li, actions}
  const render = (sorted) => {
    const active = new Set(sorted.map((alert) => alert.subsystem));
    for (const [subsystem, item] of items) {
      if (active.has(subsystem)) continue;
      item.li.remove();
      items.delete(subsystem);
    }
    // Move an item only when its place changed: moving it would take the focus from its controls.
    sorted.forEach((alert, i) => {
      const li = alertItem(items, options, alert);
      if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null);
    });
  };
  return { render };
}
