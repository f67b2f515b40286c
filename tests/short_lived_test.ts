/**
 * Short-lived runs, as in a serverless function: after `pq.close()` and
 * `sql.end()` nothing of pq keeps the process alive, so it exits by itself.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { databaseUrl, type TestSchema, testSchema } from "./_db.ts";
import { since } from "./_pq.ts";
import { spawnTs } from "./_spawn.ts";

const FIXTURE = "tests/fixtures/short_lived.ts";
/** How long the process may live after its last line. */
const EXIT_WITHIN_MS = 5_000;

describe("short-lived runs", () => {
  let admin: postgres.Sql;
  let scratch: TestSchema;

  before(async () => {
    admin = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
    scratch = await testSchema(admin, "short_lived");
  });
  after(async () => {
    await scratch.drop();
    await admin.end();
  });

  /**
   * Runs the fixture in `mode`, waits for its "CLOSED" line and returns its
   * output and how long it took to exit after that line.
   */
  async function run(mode: string): Promise<{
    lines: string[];
    code: number | string;
    exitMs: number;
  }> {
    const child = spawnTs(FIXTURE, [scratch.schema, mode]);
    try {
      await child.line("CLOSED", 30_000);
    } catch (error) {
      child.process.kill("SIGKILL");
      await child.exited;
      throw error;
    }
    const closedAt = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const code = await Promise.race([
      child.exited,
      new Promise<"still running">((resolve) => {
        timer = setTimeout(() => resolve("still running"), EXIT_WITHIN_MS);
      }),
    ]);
    clearTimeout(timer);
    const exitMs = since(closedAt);
    if (code === "still running") {
      child.process.kill("SIGKILL");
      await child.exited;
    }
    return { lines: child.lines, code, exitMs };
  }

  test("a burst with a deadline, then close and end: the process exits by itself", async () => {
    const { lines, code, exitMs } = await run("burst");
    assert.ok(lines.includes("WORKED 5 0,1,2,3,4"), lines.join("\n"));
    assert.equal(code, 0, `exit ${code} ${exitMs.toFixed(0)} ms after CLOSED`);
  });

  test("blocking gets and a worker on a listening PQ: the listener does not keep the process alive", async () => {
    const { lines, code, exitMs } = await run("listen");
    assert.deepEqual(lines, [
      "GOT hello",
      "TIMED OUT null",
      "WORKER STOPPED 0",
      "PENDING null",
      "CLOSED",
    ]);
    assert.equal(code, 0, `exit ${code} ${exitMs.toFixed(0)} ms after CLOSED`);
  });
});
