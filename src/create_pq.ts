/**
 * `createPQ()`: the options and the PQ object that hands out queues.
 *
 * @module
 */

import { type Codec, jsonCodec } from "./codecs.ts";
import { richCodec } from "./pickle.ts";
import { buildStatements, type PQCore } from "./core.ts";
import { Counters } from "./counters.ts";
import { describe } from "./describe.ts";
import { type DurationInput, parseDuration } from "./duration.ts";
import { Listener } from "./listener.ts";
import { assertOpen } from "./errors.ts";
import { createReport } from "./report.ts";
import { Vacuum } from "./vacuum.ts";
import { TakeMarks } from "./take_marks.ts";
import { checkIdentifier, checkName } from "./names.ts";
import { checkBoolean, checkOptions } from "./check_options.ts";
import { withAction } from "./new_jobs.ts";
import { Queue } from "./queue.ts";
import { createSchema, currentSchema, tableNames } from "./schema.ts";
import type { TaskRegistry } from "./tasks.ts";
import type { Sql } from "./types.ts";
import type { KeepOptions, PQOptions, QueueOptions } from "./options.ts";
import { Pruner } from "./pruner.ts";
import { startTelemetry } from "./telemetry.ts";
import { type PQStats, readStats, type StatsOptions } from "./stats.ts";
import type { Retention } from "./sql/prune_jobs.ts";
import {
  checkSchema,
  type Schema,
  type SchemaInput,
  type SchemaOutput,
} from "./validation.ts";

const PQ_OPTIONS = [
  "table",
  "schema",
  "encode",
  "decode",
  "codecs",
  "timeout",
  "listen",
  "pollInterval",
  "vacuum",
  "telemetry",
  "keep",
  "onError",
] as const;

/** The shared state of each PQ, for pq's own tools (see `coreOf`). */
const cores = new WeakMap<PQ, PQCore>();

/**
 * The shared state of a PQ: for pq's own entry points (the CLI and the
 * dashboard), not exported by `mod.ts`.
 *
 * @throws {TypeError} If `pq` is not a PQ from `createPQ()`.
 */
export function coreOf(pq: PQ): PQCore {
  const core = cores.get(pq);
  if (!core) {
    throw new TypeError(
      `Expected a PQ from createPQ(): received ${describe(pq)}`,
    );
  }
  return core;
}

/**
 * A transactional job queue in one PostgreSQL table. Made by
 * {@linkcode createPQ}; hands out named queues that share the table, the
 * client and one listening connection.
 *
 * @example Create the table and use a queue
 * ```ts
 * import postgres from "postgres";
 * import { createPQ } from "@pq/pq";
 * import assert from "node:assert/strict";
 *
 * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
 * const pq = createPQ(sql, { table: "pq_examples" });
 * await pq.create();
 * const apples = pq.queue("class-apples");
 * await apples.put({ kind: "Cox" });
 * assert.deepEqual((await apples.get())?.data, { kind: "Cox" });
 * await pq.close();
 * await sql.end();
 * ```
 */
export class PQ {
  readonly #core: PQCore;
  readonly #schema: string | undefined;

  /**
   * Use {@linkcode createPQ}.
   *
   * @param core The shared state.
   * @param schema The schema option as given.
   */
  constructor(core: PQCore, schema: string | undefined) {
    this.#core = core;
    this.#schema = schema;
    cores.set(this, core);
  }

  /** The table's name. */
  get table(): string {
    return this.#core.names.table;
  }

  /**
   * Creates the table, its indexes and notify trigger (or upgrades them).
   * Idempotent, and safe when several processes call it at once. Needs the
   * right to create objects in the schema; using queues afterwards needs
   * only select, insert, update and delete on the table.
   *
   * @returns Once the table is ready.
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
   * await pq.create(); // again: nothing changes
   * assert.equal(pq.table, "pq_examples");
   * await pq.close();
   * await sql.end();
   * ```
   */
  async create(): Promise<void> {
    const sql = this.#core.sql;
    const schema = this.#schema ?? await currentSchema(sql);
    await createSchema(sql, tableNames(schema, this.#core.names.table));
  }

  /**
   * A queue of this PQ's table. The name is any non-empty string; a
   * suffix after the last `/` names a codec (`"apples/pickle"` is the queue
   * `apples` with the pickle codec) unless `options.codec` is given.
   *
   * @param name The queue's name, optionally with a codec suffix.
   * @param options `codec` picks the codec and takes `name` as it is;
   * `schema` (a Standard Schema) checks the data of `put()` and `get()`.
   * @returns The queue.
   * @throws {TypeError} If the name is empty or not a string, has a NUL
   * character or a lone surrogate, or the codec is unknown.
   * @throws {RangeError} If the name is longer than 1,024 bytes.
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
   * const plain = pq.queue<{ kind: string }>("queue-apples");
   * const rich = pq.queue("queue-apples/pickle"); // same queue name, pickle codec
   * assert.equal(rich.name, "queue-apples");
   * const slashed = pq.queue("a/b", { codec: "json" });
   * assert.equal(slashed.name, "a/b");
   * assert.throws(() => pq.queue("apples/csv"), TypeError); // unknown codec
   * await rich.put({ at: new Date(0) });
   * assert.ok(((await rich.get())?.data as { at: Date }).at instanceof Date);
   * await plain.clear();
   * await pq.close();
   * await sql.end();
   * ```
   */
  queue<S extends Schema>(
    name: string,
    options: QueueOptions & { schema: S },
  ): Queue<SchemaOutput<S>, SchemaInput<S>>;
  /**
   * A queue whose data has the type `T`, unchecked (see the first form).
   *
   * @param name The queue's name, optionally with a codec suffix.
   * @param options `codec` picks the codec and takes `name` as it is.
   * @returns The queue.
   *
   * @example
   * ```ts ignore
   * const apples = pq.queue<{ kind: string }>("apples");
   * ```
   */
  queue<T = unknown>(name: string, options?: QueueOptions): Queue<T>;
  queue(name: string, options?: QueueOptions): Queue<unknown> {
    const core = this.#core;
    let codecName: string | undefined;
    let schema: Schema | undefined;
    try {
      const o = checkOptions(options, ["codec", "schema"]);
      codecName = o.codec;
      schema = checkSchema(o.schema);
    } catch (error) {
      withAction("open queue", error);
    }
    let queueName = name;
    if (codecName === undefined && typeof name === "string") {
      const slash = name.lastIndexOf("/");
      if (slash >= 0) {
        queueName = name.slice(0, slash);
        codecName = name.slice(slash + 1);
      }
    }
    checkName(queueName, "A queue name");
    let codec = core.defaultCodec;
    if (codecName !== undefined) {
      const found = core.codecs.get(codecName);
      if (!found) {
        throw new TypeError(
          `Unknown codec ${describe(codecName)} for queue ${
            describe(name)
          }: known codecs are ${
            [...core.codecs.keys()].map((k) => JSON.stringify(k)).join(", ")
          } (pass { codec } to use a name with a "/")`,
        );
      }
      codec = found;
    }
    return new Queue(core, queueName, codec, schema ?? null);
  }

  /**
   * Stops listening and polling and ends the PQ's own connection. Waiting
   * gets end as timed out. The caller's client stays open: end it with
   * `sql.end()`.
   *
   * Running workers stop as if their `signal` aborted: they take no new
   * jobs, give running handlers their grace period, and their `work()`
   * resolves with its counts before `close()` does.
   *
   * @returns Once everything of pq is stopped.
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
   * await pq.close();
   * await assert.rejects(pq.queue("closed").put(1), /closed/);
   * await sql.end();
   * ```
   */
  async close(): Promise<void> {
    const core = this.#core;
    core.closed = true;
    const workers = [...core.workers];
    for (const worker of workers) worker.stop();
    core.listener.cancelWaits(); // waiting gets return null now
    await Promise.allSettled(workers.map((worker) => worker.done));
    await core.listener.close();
    await core.pruner.close();
    await core.vacuum.close();
    await core.counters.close();
  }

  /**
   * Removes the finished jobs that are past their retention (`keep`) now,
   * in batches of at most 1,000 rows per statement. Running workers do the
   * same by themselves about once a minute, one at a time per table.
   *
   * @returns How many jobs were removed.
   *
   * @example Keep failures for a month, prune now
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples", keep: { failed: "30d" } });
   * await pq.create();
   * assert.equal(typeof await pq.prune(), "number");
   * await pq.close();
   * await sql.end();
   * ```
   */
  async prune(): Promise<number> {
    assertOpen(this.#core, "prune jobs");
    return await this.#core.pruner.prune(true);
  }

  /**
   * Statistics of every queue of the table and of each of its tasks: jobs
   * by state, the lag (how long the oldest ready job has waited), and task
   * jobs completed, failed and retried per minute over the last hour.
   *
   * Cheap whatever the table's size: no statement scans the table. Counts
   * stop at `limit` jobs per queue and state and say so (`kind` is
   * `"atLeast"`); completed and cancelled jobs, which have no index by
   * queue, are estimated by the planner when the table keeps more than
   * 500 of them (`kind` is `"estimate"`); the split by task reads at most
   * 500 jobs per queue and state, and says `"atLeast"` beyond. The per-minute figures are
   * written by workers every few seconds and when they stop.
   *
   * @param options `limit`: count at most this many jobs per queue and
   * state (default 10,000).
   * @returns The statistics, queues sorted by name.
   * @throws {RangeError} If `limit` is not a whole number from 1 to 1,000,000.
   *
   * @example How far behind is a queue?
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * const pq = createPQ(sql, { table: "pq_examples" });
   * await pq.create();
   * const queue = pq.queue("stats-apples");
   * await queue.clear();
   * const eat = queue.task("eat", (_: { kind: string }) => {});
   * await eat({ kind: "Cox" });
   * await eat({ kind: "Gala" });
   * await queue.put("plain job");
   * let stats = await pq.stats();
   * let apples = stats.queues.find((q) => q.name === "stats-apples")!;
   * assert.deepEqual(apples.counts.ready, { count: 3, kind: "exact" });
   * assert.equal(apples.tasks[0].counts.ready.count, 2);
   * assert.ok(apples.lagMs !== null && apples.lagMs >= 0);
   * await queue.work({ burst: true });
   * stats = await pq.stats();
   * apples = stats.queues.find((q) => q.name === "stats-apples")!;
   * assert.equal(apples.perMinute.at(-1)!.completed, 2);
   * await queue.clear();
   * await pq.close();
   * await sql.end();
   * ```
   */
  async stats(options?: StatsOptions): Promise<PQStats> {
    assertOpen(this.#core, "read stats");
    return await readStats(this.#core, options);
  }

  /**
   * Closes the PQ at the end of an `await using` block.
   *
   * @returns Once closed.
   *
   * @example
   * ```ts
   * import postgres from "postgres";
   * import { createPQ } from "@pq/pq";
   * import assert from "node:assert/strict";
   *
   * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
   * {
   *   await using pq = createPQ(sql, { table: "pq_examples" });
   *   await pq.create();
   *   await pq.queue("dispose-apples").put(1);
   * } // pq.close() runs here
   * await sql.end();
   * ```
   */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Creates a PQ: job queues in one table, on the caller's `postgres` client.
 *
 * @param sql A client from `postgres(url)` (porsager/postgres).
 * @param options The table and schema, codecs, timeouts and listening.
 * @returns The PQ. Call `create()` once to create its table.
 * @throws {TypeError} If an option is invalid.
 * @throws {RangeError} If the table or schema name is longer than 63 bytes.
 *
 * @example Put and get a job
 * ```ts
 * import postgres from "postgres";
 * import { createPQ } from "@pq/pq";
 * import assert from "node:assert/strict";
 *
 * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
 * const pq = createPQ(sql, { table: "pq_examples", timeout: "2s" });
 * await pq.create();
 * const apples = pq.queue<{ kind: string }>("create-apples");
 * await apples.put({ kind: "Cox" });
 * assert.equal((await apples.get())?.data.kind, "Cox");
 * await pq.close();
 * await sql.end();
 * ```
 */
export function createPQ(sql: Sql, options?: PQOptions): PQ {
  if (typeof sql !== "function" || typeof sql.unsafe !== "function") {
    throw new TypeError(
      `Cannot create PQ: expected a postgres client from postgres(url): received ${
        describe(sql)
      }`,
    );
  }
  try {
    const o = checkOptions(options, PQ_OPTIONS);
    const table = checkIdentifier(o.table ?? "queue", "table");
    const schema = o.schema === undefined
      ? undefined
      : checkIdentifier(o.schema, "schema");
    const names = tableNames(schema, table);
    const codecs = new Map<string, Codec>([
      ["json", jsonCodec],
      ["pickle", richCodec],
    ]);
    for (const [name, codec] of Object.entries(o.codecs ?? {})) {
      codecs.set(name, checkCodec(codec, `codecs.${name}`));
    }
    const encode = checkFunction(o.encode, "encode") ?? jsonCodec.encode;
    const decode = checkFunction(o.decode, "decode") ?? jsonCodec.decode;
    const listen = checkBoolean(o.listen, "listen") ?? true;
    const pollIntervalMs = parseDuration(
      o.pollInterval ?? "1s",
      "pollInterval",
    );
    if (pollIntervalMs < 10) {
      throw new RangeError(
        `'pollInterval' must be at least 10 milliseconds: received ${pollIntervalMs}`,
      );
    }
    const report = createReport(checkFunction(o.onError, "onError"));
    const keep = readKeep(o.keep);
    const tasks = new Map<string, TaskRegistry>();
    const core: PQCore = {
      sql,
      names,
      statements: buildStatements(names),
      defaultCodec: { encode, decode },
      codecs,
      timeoutMs: parseDuration(o.timeout ?? "1s", "timeout"),
      listener: new Listener({
        sql,
        names,
        listen,
        pollIntervalMs,
        report,
        tasksOf: (queue) => [...(tasks.get(queue)?.keys() ?? [])],
      }),
      vacuum: new Vacuum(
        sql,
        names,
        checkBoolean(o.vacuum, "vacuum") ?? true,
        report,
      ),
      marks: new TakeMarks(),
      tasks,
      workers: new Set(),
      report,
      pruner: new Pruner(sql, names, keep, report),
      counters: new Counters(sql, names, report),
      telemetry: null,
      telemetryLoaded: null,
      closed: false,
    };
    if (checkBoolean(o.telemetry, "telemetry") ?? true) {
      core.telemetry = undefined;
      startTelemetry(core);
    }
    return new PQ(core, schema);
  } catch (error) {
    withAction("create PQ", error);
  }
}

const KEEP_OPTIONS = ["completed", "failed", "cancelled"] as const;

/** Reads `keep`: durations in ms, null for forever. */
function readKeep(keep: KeepOptions | undefined): Retention {
  const o = checkOptions(keep, KEEP_OPTIONS);
  const read = (value: unknown, name: string, fallback: number | null) =>
    value === undefined
      ? fallback
      : value === null
      ? null
      : parseDuration(value as DurationInput, `keep.${name}`);
  const completed = read(o.completed, "completed", null);
  return {
    // Not given, or 0: completed jobs are deleted at once.
    keepCompleted: o.completed !== undefined && completed !== 0,
    completed,
    failed: read(o.failed, "failed", null),
    cancelled: read(o.cancelled, "cancelled", 7 * 86_400_000),
  };
}

function checkFunction<F>(value: F | undefined, name: string): F | undefined {
  if (value === undefined || typeof value === "function") return value;
  throw new TypeError(
    `'${name}' must be a function: received ${describe(value)}`,
  );
}

function checkCodec(codec: Codec, name: string): Codec {
  if (
    codec === null || typeof codec !== "object" ||
    typeof codec.encode !== "function" || typeof codec.decode !== "function"
  ) {
    throw new TypeError(
      `'${name}' must be an object with encode and decode functions: received ${
        describe(codec)
      }`,
    );
  }
  return codec;
}
