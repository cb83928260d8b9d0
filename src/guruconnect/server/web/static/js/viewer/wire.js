// The wire format, from the bundle built out of proto/guruconnect.proto at setup.
import { guruconnect, zstdDecompress } from "/static/build/wire.js";

const v1 = guruconnect.v1;
export const { Codec, Scope, SpecialKey, MouseButton } = v1;
export const State = v1.SessionState.State;
export { zstdDecompress };

/** One envelope carrying one payload, e.g. encode("keyEvent", {scanCode: 30, down: true}). */
export function encode(kind, message) {
  return v1.Envelope.encode({ [kind]: message }).finish();
}

/** [kind, message] of a received envelope; kind is the camelCase payload name. */
export function decode(bytes) {
  const envelope = v1.Envelope.decode(new Uint8Array(bytes));
  const kind = envelope.payload;
  return [kind, kind ? envelope[kind] : null];
}

/** uint64 fields arrive as Long objects (or numbers); the values we use fit a double. */
export function toNumber(value) {
  if (value === null || value === undefined) return 0;
  return typeof value === "number" ? value : Number(value.toString());
}
