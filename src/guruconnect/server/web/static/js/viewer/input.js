// Keyboard and mouse from the screen canvas to the remote machine.
//
// Keys go as physical keys: KeyboardEvent.code -> PC scan code + extended flag, from the
// agent's own table (/web/keys.json, generated from guruconnect.protocol.keys), so the
// remote layout decides what a key means. Text mode sends characters instead, for typing
// across layouts. Every key or button held down is released when the page loses focus,
// so nothing stays stuck on the remote machine.
import { MouseButton } from "./wire.js";

const BUTTONS = [MouseButton.MOUSE_BUTTON_LEFT, MouseButton.MOUSE_BUTTON_MIDDLE, MouseButton.MOUSE_BUTTON_RIGHT, MouseButton.MOUSE_BUTTON_BACK, MouseButton.MOUSE_BUTTON_FORWARD];
/** Pixels of wheel travel per remote wheel step (a line counts as one step). */
const WHEEL_PIXELS = 100;

export class Input {
  constructor(canvas, screen, keyTable, send) {
    this.canvas = canvas;
    this.screen = screen;
    this.keys = keyTable; // code -> [scan, extended]
    this.send = send; // (kind, message) => void
    this.enabled = false;
    this.textMode = false;
    this.heldKeys = new Map(); // code -> [scan, extended]
    this.heldButtons = new Set();
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

  key(event, down) {
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
