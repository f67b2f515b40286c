/**
 * Cron expressions, through the `croner` package (no dependencies; runs on
 * Deno, Node, Bun and workers): 5 fields, or 6 with seconds first; names of
 * months and days; ranges, steps, lists; `@hourly`-style nicknames; time
 * zones, with daylight saving time as Vixie cron has it (a time skipped by a
 * spring-forward runs at the first valid time after it; a repeated hour runs
 * once). pq does not parse cron itself.
 *
 * `croner` is an optional peer dependency: it is loaded the first time a
 * schedule is made or run, so users without schedules pay nothing.
 *
 * @module
 */

import { PQError } from "./errors.ts";
import { describe } from "./describe.ts";

/** The part of croner's `Cron` that pq uses. */
interface CronJob {
  nextRun(after?: Date): Date | null;
  previousRuns(n: number, before?: Date): Date[];
}

type CronConstructor = new (
  pattern: string,
  options: { paused: boolean; timezone?: string },
) => CronJob;

let loading: Promise<CronConstructor> | null = null;

/** Loads croner once. */
function loadCron(): Promise<CronConstructor> {
  loading ??= (async () => {
    try {
      const name = "croner"; // a variable: bundlers must not require it
      const module = await import(name);
      return module.Cron as CronConstructor;
    } catch (cause) {
      loading = null;
      throw new PQError(
        "MISSING_DEPENDENCY",
        "Schedules need the package croner (an optional peer dependency of pq): install it with `npm install croner` (Deno: `deno add npm:croner`)",
        { cause },
      );
    }
  })();
  return loading;
}

/** A parsed schedule: when it runs. */
export interface Cron {
  /** The first run strictly after `after`, or null if it never runs again. */
  next(after: Date): Date | null;
  /**
   * The runs at or before `upTo` and at or after `from`, oldest first, at
   * most `max` (the latest ones).
   */
  between(from: Date, upTo: Date, max: number): Date[];
}

/**
 * Parses and checks a cron expression in a time zone.
 *
 * @throws {TypeError} If the expression or the time zone is invalid, or the
 * expression never runs.
 * @throws {PQError} `MISSING_DEPENDENCY` if croner is not installed.
 */
export async function parseCron(
  expression: unknown,
  timezone: unknown,
): Promise<Cron> {
  if (typeof expression !== "string" || expression.trim() === "") {
    throw new TypeError(
      `the cron expression must be a non-empty string: received ${
        describe(expression)
      }`,
    );
  }
  if (timezone !== undefined && !isTimeZone(timezone)) {
    throw new TypeError(
      `'timezone' must be a time zone name such as "Europe/Oslo": received ${
        describe(timezone)
      }`,
    );
  }
  const CronJob = await loadCron();
  let job: CronJob;
  try {
    job = new CronJob(expression, {
      paused: true,
      timezone: timezone as string | undefined,
    });
  } catch (error) {
    throw new TypeError(
      `invalid cron expression ${describe(expression)}: ${
        (error as Error).message
      }`,
    );
  }
  if (job.nextRun(new Date()) === null) {
    throw new TypeError(
      `the cron expression ${describe(expression)} never runs`,
    );
  }
  return {
    next: (after) => job.nextRun(after),
    between(from, upTo, max) {
      // previousRuns is exclusive of its start: one ms later includes it.
      const runs = job.previousRuns(max, new Date(upTo.getTime() + 1));
      return runs.filter((run) => run >= from).reverse();
    },
  };
}

/** True for a time zone name the runtime knows. */
function isTimeZone(value: unknown): boolean {
  if (typeof value !== "string" || value === "") return false;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: value });
    return true;
  } catch {
    return false;
  }
}
