/**
 * The CLI's main function: parse, connect, run one command, map errors to
 * exit codes (0 ok, 1 failure, 2 bad usage).
 *
 * @module
 */

import process from "node:process";
import postgres from "postgres";
import { createPQ } from "../create_pq.ts";
import { COMMANDS, type Output } from "./commands.ts";
import { HELP, parseCommandLine, USAGE, UsageError } from "./usage.ts";

/** Options of {@linkcode runCli}, for embedding and tests. */
export interface CliOptions {
  /** The database; default: the `DATABASE_URL` environment variable. */
  databaseUrl?: string;
  /** Where output goes; default: `console.log`. */
  out?: (text: string) => void;
}

/** Runs `pq <args>`; resolves with the exit code. */
export async function runCli(
  args: string[],
  options: CliOptions = {},
): Promise<number> {
  const output: Output = { out: options.out ?? ((text) => console.log(text)) };
  let line;
  try {
    line = parseCommandLine(args);
    if (line.options.help) {
      output.out(HELP);
      return 0;
    }
    if (!line.command) throw new UsageError("no command given");
    if (!(line.command in COMMANDS)) {
      throw new UsageError(`unknown command ${JSON.stringify(line.command)}`);
    }
  } catch (error) {
    return usageFailure(error);
  }
  const url = options.databaseUrl ?? process.env.DATABASE_URL;
  if (!url) {
    console.error("pq: DATABASE_URL is not set: set it to postgres://...");
    return 1;
  }
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  try {
    const pq = createPQ(sql, {
      table: line.options.table,
      schema: line.options.schema,
      listen: false,
      vacuum: false,
    });
    try {
      return await COMMANDS[line.command](pq, line, output);
    } finally {
      await pq.close();
    }
  } catch (error) {
    if (error instanceof UsageError) return usageFailure(error);
    if (error instanceof TypeError || error instanceof RangeError) {
      // Bad option values (a table name too long, ...) are bad usage too.
      return usageFailure(error);
    }
    const hint = (error as { code?: unknown })?.code === "42P01"
      ? " (is --table or --schema right? `pq migrate` creates the table)"
      : "";
    console.error(`pq: ${(error as Error).message ?? error}${hint}`);
    return 1;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function usageFailure(error: unknown): number {
  console.error(`pq: ${(error as Error).message}`);
  console.error(USAGE);
  return 2;
}
