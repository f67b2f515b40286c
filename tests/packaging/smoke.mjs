// Run inside a temporary project where the packed @pq/pq and postgres are
// installed from npm: `node smoke.mjs <schema> <queue>` or `bun smoke.mjs ...`
// with DATABASE_URL set. Prints one JSON line.
import process from "node:process";
import postgres from "postgres";
import { createPQ } from "@pq/pq";

const [schema, queueName] = process.argv.slice(-2);
const sql = postgres(process.env.DATABASE_URL, { max: 4, onnotice: () => {} });
const pq = createPQ(sql, { schema });
await pq.create();
const queue = pq.queue(queueName);
const id = await queue.put({ hello: "npm" });
const job = await queue.get();
if (job?.id !== id) throw new Error(`got ${job?.id}, expected ${id}`);
const seen = [];
const echo = queue.task("echo", (args) => {
  seen.push(args.n);
});
await echo({ n: 1 });
await echo({ n: 2 });
const stats = await queue.work({
  burst: true,
  signal: AbortSignal.timeout(20_000),
});
await pq.close();
await sql.end();
console.log(JSON.stringify({ got: job.data, done: stats.done, seen }));
