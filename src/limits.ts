/**
 * Flow control of a task: its options (`concurrency`, `group`,
 * `groupConcurrency`, `rateLimit`), checked at registration, and the group
 * of each job, found at enqueue. How the limits hold at take time is in
 * `migrations/table_v5.ts` (concurrency, groups) and `rate_limit.ts`.
 *
 * @module
 */

import { checkOptions } from "./check_options.ts";
import { describe } from "./describe.ts";
import { type DurationInput, parseDuration } from "./duration.ts";

/** A task's limits, as the worker uses them. */
export interface TaskLimits {
  /** Most jobs of the task running at once, all processes together. */
  concurrency: number | null;
  /** The group of a job from its argument, if the task has one. */
  groupOf: ((args: never) => unknown) | null;
  /** Most jobs of one group running at once (null: no group limit). */
  groupConcurrency: number | null;
  /** Most starts per window, all processes together. */
  rateLimit: { limit: number; perMs: number } | null;
}

/**
 * A task's rate limit: at most `limit` jobs start in any window of `per`.
 *
 * @example 100 starts a minute
 * ```ts
 * import type { RateLimit } from "@pq/pq";
 *
 * const rate: RateLimit = { limit: 100, per: "1m" };
 * ```
 */
export interface RateLimit {
  /** Most starts in a window (a whole number, at least 1). */
  limit: number;
  /** The window: milliseconds or a duration such as `"1m"`. */
  per: DurationInput;
}

/** The limit options of a task, as given. */
export interface LimitOptions {
  concurrency?: number;
  // deno-lint-ignore no-explicit-any
  group?: (args: any) => string;
  groupConcurrency?: number;
  rateLimit?: RateLimit;
}

function wholeAtLeastOne(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(
      `'${name}' must be a whole number of at least 1: received ${
        describe(value)
      }`,
    );
  }
  return value;
}

/**
 * Reads a task's limits; null when it has none (the take of plain task
 * jobs, with no limit to check, is the cheaper one).
 *
 * @throws {TypeError} If a limit is not a whole number of at least 1, the
 * group is not a function, or the rate limit is malformed.
 */
export function readLimits(o: LimitOptions): TaskLimits | null {
  const limits: TaskLimits = {
    concurrency: o.concurrency === undefined
      ? null
      : wholeAtLeastOne(o.concurrency, "concurrency"),
    groupOf: null,
    groupConcurrency: o.groupConcurrency === undefined
      ? null
      : wholeAtLeastOne(o.groupConcurrency, "groupConcurrency"),
    rateLimit: o.rateLimit === undefined ? null : readRateLimit(o.rateLimit),
  };
  if (o.group !== undefined) {
    if (typeof o.group !== "function") {
      throw new TypeError(
        `'group' must be a function from the task's argument to a string: received ${
          describe(o.group)
        }`,
      );
    }
    limits.groupOf = o.group;
    limits.groupConcurrency ??= 1;
  }
  const none = limits.concurrency === null &&
    limits.groupConcurrency === null && limits.rateLimit === null;
  return none ? null : limits;
}

function readRateLimit(value: unknown): { limit: number; perMs: number } {
  try {
    const o = checkOptions(value as RateLimit, ["limit", "per"]);
    if (o.limit === undefined || o.per === undefined) {
      throw new TypeError("both 'limit' and 'per' are required");
    }
    const limit = wholeAtLeastOne(o.limit, "limit");
    const perMs = parseDuration(o.per, "per");
    if (perMs <= 0) {
      throw new TypeError(`'per' must be longer than 0: received ${o.per}`);
    }
    return { limit, perMs };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new TypeError(
      `'rateLimit' must be { limit, per } (for example { limit: 100, per: "1m" }): ${reason}`,
    );
  }
}

/**
 * The group of a job: the per-call `group` if given, else the task's
 * `group` function of its argument. Null when the task has no group limit.
 *
 * @throws {TypeError} If the group is not a non-empty string, or a per-call
 * group is given to a task without a group limit. What the task's `group`
 * function throws is thrown as it is.
 */
export function groupOfJob(
  limits: TaskLimits | null,
  args: unknown,
  perCall: unknown,
): string | null {
  if (perCall !== undefined) {
    if (!limits || limits.groupConcurrency === null) {
      throw new TypeError(
        `'group' needs a task with a 'group' function or a 'groupConcurrency': received ${
          describe(perCall)
        }`,
      );
    }
    return checkGroup(perCall, "'group'");
  }
  if (!limits?.groupOf) return null;
  return checkGroup(
    limits.groupOf(args as never),
    "The task's 'group' function",
  );
}

function checkGroup(value: unknown, what: string): string {
  if (typeof value !== "string" || value === "") {
    throw new TypeError(
      `${what} must give a non-empty string: received ${describe(value)}`,
    );
  }
  return value;
}
