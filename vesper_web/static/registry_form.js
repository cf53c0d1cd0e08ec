// A device's registry fields (§7): shown on its page, and edited in a form sent as a JSON merge
// patch (RFC 7396) of the fields that changed. A refused value comes back as a 400 whose error
// starts with the field's name ("tags: ..."), shown beside that field.
//
// Names, sites, tags and notes are operators' text: textContent and input values only.
import { deviceApi, el, sendJSON } from "./console.js";

const FIELDS = ["name", "site", "tags", "heartbeat_timeout_s", "notes"];
const $ = (id) => document.getElementById(id);

function setText(id, value, fallback = "–") {
  const node = $(id);
  const missing = value === null || value === undefined || value === "";
  node.textContent = missing ? fallback : String(value);
  node.classList.toggle("muted", missing);
}

function tagList(device) {
  return Array.isArray(device.tags) ? device.tags.map(String) : [];
}

export function showRegistry(device) {
  setText("reg-name", device.name, "no name");
  setText("reg-site", device.site, "no site");
  const tags = tagList(device);
  $("reg-tags").replaceChildren(...(tags.length ? tags.map((tag) => el("span", { className: "tag", text: tag })) : ["none"]));
  $("reg-tags").classList.toggle("muted", tags.length === 0);
  const timeout = device.heartbeat_timeout_s;
  setText("reg-timeout", typeof timeout === "number" ? `${timeout} s` : null, "the configured timeout");
  setText("reg-notes", device.notes, "no notes");
  $("device-name").textContent = device.name || "";
}

// The form's values as the fields' own: text or null, tags a list, the timeout a number or null.
function formValues() {
  const textOrNull = (id) => $(id).value.trim() || null;
  const timeout = $("field-heartbeat_timeout_s");
  return {
    name: textOrNull("field-name"),
    site: textOrNull("field-site"),
    tags: $("field-tags").value.split(/[\s,]+/).filter(Boolean),
    heartbeat_timeout_s: timeout.value === "" ? null : Number(timeout.value),
    notes: $("field-notes").value.trim() ? $("field-notes").value : null,
  };
}

function fill(device) {
  $("field-name").value = device.name || "";
  $("field-site").value = device.site || "";
  $("field-tags").value = tagList(device).join(" ");
  $("field-heartbeat_timeout_s").value = typeof device.heartbeat_timeout_s === "number" ? String(device.heartbeat_timeout_s) : "";
  $("field-notes").value = device.notes || "";
}

function showError(field, message) {
  const node = $(`error-${FIELDS.includes(field) ? field : "form"}`);
  node.textContent = message;
  node.hidden = false;
  const input = FIELDS.includes(field) ? $(`field-${field}`) : null;
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-errormessage", node.id);
    input.focus();
  }
}

function clearErrors() {
  for (const node of document.querySelectorAll("#registry-form .field-error")) {
    node.hidden = true;
    node.textContent = "";
  }
  for (const input of document.querySelectorAll("#registry-form [aria-invalid]")) input.removeAttribute("aria-invalid");
}

function result(kind, message) {
  $("registry-result").dataset.result = kind;
  $("registry-result").textContent = message;
}

// `current()` is the device as last shown (read when the form opens); `onSaved(device)` shows
// the device the PATCH answered.
export function initRegistryForm({ deviceId, current, onSaved }) {
  const form = $("registry-form");
  // The device as the form was filled from it: only the fields the operator changed since are
  // sent, so an edit made meanwhile elsewhere to another field is not overwritten.
  let base = {};
  const open = (editing) => {
    form.hidden = !editing;
    $("registry-view").hidden = editing;
    $("registry-edit").hidden = editing;
  };
  $("registry-edit").addEventListener("click", () => {
    clearErrors();
    result("", "");
    base = current();
    fill(base);
    open(true);
    $("field-name").focus();
  });
  $("registry-cancel").addEventListener("click", () => open(false));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    if ($("field-heartbeat_timeout_s").validity.badInput) {
      showError("heartbeat_timeout_s", "heartbeat_timeout_s: a number of seconds, or empty");
      return;
    }
    const values = formValues();
    const patch = {};
    for (const field of FIELDS) {
      const was = field === "tags" ? tagList(base) : base[field] ?? null;
      if (JSON.stringify(was) !== JSON.stringify(values[field])) patch[field] = values[field];
    }
    if (Object.keys(patch).length === 0) {
      open(false);
      return;
    }
    $("registry-save").disabled = true;
    try {
      const { status, ok, body } = await sendJSON("PATCH", deviceApi(deviceId), patch, "application/merge-patch+json");
      if (ok && body && typeof body.id === "string") {
        open(false);
        result("ok", "Saved");
        onSaved(body);
        return;
      }
      const message = body && typeof body.error === "string" ? body.error : `Failed: HTTP ${status}`;
      const field = status === 400 ? message.split(":", 1)[0] : "form";
      showError(field, message);
    } catch (error) {
      if (error.message !== "signed out") showError("form", "Failed: the console is unreachable");
    } finally {
      $("registry-save").disabled = false;
    }
  });
}
