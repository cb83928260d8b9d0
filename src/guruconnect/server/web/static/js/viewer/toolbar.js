// @ts-check
// The toolbar and side-panel controls: special keys, text mode, take control, display,
// scale, fullscreen, End (with its confirmation), typing text and the clipboard.
import { h } from "../dom.js";
import { LEAVE_KEYS } from "./input.js";
import { SpecialKey } from "./wire.js";

/** How long "End for everyone?" waits for the second click. */
export const END_CONFIRM_MS = 4000;

/** The End button's two-step confirmation, judged by when the clicks happened (the events'
 * timeStamps), not by which of a timer and a click the page got to first: on a busy page a
 * second click made in time must still end the session, even when the timer that resets
 * the label ran before the click was handled. */
export class EndConfirm {
  constructor(windowMs = END_CONFIRM_MS) {
    this.windowMs = windowMs;
    /** When the first click happened (event.timeStamp), or null when not armed.
     * @type {number | null} */
    this.armedAt = null;
  }

  /** A click at `at` (ms, event.timeStamp): "armed" (ask to confirm) or "confirmed".
   * @param {number} at @returns {"armed" | "confirmed"} */
  press(at) {
    if (this.armedAt !== null && at - this.armedAt <= this.windowMs) {
      this.armedAt = null;
      return "confirmed";
    }
    this.armedAt = at;
    return "armed";
  }

  /** Whether the window has passed at `now` (then the label goes back to End).
   * @param {number} now */
  expired(now) {
    return this.armedAt === null || now - this.armedAt > this.windowMs;
  }
}

/**
 * What the toolbar acts on: the session (see session.js).
 * @typedef {{
 *   send(kind: string, message: object): boolean,
 *   focusScreen(): void,
 *   focusChat(): void,
 *   layout(): void,
 *   endForEveryone(): Promise<boolean>,
 *   hasControl(): boolean,
 *   input: import("./input.js").Input | null,
 *   screen: import("./screen.js").Screen,
 *   status: import("./status.js").StatusView,
 * }} ToolbarTarget
 */

export class Toolbar {
  /** @param {Document} doc @param {ToolbarTarget} session
   * @param {import("./constants.js").SpecialKeyItem[]} specialKeys */
  constructor(doc, session, specialKeys) {
    /** @param {string} id */
    const get = (id) => /** @type {HTMLElement} */ (doc.getElementById(id));
    this.doc = doc;
    this.session = session;
    this.cad = /** @type {HTMLButtonElement} */ (get("cad"));
    this.special = /** @type {HTMLSelectElement} */ (get("special"));
    this.textMode = /** @type {HTMLButtonElement} */ (get("text-mode"));
    this.take = /** @type {HTMLButtonElement} */ (get("take-control"));
    this.display = /** @type {HTMLSelectElement} */ (get("display"));
    this.scale = /** @type {HTMLButtonElement} */ (get("scale"));
    this.fullscreen = /** @type {HTMLButtonElement} */ (get("fullscreen"));
    this.end = /** @type {HTMLButtonElement} */ (get("end"));
    this.wrap = get("screen-wrap");
    this.typeForm = /** @type {HTMLFormElement} */ (get("type-form"));
    this.typeInput = /** @type {HTMLInputElement} */ (get("type-input"));
    this.typeSubmit = /** @type {HTMLButtonElement} */ (get("type-submit"));
    this.clipOut = /** @type {HTMLTextAreaElement} */ (get("clip-out"));
    this.clipIn = /** @type {HTMLTextAreaElement} */ (get("clip-in"));
    this.clipSend = /** @type {HTMLButtonElement} */ (get("clip-send"));
    this.endConfirm = new EndConfirm();
    this.endTimer = 0;
    this.ended = false;
    get("leave-keys").textContent = LEAVE_KEYS.label;
    this.special.append(...specialKeys.map((key) => h("option", { value: key.value }, key.label)));
    this.wire();
  }

  /** Controls that act on the remote machine work only while this viewer has control.
   * @param {boolean} acting @param {boolean} canTake */
  enable(acting, canTake) {
    for (const control of [this.display, this.cad, this.special, this.textMode, this.typeSubmit, this.clipSend]) {
      control.disabled = !acting;
    }
    this.take.hidden = !canTake;
  }

  /** The session is over: End says so and does nothing more; nothing acts any more. */
  sessionEnded() {
    this.ended = true;
    clearTimeout(this.endTimer);
    this.enable(false, false);
    this.end.disabled = true;
    this.end.textContent = "Session ended";
    this.end.title = "The session has ended";
  }

  wire() {
    const session = this.session;
    this.cad.addEventListener("click", () => {
      session.send("specialKey", { key: SpecialKey.SPECIAL_KEY_CTRL_ALT_DEL });
      session.focusScreen();
    });
    this.special.addEventListener("change", () => {
      const key = Number(this.special.value);
      if (key) session.send("specialKey", { key });
      this.special.value = "";
      session.focusScreen();
    });
    this.textMode.addEventListener("click", () => {
      const input = session.input;
      if (!input) return;
      input.releaseAll();
      input.textMode = !input.textMode;
      this.textMode.setAttribute("aria-pressed", String(input.textMode));
      this.textMode.classList.toggle("active", input.textMode);
      session.focusScreen();
    });
    this.take.addEventListener("click", () => session.send("controlRequest", { take: true }));
    this.display.addEventListener("change", () => {
      session.send("displaySwitch", { displayId: Number(this.display.value) });
      session.screen.hasPicture = false;
      session.screen.requestKeyframe();
    });
    this.scale.addEventListener("click", () => {
      const fit = this.wrap.classList.toggle("fit");
      this.scale.textContent = fit ? "Fit" : "1:1";
      this.scale.setAttribute("aria-pressed", String(fit));
      this.scale.setAttribute("aria-label", fit ? "Fit the remote screen to the window" : "Show the remote screen 1:1");
      session.layout();
      session.focusScreen();
    });
    this.fullscreen.addEventListener("click", async () => {
      if (document.fullscreenElement) {
        await document.exitFullscreen();
        return;
      }
      try {
        await document.documentElement.requestFullscreen({ navigationUI: "hide" });
        // With the keyboard locked, Win, Alt+Tab and Esc reach the remote machine
        // (holding Esc still leaves fullscreen).
        const keyboard = /** @type {any} */ (navigator).keyboard;
        if (keyboard && keyboard.lock) await keyboard.lock();
      } catch (error) {
        session.status.toast(`fullscreen: ${error instanceof Error ? error.message : error}`);
      }
      session.focusScreen();
    });
    document.addEventListener("fullscreenchange", () => {
      const keyboard = /** @type {any} */ (navigator).keyboard;
      if (!document.fullscreenElement && keyboard && keyboard.unlock) keyboard.unlock();
    });
    this.end.addEventListener("click", (event) => this.endClicked(event.timeStamp));
    this.typeForm.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!this.typeInput.value || !session.hasControl()) return;
      session.send("keyEvent", { text: this.typeInput.value });
      this.typeInput.value = "";
    });
    this.doc.getElementById("clip-paste")?.addEventListener("click", async () => {
      try {
        this.clipOut.value = await navigator.clipboard.readText();
      } catch {
        session.status.toast("the browser did not allow reading your clipboard; paste into the box instead");
      }
    });
    this.clipSend.addEventListener("click", () => {
      const text = this.clipOut.value;
      if (text) session.send("clipboard", { text });
    });
    this.doc.getElementById("clip-copy")?.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(this.clipIn.value);
      } catch {
        this.clipIn.select();
        session.status.toast("press Ctrl+C to copy");
      }
    });
  }

  /** @param {number} at the click's event.timeStamp */
  async endClicked(at) {
    if (this.ended) return;
    if (this.endConfirm.press(at) === "armed") {
      this.end.textContent = "End for everyone?";
      this.scheduleDisarm();
      return;
    }
    clearTimeout(this.endTimer);
    this.end.disabled = true;
    this.end.textContent = "Ending…";
    const done = await this.session.endForEveryone();
    if (!done && !this.ended) {
      this.end.disabled = false;
      this.end.textContent = "End session";
    }
  }

  /** Put the label back once the confirmation window has passed (checked again if the
   * timer ran early: timers are not exact). */
  scheduleDisarm() {
    clearTimeout(this.endTimer);
    this.endTimer = window.setTimeout(() => {
      if (this.ended || this.end.disabled) return;
      if (this.endConfirm.expired(performance.now())) this.end.textContent = "End session";
      else this.scheduleDisarm();
    }, END_CONFIRM_MS);
  }
}
