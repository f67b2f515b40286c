/**
 * The dashboard on demo data: `deno task dashboard` (add `--write` to allow
 * retry, cancel and pause; `--port=8080`).
 *
 * Fills the table `demo_dashboard` with three queues: `emails` (a task that
 * fails one time in five, run by a worker for a few seconds so the charts
 * have something to show), `images` (jobs waiting, some scheduled), and
 * `reports` (a cron schedule), then serves the dashboard until Ctrl-C.
 * Uses DATABASE_URL, or a throwaway PostgreSQL.
 *
 * @module
 */

import process from "node:process";
import postgres from "postgres";
import { createPQ } from "../mod.ts";
import { dashboard } from "../dashboard.ts";
import { demoDatabase } from "./_database.ts";

const write = process.argv.includes("--write");
const port = Number(
  process.argv.find((a) => a.startsWith("--port="))?.slice(7) ?? 8080,
);
const database = await demoDatabase();
const sql = postgres(database.url, { onnotice: () => {} });
const pq = createPQ(sql, {
  table: "demo_dashboard",
  keep: { completed: "1h" },
});

try {
  await pq.create();
  const emails = pq.queue("emails");
  const images = pq.queue("images");
  const reports = pq.queue("reports");
  for (const q of [emails, images, reports]) await q.clear();
  let n = 0;
  const send = emails.task("send", (to: { address: string }) => {
    if (++n % 5 === 0) throw new Error(`mailbox ${to.address} is full`);
    return { sent: true };
  });
  const resize = images.task(
    "resize",
    (_: { file: string; width: number }) => {},
  );
  images.task("thumbnail", (_: { file: string }) => {});
  const build = reports.task("build", (_: { period: string }) => {});
  for (let i = 0; i < 60; i++) await send({ address: `user${i}@example.com` });
  for (let i = 0; i < 25; i++) {
    await resize({ file: `photo-${i}.jpg`, width: 640 }, {
      scheduleAt: i % 3 === 0 ? "10m" : undefined,
    });
  }
  await reports.schedule("nightly", "0 3 * * *", build, {
    args: { period: "day" },
    timezone: "Europe/Amsterdam",
  });
  await build({ period: "week" });
  console.log("working the emails for 3 seconds…");
  await emails.work({ signal: AbortSignal.timeout(3_000), onEvent: () => {} });
  const server = Deno.serve(
    { port, onListen: () => {} },
    dashboard(pq, { readOnly: !write }),
  );
  console.log(
    `Dashboard at http://localhost:${port}/ (${
      write ? "read-write" : "read-only; --write allows actions"
    }). Ctrl-C stops it.`,
  );
  await new Promise<void>((resolve) =>
    Deno.addSignalListener("SIGINT", () => resolve())
  );
  await server.shutdown();
} finally {
  await pq.close();
  await sql.end();
  await database.stop();
}
