/**
 * Turns the arguments of `put()`, `putMany()` and a task's enqueuing calls
 * into encoded jobs, checking everything before anything is written.
 *
 * @module
 */

import type { Codec } from "./codecs.ts";
import { describe } from "./describe.ts";
import { resolveTime, type TimeInput } from "./duration.ts";
import { checkOptions } from "./check_options.ts";
import type { PutOptions } from "./options.ts";
import type {
  NewJob,
  NewJobOptions,
  UniqueKey,
  When,
} from "./sql/insert_jobs.ts";
import { checkName } from "./names.ts";
import { type DurationInput, parseDuration } from "./duration.ts";

/**
 * The times pq stores: the driver sends a Date as `toISOString()`, whose
 * six-digit years (after 9999, before year 1) the server rejects with a
 * misleading "time zone displacement out of range"; a delay that ends later
 * could be stored but not read back into a Date.
 */
const FIRST_DATE = Date.parse("0001-01-01T00:00:00.000Z");
const LAST_DATE = Date.parse("9999-12-31T23:59:59.999Z");

/** The time options of a put. */
export const TIME_OPTIONS = ["scheduleAt", "expectedAt"] as const;
/** The options of one job's put: its times and its unique key. */
export const PUT_OPTIONS = [
  ...TIME_OPTIONS,
  "key",
  "onDuplicate",
  "throttle",
] as const;
/** The options shared by a batch's jobs: times, and how keys behave. */
export const BATCH_OPTIONS = [
  ...TIME_OPTIONS,
  "onDuplicate",
  "throttle",
] as const;

/**
 * Re-throws a TypeError or RangeError with the action in front, so that the
 * message says what failed: `Cannot put job: 'scheduleAt' must be ...`.
 */
export function withAction(action: string, error: unknown): never {
  // Already said (readTimes inside a task's options): say it once.
  if (
    error instanceof Error && error.message.startsWith(`Cannot ${action}: `)
  ) {
    throw error;
  }
  if (error instanceof TypeError) {
    throw new TypeError(`Cannot ${action}: ${error.message}`);
  }
  if (error instanceof RangeError) {
    throw new RangeError(`Cannot ${action}: ${error.message}`);
  }
  throw error;
}

/**
 * Reads the options of one job's put: its times and its unique key
 * (`key`, `onDuplicate`, `throttle`). `defaults` supply what it leaves out.
 */
export function readPut(
  options: PutOptions | undefined,
  known: readonly string[],
  action: string,
  defaults?: JobTimes & { unique?: Omit<UniqueKey, "key"> | null },
): NewJobOptions {
  const times = readTimes(options, known, action);
  let unique: UniqueKey | null = null;
  try {
    const o = options ?? {};
    const onDuplicate = o.onDuplicate;
    const throttle = o.throttle;
    if (o.key !== undefined) {
      unique = {
        key: checkName(o.key, "'key'"),
        replace: onDuplicate === undefined
          ? defaults?.unique?.replace ?? false
          : checkOnDuplicate(onDuplicate),
        throttleMs: throttle === undefined
          ? defaults?.unique?.throttleMs ?? null
          : positiveDuration(throttle, "throttle"),
      };
    } else if (
      (onDuplicate !== undefined || throttle !== undefined) &&
      known.includes("key")
    ) {
      throw new TypeError(
        `'${
          onDuplicate !== undefined ? "onDuplicate" : "throttle"
        }' needs a 'key': it says what to do with a job of the same key`,
      );
    }
  } catch (error) {
    withAction(action, error);
  }
  return {
    scheduleAt: times.scheduleAt ?? defaults?.scheduleAt,
    expectedAt: times.expectedAt ?? defaults?.expectedAt,
    unique,
  };
}

/**
 * Reads a batch's shared options: default times, and `onDuplicate` and
 * `throttle` for its items that have a key.
 */
export function readBatch(
  options: PutOptions | undefined,
  action: string,
): JobTimes & { unique: Omit<UniqueKey, "key"> } {
  const times = readTimes(options, BATCH_OPTIONS, action);
  try {
    const o = options ?? {};
    return {
      ...times,
      unique: {
        replace: o.onDuplicate === undefined
          ? false
          : checkOnDuplicate(o.onDuplicate),
        throttleMs: o.throttle === undefined
          ? null
          : positiveDuration(o.throttle, "throttle"),
      },
    };
  } catch (error) {
    withAction(action, error);
  }
}

function checkOnDuplicate(value: unknown): boolean {
  if (value === "keep" || value === "replace") return value === "replace";
  throw new TypeError(
    `'onDuplicate' must be "keep" or "replace": received ${describe(value)}`,
  );
}

function positiveDuration(value: unknown, name: string): number {
  const ms = parseDuration(value as DurationInput, name);
  if (ms <= 0) {
    throw new RangeError(
      `'${name}' must be longer than 0: received ${describe(value)}`,
    );
  }
  return ms;
}

/** Reads the `scheduleAt` and `expectedAt` options. */
export function readTimes(
  options: PutOptions | undefined,
  known: readonly string[],
  action: string,
): { scheduleAt: When; expectedAt: When } {
  try {
    const { scheduleAt, expectedAt } = checkOptions(options, known);
    return {
      scheduleAt: scheduleAt === undefined
        ? undefined
        : storableTime(scheduleAt, "scheduleAt"),
      expectedAt: expectedAt === undefined
        ? undefined
        : storableTime(expectedAt, "expectedAt"),
    };
  } catch (error) {
    withAction(action, error);
  }
}

/** Reads a time with {@linkcode resolveTime}; a Date must suit PostgreSQL. */
function storableTime(input: TimeInput, what: string): When {
  const time = resolveTime(input, what);
  if ("at" in time) {
    const ms = time.at.getTime();
    if (ms < FIRST_DATE || ms > LAST_DATE) {
      throw new RangeError(
        `'${what}' must be a Date from year 1 to 9999: received ${
          describe(input)
        }`,
      );
    }
  } else if (Date.now() + time.delayMs > LAST_DATE) {
    throw new RangeError(
      `'${what}' must be a delay that ends before the year 10000: received ${
        describe(input)
      }`,
    );
  }
  return time;
}

/** The times of a job: its own where given, else the defaults. */
export interface JobTimes {
  scheduleAt: When;
  expectedAt: When;
}

/**
 * Encodes many jobs, all before anything is written: items are objects
 * with the data under `key` (`data` for putMany, `args` for tasks), each
 * optionally with its own times and unique key, which win over `defaults`.
 */
export function encodeJobs(
  codec: Codec,
  items: readonly unknown[],
  key: "data" | "args",
  defaults: JobTimes & { unique?: Omit<UniqueKey, "key"> | null },
  action: string,
  extra: readonly string[] = [],
): NewJob[] {
  if (!Array.isArray(items)) {
    throw new TypeError(
      `Cannot ${action}: expected an array of { ${key} } items: received ${
        describe(items)
      }`,
    );
  }
  const known = [key, ...PUT_OPTIONS, ...extra];
  return items.map((item, i) => {
    const where = `${action} (item ${i})`;
    if (item === null || typeof item !== "object" || !(key in item)) {
      throw new TypeError(
        `Cannot ${where}: expected an object with '${key}': received ${
          describe(item)
        }`,
      );
    }
    const own = readPut(item as PutOptions, known, where, defaults);
    return {
      data: codec.encode((item as Record<string, unknown>)[key]),
      ...own,
    };
  });
}
