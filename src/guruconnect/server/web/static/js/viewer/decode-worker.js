// @ts-check
// The decode worker: zstd and the BGRA -> RGBA swap off the page's thread, so a full-screen
// update does not freeze the toolbar, the chat or the pointer. The page sends one raw
// frame's tiles at a time (their bytes transferred, not copied) and gets the RGBA pixels
// back the same way, in order; it draws them on the visible canvas itself, so that canvas
// stays an ordinary 2D canvas the page (and the tests and the latency bench) can read.
import { decodeTiles } from "./tiles.js";

/**
 * @typedef {{ id: number, width: number, height: number, tiles: import("./tiles.js").Tile[] }} DecodeRequest
 * @typedef {{ id: number } & import("./tiles.js").Decoded} DecodeReply
 */

// Typed with the page's lib (tsconfig has no worker lib): a worker's postMessage takes the
// same { transfer } options as a window's.
self.addEventListener("message", (event) => {
  /** @type {DecodeRequest} */
  const request = event.data;
  const decoded = decodeTiles(request.tiles, request.width, request.height);
  /** @type {DecodeReply} */
  const reply = { id: request.id, ...decoded };
  self.postMessage(reply, { transfer: decoded.pixels.map((p) => p.rgba.buffer) });
});
