/**
 * A job taken from a queue.
 *
 * @module
 */

import type { Binding } from "./binding.ts";
import type { Codec } from "./codecs.ts";
import type { TableNames } from "./schema.ts";
import { saveJobData } from "./sql/manage_jobs.ts";
import type { TakenRow } from "./sql/take_jobs.ts";
import type { Executor } from "./types.ts";

/** Where a job came from, so that `update()` can write it back. Internal. */
export interface JobOrigin {
  /** The client or transaction that took the job. */
  db: Executor;
  /** The caller's transaction, when the job was taken in one. */
  binding: Binding | null;
  /** The table's names. */
  names: TableNames;
  /** The queue's codec. */
  codec: Codec;
  /** The queue's name. */
  queue: string;
}

/**
 * A job taken from a queue by `get()`, with its data decoded.
 *
 * @example Take a job and read it
 * ```ts
 * import postgres from "postgres";
 * import { createPQ } from "@pq/pq";
 * import assert from "node:assert/strict";
 *
 * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
 * const pq = createPQ(sql, { table: "pq_examples" });
 * await pq.create();
 * const apples = pq.queue<{ kind: string }>("job-apples");
 * await apples.put({ kind: "Cox" }, { expectedAt: "1m" });
 * const job = await apples.get();
 * assert.ok(job);
 * assert.equal(job.queue, "job-apples");
 * assert.equal(job.data.kind, "Cox");
 * assert.equal(job.size, '{"kind":"Cox"}'.length);
 * assert.ok(job.expectedAt instanceof Date);
 * await pq.close();
 * await sql.end();
 * ```
 */
export class Job<T = unknown> {
  /** The job's id, unique in its table; ids of later puts are larger. */
  readonly id: string;
  /** The name of the job's queue. */
  readonly queue: string;
  /** When the job was put. */
  readonly enqueuedAt: Date;
  /** When the job was scheduled to become ready, if it was. */
  readonly scheduleAt: Date | null;
  /** The job's expected time (its priority), if it had one. */
  readonly expectedAt: Date | null;
  readonly #origin: JobOrigin;
  readonly #row: TakenRow;
  #data: T;
  #size: number;

  /**
   * Jobs are made by pq from the rows it takes; there is no need to call this.
   *
   * @param origin Where the job was taken.
   * @param row The taken row.
   * @param data The row's data, decoded.
   */
  constructor(origin: JobOrigin, row: TakenRow, data: T) {
    this.#origin = origin;
    this.#row = row;
    this.id = row.id;
    this.queue = origin.queue;
    this.#data = data;
    this.#size = row.data.length;
    this.enqueuedAt = row.enqueuedAt;
    this.scheduleAt = row.scheduleAt;
    this.expectedAt = row.expectedAt;
  }

  /** The decoded data; `update()` changes it. */
  get data(): T {
    return this.#data;
  }

  /** The length of the stored (encoded) data, in characters. */
  get size(): number {
    return this.#size;
  }

  /**
   * Rewrites the job's stored data (pq's `job.data = ...`). A taken job has
   * left the queue, so the row is stored again as a `done` record that no
   * `get()` returns; inside the transaction that took the job, the write
   * commits or rolls back with it.
   *
   * @param data The new data, encoded with the queue's codec.
   * @returns Once the data is written; `data` and `size` then show it.
   * @throws {TypeError} If the codec cannot encode `data`; nothing is written.
   *
   * @example Record a result on the job
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const apples = pq.queue<{ kind: string; eaten?: boolean }>("update-apples");
   * await apples.put({ kind: "Cox" });
   * const job = await apples.get();
   * assert.ok(job);
   * await job.update({ ...job.data, eaten: true });
   * assert.equal(job.size, '{"kind":"Cox","eaten":true}'.length);
   * await apples.clear(); // also removes the kept record
   * await pq.close();
   * await sql.end();
   * ```
   */
  async update(data: T): Promise<void> {
    const { db, names, codec, binding } = this.#origin;
    const text = codec.encode(data);
    await binding?.check("update job");
    await saveJobData(db, names, {
      ...this.#row,
      queue: this.queue,
      data: text,
    });
    this.#data = data;
    this.#size = text.length;
  }

  /**
   * Describes the job: id, queue, size and its three times.
   *
   * @example
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const apples = pq.queue("string-apples");
   * await apples.put({ kind: "Cox" });
   * const job = await apples.get();
   * assert.match(`${job}`, /^<pq.Job id=\d+ queue="string-apples" size=14 enqueuedAt=\S+ scheduleAt=null expectedAt=null>$/);
   * await pq.close();
   * await sql.end();
   * ```
   */
  toString(): string {
    const time = (d: Date | null) => d?.toISOString() ?? "null";
    return `<pq.Job id=${this.id} queue=${
      JSON.stringify(this.queue)
    } size=${this.size} enqueuedAt=${time(this.enqueuedAt)} scheduleAt=${
      time(this.scheduleAt)
    } expectedAt=${time(this.expectedAt)}>`;
  }
}
