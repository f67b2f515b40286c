/**
 * Checks of option objects, so that a misspelt option is an error rather
 * than silently ignored (`{ schedule_at: "5m" }` would otherwise put a job
 * that is ready at once).
 *
 * @module
 */

import { describe } from "./describe.ts";

/**
 * Returns `options` (or `{}` when undefined) after checking that it is an
 * object whose keys are all in `known`. Messages leave out the action; the
 * caller puts it in front (see `withAction`).
 */
export function checkOptions<T extends object>(
  options: T | undefined,
  known: readonly string[],
): Partial<T> {
  if (options === undefined) return {};
  if (
    options === null || typeof options !== "object" || Array.isArray(options)
  ) {
    throw new TypeError(
      `options must be an object: received ${describe(options)}`,
    );
  }
  for (const key in options) {
    if (!known.includes(key)) {
      throw new TypeError(
        `unknown option '${key}' (known: ${known.join(", ")})`,
      );
    }
  }
  return options;
}

/** Checks an optional AbortSignal option. */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined || signal instanceof AbortSignal) return signal;
  throw new TypeError(
    `'signal' must be an AbortSignal: received ${describe(signal)}`,
  );
}

/** Checks an optional boolean option. */
export function checkBoolean(
  value: unknown,
  name: string,
): boolean | undefined {
  if (value === undefined || typeof value === "boolean") return value;
  throw new TypeError(
    `'${name}' must be a boolean: received ${describe(value)}`,
  );
}
