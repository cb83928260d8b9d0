// @ts-check
// Keyboard and mouse from the screen canvas to the remote machine.
//
// Keys go as physical keys: KeyboardEvent.code -> PC scan code + extended flag, from the
// agent's own table (/web/keys.json, generated from guruconnect.protocol.keys), so the
// remote layout decides what a key means. Text mode sends characters instead, for typing
// across layouts. Every key or button held down is released when the page loses focus,
// so nothing stays stuck on the remote machine.
//
// While the canvas has focus every key goes to the remote machine, Tab included (the
// remote desktop needs it). LEAVE_KEYS is the one chord the viewer keeps: it lets go of
// the keyboard and moves focus out of the canvas (to the chat). The page says so next to
// the screen (#keyboard-hint); the README documents it (Dashboard and web viewer).
import { MouseButton } from "./wire.js";

/** The chord that leaves keyboard capture: Ctrl+Alt+Shift+Q (Q for quit). No remote
 * desktop or browser shortcut uses it. */
export const LEAVE_KEYS = Object.freeze({ code: "KeyQ", ctrlKey: true, altKey: true, shiftKey: true, label: "Ctrl+Alt+Shift+Q" });

/** @param {KeyboardEvent} event @returns {boolean} */
export function isLeaveChord(event) {
  return event.code === LEAVE_KEYS.code && event.ctrlKey && event.altKey && event.shiftKey && !event.metaKey;
}

const BUTTONS = [MouseButton.MOUSE_BUTTON_LEFT, MouseButton.MOUSE_BUTTON_MIDDLE, MouseButton.MOUSE_BUTTON_RIGHT, MouseButton.MOUSE_BUTTON_BACK, MouseButton.MOUSE_BUTTON_FORWARD];
/** Pixels of wheel travel per remote wheel step (a line counts as one step). */
const WHEEL_PIXELS = 100;

/**
 * @typedef {(kind: string, message: object) => void} Send
 * @typedef {Record<string, [number, boolean]>} KeyTable KeyboardEvent.code -> [scan, extended]
 * @typedef {{ displayId: number, toRemote(event: MouseEvent): { x: number, y: number } }} Pointer
 */

export class Input {
  /** @param {HTMLCanvasElement} canvas @param {Pointer} screen @param {KeyTable} keyTable
   * @param {Send} send @param {() => void} onLeave called after LEAVE_KEYS let go of the keyboard */
  constructor(canvas, screen, keyTable, send, onLeave) {
    this.canvas = canvas;
    this.screen = screen;
    this.keys = keyTable;
    this.send = send;
    this.onLeave = onLeave;
    this.enabled = false;
    this.textMode = false;
    /** @type {Map<string, [number, boolean]>} code -> [scan, extended] */
    this.heldKeys = new Map();
    /** @type {Set<number>} */
    this.heldButtons = new Set();
    /** @type {{ x: number, y: number } | null} */
    this.pendingMove = null;
    this.moveScheduled = false;
    this.wheel = { x: 0, y: 0 };
    this.last = { x: 0, y: 0 };

    canvas.addEventListener("keydown", (e) => this.key(e, true));
    canvas.addEventListener("keyup", (e) => this.key(e, false));
    canvas.addEventListener("mousemove", (e) => this.move(e));
    canvas.addEventListener("mousedown", (e) => this.button(e, true));
    canvas.addEventListener("mouseup", (e) => this.button(e, false));
    canvas.addEventListener("wheel", (e) => this.wheelEvent(e), { passive: false });
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    canvas.addEventListener("blur", () => this.releaseAll());
    window.addEventListener("blur", () => this.releaseAll());
    document.addEventListener("visibilitychange", () => document.hidden && this.releaseAll());
  }

  /** @param {KeyboardEvent} event @param {boolean} down */
  key(event, down) {
    if (down && isLeaveChord(event)) {
      // Works with or without control: the way out of the canvas is always there.
      event.preventDefault();
      this.releaseAll();
      this.onLeave();
      return;
    }
    if (!this.enabled) return;
    if (event.isComposing) return;
    if (this.textMode && down && event.key.length === 1 && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      this.send("keyEvent", { text: event.key });
      return;
    }
    if (this.textMode && !down && event.key.length === 1 && !this.heldKeys.has(event.code)) {
      event.preventDefault(); // the release of a key that went as text
      return;
    }
    const entry = this.keys[event.code];
    if (!entry) return; // a key the table does not know: let the browser have it
    event.preventDefault();
    const [scanCode, extended] = entry;
    if (down) this.heldKeys.set(event.code, entry);
    else if (!this.heldKeys.delete(event.code)) return; // never an up without its down
    this.send("keyEvent", { scanCode, extended, down });
  }

  flushMove() {
    this.moveScheduled = false;
    if (!this.pendingMove) return;
    const { x, y } = this.pendingMove;
    this.pendingMove = null;
    this.send("mouseEvent", { displayId: this.screen.displayId, x, y });
  }

  /** @param {MouseEvent} event */
  move(event) {
    if (!this.enabled) return;
    this.last = this.screen.toRemote(event);
    this.pendingMove = this.last;
    // One move per animation frame at most: the relay throttles input per viewer.
    if (!this.moveScheduled) {
      this.moveScheduled = true;
      requestAnimationFrame(() => this.flushMove());
    }
  }

  /** @param {MouseEvent} event @param {boolean} down */
  button(event, down) {
    if (!this.enabled) return;
    const button = BUTTONS[event.button];
    if (!button) return;
    event.preventDefault();
    if (down) this.canvas.focus();
    this.pendingMove = null;
    this.last = this.screen.toRemote(event);
    if (down) this.heldButtons.add(button);
    else if (!this.heldButtons.delete(button)) return;
    this.send("mouseEvent", { displayId: this.screen.displayId, ...this.last, button, down });
  }

  /** @param {WheelEvent} event */
  wheelEvent(event) {
    if (!this.enabled) return;
    event.preventDefault();
    const scale = event.deltaMode === 0 ? 1 / WHEEL_PIXELS : 1;
    this.wheel.x += event.deltaX * scale;
    this.wheel.y += event.deltaY * scale;
    const stepsX = Math.trunc(this.wheel.x);
    const stepsY = Math.trunc(this.wheel.y);
    if (!stepsX && !stepsY) return;
    this.wheel.x -= stepsX;
    this.wheel.y -= stepsY;
    // Browser deltas grow downwards/rightwards; the protocol's positive wheel_y is up.
    this.send("mouseEvent", { displayId: this.screen.displayId, ...this.screen.toRemote(event), wheelX: stepsX, wheelY: -stepsY });
  }

  /** Let go of everything held: on blur, hidden page, lost control or disconnect. */
  releaseAll() {
    for (const [, [scanCode, extended]] of this.heldKeys) {
      this.send("keyEvent", { scanCode, extended, down: false });
    }
    this.heldKeys.clear();
    for (const button of this.heldButtons) {
      this.send("mouseEvent", { displayId: this.screen.displayId, ...this.last, button, down: false });
    }
    this.heldButtons.clear();
  }
}
