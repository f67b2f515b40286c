/**
 * pq's own raw-SQL baseline (../raw.ts): a table of pq's shape with pq's
 * index of ready jobs and no trigger; put is an insert and a pg_notify in
 * one statement, putMany one `insert ... select from unnest` (no
 * notification), and the worker LISTENs and runs `begin; delete ... skip
 * locked limit 1 returning; <handler>; commit` per job.
 *
 * @module
 */

import postgres from "postgres";
import { RawQueue } from "../raw.ts";
import { startLoops } from "./loops.ts";
import type { OpenPeer, Payload } from "./peer.ts";

export const open: OpenPeer = async ({ url, schema }) => {
  const sql = postgres(url, { max: 10, onnotice: () => {} });
  const raw = await RawQueue.create(sql, schema);
  return {
    put: (data) => raw.putNotify("jobs", data),
    putMany: (data) => raw.putMany("jobs", data),
    work: (concurrency, handler) =>
      startLoops(
        sql,
        raw.channel,
        concurrency,
        () => raw.work("jobs", (job) => handler(job.data as Payload)),
      ),
    async pending() {
      const [{ n }] = await sql.unsafe(
        `select count(*)::int as n from ${raw.table}`,
      );
      return n;
    },
    close: () => sql.end(),
  };
};
