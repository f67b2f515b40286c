/**
 * Tasks and a worker: `deno task demo:tasks`.
 *
 * Registers two tasks (one fails now and then and is retried), enqueues
 * jobs, and runs a worker with concurrency 4 until every job has ended or
 * Ctrl-C is pressed; Ctrl-C stops gracefully (running jobs finish within
 * the grace period). Uses DATABASE_URL, or a throwaway PostgreSQL.
 *
 * @module
 */

import postgres from "postgres";
import process from "node:process";
import { createPQ } from "../mod.ts";
import { demoDatabase } from "./_database.ts";

const database = await demoDatabase();
const sql = postgres(database.url, { onnotice: () => {} });
const pq = createPQ(sql, { table: "demo_tasks" });

try {
  await pq.create();
  await sql`create table if not exists demo_pies (kind text, baked_at timestamptz default now())`;
  const kitchen = pq.queue("kitchen");
  await kitchen.clear();

  const bake = kitchen.task("bake", async (args: { kind: string }, job) => {
    await new Promise((resolve) => setTimeout(resolve, 200)); // the oven
    if (args.kind === "Quince" && job.attempt < 3) {
      throw new Error(`the ${args.kind} pie burnt (attempt ${job.attempt})`);
    }
    // Written in the job's transaction: committed only if the job succeeds.
    await job.tx`insert into demo_pies (kind) values (${args.kind})`;
  }, { maxRetries: 3, retryIn: "500ms" });

  const inspect = kitchen.task("inspect", (args: { kind: string }) => {
    console.log(`inspected the ${args.kind} pie`);
  }, { scheduleAt: "1s" });

  const kinds = ["Apple", "Pear", "Quince", "Plum", "Cherry", "Rhubarb"];
  for (const kind of kinds) await bake({ kind });
  await inspect.many(kinds.map((kind) => ({ args: { kind } })));
  console.log(`enqueued ${kinds.length} bakes and ${kinds.length} inspections`);

  const stop = new AbortController();
  const ctrlC = () => {
    console.log("Ctrl-C: stopping after the running jobs");
    stop.abort();
  };
  process.on("SIGINT", ctrlC);
  let ended = 0;
  const stats = await kitchen.work({
    concurrency: 4,
    signal: stop.signal,
    gracePeriod: "5s",
    onEvent(event) {
      if (event.type === "start") return;
      if (event.type === "error") return console.error(event.error);
      const what = `${event.job.task} #${event.job.id}`;
      if (event.type === "success") console.log(`${what} done`);
      if (event.type === "retry") {
        console.log(`${what} retried: ${(event.error as Error).message}`);
      }
      if (event.type === "failure") console.log(`${what} failed`);
      if (event.type === "success" || event.type === "failure") {
        if (++ended === kinds.length * 2) stop.abort();
      }
    },
  });
  process.off("SIGINT", ctrlC);
  console.log("worker stopped:", stats);
  const pies = await sql`select kind from demo_pies order by baked_at`;
  console.log("pies baked:", pies.map((p) => p.kind).join(", "));
} finally {
  await pq.close();
  await sql.end();
  await database.stop();
}
