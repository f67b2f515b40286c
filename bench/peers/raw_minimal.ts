/**
 * The queue users write by hand: one table with a jsonb column and one
 * index (its primary key), a statement-level trigger that NOTIFYs on every
 * insert, and a worker that LISTENs and runs each job in a transaction of
 * its own: `begin; delete ... where id = (select ... for update skip locked
 * limit 1) returning ...; <handler>; commit`. Written the way postgres.js
 * users write SQL (tagged templates, prepared by the driver).
 *
 * @module
 */

import postgres from "postgres";
import { startLoops } from "./loops.ts";
import type { OpenPeer, Payload } from "./peer.ts";

export const open: OpenPeer = async ({ url, schema }) => {
  const sql = postgres(url, { max: 10, onnotice: () => {} });
  const jobs = sql`${sql(schema)}.jobs`;
  await sql.begin(async (tx) => {
    await tx`create table ${jobs} (
      id bigint generated always as identity primary key,
      data jsonb not null
    )`;
    // The channel is the schema's name, so that runs in other schemas
    // never wake this one.
    await tx`create function ${sql(schema)}.notify_jobs() returns trigger
      language plpgsql as $$
      begin
        perform pg_notify(tg_table_schema, '');
        return null;
      end $$`;
    await tx`create trigger notify_jobs after insert on ${jobs}
      for each statement execute function ${sql(schema)}.notify_jobs()`;
  });
  const takeOne = (handler: (data: Payload) => void) => () =>
    sql.begin(async (tx) => {
      const [job] = await tx`
        delete from ${jobs}
        where id = (
          select id from ${jobs} order by id for update skip locked limit 1
        )
        returning id, data`;
      if (job) handler(job.data as Payload);
      return job !== undefined;
    });
  return {
    // Awaited here: a postgres.js query is only sent once awaited, and the
    // latency workload does not await its puts before the next one.
    async put(data) {
      await sql`insert into ${jobs} (data) values (${sql.json(data)})
        returning id`;
    },
    async putMany(data) {
      await sql`insert into ${jobs} (data)
        select d::jsonb from unnest(${
        data.map((d) => JSON.stringify(d))
      }::text[]) as d
        returning id`;
    },
    work: (concurrency, handler) =>
      startLoops(sql, schema, concurrency, takeOne(handler)),
    async pending() {
      const [{ n }] = await sql`select count(*)::int as n from ${jobs}`;
      return n;
    },
    close: () => sql.end(),
  };
};
