// @ts-check
// One viewer session: the object that owns everything the page does for it (connection,
// status, toolbar, chat, screen and input) and follows the SessionState the relay sends.
// Nothing lives at module level: main.js makes one ViewerSession for the page.
import { api, whoAmI } from "../api.js";
import { h } from "../dom.js";
import { Chat } from "./chat.js";
import { Connection } from "./connection.js";
import { ASK_AGAIN_REASONS, endedText, finalCloseText, loadConstants } from "./constants.js";
import { Input } from "./input.js";
import { viewerUrl } from "./open.js";
import { Screen, decodableCodecs } from "./screen.js";
import { StatusView } from "./status.js";
import { Toolbar } from "./toolbar.js";
import { LIMITS, RefusedMessage, Scope, State, decode, toNumber } from "./wire.js";

/**
 * @typedef {{ username: string }} Me
 * @typedef {{ state: number, reason: string, controller: string, scope: number,
 *   displays: import("./screen.js").Display[] }} SessionStateMessage
 */

/** Where "←" goes back to: the page the viewer was opened from. */
const BACK = Object.freeze({
  machines: { href: "/machines", text: "← Machines" },
  sessions: { href: "/sessions", text: "← Sessions" },
});

export class ViewerSession {
  /** @param {Document} doc @param {Location} where */
  constructor(doc, where) {
    this.doc = doc;
    this.sessionId = where.pathname.split("/")[2] || "";
    const params = new URLSearchParams(where.search);
    /** @type {"view" | "control"} */
    this.scope = params.get("scope") === "view" ? "view" : "control";
    /** @type {"machines" | "sessions"} */
    this.from = params.get("from") === "machines" ? "machines" : "sessions";
    /** @type {Me | null} */
    this.me = null;
    /** @type {import("./constants.js").Constants | null} */
    this.constants = null;
    /** @type {SessionStateMessage | null} the last SessionState */
    this.state = null;
    this.ended = false;
    /** @type {number[]} */
    this.codecs = [];
    this.stats = { frames: 0, bytes: 0 };
    this.canvas = /** @type {HTMLCanvasElement} */ (doc.getElementById("screen"));
    this.status = new StatusView(doc);
    this.screen = new Screen(this.canvas, /** @type {HTMLCanvasElement} */ (doc.getElementById("cursor")), {
      onNeedKeyframe: () => this.send("keyframeRequest", { sessionId: this.sessionId, displayId: this.screen.displayId }),
      onError: (message) => this.status.toast(message),
      onPicture: () => {
        if (this.state && this.state.state === State.STATE_ACTIVE) this.status.pictured();
      },
    });
    /** @type {Input | null} */
    this.input = null;
    /** @type {Toolbar | null} */
    this.toolbar = null;
    this.chat = new Chat(doc, (text) => this.send("chat", { sessionId: this.sessionId, text, sentAtMs: Date.now() }));
    this.connection = new Connection(this.sessionId, this.scope, {
      onOpen: () => this.send("viewerHello", { codecs: this.codecs }),
      onMessage: (data) => this.onMessage(data),
      onClose: (code, reason) => this.onClose(code, reason),
    });
    this.statsTimer = 0;
    const back = /** @type {HTMLAnchorElement} */ (doc.getElementById("back"));
    back.href = BACK[this.from].href;
    back.textContent = BACK[this.from].text;
  }

  /** @param {string} kind @param {object} message */
  send(kind, message) {
    return this.connection.send(kind, message);
  }

  focusScreen() {
    this.canvas.focus();
  }

  /** Out of the canvas, to the chat (LEAVE_KEYS). */
  focusChat() {
    const field = /** @type {HTMLInputElement} */ (this.doc.getElementById("chat-input"));
    field.focus();
  }

  /** Fit: the whole remote screen in the window, scaled up or down, aspect kept. 1:1: one
   * remote pixel per CSS pixel, scrolling when larger. */
  layout() {
    const wrap = /** @type {HTMLElement} */ (this.doc.getElementById("screen-wrap"));
    const { width, height } = this.canvas;
    let w = width;
    let h_ = height;
    if (wrap.classList.contains("fit")) {
      const scale = Math.min(wrap.clientWidth / width, wrap.clientHeight / height);
      w = Math.max(1, Math.floor(width * scale));
      h_ = Math.max(1, Math.floor(height * scale));
    }
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h_}px`;
    // The cursor canvas is small and moved (and scaled) over the picture.
    this.screen.drawCursor();
  }

  hasControl() {
    return Boolean(this.state && this.me && this.state.scope === Scope.SCOPE_CONTROL && this.state.controller === this.me.username);
  }

  /** @param {string | null | undefined} reason */
  endedText(reason) {
    return this.constants ? endedText(this.constants, reason) : "This session has ended.";
  }

  /** @param {import("./status.js").StatusKind} kind @param {string} text @param {string} [overlay] */
  show(kind, text, overlay) {
    this.status.show(kind, text, this.screen.hasPicture, overlay);
  }

  /** The session is over (for whatever reason): say why, disable what acts on it, and
   * offer to ask again when the person at the machine said no or did not answer.
   * @param {string} text @param {string} [reason] */
  over(text, reason = "") {
    this.ended = true;
    this.show("ended", text);
    this.toolbar?.sessionEnded();
    this.chat.close();
    if (this.input) {
      this.input.releaseAll();
      this.input.enabled = false;
    }
    if (ASK_AGAIN_REASONS.includes(reason)) this.status.offerAskAgain(() => this.askAgain());
  }

  /** A new session with the same machine and scope, in this tab. */
  async askAgain() {
    this.status.askAgain.disabled = true;
    try {
      const old = await api("GET", `/api/sessions/${this.sessionId}`);
      const fresh = await api("POST", `/api/machines/${old.machine_id}/sessions`, { scope: this.scope });
      location.replace(viewerUrl(fresh.id, this.scope, this.from));
    } catch (error) {
      this.status.askAgain.disabled = false;
      this.status.toast(`cannot ask again: ${error instanceof Error ? error.message : error}`);
    }
  }

  /** End the session for everyone (the toolbar's confirmed End); true when it ended. */
  async endForEveryone() {
    try {
      await api("DELETE", `/api/sessions/${this.sessionId}`);
      return true;
    } catch (error) {
      this.status.toast(`cannot end the session: ${error instanceof Error ? error.message : error}`);
      return false;
    }
  }

  /** @param {SessionStateMessage} next */
  onSessionState(next) {
    this.state = next;
    if (next.displays && next.displays.length) this.fillDisplays(next.displays);
    switch (next.state) {
      case State.STATE_WAITING_FOR_AGENT:
        this.show("waiting", "Waiting for the agent…");
        break;
      case State.STATE_AWAITING_CONSENT:
        this.show("consent", "Waiting for consent…", "Waiting for the person at the machine to allow this session…");
        if (this.constants) this.status.startCountdown(this.constants.consentTimeoutSeconds);
        break;
      case State.STATE_ACTIVE: {
        const who = next.controller ? (next.controller === this.me?.username ? "you have control" : `${next.controller} has control`) : "nobody has control";
        this.show("active", `Connected · ${next.scope === Scope.SCOPE_VIEW ? "view only" : who}`);
        break;
      }
      case State.STATE_RECONNECTING:
        this.show("reconnecting", "Agent reconnecting…", "The agent lost its connection; waiting for it to come back…");
        break;
      case State.STATE_ENDED:
        this.over(this.endedText(next.reason), next.reason);
        break;
      default:
        break;
    }
    if (this.ended) return;
    const control = this.hasControl();
    if (this.input) {
      if (this.input.enabled && !control) this.input.releaseAll();
      this.input.enabled = control && next.state === State.STATE_ACTIVE;
    }
    const canTake = next.scope === Scope.SCOPE_CONTROL && !control && next.state === State.STATE_ACTIVE;
    this.toolbar?.enable(control && next.state === State.STATE_ACTIVE, canTake);
  }

  /** @param {import("./screen.js").Display[]} displays */
  fillDisplays(displays) {
    if (displays.length > LIMITS.displays) {
      // The relay caps this too; the viewer does not rely on it.
      this.status.toast(`The agent declared ${displays.length} displays; the viewer shows at most ${LIMITS.displays}.`);
      displays = displays.slice(0, LIMITS.displays);
    }
    this.screen.setDisplays(displays);
    const picker = /** @type {HTMLSelectElement} */ (this.doc.getElementById("display"));
    picker.replaceChildren(
      ...displays.map((d) => h("option", { value: d.id, selected: d.id === this.screen.displayId }, `${d.name || `Display ${d.id}`} (${d.width}×${d.height})${d.primary ? " · primary" : ""}`)),
    );
    picker.hidden = displays.length < 2;
  }

  /** @param {ArrayBuffer} data */
  onMessage(data) {
    this.stats.bytes += data.byteLength;
    let kind;
    let message;
    try {
      [kind, message] = decode(data);
    } catch (error) {
      this.status.toast(error instanceof RefusedMessage ? `refused: ${error.message}` : "the server sent a message this page cannot read");
      return;
    }
    switch (kind) {
      case "sessionState":
        this.onSessionState(message);
        break;
      case "videoFrame":
        this.stats.frames += 1;
        try {
          this.screen.frame(message);
        } catch (error) {
          this.status.toast(`cannot draw a frame: ${error instanceof Error ? error.message : error}`);
        }
        break;
      case "cursorShape":
        this.screen.cursorShape(message);
        break;
      case "cursorPosition":
        this.screen.cursorPosition(message);
        break;
      case "displayList":
        this.fillDisplays(message.displays);
        break;
      case "chat":
        this.chat.add(message.sender, message.text);
        break;
      case "clipboard":
        /** @type {HTMLTextAreaElement} */ (this.doc.getElementById("clip-in")).value = message.text;
        break;
      case "heartbeat":
        if (!message.reply) this.send("heartbeat", { sentAtMs: toNumber(message.sentAtMs), reply: true });
        break;
      case "error":
        this.status.toast(message.message || `error ${message.code}`);
        break;
      default:
        break;
    }
  }

  /** @param {number} code @param {string} reason */
  onClose(code, reason) {
    if (this.input) {
      this.input.releaseAll();
      this.input.enabled = false;
    }
    if (this.ended || !this.constants) return;
    const final = finalCloseText(this.constants, code);
    if (code === this.constants.closeCodes.SESSION_ENDED) {
      const why = this.state && this.state.reason ? this.state.reason : "";
      this.over(why ? this.endedText(why) : `Ended: ${reason || "the session ended"}.`, why);
    } else if (final) {
      this.over(`Disconnected: ${reason || final}.`);
      this.status.show("error", `Disconnected: ${reason || final}.`, this.screen.hasPicture);
    } else {
      this.retry(reason || `code ${code}`);
    }
  }

  /** @param {string} why */
  retry(why) {
    if (this.ended) return;
    this.connection.retry(() => this.connect());
    this.show("reconnecting", "Reconnecting…", `Connection lost (${why}). Reconnecting…`);
  }

  async connect() {
    try {
      await this.connection.connect();
    } catch (error) {
      const status = /** @type {{ status?: number }} */ (error).status ?? 0;
      const message = error instanceof Error ? error.message : String(error);
      if (status === 409) {
        // Ended before (or while) this page joined: say how, e.g. consent was denied.
        let why = "This session has ended.";
        let reason = "";
        try {
          const session = await api("GET", `/api/sessions/${this.sessionId}`);
          if (session.end_reason) {
            reason = session.end_reason;
            why = this.endedText(reason);
          }
        } catch {
          // the plain message will do
        }
        this.over(why, reason);
      } else if (status === 404) {
        this.ended = true;
        this.show("error", "No such session.");
      } else if (status === 401) {
        location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
      } else if (status === 0 || status >= 500) {
        this.retry(message);
      } else {
        this.ended = true;
        this.show("error", `Cannot join: ${message}`);
      }
    }
  }

  async start() {
    if (!/^[0-9a-f-]{36}$/i.test(this.sessionId)) {
      this.show("error", "This is not a session address.");
      return;
    }
    this.me = await whoAmI();
    if (!this.me) {
      location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
      return;
    }
    /** @type {import("./input.js").KeyTable} */
    let keyTable = {};
    try {
      const response = await fetch("/web/keys.json", { cache: "no-cache" });
      if (response.ok) keyTable = await response.json();
    } catch {
      // without the table only text mode can type
    }
    try {
      this.constants = await loadConstants();
    } catch (error) {
      this.show("error", `Cannot start the viewer: ${error instanceof Error ? error.message : error}`);
      return;
    }
    this.chat.me = this.me.username;
    this.input = new Input(this.canvas, this.screen, keyTable, (kind, message) => this.send(kind, message), () => this.focusChat());
    this.toolbar = new Toolbar(this.doc, this, this.constants.specialKeys);
    window.addEventListener("resize", () => this.layout());
    this.screen.onResize = () => this.layout();
    this.canvas.addEventListener("click", () => this.focusScreen());
    this.statsTimer = window.setInterval(() => this.tickStats(), 1000);
    this.layout();
    this.codecs = await decodableCodecs();
    this.doc.body.dataset.codecs = this.codecs.join(",");
    this.show("waiting", "Connecting…");
    await this.connect();
  }

  tickStats() {
    const stats = /** @type {HTMLElement} */ (this.doc.getElementById("stats"));
    stats.textContent = `${this.stats.frames} fps · ${Math.round((this.stats.bytes * 8) / 1000)} kbit/s`;
    stats.dataset.fps = String(this.stats.frames);
    this.stats.frames = 0;
    this.stats.bytes = 0;
  }
}
