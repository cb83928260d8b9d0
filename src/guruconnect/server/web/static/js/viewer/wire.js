// @ts-check
/// <reference path="./wire-bundle.d.ts" />
// The wire format, from the bundle built out of proto/guruconnect.proto at setup.
import { guruconnect, zstdDecompress } from "/static/build/wire.js";

const v1 = guruconnect.v1;
export const { Codec, Scope, SpecialKey, MouseButton } = v1;
export const State = v1.SessionState.State;
export { zstdDecompress };

/** What the viewer accepts from an agent (which is not trusted). README: "Viewer limits". */
export const LIMITS = Object.freeze({
  /** A tile's side (the raw codec's tile grid). */
  tile: 64,
  /** A remote screen: at most this many pixels a side, and this many in all (8K UHD fits). */
  screenSide: 8192,
  screenPixels: 8192 * 4608,
  /** The cursor canvas's side, and the largest cursor shape. */
  cursorSide: 256,
  /** Cursor shapes kept (least recently used dropped first). */
  cursorShapes: 32,
  /** Displays in the picker; a longer list is refused. */
  displays: 16,
  /** Chat lines kept in the log, and characters shown of one line. */
  chatLines: 500,
  chatChars: 4096,
});

/** Envelope field numbers (proto/guruconnect.proto) of the payloads checked before decoding. */
const VIDEO_FRAME = 20;
const DISPLAY_LIST = 44;

/** A minimal protobuf wire reader over the raw bytes: counts repeated fields without
 * building a single object, so a message with millions of entries is refused cheaply. */
class Fields {
  /** @param {Uint8Array} bytes @param {number} [start] @param {number} [end] */
  constructor(bytes, start = 0, end = bytes.length) {
    this.b = bytes;
    this.at = start;
    this.end = end;
  }

  varint() {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.at >= this.end) throw new Error("truncated varint");
      const byte = this.b[this.at++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new Error("bad varint");
  }

  /** [field, wireType, valueOrLength, start] of the next field, or null at the end.
   * @returns {[number, number, number, number] | null} */
  next() {
    if (this.at >= this.end) return null;
    const tag = this.varint();
    const field = Math.floor(tag / 8);
    const type = tag & 7;
    if (type === 0) return [field, type, this.varint(), 0];
    if (type === 2) {
      const length = this.varint();
      const start = this.at;
      this.at += length;
      if (this.at > this.end) throw new Error("truncated field");
      return [field, type, length, start];
    }
    if (type === 1 || type === 5) {
      this.at += type === 1 ? 8 : 4;
      return [field, type, 0, 0];
    }
    throw new Error(`wire type ${type}`);
  }
}

/** Why a received message is refused before decoding, or "".
 * @param {Uint8Array} bytes */
export function precheck(bytes) {
  const envelope = new Fields(bytes);
  let entry;
  while ((entry = envelope.next())) {
    const [field, type, length, start] = entry;
    if (type !== 2 || (field !== VIDEO_FRAME && field !== DISPLAY_LIST)) continue;
    const inner = new Fields(bytes, start, start + length);
    let width = 0;
    let height = 0;
    let count = 0;
    let item;
    const repeated = field === VIDEO_FRAME ? 8 : 1;
    const cap = field === VIDEO_FRAME ? Infinity : LIMITS.displays;
    while ((item = inner.next())) {
      if (item[0] === repeated && item[1] === 2) {
        count += 1;
        // Sizes come first in the order encoders write: stop counting at the grid.
        if (count > cap || (width && height && count > Math.ceil(width / LIMITS.tile) * Math.ceil(height / LIMITS.tile))) break;
      } else if (field === VIDEO_FRAME && item[0] === 6 && item[1] === 0) width = item[2];
      else if (field === VIDEO_FRAME && item[0] === 7 && item[1] === 0) height = item[2];
    }
    if (field === DISPLAY_LIST && count > LIMITS.displays) {
      return `the agent declared more than ${LIMITS.displays} displays, the most the viewer shows`;
    }
    if (field === VIDEO_FRAME) {
      const side = LIMITS.screenSide;
      if (width > side || height > side || width * height > LIMITS.screenPixels) {
        return `a ${width}×${height} frame is over the viewer's limit`;
      }
      const grid = Math.ceil(width / LIMITS.tile) * Math.ceil(height / LIMITS.tile);
      if (count > grid) return `a frame of more than ${grid} tiles for a ${grid}-tile screen`;
    }
  }
  return "";
}

/** One envelope carrying one payload, e.g. encode("keyEvent", {scanCode: 30, down: true}).
 * @param {string} kind @param {object} message @returns {Uint8Array<ArrayBuffer>} */
export function encode(kind, message) {
  return v1.Envelope.encode({ [kind]: message }).finish();
}

/** A message refused by precheck (it is not malformed, only over a limit). */
export class RefusedMessage extends Error {}

/** [kind, message] of a received envelope; kind is the camelCase payload name.
 * @param {ArrayBuffer} bytes @returns {[string, any]} */
export function decode(bytes) {
  const raw = new Uint8Array(bytes);
  const problem = precheck(raw);
  if (problem) throw new RefusedMessage(problem);
  const envelope = v1.Envelope.decode(raw);
  const kind = envelope.payload;
  return [kind, kind ? envelope[kind] : null];
}

/** uint64 fields arrive as Long objects (or numbers); the values we use fit a double.
 * @param {number | { toString(): string } | null | undefined} value @returns {number} */
export function toNumber(value) {
  if (value === null || value === undefined) return 0;
  return typeof value === "number" ? value : Number(value.toString());
}
