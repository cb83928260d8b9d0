// @ts-check
// The chat panel: lines from the relay (the sender named by the relay, shown as text), the
// form that sends, and telling this page's own lines from a namesake's.
import { h } from "../dom.js";
import { LIMITS } from "./wire.js";

export class Chat {
  /** @param {Document} doc @param {(text: string) => boolean} send sends a line; false when not connected */
  constructor(doc, send) {
    this.log = /** @type {HTMLElement} */ (doc.getElementById("chat-log"));
    this.form = /** @type {HTMLFormElement} */ (doc.getElementById("chat-form"));
    this.input = /** @type {HTMLInputElement} */ (doc.getElementById("chat-input"));
    this.button = /** @type {HTMLButtonElement} */ (doc.getElementById("chat-send"));
    this.send = send;
    /** This user's name, for "mine". @type {string} */
    this.me = "";
    /** Texts this page sent and the relay has not echoed yet: how "mine" is told apart from
     * a namesake (the user logged in at the machine may well be called the same).
     * @type {string[]} */
    this.unechoed = [];
    /** Lines received but not yet in the log: added once per animation frame, together,
     * with one scroll (a flood from the agent costs one layout a frame, not one a line).
     * @type {[boolean, string, string][]} */
    this.pending = [];
    this.frame = 0;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = this.input.value.trim();
      if (!text) return;
      if (!this.send(text)) return;
      this.unechoed.push(text);
      this.input.value = "";
    });
  }

  /** @param {string} sender @param {string} text */
  add(sender, text) {
    const mine = Boolean(this.me) && sender === this.me && this.unechoed[0] === text;
    if (mine) this.unechoed.shift();
    const shown = text.length > LIMITS.chatChars ? `${text.slice(0, LIMITS.chatChars)}…` : text;
    this.pending.push([mine, sender, shown]);
    // Only the last LIMITS.chatLines can ever be shown: keep no more than that waiting.
    if (this.pending.length > 2 * LIMITS.chatLines) this.pending = this.pending.slice(-LIMITS.chatLines);
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = 0;
    const lines = this.pending
      .slice(-LIMITS.chatLines)
      .map(([mine, sender, text]) => h("div", { class: `line${mine ? " me" : ""}` }, h("span", { class: "sender" }, `${sender || "remote"}:`), text));
    this.pending = [];
    this.log.append(...lines);
    // The log keeps the last LIMITS.chatLines lines.
    let extra = this.log.childElementCount - LIMITS.chatLines;
    while (extra-- > 0) this.log.firstElementChild?.remove();
    this.log.scrollTop = this.log.scrollHeight;
  }

  /** The session is over: nothing can be sent any more. */
  close() {
    this.input.disabled = true;
    this.button.disabled = true;
    this.input.placeholder = "The session has ended";
  }
}
