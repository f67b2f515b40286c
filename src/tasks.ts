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
import { type DurationInput, parseDuration } from "./duration.ts";
import { checkName } from "./names.ts";
import { checkOptions } from "./check_options.ts";
import {
  encodeJobs,
  PUT_OPTIONS,
  readBatch,
  readPut,
  readTimes,
  TIME_OPTIONS,
  withAction,
} from "./new_jobs.ts";
import { groupOfJob, readLimits, type TaskLimits } from "./limits.ts";
import type { PutOptions, TaskOptions, TaskPutOptions } from "./options.ts";
import { insertJob, insertJobs, type When } from "./sql/insert_jobs.ts";
import { tracedPut } from "./telemetry.ts";
import type { RunningJob, TaskJob } from "./task_job.ts";
import type { TransactionSql } from "./types.ts";
import { checkSchema, type Schema, validateInput } from "./validation.ts";

/**
 * A task's handler: does the work of one job. What it returns is the job's
 * result (kept when results are kept), unless it is a `job.snooze()`.
 *
 * @typeParam A The argument.
 * @typeParam J The job: `TaskJob` in transaction mode, `LeaseJob` in lease
 * mode.
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
export type TaskHandler<A, J extends RunningJob = TaskJob> = (
  args: A,
  job: J,
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
export interface TaskInput<A> extends TaskPutOptions {
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
  (args: A, options?: TaskPutOptions): Promise<string>;
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
  handler: TaskHandler<any, any>;
  /** The codec of the queue the task was registered on. */
  codec: Codec;
  /** The schema of its argument, if any. */
  schema: Schema | null;
  maxRetries: number;
  retryInMs: number;
  backoff: "fixed" | "exponential";
  /** Lease mode's lease in ms; null: transaction mode. */
  leaseMs: number | null;
  /** Its flow control; null: none (see `limits.ts`). */
  limits: TaskLimits | null;
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
  "lease",
  "concurrency",
  "group",
  "groupConcurrency",
  "rateLimit",
] as const;

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
  handler: TaskHandler<A, RunningJob>,
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
      leaseMs: o.lease === undefined ? null : leaseDuration(o.lease),
      limits: readLimits(o),
    };
    // Relative defaults ("1h") stay relative: the server adds them to the
    // time of each enqueuing statement.
    defaults = readTimes(
      { scheduleAt: o.scheduleAt, expectedAt: o.expectedAt },
      TIME_OPTIONS,
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
  const action = `enqueue task ${describe(name)}`;
  const task = async (args: A, options?: TaskPutOptions): Promise<string> => {
    let put: PutOptions | undefined = options;
    let group: unknown;
    if (options !== null && typeof options === "object" && "group" in options) {
      ({ group, ...put } = options);
    }
    const own = readPut(put, PUT_OPTIONS, action, defaults);
    if (schema) await validateInput(schema, args, action);
    const job = {
      data: codec.encode(args),
      ...own,
      group: jobGroup(definition, args, group, action),
    };
    assertOpen(core, action);
    binding?.assertOpen(action);
    const id = await tracedPut(
      core,
      queue,
      name,
      1,
      (trace) =>
        insertJob(
          db,
          statements,
          queue,
          name,
          job,
          binding ?? undefined,
          trace,
        ),
    );
    binding?.confirm(id !== null, action);
    return id!;
  };
  const many = async (
    items: readonly TaskInput<A>[],
    options?: PutOptions,
  ): Promise<string[]> => {
    const shared = readBatch(options, action);
    const jobs = encodeJobs(
      codec,
      items,
      "args",
      {
        scheduleAt: shared.scheduleAt ?? defaults.scheduleAt,
        expectedAt: shared.expectedAt ?? defaults.expectedAt,
        unique: shared.unique,
      },
      action,
      ["group"],
    );
    items.forEach((item, i) => {
      jobs[i].group = jobGroup(
        definition,
        item.args,
        item.group,
        `${action} (item ${i})`,
      );
    });
    if (schema) {
      await Promise.all(
        items.map((item, i) =>
          validateInput(schema, item.args, `${action} (item ${i})`)
        ),
      );
    }
    assertOpen(core, action);
    binding?.assertOpen(action);
    const ids = await tracedPut(
      core,
      queue,
      name,
      jobs.length,
      (trace) =>
        insertJobs(
          db,
          statements,
          queue,
          name,
          jobs,
          binding ?? undefined,
          trace,
        ),
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
 * The group of a job (see `limits.ts`), with the action in front of a
 * TypeError; what a `group` function throws fails the put as it is.
 */
function jobGroup(
  definition: TaskDefinition,
  args: unknown,
  perCall: unknown,
  action: string,
): string | null {
  try {
    return groupOfJob(definition.limits, args, perCall);
  } catch (error) {
    withAction(action, error);
  }
}

/** The shortest lease: renewals every third of it must fit a round trip. */
const MIN_LEASE_MS = 1_000;

function leaseDuration(input: unknown): number {
  const ms = parseDuration(input as DurationInput, "lease");
  if (ms < MIN_LEASE_MS) {
    throw new RangeError(
      `'lease' must be at least ${MIN_LEASE_MS} milliseconds: received ${
        describe(input)
      }`,
    );
  }
  return ms;
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
