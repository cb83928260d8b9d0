// Builds the browser bundle the server serves at /static/build/wire.js:
//   1. static protobuf code generated from proto/guruconnect.proto (the single source of
//      truth; no hand copy, and no runtime code generation, which the CSP forbids), and
//   2. fzstd's decompressor,
// bundled into one ES module by esbuild. Run by `make setup` after `npm ci`. The output is
// committed (so `make run` and a wheel need no Node); tests/web/test_served.py rebuilds it
// into GURUCONNECT_WEB_OUT and fails when the committed file differs.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out =
  process.env.GURUCONNECT_WEB_OUT || join(root, "src/guruconnect/server/web/static/build");
// Intermediate file: kept out of the served folder.
const scratch = join(root, "node_modules/.cache/guruconnect");
const generated = join(scratch, "guruconnect_pb.mjs");
mkdirSync(out, { recursive: true });
mkdirSync(scratch, { recursive: true });

execFileSync(
  join(root, "node_modules/.bin/pbjs"),
  [
    "--target", "static-module",
    "--wrap", "esm",
    "--no-create", "--no-verify", "--no-convert", "--no-delimited", "--no-service",
    "--no-comments", "--no-beautify",
    "--out", generated,
    join(root, "proto/guruconnect.proto"),
  ],
  { stdio: "inherit" },
);

await build({
  stdin: {
    contents:
      `export { guruconnect } from ${JSON.stringify(generated)};\n` +
      `export { decompress as zstdDecompress } from "fzstd";\n`,
    resolveDir: root,
    sourcefile: "wire-entry.mjs",
  },
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  legalComments: "eof",
  outfile: join(out, "wire.js"),
  logLevel: "warning",
});
