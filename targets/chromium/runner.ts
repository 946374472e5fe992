/**
 * Runs a reactor blob in real headless Chromium. A page served on 127.0.0.1 loads the blob with the same
 * browser-safe loader the library ships (compiler/host/loader.ts, bundled with page.ts by esbuild), runs it once
 * and posts the outputs' raw bytes back. No driver library: Chromium is started on the page's URL with a fresh
 * profile and stopped as soon as the page has answered.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fail } from "../../compiler/errors.js";
import type { TypedArray } from "../../compiler/ir/dtype.js";
import type { InputValues } from "../../compiler/host/loader.js";
import { inspectWasm } from "../../compiler/host/wasm-info.js";
import { bytesOf, checkedInputs, findExecutable, splitOutputs } from "../protocol.js";
import type { Job } from "./page.js";
import { serveLocal } from "./server.js";

/**
 * Flags for every headless Chromium we start (besides --headless and a fresh --user-data-dir). Without the
 * background-networking ones Chromium keeps trying to reach Google's services, which misbehaves on closed networks.
 */
export const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** how long Chromium may take to start, load the blob and run it */
const RUN_TIMEOUT_MS = 60_000;

/** $TEENYGRAD_CHROMIUM, else /usr/bin/chromium (Debian's package, scripts/install-chromium.sh), else a Chromium or Chrome on PATH; null when none exists */
export function findChromium(): string | null {
  return findExecutable("TEENYGRAD_CHROMIUM", ["/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"]);
}


/**
 * page.ts and the loader as one browser script: prebuilt into dist/page.js in the package (`npm run build`),
 * bundled with esbuild (a development dependency) once per process in a checkout.
 */
let pageScript: string | null = null;
async function bundledPageScript(): Promise<string> {
  if (pageScript) return pageScript;
  const prebuilt = new URL("./page.js", import.meta.url);
  if (existsSync(prebuilt)) return (pageScript = readFileSync(prebuilt, "utf8"));
  let esbuild: typeof import("esbuild");
  try {
    esbuild = await import("esbuild");
  } catch {
    fail("running in Chromium needs esbuild (a development dependency of teenygrad) to bundle the loader for the page");
  }
  const result = await esbuild.build({
    entryPoints: [fileURLToPath(new URL("./page.ts", import.meta.url))],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    logLevel: "silent",
  });
  pageScript = result.outputFiles[0].text;
  return pageScript;
}

const PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>teenygrad runner</title><script type="module" src="/page.js"></script>`;

/**
 * Runs the blob once in headless Chromium and returns copies of its outputs, bit for bit what the browser computed.
 * `weights` is the separate weights file of a blob compiled without embedded weights.
 */
export async function runInChromium(
  blob: Uint8Array,
  inputs: InputValues,
  opts: { weights?: Uint8Array; source?: string } = {},
): Promise<Record<string, TypedArray>> {
  const source = opts.source ?? "<blob>";
  const what = `chromium (${source})`;
  const manifest = inspectWasm(blob, source).manifest;
  if (!manifest) fail(`${source}: no teenygrad.manifest custom section: not a teenygrad blob`);
  const inputBytes = Buffer.concat(checkedInputs(manifest, inputs, what).map(bytesOf));
  const chromium = findChromium();
  if (!chromium) fail("chromium not found: install it (Debian: apt-get install chromium; in a teenygrad clone: npm run chromium), put it on PATH, or set TEENYGRAD_CHROMIUM");
  const script = await bundledPageScript();
  const job: Job = { source, weights: Boolean(opts.weights) };

  // settled by the page's POST, Chromium exiting early, or the timeout
  let settle!: { resolve: (raw: Uint8Array) => void; reject: (e: Error) => void };
  const answered = new Promise<Uint8Array>((resolve, reject) => (settle = { resolve, reject }));

  const server = await serveLocal(async (request, response) => {
    const send = (type: string, body: string | Uint8Array) => {
      response.writeHead(200, { "content-type": type, "cache-control": "no-store" });
      response.end(body);
    };
    const route = `${request.method} ${new URL(request.url ?? "/", "http://127.0.0.1").pathname}`;
    if (route === "GET /") send("text/html; charset=utf-8", PAGE_HTML);
    else if (route === "GET /page.js") send("text/javascript; charset=utf-8", script);
    else if (route === "GET /job") send("application/json", JSON.stringify(job));
    else if (route === "GET /blob") send("application/wasm", blob);
    else if (route === "GET /weights" && opts.weights) send("application/octet-stream", opts.weights);
    else if (route === "GET /inputs") send("application/octet-stream", inputBytes);
    else if (route === "POST /result") {
      settle.resolve(await readBody(request));
      send("text/plain", "ok");
    } else if (route === "POST /error") {
      // the loader's messages already name the blob
      settle.reject(new Error(`chromium: ${(await readBody(request)).toString("utf8")}`));
      send("text/plain", "ok");
    } else {
      response.writeHead(404, { "content-type": "text/plain" });
      response.end(`not found: ${route}`);
    }
  });

  const profile = await mkdtemp(join(tmpdir(), "teenygrad-chromium-"));
  const child = spawn(chromium, ["--headless", ...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, server.url], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-4000); // the end says why it died
  });
  const exited = new Promise<void>((done) => {
    child.once("error", (e) => {
      settle.reject(new Error(`${what}: cannot start ${chromium}: ${e.message}`));
      done();
    });
    child.once("close", (code, signal) => {
      settle.reject(new Error(`${what}: Chromium exited (${code !== null ? `exit code ${code}` : `signal ${signal}`}) before the page answered:\n${stderr.trim()}`));
      done();
    });
  });
  const timer = setTimeout(() => settle.reject(new Error(`${what}: no answer from the page within ${RUN_TIMEOUT_MS / 1000} s:\n${stderr.trim()}`)), RUN_TIMEOUT_MS);

  try {
    const raw = await answered.catch((e: Error) => fail(e.message));
    return splitOutputs(manifest.outputs, raw, what);
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    await server.close();
    await rm(profile, { recursive: true, force: true, maxRetries: 3 });
  }
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}
