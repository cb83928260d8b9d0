// Types for the part of the generated bundle (/static/build/wire.js, built from
// proto/guruconnect.proto by scripts/build-web.mjs) that the viewer uses. Messages are
// plain objects here; their fields are checked where they are used.
declare module "*/build/wire.js" {
  type Enum = { readonly [name: string]: number };
  interface MessageType {
    encode(message: object): { finish(): Uint8Array<ArrayBuffer> };
    decode(bytes: Uint8Array): any;
  }
  export const guruconnect: {
    v1: {
      Codec: Enum;
      Scope: Enum;
      SpecialKey: Enum;
      MouseButton: Enum;
      SessionState: { State: Enum };
      Envelope: MessageType;
    };
  };
  export function zstdDecompress(data: Uint8Array, out?: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer>;
}
