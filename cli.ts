#!/usr/bin/env -S deno run -A
/**
 * The pq command line: look at and steer a pq table from a shell or a
 * script.
 *
 * ```sh
 * deno run -A jsr:@pq/pq/cli status --watch
 * npx pq jobs emails --state failed --limit 50
 * ```
 *
 * Commands: `migrate`, `status [--watch]`, `jobs <queue> [--state s]
 * [--limit n] [--before id]`, `job <id>`, `retry <id>`, `retry --failed
 * [--queue q]`, `cancel <id>`, `prune`, `schedules`, `dashboard [--port
 * 8080] [--write]`. Read commands take `--json`. The database is
 * `DATABASE_URL`; `--table` and `--schema` pick the table. Exit codes: 0
 * ok, 1 failure, 2 bad usage (with a usage line).
 *
 * @example Run a command from code
 * ```ts
 * import { runCli } from "@pq/pq/cli";
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const code = await runCli(["migrate", "--table", "pq_examples"], {
 *   out: (text) => lines.push(text),
 * });
 * assert.equal(code, 0);
 * assert.equal(await runCli(["frobnicate"]), 2); // bad usage
 * ```
 *
 * @module
 */

import process from "node:process";
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runCli } from "./src/cli/run.ts";

export { runCli };
export type { CliOptions } from "./src/cli/run.ts";

/** True when this file is the program, not an import. */
function isMain(): boolean {
  const meta = import.meta as ImportMeta & { main?: boolean };
  if (typeof meta.main === "boolean") return meta.main;
  // Node before 24.2 has no import.meta.main: compare with the script.
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) ===
      realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) process.exitCode = await runCli(process.argv.slice(2));
