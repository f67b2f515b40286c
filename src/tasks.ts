/**
 * Tasks: named handlers registered on a queue, and the functions that
 * enqueue them.
 *
 * A task job is a row whose `task` column names its handler and whose data
 * holds the handler's argument. `get()` never returns task jobs and `work()`
 * never runs plain ones: the two share a queue name without meeting.
 *
 * @module
 */

import { Binding } from "./binding.ts";
import type { Codec } from "./codecs.ts";
import type { PQCore } from "./core.ts";
import { describe } from "./describe.ts";
import { assertOpen, PQError } from "./errors.ts";
import { parseDuration } from "./duration.ts";
import { checkName } from "./names.ts";
import { checkOptions } from "./check_options.ts";
import { encodeJobs, readTimes, withAction } from "./new_jobs.ts";
import type { PutOptions, TaskOptions } from "./options.ts";
import { insertJob, insertJobs, type When } from "./sql/insert_jobs.ts";
import type { TransactionSql } from "./types.ts";
import { checkSchema, type Schema, validateInput } from "./validation.ts";

/**
 * What a handler gets besides its argument: the running job.
 *
 * @example A handler that uses the job
 * ```ts
 * import type { TaskJob } from "@pq/pq";
 *
 * async function send(args: { to: string }, job: TaskJob): Promise<void> {
 *   // job.id is a good idempotency key for side effects outside the database.
 *   await fetch("data:,sent", { signal: job.signal });
 *   await job.tx`select ${args.to}, ${job.id}, ${job.attempt}`;
 * }
 * ```
 */
export interface TaskJob {
  /** The job's id (the id the enqueuing call returned). */
  readonly id: string;
  /** The queue's name. */
  readonly queue: string;
  /** The task's name. */
  readonly task: string;
  /** Which run this is: 1 on the first, 2 on the first retry, ... */
  readonly attempt: number;
  /** Aborted when the worker stops for good (after its grace period). */
  readonly signal: AbortSignal;
  /**
   * The job's transaction: what the handler writes through it commits
   * together with the job leaving the queue, or not at all.
   */
  readonly tx: TransactionSql;
  /** When the job was put. */
  readonly enqueuedAt: Date;
  /** When it was scheduled, if it was (for a retry: the retry's time). */
  readonly scheduleAt: Date | null;
  /** Its expected time, if it had one. */
  readonly expectedAt: Date | null;
}

/**
 * A task's handler: does the work of one job.
 *
 * @example A typed handler
 * ```ts
 * import type { TaskHandler } from "@pq/pq";
 *
 * const eat: TaskHandler<{ kind: string }> = (args, job) => {
 *   console.log(`eating ${args.kind} (attempt ${job.attempt})`);
 * };
 * ```
 */
export type TaskHandler<A> = (
  args: A,
  job: TaskJob,
) => unknown | Promise<unknown>;

/**
 * One job of {@linkcode Task.many}: its argument and, optionally, times.
 *
 * @example Items of a batch of task jobs
 * ```ts
 * import type { TaskInput } from "@pq/pq";
 *
 * const items: TaskInput<{ kind: string }>[] = [
 *   { args: { kind: "Cox" } },
 *   { args: { kind: "Fuji" }, expectedAt: "5m" },
 * ];
 * ```
 */
export interface TaskInput<A> extends PutOptions {
  /** The handler's argument. */
  args: A;
}

/**
 * A registered task: call it to enqueue a job that runs its handler.
 *
 * @typeParam A The handler's argument type.
 *
 * @example Enqueue one, many, and in a transaction
 * ```ts
 * import type { Task } from "@pq/pq";
 *
 * async function plant(task: Task<{ kind: string }>, sql: import("@pq/pq").Sql) {
 *   await task({ kind: "Cox" }, { scheduleAt: "1h" });
 *   await task.many([{ args: { kind: "Fuji" } }, { args: { kind: "Gala" } }]);
 *   await sql.begin((tx) => task.with(tx)({ kind: "Elstar" }));
 * }
 * ```
 */
export interface Task<A> {
  /**
   * Enqueues a job of this task; the task's default times apply unless
   * `options` overrides them.
   */
  (args: A, options?: PutOptions): Promise<string>;
  /** The task's name. */
  readonly taskName: string;
  /** Enqueues many jobs in one statement; returns their ids in order. */
  many(items: readonly TaskInput<A>[], options?: PutOptions): Promise<string[]>;
  /** The same task, enqueuing inside the caller's transaction. */
  with(tx: TransactionSql): Task<A>;
}

/** A task as the worker sees it. Internal. */
export interface TaskDefinition {
  name: string;
  // deno-lint-ignore no-explicit-any
  handler: TaskHandler<any>;
  /** The codec of the queue the task was registered on. */
  codec: Codec;
  /** The schema of its argument, if any. */
  schema: Schema | null;
  maxRetries: number;
  retryInMs: number;
  backoff: "fixed" | "exponential";
}

/** Tasks of one queue, by name. */
export type TaskRegistry = Map<string, TaskDefinition>;

const TASK_OPTIONS = [
  "scheduleAt",
  "expectedAt",
  "maxRetries",
  "retryIn",
  "backoff",
  "schema",
] as const;
const CALL_OPTIONS = ["scheduleAt", "expectedAt"] as const;
/** The longest exponential backoff: one day. */
const MAX_BACKOFF_MS = 86_400_000;

/** The registry of a queue's tasks, made on first use. */
export function taskRegistry(core: PQCore, queue: string): TaskRegistry {
  let registry = core.tasks.get(queue);
  if (!registry) core.tasks.set(queue, registry = new Map());
  return registry;
}

/**
 * Registers a task on a queue and returns its enqueuing function.
 *
 * @throws {Error} If the queue already has a task of that name.
 */
export function registerTask<A>(
  core: PQCore,
  queue: string,
  codec: Codec,
  name: string,
  handler: TaskHandler<A>,
  options: TaskOptions | undefined,
): Task<A> {
  const action = `register task ${describe(name)}`;
  checkName(name, "A task name");
  if (typeof handler !== "function") {
    throw new TypeError(
      `Cannot ${action}: the handler must be a function: received ${
        describe(handler)
      }`,
    );
  }
  let definition: TaskDefinition;
  let defaults: { scheduleAt: When; expectedAt: When };
  try {
    const o = checkOptions(options, TASK_OPTIONS);
    const maxRetries = o.maxRetries ?? 0;
    if (!Number.isSafeInteger(maxRetries) || maxRetries < 0) {
      throw new TypeError(
        `'maxRetries' must be a whole number of at least 0: received ${
          describe(o.maxRetries)
        }`,
      );
    }
    const backoff = o.backoff ?? "fixed";
    if (backoff !== "fixed" && backoff !== "exponential") {
      throw new TypeError(
        `'backoff' must be "fixed" or "exponential": received ${
          describe(o.backoff)
        }`,
      );
    }
    definition = {
      name,
      handler,
      codec,
      schema: checkSchema(o.schema) ?? null,
      maxRetries,
      retryInMs: parseDuration(o.retryIn ?? "30s", "retryIn"),
      backoff,
    };
    // Relative defaults ("1h") stay relative: the server adds them to the
    // time of each enqueuing statement.
    defaults = readTimes(
      { scheduleAt: o.scheduleAt, expectedAt: o.expectedAt },
      CALL_OPTIONS,
      action,
    );
  } catch (error) {
    withAction(action, error);
  }
  const registry = taskRegistry(core, queue);
  if (registry.has(name)) {
    throw new PQError(
      "DUPLICATE_TASK",
      `Cannot ${action}: the queue ${
        describe(queue)
      } already has a task of that name`,
    );
  }
  registry.set(name, definition);
  return enqueuer<A>(core, null, queue, definition, defaults);
}

/** Builds a task's enqueuing function, on the client or a transaction. */
function enqueuer<A>(
  core: PQCore,
  binding: Binding | null,
  queue: string,
  definition: TaskDefinition,
  defaults: { scheduleAt: When; expectedAt: When },
): Task<A> {
  const { codec, name, schema } = definition;
  const db = binding?.tx ?? core.sql;
  const statements = binding
    ? core.statements.insertBound
    : core.statements.insert;
  const times = (options: PutOptions | undefined, action: string) => {
    const own = readTimes(options, CALL_OPTIONS, action);
    return {
      scheduleAt: own.scheduleAt ?? defaults.scheduleAt,
      expectedAt: own.expectedAt ?? defaults.expectedAt,
    };
  };
  const action = `enqueue task ${describe(name)}`;
  const task = async (args: A, options?: PutOptions): Promise<string> => {
    if (schema) await validateInput(schema, args, action);
    const job = { data: codec.encode(args), ...times(options, action) };
    assertOpen(core, action);
    binding?.assertOpen(action);
    const id = await insertJob(
      db,
      statements,
      queue,
      name,
      job,
      binding ?? undefined,
    );
    binding?.confirm(id !== null, action);
    return id!;
  };
  const many = async (
    items: readonly TaskInput<A>[],
    options?: PutOptions,
  ): Promise<string[]> => {
    const jobs = encodeJobs(
      codec,
      items,
      "args",
      times(options, action),
      action,
    );
    if (schema) {
      await Promise.all(
        items.map((item, i) =>
          validateInput(schema, item.args, `${action} (item ${i})`)
        ),
      );
    }
    assertOpen(core, action);
    binding?.assertOpen(action);
    const ids = await insertJobs(
      db,
      statements,
      queue,
      name,
      jobs,
      binding ?? undefined,
    );
    binding?.confirm(ids !== null, action);
    return ids!;
  };
  const bind = (tx: TransactionSql): Task<A> => {
    if (typeof tx !== "function" || typeof tx.unsafe !== "function") {
      throw new TypeError(
        `Cannot bind task ${
          describe(name)
        }: expected a transaction from sql.begin(): received ${describe(tx)}`,
      );
    }
    return enqueuer<A>(core, new Binding(tx), queue, definition, defaults);
  };
  return Object.assign(task, { taskName: name, many, with: bind });
}

/**
 * The delay before retry number `attempt` (1: after the first run failed).
 */
export function retryDelay(
  definition: TaskDefinition,
  attempt: number,
): number {
  if (definition.backoff === "fixed") return definition.retryInMs;
  const full = Math.min(
    definition.retryInMs * 2 ** (attempt - 1),
    MAX_BACKOFF_MS,
  );
  return Math.round(full / 2 + Math.random() * full / 2);
}
