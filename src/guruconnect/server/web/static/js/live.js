// @ts-check
// Push, not polling: one Server-Sent Events stream per tab (GET /api/console/events) tells
// the pages what changed; they re-read only those rows. If the stream drops, the pages fall
// back to a slow poll while this module reconnects with a growing delay; once it is back,
// every page reloads its rows once (events may have been missed meanwhile).

export const STREAM_URL = "/api/console/events";
/** How often the pages reload while the stream is down. */
export const FALLBACK_POLL_MS = 30000;
/** Reconnect delays: first, then doubled up to the maximum (plus up to 20 % jitter). */
export const RETRY_FIRST_MS = 1000;
export const RETRY_MAX_MS = 30000;
/** How long the stream stays open with no page listening (a page switch reuses it). */
const LINGER_MS = 5000;

/**
 * @typedef {{kind: string, machine_id?: string, session_id?: string, code_id?: string,
 *   state?: string, reason?: string}} ConsoleChange
 * @typedef {"connecting" | "open" | "polling" | "closed"} LiveStatus
 * @typedef {{change?: (change: ConsoleChange) => void, resync: () => void | Promise<void>}} Listener
 */

/** @type {Set<Listener>} */
const listeners = new Set();
/** @type {Set<(status: LiveStatus) => void>} */
const watchers = new Set();
/** @type {EventSource | null} */
let source = null;
/** @type {LiveStatus} */
let status = "closed";
let retryMs = RETRY_FIRST_MS;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let retryTimer;
/** @type {ReturnType<typeof setInterval> | undefined} */
let pollTimer;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let lingerTimer;

/** @param {LiveStatus} next */
function setStatus(next) {
  status = next;
  document.documentElement.dataset.live = next;
  for (const watch of watchers) watch(next);
}

function resyncAll() {
  for (const listener of listeners) {
    try {
      void listener.resync();
    } catch {
      // one page's failure must not stop the others
    }
  }
}

function startPolling() {
  if (pollTimer === undefined) pollTimer = setInterval(resyncAll, FALLBACK_POLL_MS);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = undefined;
}

function connect() {
  clearTimeout(retryTimer);
  retryTimer = undefined;
  if (source) return;
  setStatus("connecting");
  const stream = new EventSource(STREAM_URL);
  source = stream;
  stream.addEventListener("ready", () => {
    retryMs = RETRY_FIRST_MS;
    stopPolling();
    setStatus("open");
    resyncAll();
  });
  stream.addEventListener("change", (event) => {
    /** @type {ConsoleChange} */
    let change;
    try {
      change = JSON.parse(/** @type {MessageEvent} */ (event).data);
    } catch {
      return;
    }
    for (const listener of listeners) {
      try {
        listener.change?.(change);
      } catch {
        // as above
      }
    }
  });
  // "end": the server closes the stream (fell behind, token checked again, time limit).
  stream.addEventListener("end", () => dropped(true));
  // Any error (network, 401, server restart): we reconnect ourselves, with a backoff, and
  // poll slowly meanwhile; EventSource's own retry has neither.
  stream.addEventListener("error", () => dropped(false));
}

/** @param {boolean} soon */
function dropped(soon) {
  if (source) source.close();
  source = null;
  if (!listeners.size) {
    setStatus("closed");
    return;
  }
  setStatus("polling");
  startPolling();
  // The pages reload now (a 401 sends the user to the login page through the API hook).
  resyncAll();
  const delay = soon ? RETRY_FIRST_MS : retryMs;
  retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
  retryTimer = setTimeout(connect, delay * (1 + Math.random() * 0.2));
}

function close() {
  clearTimeout(retryTimer);
  retryTimer = undefined;
  stopPolling();
  if (source) source.close();
  source = null;
  setStatus("closed");
}

/**
 * Listen for changes; returns the function that stops listening. ``resync`` is called
 * when the stream (re)opens and on each slow poll while it is down.
 * @param {Listener} listener
 * @returns {() => void}
 */
export function subscribe(listener) {
  listeners.add(listener);
  clearTimeout(lingerTimer);
  if (!source && retryTimer === undefined) connect();
  return () => {
    listeners.delete(listener);
    if (listeners.size) return;
    clearTimeout(lingerTimer);
    lingerTimer = setTimeout(() => listeners.size || close(), LINGER_MS);
  };
}

/** @returns {LiveStatus} */
export function liveStatus() {
  return status;
}

const LABELS = {
  connecting: "Connecting…",
  open: "Live",
  polling: "Reconnecting; refreshing every 30 s",
  closed: "Not live",
};

/**
 * A small status line saying whether the page updates live (for sighted and screen-reader
 * users alike: it is a polite live region). Stops following when the page goes.
 * @returns {{el: HTMLElement, stop: () => void}}
 */
export function statusLine() {
  const el = document.createElement("span");
  el.className = "live-status";
  el.setAttribute("role", "status");
  /** @param {LiveStatus} next */
  const show = (next) => {
    el.dataset.state = next;
    el.textContent = LABELS[next];
  };
  show(status);
  watchers.add(show);
  return { el, stop: () => watchers.delete(show) };
}

/**
 * Run ``fn`` once, ``ms`` after the first of a burst of calls (many events at once become
 * one reload; a steady stream of them still reloads every ``ms``).
 * @param {() => void} fn
 * @param {number} ms
 */
export function coalesce(fn, ms) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  return () => {
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      fn();
    }, ms);
  };
}
