// Drawing the remote screen: raw BGRA tiles (zstd) with putImageData, H.264 access units
// through WebCodecs, and the remote cursor on a canvas of its own above the picture.
//
// The agent is not trusted: every size it sends is checked against LIMITS (and the displays
// it declared) before anything is allocated, so one message cannot take the tab to
// gigabytes or stall it.
import { Codec, LIMITS, toNumber, zstdDecompress } from "./wire.js";

/** Constrained baseline, as the agent encodes it; the level is generous. */
const H264_CONFIG = { codec: "avc1.42E033", optimizeForLatency: true };

/** Which codecs this browser can decode, for ViewerHello: only what actually works. */
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

/** The output size a zstd frame promises, checked without decompressing: one frame, its
 * content size declared, and blocks that cannot produce more than `expected` bytes (plus one
 * block's worth). Returns an error text, or "" when the frame may be decompressed into a
 * buffer of `expected` bytes. */
export function zstdCheck(data, expected) {
  const n = data.length;
  if (n < 6 || data[0] !== 0x28 || data[1] !== 0xb5 || data[2] !== 0x2f || data[3] !== 0xfd) return "not a zstd frame";
  const fhd = data[4];
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  if (fhd & 0x08) return "reserved bit set";
  let at = 5;
  let window = 0;
  if (!single) {
    const wd = data[at++];
    const exponent = wd >> 3;
    const base = 2 ** (10 + exponent);
    window = base + (base / 8) * (wd & 7);
  }
  at += [0, 1, 2, 4][fhd & 3];
  const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag];
  if (!fcsBytes) return "no declared size";
  if (at + fcsBytes > n) return "truncated header";
  let size = 0;
  for (let i = fcsBytes - 1; i >= 0; i--) size = size * 256 + data[at + i];
  if (fcsBytes === 2) size += 256;
  at += fcsBytes;
  if (size !== expected) return `declares ${size} bytes, expected ${expected}`;
  if (single) window = size;
  const blockMax = Math.min(window, 128 * 1024);
  // Walk the block headers: what the blocks can produce at most, bounded before decoding.
  let bound = 0;
  for (;;) {
    if (at + 3 > n) return "truncated block";
    const header = data[at] | (data[at + 1] << 8) | (data[at + 2] << 16);
    at += 3;
    const type = (header >> 1) & 3;
    const blockSize = header >>> 3;
    if (type === 0) {
      bound += blockSize;
      at += blockSize;
    } else if (type === 1) {
      bound += blockSize;
      at += 1;
    } else if (type === 2) {
      bound += blockMax;
      at += blockSize;
    } else {
      return "reserved block type";
    }
    if (bound > expected + 128 * 1024) return "blocks would exceed the declared size";
    if (header & 1) break;
  }
  if (fhd & 0x04) at += 4;
  if (at !== n) return "data after the frame";
  return "";
}

/** Decompress one tile's BGRA into a buffer of exactly `expected` bytes, or throw. */
export function decompressTile(data, expected) {
  const problem = zstdCheck(data, expected);
  if (problem) throw new Error(`a tile was refused: ${problem}`);
  const out = new Uint8Array(expected);
  const bgra = zstdDecompress(data, out);
  if (bgra.length !== expected) throw new Error(`a tile has ${bgra.length} bytes, expected ${expected}`);
  return bgra;
}

export class Screen {
  constructor(canvas, cursorCanvas, { onNeedKeyframe, onError, onPicture }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.cursorCanvas = cursorCanvas;
    // The cursor has a canvas of its own, never bigger than the largest shape allowed; it
    // is moved over the picture rather than sized to it.
    cursorCanvas.width = cursorCanvas.height = LIMITS.cursorSide;
    this.cursorCtx = cursorCanvas.getContext("2d");
    this.displays = []; // what the agent declared (DisplayList / SessionState)
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
    this.decoder = null;
    this.awaitingKey = true;
    this.displayId = 0;
    this.shapes = new Map(); // cursor shape id -> canvas
    this.cursor = { x: 0, y: 0, visible: false, shapeId: 0 };
    this.hasPicture = false;
    this.onResize = null;
  }

  /** The displays the agent declared: frames may not be bigger than these. */
  setDisplays(displays) {
    this.displays = displays;
  }

  /** Why a screen of width x height is refused, or "". At most LIMITS (side and area),
   * and no bigger than the displays the agent declared, alone or side by side. */
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
   * pixel work (the tile count itself is checked on the wire bytes, see wire.js). */
  tileProblem(frame) {
    const grid = Math.ceil(frame.width / LIMITS.tile) * Math.ceil(frame.height / LIMITS.tile);
    if (frame.tiles.length > grid) return `${frame.tiles.length} tiles for a ${grid}-tile screen`;
    return "";
  }

  /** Draw one VideoFrame message. */
  frame(frame) {
    this.displayId = frame.displayId;
    if (frame.codec === Codec.CODEC_H264) {
      this.h264(frame);
      return;
    }
    if (!this.resize(frame.width, frame.height)) return;
    const problem = this.tileProblem(frame);
    if (problem) {
      this.onError(`a frame was refused: ${problem}`);
      return;
    }
    if (!frame.keyframe && !this.hasPicture) {
      this.requestKeyframe();
    }
    for (const tile of frame.tiles) {
      const { x, y, width, height } = tile;
      if (!width || !height || width > LIMITS.tile || height > LIMITS.tile || x + width > frame.width || y + height > frame.height) {
        this.onError(`a ${width}×${height} tile at ${x},${y} was refused`);
        continue;
      }
      const expected = width * height * 4;
      let bgra;
      try {
        bgra = decompressTile(tile.data, expected);
      } catch (error) {
        this.onError(error.message);
        continue;
      }
      // BGRA -> RGBA in place, opaque.
      for (let i = 0; i < bgra.length; i += 4) {
        const b = bgra[i];
        bgra[i] = bgra[i + 2];
        bgra[i + 2] = b;
        bgra[i + 3] = 255;
      }
      const image = new ImageData(new Uint8ClampedArray(bgra.buffer, bgra.byteOffset, expected), tile.width, tile.height);
      this.ctx.putImageData(image, tile.x, tile.y);
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
    canvas.getContext("2d").putImageData(new ImageData(pixels, width, height), 0, 0);
    // A bounded cache: the least recently used shape goes first (a Map keeps insertion
    // order, and a used shape is moved to the end).
    const id = toNumber(shape.id);
    this.shapes.delete(id);
    this.shapes.set(id, { canvas, hx: Math.min(shape.hotspotX, width), hy: Math.min(shape.hotspotY, height) });
    while (this.shapes.size > LIMITS.cursorShapes) this.shapes.delete(this.shapes.keys().next().value);
    this.cursorCanvas.dataset.shapes = String(this.shapes.size);
    this.drawCursor();
  }

  cursorPosition(position) {
    this.cursor = { x: position.x, y: position.y, visible: position.visible, shapeId: toNumber(position.shapeId) };
    this.drawCursor();
  }

  /** Put the cursor canvas's top-left at remote (left, top), scaled like the picture. */
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

  /** Remote display coordinates of a pointer event on the (possibly scaled) canvas. */
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
  }
}
