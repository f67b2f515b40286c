/**
 * The CLI's command line: the usage text, and the parser (`node:util`'s
 * `parseArgs`, built into Deno, Node and Bun).
 *
 * @module
 */

import { parseArgs } from "node:util";

/** The one-line usage, printed on bad usage. */
export const USAGE =
  "Usage: pq <migrate|status|jobs|job|retry|cancel|pause|resume|prune|schedules|dashboard> [options] (pq --help for more)";

/** `pq --help`. */
export const HELP = `${USAGE}

Commands:
  migrate                          create or upgrade the table (create())
  status [--watch]                 jobs by queue and state, lag, last hour
  jobs <queue> [--state s] [--limit n] [--before id]
                                   a queue's jobs, newest first
  job <id>                         one job: data, error, attempts, times
  retry <id>                       put a failed job back, ready
  retry --failed [--queue q]       retry every failed job (of one queue)
  cancel <id>                      cancel a job (a failed one is removed)
  pause <queue>                    stop every worker taking from a queue
  resume <queue>                   let them take again, at once
  prune                            remove finished jobs past their retention
  schedules                        every queue's cron schedules
  dashboard [--port 8080] [--write]
                                   serve the dashboard (read-only unless --write)

Options:
  --json            print JSON (read commands)
  --table <name>    the job table (default: queue)
  --schema <name>   its schema (default: the search path's first)
  -h, --help        this text

The database is DATABASE_URL. Exit codes: 0 ok, 1 failure, 2 bad usage.`;

/** Bad usage: exit code 2 with the usage line. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A parsed command line. */
export interface CommandLine {
  command: string;
  positionals: string[];
  options: {
    json: boolean;
    watch: boolean;
    failed: boolean;
    write: boolean;
    help: boolean;
    table?: string;
    schema?: string;
    state?: string;
    limit?: string;
    before?: string;
    queue?: string;
    port?: string;
  };
}

/**
 * Parses the arguments after `pq`.
 *
 * @throws {UsageError} On an unknown option or a missing value.
 */
export function parseCommandLine(args: string[]): CommandLine {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: "boolean", default: false },
        watch: { type: "boolean", default: false },
        failed: { type: "boolean", default: false },
        write: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
        table: { type: "string" },
        schema: { type: "string" },
        state: { type: "string" },
        limit: { type: "string" },
        before: { type: "string" },
        queue: { type: "string" },
        port: { type: "string" },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const [command = "", ...positionals] = parsed.positionals;
  return {
    command,
    positionals,
    options: parsed.values as CommandLine["options"],
  };
}

/** A whole number option from `min` to `max`, or the fallback. */
export function numberOption(
  value: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw new UsageError(
      `--${name} must be a whole number from ${min} to ${max}: received ${
        JSON.stringify(value)
      }`,
    );
  }
  return n;
}
