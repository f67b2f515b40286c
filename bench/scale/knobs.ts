/**
 * The knobs that move a single server's put rate: `deno task
 * bench:knobs` (about a minute). One producer, single puts, three ways,
 * interleaved in three rounds: as shipped; on a client whose connections
 * set `synchronous_commit = off` (a crash may lose the last acknowledged
 * puts, never corrupts; a dedicated client for jobs that may be lost); on
 * an unlogged table (`alter table
 * ... set unlogged`: a crash empties it).
 *
 * @module
 */

import process from "node:process";
import postgres from "postgres";
import { createPQ } from "../../mod.ts";
import { benchUrl, freshSchema } from "../db.ts";
import { median } from "../stats.ts";

const url = benchUrl();
const PUTS = process.argv.includes("--quick") ? 300 : 3_000;
const log = (text: string) => process.stderr.write(`${text}\n`);

type Way = "shipped" | "synchronous_commit off" | "unlogged table";

async function rate(way: Way): Promise<number> {
  const sql = postgres(url, {
    max: 2,
    onnotice: () => {},
    connection: way === "synchronous_commit off"
      ? { synchronous_commit: "off" }
      : {},
  });
  const scratch = await freshSchema(sql);
  try {
    const pq = createPQ(sql, { schema: scratch.schema });
    await pq.create();
    if (way === "unlogged table") {
      await sql.unsafe(`alter table ${scratch.schema}.queue set unlogged`);
    }
    const q = pq.queue("jobs");
    const start = performance.now();
    for (let i = 0; i < PUTS; i++) {
      await q.put({ i });
    }
    const perSecond = PUTS / (performance.now() - start) * 1000;
    await pq.close();
    return perSecond;
  } finally {
    await scratch.drop();
    await sql.end();
  }
}

const ways: Way[] = ["shipped", "synchronous_commit off", "unlogged table"];
const rates = new Map<Way, number[]>(ways.map((w) => [w, []]));
for (let round = 0; round < 3; round++) {
  for (const way of round % 2 ? [...ways].reverse() : ways) {
    log(`round ${round + 1}: ${way}...`);
    rates.get(way)!.push(await rate(way));
  }
}
const base = median(rates.get("shipped")!);
console.log(`pq put, 1 producer, ${PUTS} single puts, median of 3 rounds`);
console.log();
console.log("| way | puts/s | x shipped |");
console.log("| --- | --: | --: |");
for (const way of ways) {
  const m = median(rates.get(way)!);
  console.log(
    `| ${way} | ${Math.round(m).toLocaleString("en-US")} | ${
      (m / base).toFixed(2)
    }x |`,
  );
}
