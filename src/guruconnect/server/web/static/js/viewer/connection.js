// @ts-check
// The session's WebSocket: a single-use viewer ticket from the API (cookie + CSRF), then
// /ws/viewer?session_id=…&ticket=…; a dropped connection is retried with a fresh ticket and
// a growing delay (the session decides whether a close is worth a retry).
import { api } from "../api.js";
import { encode } from "./wire.js";

/**
 * @typedef {{
 *   onOpen: () => void,
 *   onMessage: (data: ArrayBuffer) => void,
 *   onClose: (code: number, reason: string) => void,
 * }} ConnectionEvents
 */

export class Connection {
  /** @param {string} sessionId @param {"view" | "control"} scope @param {ConnectionEvents} events */
  constructor(sessionId, scope, events) {
    this.sessionId = sessionId;
    this.scope = scope;
    this.events = events;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.retries = 0;
    this.retryTimer = 0;
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Ask for a ticket and open the socket. Throws the API's error (ApiError) when no
   * ticket is given. */
  async connect() {
    const ticket = await api("POST", `/api/sessions/${this.sessionId}/viewer-token`, { scope: this.scope });
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}/ws/viewer?session_id=${encodeURIComponent(this.sessionId)}&ticket=${encodeURIComponent(ticket.ticket)}`;
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.retries = 0;
      this.events.onOpen();
    });
    ws.addEventListener("message", (event) => this.events.onMessage(event.data));
    ws.addEventListener("close", (event) => {
      if (this.ws === ws) this.ws = null;
      this.events.onClose(event.code, event.reason);
    });
  }

  /** Try again later (the delay doubles, up to 10 s); returns the delay in ms.
   * @param {() => void} attempt */
  retry(attempt) {
    const delay = Math.min(10000, 500 * 2 ** this.retries);
    this.retries += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(attempt, delay);
    return delay;
  }

  /** @param {string} kind @param {object} message @returns {boolean} whether it went */
  send(kind, message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(encode(kind, message));
    return true;
  }

  close() {
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close(1000, "viewer closed");
    this.ws = null;
  }
}
