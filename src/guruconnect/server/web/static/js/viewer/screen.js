// @ts-check
// Drawing the remote screen: raw BGRA tiles (zstd, decoded in a worker) with putImageData,
// H.264 access units through WebCodecs, and the remote cursor on a canvas of its own above
// the picture.
//
// The agent is not trusted: every size it sends is checked against LIMITS (and the displays
// it declared) before anything is allocated, so one message cannot take the tab to
// gigabytes or stall it.
import { decodeTiles } from "./tiles.js";
import { Codec, LIMITS, toNumber } from "./wire.js";

export { decompressTile, zstdCheck } from "./tiles.js";

/** Constrained baseline, as the agent encodes it; the level is generous. */
const H264_CONFIG = { codec: "avc1.42E033", optimizeForLatency: true };

/** Raw frames handed to the worker and not drawn yet, beyond which a delta frame is
 * dropped (and a keyframe asked for) rather than queued: the picture catches up instead of
 * falling further behind. */
const MAX_IN_FLIGHT = 8;

/**
 * @typedef {{ id: number, x: number, y: number, width: number, height: number, primary?: boolean, name?: string }} Display
 * @typedef {{ displayId: number, codec: number, keyframe: boolean, width: number, height: number,
 *   tiles: import("./tiles.js").Tile[], data: Uint8Array, timestampUs: any }} VideoFrameMessage
 * @typedef {{ id: any, width: number, height: number, hotspotX: number, hotspotY: number, bgra: Uint8Array }} CursorShapeMessage
 * @typedef {{ x: number, y: number, visible: boolean, shapeId: any }} CursorPositionMessage
 * @typedef {{ onNeedKeyframe: () => void, onError: (message: string) => void, onPicture: () => void }} ScreenEvents
 * @typedef {{ width: number, height: number, keyframe: boolean }} Pending
 */

/** Which codecs this browser can decode, for ViewerHello: only what actually works.
 * @returns {Promise<number[]>} */
export async function decodableCodecs() {
  const codecs = [Codec.CODEC_RAW_ZSTD];
  try {
    if (typeof VideoDecoder !== "undefined") {
      const { supported } = await VideoDecoder.isConfigSupported(H264_CONFIG);
      if (supported) codecs.unshift(Codec.CODEC_H264);
    }
  } catch {
    // no WebCodecs (e.g. not a secure context): raw tiles only
  }
  return codecs;
}

/** Raw tiles decoded off the page's thread, answered in the order asked. Falls back to
 * decoding on the page when a worker cannot start or dies (the canvas's data-decoder says
 * which is in use: "worker" or "page"). */
class TileDecoder {
  /** @param {(request: Pending, decoded: import("./tiles.js").Decoded) => void} onDecoded
   * @param {() => void} onLost called when frames in flight were lost (the worker died) */
  constructor(onDecoded, onLost) {
    this.onDecoded = onDecoded;
    this.onLost = onLost;
    /** @type {Map<number, Pending>} */
    this.pending = new Map();
    this.nextId = 1;
    /** Tiles the worker decoded (for the tests: the work did leave the page's thread). */
    this.workerTiles = 0;
    /** @type {Worker | null} */
    this.worker = null;
    try {
      this.worker = new Worker(new URL("./decode-worker.js", import.meta.url), { type: "module", name: "tile decoder" });
      this.worker.addEventListener("message", (event) => this.answered(event.data));
      this.worker.addEventListener("error", () => this.fallBack());
    } catch {
      this.worker = null;
    }
  }

  get where() {
    return this.worker ? "worker" : "page";
  }

  get inFlight() {
    return this.pending.size;
  }

  /** @param {import("./tiles.js").Tile[]} tiles @param {Pending} frame */
  decode(tiles, frame) {
    if (!this.worker) {
      this.onDecoded(frame, decodeTiles(tiles, frame.width, frame.height));
      return;
    }
    const id = this.nextId++;
    this.pending.set(id, frame);
    // The tiles' bytes are views into the message's buffer: hand each buffer over once.
    const buffers = [...new Set(tiles.map((t) => t.data.buffer))];
    const plain = tiles.map(({ x, y, width, height, data }) => ({ x, y, width, height, data }));
    this.worker.postMessage({ id, width: frame.width, height: frame.height, tiles: plain }, buffers);
  }

  /** @param {{ id: number } & import("./tiles.js").Decoded} reply */
  answered(reply) {
    const frame = this.pending.get(reply.id);
    if (!frame) return;
    this.pending.delete(reply.id);
    this.workerTiles += reply.pixels.length;
    this.onDecoded(frame, reply);
  }

  fallBack() {
    if (this.worker) this.worker.terminate();
    this.worker = null;
    const lost = this.pending.size > 0;
    this.pending.clear();
    if (lost) this.onLost();
  }

  close() {
    if (this.worker) this.worker.terminate();
    this.worker = null;
    this.pending.clear();
  }
}

export class Screen {
  /** @param {HTMLCanvasElement} canvas @param {HTMLCanvasElement} cursorCanvas @param {ScreenEvents} events */
  constructor(canvas, cursorCanvas, { onNeedKeyframe, onError, onPicture }) {
    this.canvas = canvas;
    const ctx = canvas.getContext("2d", { alpha: false });
    if (!ctx) throw new Error("no 2D canvas");
    this.ctx = ctx;
    this.cursorCanvas = cursorCanvas;
    // The cursor has a canvas of its own, never bigger than the largest shape allowed; it
    // is moved over the picture rather than sized to it.
    cursorCanvas.width = cursorCanvas.height = LIMITS.cursorSide;
    const cursorCtx = cursorCanvas.getContext("2d");
    if (!cursorCtx) throw new Error("no 2D canvas");
    this.cursorCtx = cursorCtx;
    /** @type {Display[]} what the agent declared (DisplayList / SessionState) */
    this.displays = [];
    // A canvas whose backing store was dropped (memory pressure, GPU reset) comes back
    // blank: the picture must be whole again.
    canvas.addEventListener("contextlost", () => {
      this.hasPicture = false;
    });
    canvas.addEventListener("contextrestored", () => {
      this.hasPicture = false;
      this.lastKeyframeAsk = 0;
      this.requestKeyframe();
    });
    this.onNeedKeyframe = onNeedKeyframe;
    this.onError = onError;
    this.onPicture = onPicture; // the first whole picture after a (re)start is on screen
    /** @type {VideoDecoder | null} */
    this.decoder = null;
    this.awaitingKey = true;
    this.displayId = 0;
    this.lastKeyframeAsk = 0;
    /** @type {Map<number, { canvas: HTMLCanvasElement, hx: number, hy: number }>} cursor shape id -> shape */
    this.shapes = new Map();
    this.cursor = { x: 0, y: 0, visible: false, shapeId: 0 };
    this.hasPicture = false;
    /** @type {(() => void) | null} */
    this.onResize = null;
    this.tiles = new TileDecoder(
      (frame, decoded) => this.drawTiles(frame, decoded),
      () => {
        this.hasPicture = false;
        this.requestKeyframe();
      },
    );
    canvas.dataset.decoder = this.tiles.where;
  }

  /** The displays the agent declared: frames may not be bigger than these.
   * @param {Display[]} displays */
  setDisplays(displays) {
    this.displays = displays;
  }

  /** Why a screen of width x height is refused, or "". At most LIMITS (side and area),
   * and no bigger than the displays the agent declared, alone or side by side.
   * @param {number} width @param {number} height @returns {string} */
  sizeProblem(width, height) {
    if (!width || !height) return "no size";
    if (width > LIMITS.screenSide || height > LIMITS.screenSide || width * height > LIMITS.screenPixels) {
      return `${width}×${height} is over the viewer's limit`;
    }
    if (this.displays.length) {
      let w = 0;
      let h = 0;
      let right = 0;
      let bottom = 0;
      for (const d of this.displays) {
        w = Math.max(w, d.width);
        h = Math.max(h, d.height);
        right = Math.max(right, d.x + d.width);
        bottom = Math.max(bottom, d.y + d.height);
      }
      if ((width > w || height > h) && (width > right || height > bottom)) {
        return `${width}×${height} is bigger than the displays the agent declared`;
      }
    }
    return "";
  }

  /** @param {number} width @param {number} height @returns {boolean} */
  resize(width, height) {
    if (this.canvas.width === width && this.canvas.height === height) return true;
    const problem = this.sizeProblem(width, height);
    if (problem) {
      this.onError(`a frame was refused: ${problem}`);
      return false;
    }
    // Resizing clears a canvas: the next frame must be whole.
    this.canvas.width = width;
    this.canvas.height = height;
    this.hasPicture = false;
    this.drawCursor();
    if (this.onResize) this.onResize();
    return true;
  }

  /** Why a frame's tiles are refused, or "": checked on the decoded message before any
   * pixel work (the tile count itself is checked on the wire bytes, see wire.js).
   * @param {VideoFrameMessage} frame @returns {string} */
  tileProblem(frame) {
    const grid = Math.ceil(frame.width / LIMITS.tile) * Math.ceil(frame.height / LIMITS.tile);
    if (frame.tiles.length > grid) return `${frame.tiles.length} tiles for a ${grid}-tile screen`;
    return "";
  }

  /** Draw one VideoFrame message (raw frames once the worker has decoded them).
   * @param {VideoFrameMessage} frame */
  frame(frame) {
    this.displayId = frame.displayId;
    if (frame.codec === Codec.CODEC_H264) {
      this.h264(frame);
      return;
    }
    const problem = this.sizeProblem(frame.width, frame.height) || this.tileProblem(frame);
    if (problem) {
      this.onError(`a frame was refused: ${problem}`);
      return;
    }
    if (!frame.keyframe && !this.hasPicture) {
      this.requestKeyframe();
    }
    if (!frame.keyframe && this.tiles.inFlight >= MAX_IN_FLIGHT) {
      // The decoder is behind: skip this change, a keyframe will bring the picture back.
      this.requestKeyframe();
      return;
    }
    this.tiles.decode(frame.tiles, { width: frame.width, height: frame.height, keyframe: frame.keyframe });
  }

  /** @param {Pending} frame @param {import("./tiles.js").Decoded} decoded */
  drawTiles(frame, decoded) {
    this.canvas.dataset.workerTiles = String(this.tiles.workerTiles);
    this.canvas.dataset.decoder = this.tiles.where;
    if (!this.resize(frame.width, frame.height)) return;
    for (const message of decoded.errors) this.onError(message);
    for (const p of decoded.pixels) {
      this.ctx.putImageData(new ImageData(p.rgba, p.width, p.height), p.x, p.y);
    }
    if (frame.keyframe) this.pictured();
  }

  pictured() {
    if (this.hasPicture) return;
    this.hasPicture = true;
    if (this.onPicture) this.onPicture();
  }

  requestKeyframe() {
    const now = performance.now();
    if (this.lastKeyframeAsk && now - this.lastKeyframeAsk < 1000) return;
    this.lastKeyframeAsk = now;
    this.onNeedKeyframe();
  }

  /** @param {VideoFrameMessage} frame */
  h264(frame) {
    if (!this.decoder || this.decoder.state === "closed") {
      this.decoder = new VideoDecoder({
        output: (picture) => {
          if (this.resize(picture.displayWidth, picture.displayHeight)) {
            this.ctx.drawImage(picture, 0, 0);
            this.pictured();
          }
          picture.close();
        },
        error: (error) => {
          this.onError(`video decoder: ${error.message}`);
          this.decoder = null;
          this.awaitingKey = true;
          this.requestKeyframe();
        },
      });
      this.decoder.configure(H264_CONFIG);
      this.awaitingKey = true;
    }
    if (this.awaitingKey && !frame.keyframe) {
      this.requestKeyframe();
      return;
    }
    this.awaitingKey = false;
    this.decoder.decode(
      new EncodedVideoChunk({
        type: frame.keyframe ? "key" : "delta",
        timestamp: toNumber(frame.timestampUs),
        data: frame.data,
      }),
    );
  }

  /** @param {CursorShapeMessage} shape */
  cursorShape(shape) {
    const { width, height } = shape;
    const side = LIMITS.cursorSide;
    if (!width || !height || width > side || height > side || shape.bgra.length !== width * height * 4) {
      this.onError(`a ${width}×${height} cursor shape was refused`);
      return;
    }
    const pixels = new Uint8ClampedArray(shape.bgra.length);
    for (let i = 0; i < pixels.length; i += 4) {
      pixels[i] = shape.bgra[i + 2];
      pixels[i + 1] = shape.bgra[i + 1];
      pixels[i + 2] = shape.bgra[i];
      pixels[i + 3] = shape.bgra[i + 3];
    }
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    ctx.putImageData(new ImageData(pixels, width, height), 0, 0);
    // A bounded cache: the least recently used shape goes first (a Map keeps insertion
    // order, and a used shape is moved to the end).
    const id = toNumber(shape.id);
    this.shapes.delete(id);
    this.shapes.set(id, { canvas, hx: Math.min(shape.hotspotX, width), hy: Math.min(shape.hotspotY, height) });
    while (this.shapes.size > LIMITS.cursorShapes) {
      const oldest = this.shapes.keys().next();
      if (oldest.done) break;
      this.shapes.delete(oldest.value);
    }
    this.cursorCanvas.dataset.shapes = String(this.shapes.size);
    this.drawCursor();
  }

  /** @param {CursorPositionMessage} position */
  cursorPosition(position) {
    this.cursor = { x: position.x, y: position.y, visible: position.visible, shapeId: toNumber(position.shapeId) };
    this.drawCursor();
  }

  /** Put the cursor canvas's top-left at remote (left, top), scaled like the picture.
   * @param {number} left @param {number} top */
  placeCursor(left, top) {
    const style = this.cursorCanvas.style;
    // The CSS width layout() gave the picture (no layout read per cursor move).
    const shown = parseFloat(this.canvas.style.width) || this.canvas.width;
    const scale = this.canvas.width ? shown / this.canvas.width : 1;
    style.transformOrigin = "0 0";
    style.transform = `translate(${left * scale}px, ${top * scale}px) scale(${scale})`;
    this.cursorCanvas.dataset.left = String(left);
    this.cursorCanvas.dataset.top = String(top);
  }

  drawCursor() {
    const ctx = this.cursorCtx;
    ctx.clearRect(0, 0, this.cursorCanvas.width, this.cursorCanvas.height);
    if (!this.cursor.visible) return;
    const shape = this.shapes.get(this.cursor.shapeId);
    if (shape) {
      // Recently used: to the end of the cache's order.
      this.shapes.delete(this.cursor.shapeId);
      this.shapes.set(this.cursor.shapeId, shape);
      this.placeCursor(this.cursor.x - shape.hx, this.cursor.y - shape.hy);
      ctx.drawImage(shape.canvas, 0, 0);
      return;
    }
    // No shape yet: a plain arrow so the technician still sees where the pointer is.
    this.placeCursor(this.cursor.x - 1, this.cursor.y - 1);
    const x = 1;
    const y = 1;
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x, y + 16);
    ctx.lineTo(x + 4, y + 12);
    ctx.lineTo(x + 11, y + 12);
    ctx.closePath();
    ctx.fillStyle = "#fff";
    ctx.strokeStyle = "#000";
    ctx.fill();
    ctx.stroke();
  }

  /** Remote display coordinates of a pointer event on the (possibly scaled) canvas.
   * @param {MouseEvent} event @returns {{ x: number, y: number }} */
  toRemote(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * this.canvas.width) / rect.width;
    const y = ((event.clientY - rect.top) * this.canvas.height) / rect.height;
    return {
      x: Math.max(0, Math.min(this.canvas.width - 1, Math.round(x))),
      y: Math.max(0, Math.min(this.canvas.height - 1, Math.round(y))),
    };
  }

  close() {
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
    this.decoder = null;
    this.tiles.close();
  }
}
