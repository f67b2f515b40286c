/**
 * A queue: put, get, iterate, size, clear, transactions, and its tasks.
 *
 * Why one file of about 700 lines: each public method of `Queue` carries a
 * runnable example (`deno test --doc`), which is most of its length; the
 * logic lives in take.ts, new_jobs.ts, tasks.ts, worker.ts and sql/.
 *
 * @module
 */

import { Binding } from "./binding.ts";
import type { Codec } from "./codecs.ts";
import type { PQCore } from "./core.ts";
import { describe } from "./describe.ts";
import { type DurationInput, parseDuration } from "./duration.ts";
import { assertOpen } from "./errors.ts";
import { Job } from "./job.ts";
import { failedJobOf, readOrPark } from "./job_data.ts";
import { checkName } from "./names.ts";
import { encodeJobs, PUT_OPTIONS, readTimes, withAction } from "./new_jobs.ts";
import { checkBoolean, checkOptions, checkSignal } from "./check_options.ts";
import type {
  FailedJob,
  FailedOptions,
  GetOptions,
  IterateOptions,
  JobInput,
  PutOptions,
  SizeOptions,
  TaskOptions,
} from "./options.ts";
import { insertJob, insertJobs, type NewJob } from "./sql/insert_jobs.ts";
import {
  countJobs,
  deleteJobs,
  listFailedJobs,
  retryFailedJob,
} from "./sql/manage_jobs.ts";
import { takeWaiting } from "./take.ts";
import { registerTask, type Task, type TaskHandler } from "./tasks.ts";
import type { Executor, TransactionSql } from "./types.ts";
import {
  type Schema,
  type SchemaInput,
  type SchemaOutput,
  validateInput,
} from "./validation.ts";
import { Worker } from "./worker.ts";
import type { WorkOptions, WorkStats } from "./work_options.ts";

/** The largest job id: ids are PostgreSQL `bigint`s. */
const MAX_JOB_ID = 2n ** 63n - 1n;
const GET_OPTIONS = ["block", "timeout", "signal"] as const;
const SIZE_OPTIONS = ["task"] as const;
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
    const id = await insertJob(
      this.#db,
      binding
        ? this.#core.statements.insertBound
        : this.#core.statements.insert,
      this.name,
      null,
      job,
      binding ?? undefined,
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
    const shared = readTimes(options, PUT_OPTIONS, "put jobs");
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
    const ids = await insertJobs(
      this.#db,
      binding
        ? this.#core.statements.insertBound
        : this.#core.statements.insert,
      this.name,
      null,
      jobs,
      binding ?? undefined,
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
      const read = await readOrPark(this.#core, this.#db, origin, row);
      if (read) return new Job<T>(origin, row, read.data as T);
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
   * those of a task that no running worker knows, which wait for one).
   * @returns The number of ready jobs.
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
   * await apples.clear();
   * await pq.close();
   * await sql.end();
   * ```
   */
  async size(options?: SizeOptions): Promise<number> {
    let task: string | undefined;
    try {
      task = checkOptions(options, SIZE_OPTIONS).task;
      if (task !== undefined) checkName(task, "'task'");
    } catch (error) {
      withAction("count jobs", error);
    }
    this.#checkOpen("count jobs");
    await this.#binding?.check("count jobs");
    return await countJobs(this.#db, this.#core.names, this.name, task);
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
  task<S extends Schema>(
    name: string,
    options: TaskOptions & { schema: S },
    handler: TaskHandler<SchemaOutput<S>>,
  ): Task<SchemaInput<S>>;
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
  task<S extends Schema>(
    name: string,
    handler: TaskHandler<SchemaOutput<S>>,
    options: TaskOptions & { schema: S },
  ): Task<SchemaInput<S>>;
  /**
   * Registers a task typed by its handler's argument (see the first form).
   *
   * @param name The task's name.
   * @param handler Does the work: gets the argument and the job.
   * @param options Default times and the retry policy.
   * @returns The enqueuing function, typed by the handler's argument.
   *
   * @example
   * ```ts ignore
   * const eat = queue.task("eat", (args: { kind: string }) => {}, { maxRetries: 2 });
   * ```
   */
  task<A>(
    name: string,
    handler: TaskHandler<A>,
    options?: TaskOptions,
  ): Task<A>;
  task(
    name: string,
    first: TaskHandler<unknown> | TaskOptions,
    second?: TaskOptions | TaskHandler<unknown>,
  ): Task<unknown> {
    // task(name, { schema }, handler): the options come first.
    const optionsFirst = typeof first === "object" && first !== null &&
      typeof second === "function";
    const [handler, options] = optionsFirst
      ? [second as TaskHandler<unknown>, first as TaskOptions]
      : [first as TaskHandler<unknown>, second as TaskOptions | undefined];
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
    const text = typeof id === "bigint" || typeof id === "number"
      ? String(id)
      : id;
    if (
      typeof text !== "string" || !/^[1-9]\d{0,18}$/.test(text) ||
      BigInt(text) > MAX_JOB_ID
    ) {
      throw new TypeError(
        `Cannot retry job: expected a job id (a string of digits): received ${
          describe(id)
        }`,
      );
    }
    this.#checkOpen("retry job");
    await this.#binding?.check("retry job");
    return await retryFailedJob(this.#db, this.#core.names, this.name, text);
  }

  /** Encodes one job and reads its options; nothing is written yet. */
  #newJob(data: I, options: PutOptions | undefined, action: string): NewJob {
    const times = readTimes(options, PUT_OPTIONS, action);
    return { data: this.codec.encode(data), ...times };
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
