// @ts-check
// What the technician is told: the status pill, the overlay over the screen (with the
// consent countdown and "Ask again"), the page title and the toast.

/** @typedef {"waiting" | "consent" | "active" | "reconnecting" | "ended" | "error"} StatusKind */

export class StatusView {
  /** @param {Document} doc */
  constructor(doc) {
    /** @param {string} id */
    const get = (id) => /** @type {HTMLElement} */ (doc.getElementById(id));
    this.doc = doc;
    this.status = get("status");
    this.overlay = get("overlay");
    this.overlayText = get("overlay-text");
    this.countdown = get("countdown");
    this.askAgain = /** @type {HTMLButtonElement} */ (get("ask-again"));
    this.toastBox = get("toast");
    this.toastTimer = 0;
    this.countdownTimer = 0;
    /** When the consent prompt times out (performance.now() ms), or 0. */
    this.deadline = 0;
    /** @type {StatusKind} */
    this.kind = "waiting";
  }

  /** @param {string} message */
  toast(message) {
    this.toastBox.textContent = message;
    this.toastBox.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = window.setTimeout(() => (this.toastBox.hidden = true), 5000);
  }

  /** @param {StatusKind} kind @param {string} text @param {boolean} hasPicture
   * @param {string} [overlayText] */
  show(kind, text, hasPicture, overlayText = text) {
    this.kind = kind;
    this.status.textContent = text;
    this.status.className = `session-status s-${kind === "consent" ? "waiting" : kind}`;
    this.status.dataset.state = kind;
    this.overlay.hidden = kind === "active" && hasPicture;
    this.overlayText.textContent = kind === "active" && !hasPicture ? "Waiting for the first picture…" : overlayText;
    if (kind !== "consent") this.stopCountdown();
    if (kind !== "ended") this.askAgain.hidden = true;
    this.doc.title = `${text} · GuruConnect`;
  }

  /** The first picture is on screen. */
  pictured() {
    if (this.kind === "active") this.overlay.hidden = true;
  }

  /** Count down the consent prompt's time (the relay's consent timeout), from now unless
   * a countdown is already running (a repeated state does not restart it).
   * @param {number} seconds */
  startCountdown(seconds) {
    if (this.deadline) return;
    this.deadline = performance.now() + seconds * 1000;
    this.countdown.hidden = false;
    this.tick();
    this.countdownTimer = window.setInterval(() => this.tick(), 250);
  }

  tick() {
    const left = Math.max(0, Math.ceil((this.deadline - performance.now()) / 1000));
    const text = `The prompt on the remote machine times out in ${left} s.`;
    if (this.countdown.textContent !== text) this.countdown.textContent = text;
    this.countdown.dataset.seconds = String(left);
  }

  stopCountdown() {
    clearInterval(this.countdownTimer);
    this.countdownTimer = 0;
    this.deadline = 0;
    this.countdown.hidden = true;
  }

  /** Offer "Ask again" (after a denial or an unanswered prompt).
   * @param {() => void} onClick */
  offerAskAgain(onClick) {
    this.askAgain.onclick = onClick;
    this.askAgain.hidden = false;
  }
}
