/**
 * The CLI as users run it: a child process (Deno, or Node with tsx, or Bun,
 * whichever runs the tests) against a real table, with its output and exit
 * codes.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtimeCommand } from "./_spawn.ts";
import { openTestPQ, type TestPQ } from "./_pq.ts";
import { databaseUrl } from "./_db.ts";

const cli = fileURLToPath(new URL("../cli.ts", import.meta.url));

/** Runs `pq <args>`; resolves with its exit code and output. */
function pq(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [command, base] = runtimeCommand(cli);
  const child = spawn(command, [...base, ...args], {
    env: { ...process.env, DATABASE_URL: databaseUrl(), NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "", stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  return new Promise((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  );
}

describe("cli", () => {
  let t: TestPQ;
  let where: string[];
  let failedId: string;

  before(async () => {
    t = await openTestPQ("cli");
    where = ["--schema", t.scratch.schema];
    const queue = t.pq.queue("mail");
    const send = queue.task("send", (to: string) => {
      if (to === "bad") throw new Error("mailbox full");
    });
    await send("good");
    await send("bad");
    await queue.work({ burst: true, onEvent: () => {} });
    failedId = (await queue.failed())[0].id;
    await queue.put({ note: "waiting" });
  });
  after(async () => await t.close());

  test("migrate creates the table", async () => {
    const r = await pq(["migrate", "--table", "other", ...where]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /other is ready/);
    const [{ found }] = await t
      .sql`select to_regclass(${`"${t.scratch.schema}".other`}) is not null as found`;
    assert.equal(found, true);
  });

  test("status prints each queue's counts, and JSON with --json", async () => {
    const r = await pq(["status", ...where]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^QUEUE\s+READY/);
    assert.match(r.stdout, /\nmail\s+1\s+0\s+0\s+1\s/);
    const json = await pq(["status", "--json", ...where]);
    const stats = JSON.parse(json.stdout);
    assert.equal(stats.queues[0].name, "mail");
    assert.deepEqual(stats.queues[0].counts.failed, {
      count: 1,
      kind: "exact",
    });
  });

  test("jobs lists a queue's jobs by state", async () => {
    const r = await pq([
      "jobs",
      "mail",
      "--state",
      "failed",
      "--json",
      ...where,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const jobs = JSON.parse(r.stdout);
    assert.deepEqual(jobs.map((j: { id: string }) => j.id), [failedId]);
    assert.equal(jobs[0].error, "mailbox full");
  });

  test("job shows one job with its error", async () => {
    const r = await pq(["job", failedId, ...where]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /state\s+failed/);
    assert.match(r.stdout, /error\s+mailbox full/);
    const missing = await pq(["job", "999999", ...where]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no job 999999/);
  });

  test("retry puts a failed job back, ready", async () => {
    const r = await pq(["retry", failedId, ...where]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await t.pq.queue("mail").job(failedId))?.state, "ready");
    const again = await pq(["retry", failedId, ...where]);
    assert.equal(again.code, 1); // no longer failed
  });

  test("cancel cancels a ready job", async () => {
    const id = await t.pq.queue("mail").put("cancel me");
    const r = await pq(["cancel", id, "--json", ...where]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { id, was: "ready" });
    assert.equal((await t.pq.queue("mail").job(id))?.state, "cancelled");
  });

  test("pause and resume a queue, stored for every process", async () => {
    const r = await pq(["pause", "mail", ...where]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Queue mail is paused\./);
    assert.equal(await t.pq.queue("mail").paused(), true);
    const again = await pq(["pause", "mail", "--json", ...where]);
    assert.deepEqual(JSON.parse(again.stdout), {
      queue: "mail",
      state: "paused",
      changed: false,
    });
    const resumed = await pq(["resume", "mail", ...where]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /Queue mail is running\./);
    assert.equal(await t.pq.queue("mail").paused(), false);
    const bad = await pq(["pause", ...where]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /pause needs exactly one <queue>/);
  });

  test("retry --failed --queue retries every failed job of a queue", async () => {
    const queue = t.pq.queue("bulk");
    const fail = queue.task("fail", () => {
      throw new Error("no");
    });
    for (let i = 0; i < 3; i++) await fail(i);
    await queue.work({ burst: true, onEvent: () => {} });
    const r = await pq(["retry", "--failed", "--queue", "bulk", ...where]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Retried 3 failed jobs/);
    assert.equal(await queue.size(), 3);
  });

  test("schedules lists every queue's schedules", async () => {
    const queue = t.pq.queue("cron");
    const tick = queue.task("tick", () => {});
    await queue.schedule("hourly", "0 * * * *", tick);
    const r = await pq(["schedules", "--json", ...where]);
    assert.equal(r.code, 0, r.stderr);
    const [s] = JSON.parse(r.stdout);
    assert.equal(s.name, "hourly");
    assert.equal(s.cron, "0 * * * *");
  });

  test("bad usage exits 2 with a usage line", async () => {
    for (
      const args of [
        [],
        ["frobnicate"],
        ["jobs"],
        ["job", "abc"],
        ["status", "--nope"],
        ["jobs", "mail", "--state", "lost"],
        ["jobs", "mail", "--limit", "0"],
      ]
    ) {
      const r = await pq([...args, ...where]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /Usage: pq </, args.join(" "));
    }
  });

  test("a failure exits 1: no DATABASE_URL, or no such table", async () => {
    const r = await pq(["status"], { DATABASE_URL: "" });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /DATABASE_URL is not set/);
    const missing = await pq(["status", "--table", "nothing_here", ...where]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nothing_here/);
  });
});
