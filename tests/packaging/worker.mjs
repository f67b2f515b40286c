// A Cloudflare Worker for the workerd smoke test: bundled with esbuild (the
// "workerd" condition picks postgres.js's cloudflare:sockets build) and run
// by Miniflare. The request opens a client, waits in a blocking get (found
// by polling) for a job it then puts, works a burst of tasks, and closes:
// Workers cannot share connections across requests.
import postgres from "postgres";
import { createPQ } from "@pq/pq";

export default {
  async fetch(_request, env) {
    const sql = postgres(env.DATABASE_URL, {
      max: 2,
      prepare: false,
      onnotice: () => {},
    });
    const pq = createPQ(sql, {
      schema: env.SCHEMA,
      listen: false,
      pollInterval: "200ms",
    });
    try {
      await pq.create();
      const queue = pq.queue("workerd");
      // A blocking get on an empty queue, found by the poll after a put.
      const getting = queue.get({ timeout: "5s" });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const id = await queue.put({ from: "workerd" });
      const job = await getting;
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
      return Response.json({
        sameId: job?.id === id,
        got: job?.data,
        done: stats.done,
        seen,
      });
    } catch (error) {
      return new Response(String(error?.stack ?? error), { status: 500 });
    } finally {
      await pq.close();
      await sql.end();
    }
  },
};
