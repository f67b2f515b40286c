/**
 * A queue: put, get, iterate, size, clear, transactions, its tasks, and
 * the life of its jobs (job, cancel, waitFor).
 *
 * Why one file of about 1,000 lines: each public method of `Queue` carries a
 * runnable example (`deno test --doc`), which is most of its length; the
 * logic lives in take.ts, new_jobs.ts, tasks.ts, worker.ts, job_info.ts and
 * sql/.
 *
 * @module
 */

import { isPaused, pauseQueue, resumeQueue } from "./sql/pause.ts";
import { Binding } from "./binding.ts";
import type { Codec } from "./codecs.ts";
import type { PQCore } from "./core.ts";
import { describe } from "./describe.ts";
import { type DurationInput, parseDuration } from "./duration.ts";
import { assertOpen } from "./errors.ts";
import { Job } from "./job.ts";
import { cancelTaken, failedJobOf, readOrPark, recordOf } from "./job_data.ts";
import { checkJobId, toJobInfo, waitForJob } from "./job_info.ts";
import { cancelJob, readJob } from "./sql/job_state.ts";
import { checkName } from "./names.ts";
import {
  encodeJobs,
  PUT_OPTIONS,
  readBatch,
  readPut,
  withAction,
} from "./new_jobs.ts";
import { checkBoolean, checkOptions, checkSignal } from "./check_options.ts";
import type {
  FailedJob,
  FailedOptions,
  GetOptions,
  IterateOptions,
  JobInfo,
  JobInput,
  PutOptions,
  ScheduleInfo,
  ScheduleOptions,
  SizeOptions,
  TaskOptions,
  WaitForOptions,
} from "./options.ts";
import {
  insertJob,
  insertJobs,
  type InsertStatements,
  type NewJob,
} from "./sql/insert_jobs.ts";
import { tracedPut } from "./telemetry.ts";
import {
  countJobs,
  deleteJobs,
  finishBatch,
  listFailedJobs,
  retryFailedJob,
} from "./sql/manage_jobs.ts";
import { takeWaiting } from "./take.ts";
import {
  readSchedules,
  removeSchedule,
  saveSchedule,
  type ScheduleTarget,
  setSchedulePaused,
} from "./schedules.ts";
import { registerTask, type Task, type TaskHandler } from "./tasks.ts";
import type { JobFor, RunningJob } from "./task_job.ts";
import type { Executor, TransactionSql } from "./types.ts";
import {
  type Schema,
  type SchemaInput,
  type SchemaOutput,
  validateInput,
} from "./validation.ts";
import { Worker } from "./worker.ts";
import type { WorkOptions, WorkStats } from "./work_options.ts";

const GET_OPTIONS = ["block", "timeout", "signal"] as const;
const SIZE_OPTIONS = ["task", "atMost"] as const;
const ITERATE_OPTIONS = ["timeout", "signal"] as const;

/**
 * A named queue of one PQ's table. Get one with `pq.queue(name)`; a queue
 * bound to a transaction with `queue.with(tx)`.
 *
 * @typeParam T The type of the jobs' data, as `get()` returns it.
 * @typeParam I The type `put()` takes: the same, unless a schema transforms
 * its input.
 *
 * @example Put and get
 * ```ts
 * import postgres from "postgres";
 * import { createPQ } from "@pq/pq";
 * import assert from "node:assert/strict";
 *
 * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
 * const pq = createPQ(sql, { table: "pq_examples" });
 * await pq.create();
 * const apples = pq.queue<{ kind: string }>("class-queue");
 * await apples.put({ kind: "Cox" });
 * const job = await apples.get();
 * assert.equal(job?.data.kind, "Cox");
 * await pq.close();
 * await sql.end();
 * ```
 */
export class Queue<T = unknown, I = T> {
  /** The queue's name (without a codec suffix). */
  readonly name: string;
  /** The codec that encodes this queue's data. */
  readonly codec: Codec;
  readonly #core: PQCore;
  /** The client, or the transaction this queue is bound to. */
  readonly #db: Executor;
  /** The caller's transaction, when bound to one. */
  readonly #binding: Binding | null;
  /** The schema of the jobs' data, if any. */
  readonly #schema: Schema | null;

  /**
   * Queues are made by `pq.queue(name)` and `queue.with(tx)`.
   *
   * @param core The PQ's shared state.
   * @param name The queue's name.
   * @param codec The codec of its data.
   * @param schema The schema of the jobs' data, if any.
   * @param binding The transaction to run statements in, if any.
   */
  constructor(
    core: PQCore,
    name: string,
    codec: Codec,
    schema: Schema | null,
    binding?: Binding,
  ) {
    this.#core = core;
    this.name = name;
    this.codec = codec;
    this.#schema = schema;
    this.#binding = binding ?? null;
    this.#db = binding?.tx ?? core.sql;
  }

  /**
   * Puts a job in the queue.
   *
   * @param data The job's data, encoded by the queue's codec (JSON unless
   * the queue has a suffix such as `/pickle`).
   * @param options When the job becomes ready (`scheduleAt`) and its
   * priority (`expectedAt`).
   * @returns The new job's id.
   * @throws {TypeError} If `data` cannot be encoded, does not match the
   * queue's schema, or an option is invalid; nothing is written then.
   * @throws {RangeError} If a time is out of range.
   *
   * @example Delayed and prioritized jobs
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const apples = pq.queue<{ kind: string }>("put-apples");
   * await apples.clear();
   * const id = await apples.put({ kind: "Cox" });
   * assert.match(id, /^\d+$/);
   * await apples.put({ kind: "Fuji" }, { scheduleAt: "5m" });
   * await apples.put({ kind: "Gala" }, { expectedAt: "1h30m" });
   * assert.equal(await apples.size(), 2); // Fuji waits five minutes
   * assert.equal((await apples.get())?.data.kind, "Gala"); // priority first
   * await assert.rejects(apples.put({ kind: "Elstar" }, { scheduleAt: "5x" }), TypeError);
   * await apples.clear();
   * await pq.close();
   * await sql.end();
   * ```
   */
  async put(data: I, options?: PutOptions): Promise<string> {
    if (this.#schema) await validateInput(this.#schema, data, "put job");
    const job = this.#newJob(data, options, "put job");
    this.#checkOpen("put job");
    const binding = this.#binding;
    const id = await tracedPut(
      this.#core,
      this.name,
      null,
      1,
      (trace) =>
        insertJob(
          this.#db,
          this.#insertStatements(),
          this.name,
          null,
          job,
          binding ?? undefined,
          trace,
        ),
    );
    binding?.confirm(id !== null, "put job");
    return id!;
  }

  /**
   * Puts many jobs in one statement: all are written or none.
   *
   * @param items The jobs: `{ data }`, each optionally with its own
   * `scheduleAt` and `expectedAt`.
   * @param options Times for the items that do not set their own.
   * @returns The new jobs' ids, in the order of `items`.
   * @throws {TypeError} If an item cannot be encoded or an option is
   * invalid; nothing is written then.
   *
   * @example Put a batch
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const apples = pq.queue<string>("many-apples");
   * await apples.clear();
   * const ids = await apples.putMany([
   *   { data: "Cox" },
   *   { data: "Fuji", expectedAt: "1m" },
   *   { data: "Gala", scheduleAt: 0 },
   * ], { scheduleAt: "10s" });
   * assert.equal(ids.length, 3);
   * assert.equal(await apples.size(), 1); // only Gala is ready now
   * await apples.clear();
   * await pq.close();
   * await sql.end();
   * ```
   */
  async putMany(
    items: readonly JobInput<I>[],
    options?: PutOptions,
  ): Promise<string[]> {
    const shared = readBatch(options, "put jobs");
    const jobs = encodeJobs(this.codec, items, "data", shared, "put jobs");
    const schema = this.#schema;
    if (schema) {
      await Promise.all(
        items.map((item, i) =>
          validateInput(schema, item.data, `put jobs (item ${i})`)
        ),
      );
    }
    this.#checkOpen("put jobs");
    const binding = this.#binding;
    const ids = await tracedPut(
      this.#core,
      this.name,
      null,
      jobs.length,
      (trace) =>
        insertJobs(
          this.#db,
          this.#insertStatements(),
          this.name,
          null,
          jobs,
          binding ?? undefined,
          trace,
        ),
    );
    binding?.confirm(ids !== null, "put jobs");
    return ids!;
  }

  /**
   * Takes the next ready job: the earliest `expectedAt` first (jobs without
   * one last), then first in, first out. Outside a transaction the job is
   * taken for good by this one statement; inside `transaction()` or
   * `with(tx)`, it comes back if the transaction rolls back.
   *
   * @param options `block: false` never waits; `timeout` bounds the wait
   * (default: the PQ's, 1 s); `signal` stops it.
   * A job whose data the codec cannot decode is not returned nor lost: it
   * is kept as a failed job with its text and the decode error (see
   * `failed()`), reported to the PQ's `onError`, and the get goes on to the
   * next job.
   *
   * While it waits outside a transaction, a take that loses its connection
   * (the server restarted or failed over) is tried again after a short
   * pause, until the timeout; in a transaction, and with `block: false`, the
   * connection error rejects the get.
   *
   * @returns The job, or null if none became ready in time (or the PQ was
   * closed while waiting).
   * @throws The signal's reason when `signal` aborts while waiting (at once,
   * before any query, if it is already aborted).
   *
   * @example Wait up to 30 seconds
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const apples = pq.queue("get-apples");
   * await apples.clear();
   * assert.equal(await apples.get({ block: false }), null); // never waits
   * setTimeout(() => apples.put("late"), 100);
   * const job = await apples.get({ timeout: "30s" }); // woken by the put
   * assert.equal(job?.data, "late");
   * await assert.rejects(
   *   apples.get({ signal: AbortSignal.timeout(50) }),
   *   { name: "TimeoutError" },
   * );
   * await pq.close();
   * await sql.end();
   * ```
   */
  async get(options?: GetOptions): Promise<Job<T> | null> {
    const wait = this.#waitOptions(options, GET_OPTIONS, "get job");
    this.#checkOpen("get job");
    const deadline = performance.now() + (wait?.timeoutMs ?? 0);
    const origin = {
      db: this.#db,
      binding: this.#binding,
      names: this.#core.names,
      codec: this.codec,
      schema: this.#schema,
      queue: this.name,
    };
    for (;;) {
      const [row] = await takeWaiting(
        this.#core,
        this.#db,
        this.#binding !== null,
        this.name,
        { kind: "plain", binding: this.#binding },
        1,
        wait && { ...wait, timeoutMs: deadline - performance.now() },
      );
      if (!row) return null;
      if (row.cancelRequested) {
        // Cancelled while a transaction held it: store it so, and go on.
        await cancelTaken(this.#db, this.#core.names, recordOf(this.name, row));
        continue;
      }
      const read = await readOrPark(this.#core, this.#db, origin, row);
      if (!read) continue;
      if (row.watched) {
        // Taken for good (or at commit): a waitFor() hears it as completed.
        await finishBatch(this.#db, this.#core.names, [], [
          { id: row.id, state: "completed" },
        ]);
      }
      return new Job<T>(origin, row, read.data as T);
    }
  }

  /**
   * Iterates over the queue's jobs forever, yielding `null` each time a wait
   * times out, so the loop can decide to stop. Ends when `signal` aborts.
   *
   * @param options The wait of each step (`timeout`) and a `signal` that
   * ends the iteration.
   * @returns An async iterator of jobs and nulls.
   *
   * @example Work until told to stop
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const apples = pq.queue<number>("iterate-apples");
   * await apples.clear();
   * await apples.putMany([{ data: 1 }, { data: 2 }]);
   * const seen = [];
   * for await (const job of apples.iterate({ timeout: "100ms" })) {
   *   if (job === null) break; // nothing came for 100 ms
   *   seen.push(job.data);
   * }
   * assert.deepEqual(seen, [1, 2]);
   * await pq.close();
   * await sql.end();
   * ```
   */
  async *iterate(options?: IterateOptions): AsyncGenerator<Job<T> | null> {
    let timeout: DurationInput | undefined, signal: AbortSignal | undefined;
    try {
      ({ timeout, signal } = checkOptions(options, ITERATE_OPTIONS));
      checkSignal(signal);
      if (timeout !== undefined) timeout = parseDuration(timeout, "timeout");
    } catch (error) {
      withAction("iterate", error);
    }
    for (;;) {
      if (signal?.aborted) return;
      try {
        yield await this.get({ timeout, signal });
      } catch (error) {
        if (signal?.aborted && error === signal.reason) return;
        throw error;
      }
    }
  }

  /**
   * Iterates like {@linkcode Queue.iterate} with the default timeout:
   * `for await (const job of queue)` yields `null` after each timeout.
   *
   * @returns An async iterator of jobs and nulls.
   *
   * @example
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples", timeout: "100ms" });
   * await pq.create();
   * const apples = pq.queue("for-await-apples");
   * await apples.clear();
   * await apples.put("Cox");
   * const seen = [];
   * for await (const job of apples) {
   *   if (job === null) break; // the default timeout passed
   *   seen.push(job.data);
   * }
   * assert.deepEqual(seen, ["Cox"]);
   * await pq.close();
   * await sql.end();
   * ```
   */
  [Symbol.asyncIterator](): AsyncGenerator<Job<T> | null> {
    return this.iterate();
  }

  /**
   * Counts the ready jobs: those that can be taken now, including scheduled
   * jobs whose time came, excluding future and failed ones. A job taken by
   * a transaction that has not committed yet still counts (the count cannot
   * see another transaction's uncommitted work).
   *
   * @param options `task`: count only the jobs of this task (for example
   * those of a task that no running worker knows, which wait for one);
   * `atMost`: stop counting there, so the count costs the same however deep
   * the backlog.
   * @returns The number of ready jobs (at most `atMost`).
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
   * const apples = pq.queue("size-apples");
   * await apples.clear();
   * await apples.put("now");
   * await apples.put("later", { scheduleAt: "1h" });
   * assert.equal(await apples.size(), 1);
   * await apples.putMany([{ data: "a" }, { data: "b" }]);
   * assert.equal(await apples.size({ atMost: 2 }), 2); // 3 ready: stops at 2
   * await apples.clear();
   * await pq.close();
   * await sql.end();
   * ```
   */
  async size(options?: SizeOptions): Promise<number> {
    let task: string | undefined, atMost: number | undefined;
    try {
      ({ task, atMost } = checkOptions(options, SIZE_OPTIONS));
      if (task !== undefined) checkName(task, "'task'");
      if (
        atMost !== undefined && (!Number.isSafeInteger(atMost) || atMost < 1)
      ) {
        throw new TypeError(
          `'atMost' must be a whole number of at least 1: received ${
            describe(atMost)
          }`,
        );
      }
    } catch (error) {
      withAction("count jobs", error);
    }
    this.#checkOpen("count jobs");
    await this.#binding?.check("count jobs");
    return await countJobs(
      this.#db,
      this.#core.names,
      this.name,
      task,
      atMost,
    );
  }

  /**
   * Removes every job of the queue: ready, scheduled, failed and done. A job
   * that an open transaction has taken is not removed (its transaction
   * decides its fate), and `clear()` waits for such transactions to end.
   *
   * @returns How many jobs were removed.
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
   * const apples = pq.queue("clear-apples");
   * await apples.clear();
   * await apples.putMany([{ data: 1 }, { data: 2 }]);
   * assert.equal(await apples.clear(), 2);
   * await pq.close();
   * await sql.end();
   * ```
   */
  async clear(): Promise<number> {
    this.#checkOpen("clear queue");
    await this.#binding?.check("clear queue");
    const removed = await deleteJobs(this.#db, this.#core.names, this.name);
    this.#core.vacuum.noteTaken(removed);
    return removed;
  }

  /**
   * The same queue, with every statement run in the caller's transaction:
   * a put becomes visible and a taken job leaves for good only when it
   * commits.
   *
   * @param tx A transaction from `sql.begin()`.
   * @returns A queue bound to `tx`.
   *
   * @example Put atomically with other writes
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const apples = pq.queue("with-apples");
   * await apples.clear();
   * await sql.begin(async (tx) => {
   *   await tx`select 1`; // your own writes here
   *   await apples.with(tx).put({ kind: "Cox" });
   * });
   * await sql.begin(async (tx) => {
   *   await apples.with(tx).put({ kind: "never" });
   *   throw new Error("changed my mind");
   * }).catch(() => {});
   * assert.equal(await apples.size(), 1);
   * await apples.putMany([{ data: "a" }, { data: "b" }]);
   * assert.equal(await apples.size({ atMost: 2 }), 2); // 3 ready: stops at 2
   * await apples.clear();
   * await pq.close();
   * await sql.end();
   * ```
   */
  with(tx: TransactionSql): Queue<T, I> {
    if (typeof tx !== "function" || typeof tx.unsafe !== "function") {
      throw new TypeError(
        `Cannot bind queue: expected a transaction from sql.begin(): received ${
          describe(tx)
        }`,
      );
    }
    return new Queue<T, I>(
      this.#core,
      this.name,
      this.codec,
      this.#schema,
      new Binding(tx),
    );
  }

  /**
   * Runs `fn` in a transaction with this queue bound to it: a job taken in
   * `fn` leaves the queue only if `fn` succeeds; if `fn` throws, everything
   * it did rolls back (the job is back in the queue) and the error is
   * re-thrown. Inside a queue already bound to a transaction, this uses a
   * savepoint.
   *
   * @param fn The work: gets the bound queue and the transaction.
   * @returns What `fn` returns.
   *
   * @example Take a job, do the work, write the result, atomically
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const apples = pq.queue<{ kind: string }>("tx-apples");
   * await apples.clear();
   * await apples.put({ kind: "Cox" });
   * await apples.transaction(async (q) => {
   *   await q.get();
   *   throw new Error("the work failed");
   * }).catch(() => {});
   * assert.equal(await apples.size(), 1); // the job is back
   * const kind = await apples.transaction(async (q, tx) => {
   *   const job = await q.get();
   *   await tx`select ${job?.data.kind ?? ""} as eaten`; // write the result here
   *   return job?.data.kind;
   * });
   * assert.equal(kind, "Cox");
   * assert.equal(await apples.size(), 0);
   * await pq.close();
   * await sql.end();
   * ```
   */
  async transaction<R>(
    fn: (queue: Queue<T, I>, tx: TransactionSql) => Promise<R> | R,
  ): Promise<R> {
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot run transaction: expected a function: received ${describe(fn)}`,
      );
    }
    this.#checkOpen("run transaction");
    await this.#binding?.check("run transaction");
    const run = async (tx: TransactionSql) => {
      const binding = new Binding(tx);
      try {
        return await fn(
          new Queue<T, I>(
            this.#core,
            this.name,
            this.codec,
            this.#schema,
            binding,
          ),
          tx,
        );
      } finally {
        // A queue kept past its transaction (or savepoint) must not be used.
        binding.end();
      }
    };
    const result = this.#binding
      ? this.#binding.tx.savepoint(run)
      : this.#core.sql.begin(run);
    return await result as R;
  }

  /**
   * Registers a task: a named handler for jobs of this queue. The returned
   * function enqueues a job of the task and resolves with its id;
   * `queue.work()` runs the handler. Task names are unique per queue.
   *
   * With a `schema` (any Standard Schema: Zod, Valibot, ArkType, ...), the
   * options may come before the handler: `task(name, { schema }, handler)`.
   * Calls then refuse arguments that do not match it, the handler gets its
   * output, and types follow it.
   *
   * @param name The task's name, stored with each of its jobs.
   * @param handler Does the work: gets the argument and the job (its id,
   * `attempt`, `signal` and `tx`, the job's transaction).
   * @param options Default `scheduleAt` and `expectedAt` of its jobs, the
   * retry policy: `maxRetries` (default 0), `retryIn` (default `"30s"`),
   * `backoff` (`"fixed"` or `"exponential"`), and its `schema`.
   * @returns The enqueuing function, typed by the handler's argument (or the
   * schema's input).
   * @throws {PQError} `DUPLICATE_TASK` if the queue already has a task of
   * that name.
   * @throws {TypeError} If the name, handler or an option is invalid.
   *
   * @example Register, enqueue, work
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const queue = pq.queue("task-example");
   * await queue.clear();
   * const eaten: string[] = [];
   * const eat = queue.task("eat", async (args: { kind: string }, job) => {
   *   await job.tx`select 1`; // writes here commit with the job
   *   eaten.push(args.kind);
   * }, { maxRetries: 2, retryIn: "10s" });
   * const id = await eat({ kind: "Cox" });
   * assert.match(id, /^\d+$/);
   * await queue.work({ burst: true });
   * assert.deepEqual(eaten, ["Cox"]);
   * await pq.close();
   * await sql.end();
   * ```
   */
  task<O extends TaskOptions & { schema: Schema }>(
    name: string,
    options: O,
    handler: TaskHandler<SchemaOutput<O["schema"]>, JobFor<O>>,
  ): Task<SchemaInput<O["schema"]>>;
  /**
   * Registers a task whose argument a schema checks, the options after the
   * handler (see the first form).
   *
   * @param name The task's name.
   * @param handler Does the work: gets the schema's output and the job.
   * @param options The task's options, with its `schema`.
   * @returns The enqueuing function, typed by the schema's input.
   *
   * @example
   * ```ts ignore
   * const send = queue.task("send", (args) => mail(args.to), { schema: Email });
   * ```
   */
  task<O extends TaskOptions & { schema: Schema }>(
    name: string,
    handler: TaskHandler<SchemaOutput<O["schema"]>, JobFor<O>>,
    options: O,
  ): Task<SchemaInput<O["schema"]>>;
  /**
   * Registers a task typed by its handler's argument (see the first form).
   * With `lease`, the handler gets a `LeaseJob`, else a `TaskJob`.
   *
   * @param name The task's name.
   * @param handler Does the work: gets the argument and the job.
   * @param options Default times, the retry policy and the mode.
   * @returns The enqueuing function, typed by the handler's argument.
   *
   * @example
   * ```ts ignore
   * const eat = queue.task("eat", (args: { kind: string }) => {}, { maxRetries: 2 });
   * ```
   */
  task<A, O extends TaskOptions = TaskOptions>(
    name: string,
    handler: TaskHandler<A, JobFor<O>>,
    options?: O,
  ): Task<A>;
  task(
    name: string,
    // deno-lint-ignore no-explicit-any
    first: TaskHandler<any, any> | TaskOptions,
    // deno-lint-ignore no-explicit-any
    second?: TaskOptions | TaskHandler<any, any>,
  ): Task<unknown> {
    // task(name, { schema }, handler): the options come first.
    const optionsFirst = typeof first === "object" && first !== null &&
      typeof second === "function";
    const [handler, options] = optionsFirst
      ? [second as TaskHandler<unknown, RunningJob>, first as TaskOptions]
      : [
        first as TaskHandler<unknown, RunningJob>,
        second as TaskOptions | undefined,
      ];
    return registerTask(
      this.#core,
      this.name,
      this.codec,
      name,
      handler,
      options,
    );
  }

  /**
   * Runs the queue's task jobs until `signal` aborts (or, with `burst`, until
   * no job is ready). Each job runs in a transaction and leaves the queue
   * when it commits; a handler that throws is retried per its task's policy,
   * then stored as failed. Plain jobs (from `put()`) are left for `get()`.
   *
   * @param options `concurrency` (default 1), `signal`, `burst`,
   * `gracePeriod` (default `"10s"`), `batchSize` and `onEvent`.
   * @returns How many jobs were done, retried and failed.
   * @throws The signal's reason if it is already aborted.
   *
   * @example Run until Ctrl-C
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const queue = pq.queue("work-example");
   * await queue.clear();
   * const nap = queue.task("nap", (ms: number) => new Promise((r) => setTimeout(r, ms)));
   * await nap.many([{ args: 10 }, { args: 20 }, { args: 30 }]);
   * const stop = new AbortController();
   * setTimeout(() => stop.abort(), 500); // or on Ctrl-C
   * const stats = await queue.work({ concurrency: 2, signal: stop.signal });
   * assert.deepEqual(stats, { done: 3, retried: 0, failed: 0 });
   * await pq.close();
   * await sql.end();
   * ```
   */
  async work(options?: WorkOptions): Promise<WorkStats> {
    return await new Worker(this.#core, this.name, options).run();
  }

  /**
   * Lists the queue's failed jobs, oldest first.
   *
   * @param options `limit`: the most to list (default 1,000).
   * @returns The failed jobs with their errors and attempts.
   *
   * @example Retry every failed job
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const queue = pq.queue("failed-example");
   * await queue.clear();
   * const fail = queue.task("fail", () => {
   *   throw new Error("no apples left");
   * });
   * await fail({});
   * await queue.work({ burst: true, onEvent: () => {} });
   * const [job] = await queue.failed();
   * assert.equal(job.error?.message, "no apples left");
   * assert.equal(job.attempts, 1);
   * await queue.clear();
   * await pq.close();
   * await sql.end();
   * ```
   */
  async failed(options?: FailedOptions): Promise<FailedJob[]> {
    let limit: number;
    try {
      limit = checkOptions(options, ["limit"]).limit ?? 1_000;
      if (!Number.isSafeInteger(limit) || limit < 1) {
        throw new TypeError(
          `'limit' must be a whole number of at least 1: received ${
            describe(limit)
          }`,
        );
      }
    } catch (error) {
      withAction("list failed jobs", error);
    }
    this.#checkOpen("list failed jobs");
    await this.#binding?.check("list failed jobs");
    const rows = await listFailedJobs(
      this.#db,
      this.#core.names,
      this.name,
      limit,
    );
    return rows.map((row) => failedJobOf(row, this.codec));
  }

  /**
   * Puts a failed job back in the queue, ready at once, with a fresh count
   * of attempts. It keeps its id.
   *
   * @param id The failed job's id.
   * @returns True if the job was put back, false if this queue has no
   * failed job with that id.
   * @throws {TypeError} If `id` is not a job id.
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
   * const queue = pq.queue("retry-example");
   * await queue.clear();
   * let broken = true;
   * const fix = queue.task("fix", () => {
   *   if (broken) throw new Error("still broken");
   * });
   * await fix({});
   * await queue.work({ burst: true, onEvent: () => {} });
   * const [failed] = await queue.failed();
   * broken = false;
   * assert.equal(await queue.retry(failed.id), true);
   * assert.equal((await queue.work({ burst: true })).done, 1);
   * await pq.close();
   * await sql.end();
   * ```
   */
  async retry(id: string): Promise<boolean> {
    const text = checkJobId(id, "retry job");
    this.#checkOpen("retry job");
    await this.#binding?.check("retry job");
    return await retryFailedJob(this.#db, this.#core.names, this.name, text);
  }

  /**
   * Looks a job of this queue up, in any state. Never waits for a running
   * job's lock.
   *
   * @param id The job's id.
   * @returns The job, or null if this queue has no such job (never had it,
   * or it was deleted: completed jobs are, unless `keep.completed` is set).
   * @throws {TypeError} If `id` is not a job id.
   *
   * @example Follow a job
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples", keep: { completed: "1h" } });
   * await pq.create();
   * const queue = pq.queue("job-example");
   * const double = queue.task("double", (n: number) => n * 2);
   * const id = await double(21);
   * assert.equal((await queue.job(id))?.state, "ready");
   * await queue.work({ burst: true });
   * const job = await queue.job(id);
   * assert.equal(job?.state, "completed");
   * assert.equal(job?.result, 42);
   * assert.equal(await queue.job("999999999"), null);
   * await pq.close();
   * await sql.end();
   * ```
   */
  async job(id: string): Promise<JobInfo | null> {
    const text = checkJobId(id, "look up job");
    this.#checkOpen("look up job");
    await this.#binding?.check("look up job");
    const row = await readJob(this.#db, this.#core.names, this.name, text);
    return row && toJobInfo(row, this.codec);
  }

  /**
   * Cancels a job of this queue, without waiting for a running job's
   * transaction. A ready or scheduled job is cancelled at once. A running
   * job's `job.signal` aborts (code `CANCELLED`) within a second (by
   * NOTIFY; behind a pooler without LISTEN, within `pollInterval`); in
   * transaction mode its transaction's work is rolled back. It ends
   * `cancelled`, never retried, whatever its handler does after the abort.
   * A failed job is removed. Cancelled jobs are kept for `keep.cancelled`.
   *
   * @param id The job's id.
   * @returns The state it found: `"ready"`, `"scheduled"`, `"running"` or
   * `"failed"`; null for an unknown or finished job.
   * @throws {TypeError} If `id` is not a job id.
   *
   * @example Cancel a job before it runs
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const queue = pq.queue("cancel-example");
   * const id = await queue.put({ kind: "Cox" }, { scheduleAt: "1h" });
   * assert.equal(await queue.cancel(id), "scheduled");
   * assert.equal((await queue.job(id))?.state, "cancelled");
   * assert.equal(await queue.cancel(id), null); // already finished
   * await pq.close();
   * await sql.end();
   * ```
   */
  async cancel(
    id: string,
  ): Promise<"ready" | "scheduled" | "running" | "failed" | null> {
    const text = checkJobId(id, "cancel job");
    this.#checkOpen("cancel job");
    await this.#binding?.check("cancel job");
    const { found } = await cancelJob(
      this.#db,
      this.#core.names,
      this.name,
      text,
    );
    return found as "ready" | "scheduled" | "running" | "failed" | null;
  }

  /**
   * Waits until a job of this queue ends (completed, failed or cancelled),
   * woken by NOTIFY, and looking again every `pollInterval` as a safety net.
   * A job deleted when it completed (without `keep.completed`) is reported
   * completed, with what was last seen of it.
   *
   * @param id The job's id.
   * @param options `timeout` (default: no limit) and `signal`.
   * @returns The ended job, or null on timeout or for an unknown job.
   * @throws {TypeError} If `id` or an option is invalid.
   * @throws The signal's reason when `signal` aborts.
   *
   * @example Enqueue and wait for the result
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples", keep: { completed: "1h" } });
   * await pq.create();
   * const queue = pq.queue("wait-example");
   * const add = queue.task("add", (args: { a: number; b: number }) => args.a + args.b);
   * const stop = new AbortController();
   * const working = queue.work({ signal: stop.signal });
   * const id = await add({ a: 1, b: 2 });
   * const job = await queue.waitFor(id, { timeout: "30s" });
   * assert.equal(job?.result, 3);
   * stop.abort();
   * await working;
   * await pq.close();
   * await sql.end();
   * ```
   */
  async waitFor(
    id: string,
    options?: WaitForOptions,
  ): Promise<JobInfo | null> {
    const text = checkJobId(id, "wait for job");
    let timeoutMs = Infinity, signal: AbortSignal | undefined;
    try {
      const o = checkOptions(options, ["timeout", "signal"]);
      if (o.timeout !== undefined) {
        timeoutMs = parseDuration(o.timeout, "timeout");
      }
      signal = checkSignal(o.signal);
    } catch (error) {
      withAction("wait for job", error);
    }
    signal?.throwIfAborted();
    this.#checkOpen("wait for job");
    await this.#binding?.check("wait for job");
    return await waitForJob(
      this.#core,
      this.#db,
      this.name,
      this.codec,
      text,
      timeoutMs,
      signal,
    );
  }

  /**
   * Creates or updates a recurring schedule: every tick of `cron` enqueues
   * one job of `task`, exactly once however many workers run. Stored in the
   * database: it survives restarts, and any process may change, list or
   * remove it at runtime. Safe to call at every start of every process: an
   * unchanged schedule keeps its next tick; a changed cron, time zone, task,
   * argument or backfill replaces the old one from the next tick. Running
   * `work()`s of the queue enqueue the ticks (within a second of their
   * time); `work({ burst: true })` enqueues the due ones first.
   *
   * Needs the optional package `croner` (cron expressions: 5 fields, or 6
   * with seconds first; month and day names; ranges, steps, lists;
   * `@hourly`-style nicknames; time zones with daylight saving time).
   *
   * @param name The schedule's name, unique per queue.
   * @param cron The cron expression, such as `"0 3 * * *"`.
   * @param task The task (from `queue.task()`) or its name.
   * @param options `args`, `timezone`, `backfill`, `paused`.
   * @returns Once stored.
   * @throws {TypeError} If the expression, time zone, task or an option is
   * invalid; nothing is stored then.
   *
   * @example A report every night at three
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const queue = pq.queue("schedule-example");
   * const report = queue.task("report", (args: { team: string }) => {});
   * await queue.schedule("nightly", "0 3 * * *", report, {
   *   args: { team: "a" },
   *   timezone: "Europe/Oslo",
   * });
   * const [nightly] = await queue.schedules();
   * assert.equal(nightly.cron, "0 3 * * *");
   * assert.ok(nightly.nextAt > new Date());
   * assert.equal(await queue.unschedule("nightly"), true);
   * await pq.close();
   * await sql.end();
   * ```
   */
  async schedule<A>(
    name: string,
    cron: string,
    task: Task<A> | string,
    options?: ScheduleOptions,
  ): Promise<void> {
    this.#checkOpen("schedule");
    await this.#binding?.check("schedule");
    await saveSchedule(
      this.#scheduleTarget(),
      name,
      cron,
      task as Task<unknown>,
      options,
    );
  }

  /**
   * Lists the queue's schedules, by name.
   *
   * @returns Each schedule's cron, time zone, task, argument, next and last
   * tick, and whether it is paused.
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
   * const queue = pq.queue("schedules-example");
   * await queue.schedule("ping", "*\/5 * * * * *", "ping");
   * const [ping] = await queue.schedules();
   * assert.equal(ping.task, "ping");
   * await queue.unschedule("ping");
   * await pq.close();
   * await sql.end();
   * ```
   */
  async schedules(): Promise<ScheduleInfo[]> {
    this.#checkOpen("list schedules");
    await this.#binding?.check("list schedules");
    return await readSchedules(this.#scheduleTarget());
  }

  /**
   * Removes a schedule; jobs it already enqueued stay.
   *
   * @param name The schedule's name.
   * @returns True if it existed.
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
   * const queue = pq.queue("unschedule-example");
   * assert.equal(await queue.unschedule("never-made"), false);
   * await pq.close();
   * await sql.end();
   * ```
   */
  async unschedule(name: string): Promise<boolean> {
    this.#checkOpen("unschedule");
    await this.#binding?.check("unschedule");
    return await removeSchedule(this.#scheduleTarget(), name);
  }

  /**
   * Pauses a schedule: it enqueues nothing until resumed.
   *
   * @param name The schedule's name.
   * @returns True if it exists.
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
   * const queue = pq.queue("pause-schedule-example");
   * await queue.schedule("hourly", "@hourly", "tidy");
   * assert.equal(await queue.pauseSchedule("hourly"), true);
   * assert.equal((await queue.schedules())[0].paused, true);
   * assert.equal(await queue.resumeSchedule("hourly"), true);
   * await queue.unschedule("hourly");
   * await pq.close();
   * await sql.end();
   * ```
   */
  async pauseSchedule(name: string): Promise<boolean> {
    this.#checkOpen("pause schedule");
    await this.#binding?.check("pause schedule");
    return await setSchedulePaused(this.#scheduleTarget(), name, true);
  }

  /**
   * Resumes a paused schedule from its next tick (the ticks of the pause
   * are not enqueued).
   *
   * @param name The schedule's name.
   * @returns True if it exists.
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
   * const queue = pq.queue("resume-schedule-example");
   * assert.equal(await queue.resumeSchedule("nope"), false);
   * await pq.close();
   * await sql.end();
   * ```
   */
  async resumeSchedule(name: string): Promise<boolean> {
    this.#checkOpen("resume schedule");
    await this.#binding?.check("resume schedule");
    return await setSchedulePaused(this.#scheduleTarget(), name, false);
  }

  /**
   * Pauses the queue, in every process and across restarts: workers and
   * `get()` take nothing from it until {@linkcode Queue.resume}; running
   * jobs finish, and puts still enqueue.
   *
   * @returns True if it was running (false: it was paused already).
   *
   * @example Pause, put, resume
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const queue = pq.queue("pause-example");
   * await queue.pause();
   * await queue.put({ n: 1 });
   * assert.equal(await queue.get({ block: false }), null);
   * await queue.resume();
   * assert.deepEqual((await queue.get({ block: false }))?.data, { n: 1 });
   * await pq.close();
   * await sql.end();
   * ```
   */
  async pause(): Promise<boolean> {
    this.#checkOpen("pause");
    await this.#binding?.check("pause");
    return await pauseQueue(this.#db, this.#core.names, this.name);
  }

  /**
   * Resumes a paused queue and wakes its waiting workers and getters at
   * once, in every process.
   *
   * @returns True if it was paused.
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
   * const queue = pq.queue("resume-example");
   * assert.equal(await queue.resume(), false);
   * await pq.close();
   * await sql.end();
   * ```
   */
  async resume(): Promise<boolean> {
    this.#checkOpen("resume");
    await this.#binding?.check("resume");
    return await resumeQueue(this.#db, this.#core.names, this.name);
  }

  /**
   * Whether the queue is paused.
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
   * const queue = pq.queue("paused-example");
   * assert.equal(await queue.paused(), false);
   * await pq.close();
   * await sql.end();
   * ```
   */
  async paused(): Promise<boolean> {
    this.#checkOpen("read whether paused");
    await this.#binding?.check("read whether paused");
    return await isPaused(this.#db, this.#core.names, this.name);
  }

  /** The insert statements: checking the binding when the queue has one. */
  #insertStatements(): InsertStatements {
    return this.#binding
      ? this.#core.statements.insertBound
      : this.#core.statements.insert;
  }

  #scheduleTarget(): ScheduleTarget {
    return {
      core: this.#core,
      db: this.#db,
      queue: this.name,
      codec: this.codec,
    };
  }

  /** Encodes one job and reads its options; nothing is written yet. */
  #newJob(data: I, options: PutOptions | undefined, action: string): NewJob {
    const own = readPut(options, PUT_OPTIONS, action);
    return { data: this.codec.encode(data), ...own };
  }

  /** Reads the options of a get. */
  #waitOptions(
    options: GetOptions | undefined,
    known: readonly string[],
    action: string,
  ): { timeoutMs: number; signal?: AbortSignal } | null {
    let block: boolean | undefined, timeoutMs: number;
    let signal: AbortSignal | undefined;
    try {
      const o = checkOptions(options, known);
      block = checkBoolean(o.block, "block");
      signal = checkSignal(o.signal);
      timeoutMs = o.timeout === undefined
        ? this.#core.timeoutMs
        : parseDuration(o.timeout, "timeout");
    } catch (error) {
      withAction(action, error);
    }
    signal?.throwIfAborted();
    return block === false ? null : { timeoutMs, signal };
  }

  #checkOpen(action: string): void {
    assertOpen(this.#core, action);
    this.#binding?.assertOpen(action);
  }
}
