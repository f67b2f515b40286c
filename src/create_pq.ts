/**
 * `createPQ()`: the options and the PQ object that hands out queues.
 *
 * @module
 */

import { type Codec, jsonCodec } from "./codecs.ts";
import { richCodec } from "./pickle.ts";
import { buildStatements, type PQCore } from "./core.ts";
import { describe } from "./describe.ts";
import { parseDuration } from "./duration.ts";
import { Listener } from "./listener.ts";
import { createReport } from "./report.ts";
import { Vacuum } from "./vacuum.ts";
import { checkIdentifier, checkName } from "./names.ts";
import { checkBoolean, checkOptions } from "./check_options.ts";
import { withAction } from "./new_jobs.ts";
import { Queue } from "./queue.ts";
import { createSchema, currentSchema, tableNames } from "./schema.ts";
import type { TaskRegistry } from "./tasks.ts";
import type { Sql } from "./types.ts";
import type { PQOptions, QueueOptions } from "./options.ts";
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
  "onError",
] as const;

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
    await core.listener.close();
    await Promise.allSettled(workers.map((worker) => worker.done));
    await core.vacuum.close();
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
      tasks,
      workers: new Set(),
      report,
      closed: false,
    };
    return new PQ(core, schema);
  } catch (error) {
    withAction("create PQ", error);
  }
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
