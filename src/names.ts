/**
 * Checks of the names pq is given (queues, tables, schemas) and the quoting
 * of SQL identifiers.
 *
 * @module
 */

import { describe } from "./describe.ts";

/**
 * The longest queue name, in UTF-8 bytes. Queue names are btree index keys
 * (PostgreSQL refuses index entries over about 2,700 bytes) and notification
 * payloads (at most 8,000 bytes), so a fixed, documented limit well below
 * both gives a clear error instead of a server error that depends on the
 * other columns.
 */
export const MAX_QUEUE_NAME_BYTES = 1024;

/** PostgreSQL silently truncates identifiers longer than this many bytes. */
const MAX_IDENTIFIER_BYTES = 63;

const encoder = new TextEncoder();

/**
 * Checks that a string can be stored as text by PostgreSQL: no NUL character
 * (text cannot hold it) and no lone UTF-16 surrogate (it cannot be encoded in
 * UTF-8 and would silently turn into U+FFFD, merging distinct names).
 */
function checkText(value: string, what: string): void {
  if (value.includes("\u0000")) {
    throw new TypeError(
      `${what} must not contain a NUL character: received ${describe(value)}`,
    );
  }
  if (!value.isWellFormed()) {
    throw new TypeError(
      `${what} must not contain a lone surrogate: received ${describe(value)}`,
    );
  }
}

/**
 * Validates a queue or task name: any non-empty string of at most
 * {@linkcode MAX_QUEUE_NAME_BYTES} UTF-8 bytes without NUL characters or lone
 * surrogates.
 *
 * @param what How the message names it: "A queue name", "A task name".
 */
export function checkName(name: unknown, what: string): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new TypeError(
      `${what} must be a non-empty string: received ${describe(name)}`,
    );
  }
  checkText(name, what);
  const bytes = encoder.encode(name).length;
  if (bytes > MAX_QUEUE_NAME_BYTES) {
    throw new RangeError(
      `${what} must be at most ${MAX_QUEUE_NAME_BYTES} bytes in UTF-8: received ${bytes} bytes (${
        describe(name)
      })`,
    );
  }
  return name;
}

/**
 * Validates a table or schema name. Anything PostgreSQL accepts as a quoted
 * identifier is fine; longer than 63 bytes is refused because PostgreSQL
 * would truncate it and two long names could then mean the same table.
 */
export function checkIdentifier(name: unknown, what: string): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new TypeError(
      `'${what}' must be a non-empty string: received ${describe(name)}`,
    );
  }
  checkText(name, `'${what}'`);
  const bytes = encoder.encode(name).length;
  if (bytes > MAX_IDENTIFIER_BYTES) {
    throw new RangeError(
      `'${what}' must be at most ${MAX_IDENTIFIER_BYTES} bytes in UTF-8, or PostgreSQL would truncate it: received ${bytes} bytes (${
        describe(name)
      })`,
    );
  }
  return name;
}

/**
 * Quotes an SQL identifier the way PostgreSQL's `quote_ident` does: wrapped in
 * double quotes, inner double quotes doubled. We do not use the driver's
 * `sql(name)` helper because it splits names at dots (`"a.b"` would become the
 * schema `a` and the table `b`); table and schema names with dots are valid.
 */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Quotes a string as an SQL literal, for the few DDL statements where
 * PostgreSQL takes no parameters (function bodies, comments).
 */
export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
