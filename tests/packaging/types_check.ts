// Type-checked by `tsc` inside a temporary Node project where the packed
// @pq/pq is installed: its .d.ts files must give these types.
import postgres from "postgres";
import { createPQ, type Job, type PQ, type WorkStats } from "@pq/pq";

export async function check(): Promise<void> {
  const sql = postgres("postgres://localhost/none", { prepare: false });
  const pq: PQ = createPQ(sql, { listen: false, pollInterval: "250ms" });
  const apples = pq.queue<{ kind: string }>("apples");
  const id: string = await apples.put({ kind: "Cox" }, { scheduleAt: "5m" });
  const job: Job<{ kind: string }> | null = await apples.get({
    timeout: "1s",
    signal: AbortSignal.timeout(1_000),
  });
  const kind: string | undefined = job?.data.kind;
  const eat = apples.task("eat", async (args: { n: number }, task) => {
    await task.tx`select ${args.n}`;
  });
  const taskId: string = await eat({ n: 1 });
  // @ts-expect-error: the task takes { n: number }
  await eat({ n: "one" });
  // @ts-expect-error: put takes the queue's data type
  await apples.put({ colour: "red" });
  const stats: WorkStats = await apples.work({ burst: true });
  await using closing = pq;
  console.log(id, kind, taskId, stats.done, closing.table);
}
