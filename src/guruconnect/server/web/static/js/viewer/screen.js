// Drawing the remote screen: raw BGRA tiles (zstd) with putImageData, H.264 access units
// through WebCodecs, and the remote cursor on a canvas of its own above the picture.
import { Codec, toNumber, zstdDecompress } from "./wire.js";

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

export class Screen {
  constructor(canvas, cursorCanvas, { onNeedKeyframe, onError, onPicture }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.cursorCanvas = cursorCanvas;
    this.cursorCtx = cursorCanvas.getContext("2d");
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

  resize(width, height) {
    if (!width || !height || (this.canvas.width === width && this.canvas.height === height)) return;
    // Resizing clears a canvas: the next frame must be whole.
    this.canvas.width = this.cursorCanvas.width = width;
    this.canvas.height = this.cursorCanvas.height = height;
    this.hasPicture = false;
    this.drawCursor();
    if (this.onResize) this.onResize();
  }

  /** Draw one VideoFrame message. */
  frame(frame) {
    this.displayId = frame.displayId;
    if (frame.codec === Codec.CODEC_H264) {
      this.h264(frame);
      return;
    }
    this.resize(frame.width, frame.height);
    if (!frame.keyframe && !this.hasPicture) {
      this.requestKeyframe();
    }
    for (const tile of frame.tiles) {
      const bgra = zstdDecompress(tile.data);
      const expected = tile.width * tile.height * 4;
      if (bgra.length !== expected) {
        this.onError(`a tile has ${bgra.length} bytes, expected ${expected}`);
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
          this.resize(picture.displayWidth, picture.displayHeight);
          this.ctx.drawImage(picture, 0, 0);
          picture.close();
          this.pictured();
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
    if (!width || !height || shape.bgra.length !== width * height * 4) return;
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
    this.shapes.set(toNumber(shape.id), { canvas, hx: shape.hotspotX, hy: shape.hotspotY });
    this.drawCursor();
  }

  cursorPosition(position) {
    this.cursor = { x: position.x, y: position.y, visible: position.visible, shapeId: toNumber(position.shapeId) };
    this.drawCursor();
  }

  drawCursor() {
    const ctx = this.cursorCtx;
    ctx.clearRect(0, 0, this.cursorCanvas.width, this.cursorCanvas.height);
    if (!this.cursor.visible) return;
    const shape = this.shapes.get(this.cursor.shapeId);
    if (shape) {
      ctx.drawImage(shape.canvas, this.cursor.x - shape.hx, this.cursor.y - shape.hy);
      return;
    }
    // No shape yet: a plain arrow so the technician still sees where the pointer is.
    const { x, y } = this.cursor;
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
