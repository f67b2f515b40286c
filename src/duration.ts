/**
 * Durations ("250ms", "1h30m", or milliseconds) and points in time (a Date,
 * or a delay from now), checked and turned into milliseconds.
 *
 * @module
 */

import { describe } from "./describe.ts";

/**
 * A point in time or a delay: a Date (absolute), a number of milliseconds from now, or a duration string.
 *
 * @example Three ways to say when
 * ```ts
 * import type { TimeInput } from "@pq/pq";
 *
 * const times: TimeInput[] = [new Date("2030-01-01T00:00:00Z"), 60_000, "1m"];
 * ```
 */
export type TimeInput = Date | number | string;

/**
 * A length of time: a number of milliseconds or a duration string like "250ms", "10s", "5m", "1h30m", "2d".
 *
 * @example Two ways to say how long
 * ```ts
 * import type { DurationInput } from "@pq/pq";
 *
 * const timeouts: DurationInput[] = [90_000, "1m30s"];
 * ```
 */
export type DurationInput = number | string;

/** The longest duration, in milliseconds: 100,000,000 days, the range of a Date. */
const MAX_MS = 8.64e15;

type Unit = "d" | "h" | "m" | "s" | "ms";

const UNIT_MS: Readonly<Record<Unit, number>> = {
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1_000,
  ms: 1,
};

/** Units must appear in this order, each at most once. */
const UNIT_RANK: Readonly<Record<Unit, number>> = {
  d: 0,
  h: 1,
  m: 2,
  s: 3,
  ms: 4,
};

/** One `<number><unit>` part; "ms" is tried before "m". */
const PART = /(\d+(?:\.\d+)?)(ms|d|h|m|s)/y;

const DURATION = 'a number of milliseconds or a duration like "5m"';
const TIME = 'a Date, a number of milliseconds or a duration like "5m"';
const RANGE = "between 0 and 8.64e15 milliseconds (100,000,000 days)";

/**
 * Reads a length of time: a number of milliseconds, or a string of one or
 * more `<number><unit>` parts with units `d`, `h`, `m`, `s` and `ms` in that
 * order, each at most once (`"250ms"`, `"10s"`, `"1.5h"`, `"1h30m"`,
 * `"2d4h"`, `"1m30s500ms"`). Numbers are non-negative integers or decimals;
 * no sign, spaces or exponents. The result is rounded to whole milliseconds.
 *
 * @param input The duration to read.
 * @param what The name of the option being read, used in error messages.
 * @returns The duration in whole milliseconds, from 0 to 8.64e15.
 * @throws {TypeError} If `input` is not a number or a string, is NaN, or is
 * a string that is not a duration (`"5x"`, `""`, `"30m1h"`, `"-5s"`).
 * @throws {RangeError} If `input` is negative, infinite, or more than
 * 8.64e15 milliseconds (100,000,000 days).
 * @example Reading durations
 * ```ts
 * import { parseDuration } from "@pq/pq";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseDuration("1h30m", "timeout"), 5_400_000);
 * assert.equal(parseDuration("1.5s", "timeout"), 1_500);
 * assert.equal(parseDuration(250, "timeout"), 250);
 * assert.throws(() => parseDuration("5x", "timeout"), {
 *   name: "TypeError",
 *   message:
 *     `'timeout' must be a number of milliseconds or a duration like "5m": received "5x"`,
 * });
 * ```
 */
export function parseDuration(input: DurationInput, what: string): number {
  return check(input, what, DURATION, toMs(input));
}

/**
 * Reads a point in time: a Date is an absolute time, while a number of
 * milliseconds or a duration string (read as by {@linkcode parseDuration})
 * is a delay from now. Delays are returned as such so that "now" can be the
 * database server's clock rather than this process's.
 *
 * @param input The time to read.
 * @param what The name of the option being read, used in error messages.
 * @returns `{ at }` with a copy of the Date, or `{ delayMs }` with the delay
 * in whole milliseconds.
 * @throws {TypeError} If `input` is an invalid Date, not a Date, number or
 * string, NaN, or a string that is not a duration.
 * @throws {RangeError} If `input` is a negative, infinite, or more than
 * 8.64e15 milliseconds delay.
 * @example Reading times and delays
 * ```ts
 * import { resolveTime } from "@pq/pq";
 * import assert from "node:assert/strict";
 *
 * const at = new Date("2030-01-01T00:00:00Z");
 * assert.deepEqual(resolveTime(at, "scheduleAt"), { at });
 * assert.deepEqual(resolveTime("5m", "scheduleAt"), { delayMs: 300_000 });
 * assert.deepEqual(resolveTime(1_000, "scheduleAt"), { delayMs: 1_000 });
 * assert.throws(() => resolveTime(new Date(NaN), "scheduleAt"), {
 *   name: "TypeError",
 *   message:
 *     `'scheduleAt' must be a Date, a number of milliseconds or a duration like "5m": received Invalid Date`,
 * });
 * ```
 */
export function resolveTime(
  input: TimeInput,
  what: string,
): { at: Date } | { delayMs: number } {
  if (input instanceof Date) {
    const time = input.getTime();
    if (Number.isNaN(time)) {
      throw new TypeError(
        `'${what}' must be ${TIME}: received ${describe(input)}`,
      );
    }
    return { at: new Date(time) };
  }
  return { delayMs: check(input, what, TIME, toMs(input)) };
}

/**
 * Checks the milliseconds read from `input` and rounds them.
 *
 * @param ms The milliseconds read, or undefined if `input` could not be read.
 */
function check(
  input: unknown,
  what: string,
  expected: string,
  ms: number | undefined,
): number {
  if (ms === undefined) {
    throw new TypeError(
      `'${what}' must be ${expected}: received ${describe(input)}`,
    );
  }
  const rounded = Math.round(ms) + 0; // + 0 turns -0 into 0
  if (!(ms >= 0 && rounded <= MAX_MS)) {
    const also = expected === TIME ? "a Date or a delay " : "";
    throw new RangeError(
      `'${what}' must be ${also}${RANGE}: received ${describe(input)}`,
    );
  }
  return rounded;
}

/** Milliseconds, possibly out of range, or undefined if `input` is not a duration at all. */
function toMs(input: unknown): number | undefined {
  if (typeof input === "number") return Number.isNaN(input) ? undefined : input;
  if (typeof input !== "string" || input === "") return undefined;
  let total = 0;
  let rank = -1;
  for (let at = 0; at < input.length; at = PART.lastIndex) {
    PART.lastIndex = at;
    const match = PART.exec(input);
    if (match === null) return undefined;
    const unit = match[2] as Unit;
    if (UNIT_RANK[unit] <= rank) return undefined;
    rank = UNIT_RANK[unit];
    total += Number(match[1]) * UNIT_MS[unit];
  }
  return total;
}
