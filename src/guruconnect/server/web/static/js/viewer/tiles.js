// @ts-check
// Raw tiles: zstd-compressed BGRA, checked before anything is allocated, decompressed and
// turned into RGBA. No DOM: the decode worker (decode-worker.js) runs this, and the page
// falls back to it when a worker cannot start.
import { LIMITS, zstdDecompress } from "./wire.js";

/**
 * One tile of a raw frame, as the wire carries it.
 * @typedef {{ x: number, y: number, width: number, height: number, data: Uint8Array }} Tile
 */

/**
 * One decoded tile, ready for putImageData.
 * @typedef {{ x: number, y: number, width: number, height: number, rgba: Uint8ClampedArray<ArrayBuffer> }} Pixels
 */

/**
 * What decoding a frame's tiles gave: the tiles to draw and why the others were refused.
 * @typedef {{ pixels: Pixels[], errors: string[] }} Decoded
 */

/** The output size a zstd frame promises, checked without decompressing: one frame, its
 * content size declared, and blocks that cannot produce more than `expected` bytes (plus one
 * block's worth). Returns an error text, or "" when the frame may be decompressed into a
 * buffer of `expected` bytes. */
/** @param {Uint8Array} data @param {number} expected @returns {string} */
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

/** Decompress one tile's BGRA into a buffer of exactly `expected` bytes, or throw.
 * @param {Uint8Array} data @param {number} expected @returns {Uint8Array<ArrayBuffer>} */
export function decompressTile(data, expected) {
  const problem = zstdCheck(data, expected);
  if (problem) throw new Error(`a tile was refused: ${problem}`);
  const out = new Uint8Array(expected);
  const bgra = zstdDecompress(data, out);
  if (bgra.length !== expected) throw new Error(`a tile has ${bgra.length} bytes, expected ${expected}`);
  return bgra;
}

/** BGRA -> RGBA in place, opaque.
 * @param {Uint8Array<ArrayBuffer>} bgra */
export function bgraToRgba(bgra) {
  for (let i = 0; i < bgra.length; i += 4) {
    const b = bgra[i];
    bgra[i] = bgra[i + 2];
    bgra[i + 2] = b;
    bgra[i + 3] = 255;
  }
}

/** Decode a raw frame's tiles (already checked against the frame's size by the page).
 * @param {Tile[]} tiles @param {number} width @param {number} height @returns {Decoded} */
export function decodeTiles(tiles, width, height) {
  /** @type {Decoded} */
  const out = { pixels: [], errors: [] };
  for (const tile of tiles) {
    const { x, y } = tile;
    const w = tile.width;
    const h = tile.height;
    if (!w || !h || w > LIMITS.tile || h > LIMITS.tile || x + w > width || y + h > height) {
      out.errors.push(`a ${w}×${h} tile at ${x},${y} was refused`);
      continue;
    }
    const expected = w * h * 4;
    let bgra;
    try {
      bgra = decompressTile(tile.data, expected);
    } catch (error) {
      out.errors.push(error instanceof Error ? error.message : String(error));
      continue;
    }
    bgraToRgba(bgra);
    out.pixels.push({ x, y, width: w, height: h, rgba: new Uint8ClampedArray(bgra.buffer, bgra.byteOffset, expected) });
  }
  return out;
}
