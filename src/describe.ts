/**
 * A short rendering of any value for error messages ("received ...").
 *
 * @module
 */

/** Strings longer than this many UTF-16 code units are cut. */
const MAX_STRING = 60;

/**
 * Renders a value briefly and readably for an error message, so that the
 * message can say what it received: strings in double quotes (cut to about
 * 60 characters, ending with "…"), numbers, bigints and booleans as written
 * in code (`NaN`, `-5`, `-0`, `10n`), `null` and `undefined` as themselves,
 * a Date as its ISO time or `Invalid Date`, and anything else by its kind
 * (`a function`, `an array`, `an object`, `an instance of Map`, `Symbol(x)`).
 * It never throws and never calls the value's own methods.
 *
 * @param value The value to render.
 * @returns A short, single-line description of the value.
 * @example Describing received values
 * ```ts
 * import { describe } from "./describe.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(describe("5x"), '"5x"');
 * assert.equal(describe(-5), "-5");
 * assert.equal(describe(NaN), "NaN");
 * assert.equal(describe(new Date(NaN)), "Invalid Date");
 * assert.equal(describe(null), "null");
 * assert.equal(describe({ a: 1 }), "an object");
 * assert.equal(describe([1, 2]), "an array");
 * assert.equal(describe(new Map()), "an instance of Map");
 * assert.equal(describe(() => {}), "a function");
 * assert.equal(describe("x".repeat(100)), `"${"x".repeat(59)}…"`);
 * ```
 */
export function describe(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(cut(value));
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    case "bigint":
      return `${value}n`;
    case "boolean":
    case "undefined":
      return String(value);
    case "symbol":
      return value.toString();
    case "function":
      return "a function";
  }
  if (value === null) return "null";
  try {
    return describeObject(value as object);
  } catch {
    // A revoked Proxy, or an object posing as a Date.
    return "an object";
  }
}

/** Renders an object by its kind. */
function describeObject(value: object): string {
  if (Array.isArray(value)) return "an array";
  if (value instanceof Date) {
    const time = value.getTime();
    return Number.isNaN(time) ? "Invalid Date" : new Date(time).toISOString();
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === null || proto === Object.prototype) return "an object";
  const name = constructorName(proto);
  return name === undefined ? "an object" : `an instance of ${name}`;
}

/** Cuts a long string to {@linkcode MAX_STRING} units, never inside a surrogate pair. */
function cut(text: string): string {
  if (text.length <= MAX_STRING) return text;
  let end = MAX_STRING - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/** The name of the class an object was made by, read without running user code. */
function constructorName(proto: unknown): string | undefined {
  const descriptor = Object.getOwnPropertyDescriptor(proto, "constructor");
  const ctor: unknown = descriptor?.value;
  if (typeof ctor !== "function") return undefined;
  const name = Object.getOwnPropertyDescriptor(ctor, "name")?.value;
  return typeof name === "string" && name !== "" ? name : undefined;
}
