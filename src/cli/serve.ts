/**
 * Serves a web-standard handler (`Request` -> `Response`) over `node:http`,
 * which Deno, Node and Bun all provide, so `pq dashboard` needs no adapter
 * package: bodies are read and sent whole (the dashboard's forms and pages are
 * small).
 *
 * @module
 */

import { createServer, type Server } from "node:http";
import { Buffer } from "node:buffer";

/** A running server. */
export interface Serving {
  /** The URL it listens on. */
  url: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/** Listens on `port` (0: any free one) of 127.0.0.1, or of `hostname`. */
export function serve(
  handler: (request: Request) => Promise<Response>,
  port: number,
  hostname = "127.0.0.1",
): Promise<Serving> {
  const server: Server = createServer(async (req, res) => {
    try {
      const chunks: Uint8Array[] = [];
      for await (const chunk of req) chunks.push(chunk as Uint8Array);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === "string") headers.set(name, value);
        else if (Array.isArray(value)) headers.set(name, value.join(", "));
      }
      const method = req.method ?? "GET";
      const request = new Request(
        new URL(req.url ?? "/", `http://${req.headers.host ?? hostname}`),
        {
          method,
          headers,
          body: method === "GET" || method === "HEAD"
            ? undefined
            : Buffer.concat(chunks),
        },
      );
      const response = await handler(request);
      res.writeHead(
        response.status,
        Object.fromEntries(response.headers.entries()),
      );
      res.end(Buffer.from(await response.arrayBuffer()));
    } catch (error) {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(`Internal error: ${(error as Error).message}`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      const address = server.address();
      const actual = typeof address === "object" && address
        ? address.port
        : port;
      resolve({
        url: `http://${hostname}:${actual}/`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections?.();
            server.close(() => done());
          }),
      });
    });
  });
}
