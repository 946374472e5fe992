/** A small HTTP server on 127.0.0.1 for the pages Chromium loads: the runner's page and the browser example. */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { readFile } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";

export type Handler = (request: IncomingMessage, response: ServerResponse) => void | Promise<void>;

export interface LocalServer {
  /** http://127.0.0.1:<port>/ */
  url: string;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 only (never on other interfaces), on an ephemeral port unless one is given. */
export async function serveLocal(handler: Handler, port = 0): Promise<LocalServer> {
  const server = createServer((request, response) => {
    Promise.resolve(handler(request, response)).catch((e: Error) => {
      if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain" });
      response.end(e.message);
    });
  });
  await new Promise<void>((done, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", done);
  });
  const { port: actualPort } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${actualPort}/`,
    close: () =>
      new Promise<void>((done) => {
        // Chromium keeps connections alive: drop them so close() does not wait for its idle timeout
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".png": "image/png",
};

/** Serves the files under `dir` ("/" is index.html); paths that would leave `dir` get a 404. */
export function staticFiles(dir: string): Handler {
  const root = resolve(dir);
  return async (request, response) => {
    const pathname = decodeURIComponent(new URL(request.url ?? "/", "http://127.0.0.1").pathname);
    const path = join(root, normalize(pathname.endsWith("/") ? `${pathname}index.html` : pathname));
    let body: Buffer;
    try {
      if (!path.startsWith(root + sep)) throw new Error("outside the served directory");
      body = await readFile(path);
    } catch {
      response.writeHead(404, { "content-type": "text/plain" });
      response.end(`not found: ${pathname}`);
      return;
    }
    response.writeHead(200, { "content-type": CONTENT_TYPES[extname(path)] ?? "application/octet-stream", "cache-control": "no-store" });
    response.end(body);
  };
}
