/**
 * A worker process of bench/scale/run.ts: `deno run -A
 * bench/scale/worker.ts <schema> <go file>`. Registers the no-op task,
 * prints READY, waits until the go file exists, then works the queue in
 * burst mode (concurrency 8) and prints `DONE <jobs>`.
 *
 * @module
 */

import process from "node:process";
import { existsSync } from "node:fs";
import postgres from "postgres";
import { createPQ } from "../../mod.ts";

const [schema, go] = process.argv.slice(-2);
const sql = postgres(process.env.DATABASE_URL!, {
  max: 10,
  onnotice: () => {},
});
const pq = createPQ(sql, { schema });
const queue = pq.queue("jobs");
queue.task("noop", (_args: { n: number }) => {});
console.log("READY");
while (!existsSync(go)) await new Promise((r) => setTimeout(r, 2));
const stats = await queue.work({ concurrency: 8, burst: true });
console.log(`DONE ${stats.done}`);
await pq.close();
await sql.end();
