/**
 * The error stored with a failed or retried job: whatever a handler threw,
 * turned into a small JSON object without ever throwing.
 *
 * A handler may throw anything: `null`, a symbol, an object without a
 * prototype, a cyclic object, a Proxy whose every trap throws, an Error whose
 * `message` getter throws, a string of a hundred megabytes. Serializing one of
 * those used to throw inside the batch, which rolled the whole batch back and
 * ran its successful jobs again and again (tests/lost_jobs_test.ts). So every
 * read here is guarded, and long texts are cut.
 *
 * @module
 */

import { describe } from "./describe.ts";

/**
 * What pq stores and lists as a job's error.
 *
 * @example Log a failed job's error
 * ```ts
 * import type { StoredError } from "@pq/pq";
 *
 * const describeError = (error: StoredError) =>
 *   `${error.code ?? error.name ?? "Error"}: ${error.message}`;
 * ```
 */
export interface StoredError {
  /** The error's message, or a rendering of the thrown value. */
  message: string;
  /** The error's name, when an Error was thrown. */
  name?: string;
  /** The stack, when there was one. */
  stack?: string;
  /** A `code` property of the thrown error (pq's codes, SQLSTATEs, ...). */
  code?: string;
}

/** Messages and stacks longer than this many characters are cut. */
const MAX_TEXT = 16_384;

/** Turns any thrown value into a {@linkcode StoredError}. Never throws. */
export function storedError(thrown: unknown): StoredError {
  if (typeof thrown === "string") return { message: cut(thrown) };
  if (
    thrown === null ||
    (typeof thrown !== "object" && typeof thrown !== "function")
  ) {
    return { message: describe(thrown) };
  }
  const object = thrown as Record<string, unknown>;
  const message = text(read(object, "message"));
  const name = text(read(object, "name"));
  const stack = text(read(object, "stack"));
  const code = read(object, "code");
  const stored: StoredError = {
    message: message ?? rendered(thrown),
  };
  if (name !== undefined) stored.name = name;
  if (stack !== undefined) stored.stack = stack;
  if (typeof code === "string" || typeof code === "number") {
    stored.code = cut(String(code));
  }
  return stored;
}

/** The JSON text of {@linkcode storedError}, which PostgreSQL accepts. */
export function storedErrorJson(thrown: unknown): string {
  return JSON.stringify(storedError(thrown));
}

/** Reads a property, or undefined if reading throws. */
function read(object: Record<string, unknown>, key: string): unknown {
  try {
    return object[key];
  } catch {
    return undefined;
  }
}

/** A string property as storable text, or undefined. */
function text(value: unknown): string | undefined {
  return typeof value === "string" ? cut(value) : undefined;
}

/** An object that is not an Error: its own `toString()` if it has a useful one. */
function rendered(value: unknown): string {
  try {
    const text = String(value);
    if (typeof text === "string" && text !== "[object Object]") {
      return cut(text);
    }
  } catch {
    // A throwing toString(), a Proxy, an object without a prototype.
  }
  return describe(value);
}

/** Cuts a text to MAX_TEXT characters and makes it valid UTF-16 for json. */
function cut(value: string): string {
  const short = value.length > MAX_TEXT
    ? `${value.slice(0, MAX_TEXT)}… (${value.length} characters)`
    : value;
  return short.toWellFormed();
}
