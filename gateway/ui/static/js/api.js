// Calls to the gateway from the run page: the tenant's API key on every one, and the run's
// event stream read with fetch(), since EventSource cannot send an Authorization header.

const KEY = "workflow-station.api-key";
const RECONNECT_MS = 1000;

/** A refused call: its HTTP status and the gateway's words for why. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(extra = {}) {
  const key = sessionStorage.getItem(KEY);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

/** The gateway's error body in a line: a string detail, or each problem's place and words. */
function reason(status, body) {
  const detail = body && typeof body === "object" ? body.detail : body;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  }
  return detail ? String(detail) : `HTTP ${status}`;
}

/** The JSON answer of `path`, or an `ApiError`. */
export async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: headers({ Accept: "application/json" }) };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (!response.ok) throw new ApiError(response.status, reason(response.status, data));
  return data;
}

/** Show the key form and resolve once a key is entered (kept for this tab only). */
export function askForKey(why) {
  const form = document.getElementById("key-form");
  const input = document.getElementById("key-input");
  form.hidden = false;
  if (why) showMessage(why);
  input.focus();
  return new Promise((resolve) => {
    form.onsubmit = (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, input.value.trim());
      input.value = "";
      form.hidden = true;
      showMessage("");
      resolve();
    };
  });
}

/** `load()`, asking for the key first whenever the gateway answers 401. */
export async function withKey(load) {
  for (;;) {
    try {
      return await load();
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      await askForKey("This gateway needs an API key: " + error.message);
    }
  }
}

/** The "API key" button: enter another key, then `reload()`. */
export function keyButton(reload) {
  document.getElementById("change-key").addEventListener("click", async () => {
    await askForKey();
    reload();
  });
}

export function showMessage(text, kind = "error") {
  const message = document.getElementById("message");
  message.textContent = text;
  message.dataset.kind = kind;
  message.hidden = !text;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follow a run's Server-Sent Events until its `end` event: `onEvent({event, id, data})` for
 * each. A dropped connection is resumed after the last id received (Last-Event-ID), as an
 * EventSource would; a refusal (401, 404) is thrown.
 */
export async function followEvents(path, onEvent, signal) {
  let lastId = null;
  while (!signal.aborted) {
    const extra = { Accept: "text/event-stream" };
    if (lastId !== null) extra["Last-Event-ID"] = lastId;
    let response;
    try {
      response = await fetch(path, { headers: headers(extra), signal });
    } catch (error) {
      if (signal.aborted) return;
      await sleep(RECONNECT_MS);
      continue;
    }
    if (!response.ok) {
      if (response.status === 429 || response.status >= 500) {
        await sleep(RECONNECT_MS * 2);
        continue;
      }
      throw new ApiError(response.status, reason(response.status, await response.text()));
    }
    try {
      for await (const message of messages(response.body)) {
        if (message.id !== undefined) lastId = message.id;
        onEvent(message);
        if (message.event === "end") return;
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    await sleep(RECONNECT_MS);
  }
}

/** The messages of an event stream, parsed as the SSE specification says. */
async function* messages(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let fields = { data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (fields.data.length) {
          const text = fields.data.join("\n");
          let data = text;
          try {
            data = JSON.parse(text);
          } catch {
            // Not JSON: handed on as text.
          }
          yield { event: fields.event || "message", id: fields.id, data };
        }
        fields = { data: [] };
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (name === "data") fields.data.push(value);
        else if (name === "event" || name === "id") fields[name] = value;
      }
    }
  }
}

/** `HH:MM:SS` of an ISO time; "" without one. */
export function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "";
}

/** How long from `start` to `end` (or now), in words a person reads at a glance. */
export function duration(start, end) {
  if (!start) return "";
  const ms = (end ? new Date(end) : new Date()) - new Date(start);
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

/** A cost in US dollars, when the gateway reports one (`cost_usd`, or `usage.cost_usd`). */
export function cost(thing) {
  const value = thing?.cost_usd ?? thing?.usage?.cost_usd;
  return typeof value === "number" ? `$${value.toFixed(value < 1 ? 4 : 2)}` : "";
}

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  node.append(...children.filter((child) => child !== undefined && child !== null));
  return node;
}
