/**
 * Typed, validated payloads: any Standard Schema (Zod, Valibot, ArkType,
 * ...) checks a job's data when it is put and again when it is taken.
 *
 * What is stored is the data as given (the schema's input); the schema runs
 * again when the job is taken, so the handler and `get()` get its output,
 * with transforms and defaults applied. The producer and the worker may be
 * different versions, and another program may write to the table: the second
 * check catches data the running code cannot read. A schema costs nothing
 * where none is given.
 *
 * @module
 */

import { formatPath, type Segment } from "./codecs.ts";
import { describe } from "./describe.ts";

/**
 * A Standard Schema (version 1): what `schema` options take. Zod, Valibot,
 * ArkType and many more make these.
 *
 * This is the interface of `@standard-schema/spec`, written out here as the
 * spec invites libraries to do: pq then needs no package for it, and its
 * documentation covers every type it exposes (tests/schema_test.ts checks
 * that the two are assignable both ways).
 *
 * @example A hand-written schema
 * ```ts
 * import type { Schema } from "@pq/pq";
 *
 * const positive: Schema<number> = {
 *   "~standard": {
 *     version: 1,
 *     vendor: "example",
 *     validate: (value) =>
 *       typeof value === "number" && value > 0
 *         ? { value }
 *         : { issues: [{ message: "expected a positive number" }] },
 *   },
 * };
 * ```
 */
export interface Schema<Input = unknown, Output = Input> {
  /** The schema's Standard Schema properties. */
  readonly "~standard": SchemaProps<Input, Output>;
}

/**
 * The Standard Schema properties of a {@linkcode Schema}.
 *
 * @example Validate with any schema
 * ```ts
 * import type { Schema } from "@pq/pq";
 *
 * async function isValid(schema: Schema, value: unknown): Promise<boolean> {
 *   const result = await schema["~standard"].validate(value);
 *   return !result.issues;
 * }
 * ```
 */
export interface SchemaProps<Input = unknown, Output = Input> {
  /** The version of the standard: 1. */
  readonly version: 1;
  /** The library that made the schema. */
  readonly vendor: string;
  /** Validates a value, at once or with a promise. */
  readonly validate: (
    value: unknown,
    options?: { readonly libraryOptions?: Record<string, unknown> } | undefined,
  ) => SchemaResult<Output> | Promise<SchemaResult<Output>>;
  /** The input and output types, for inference only. */
  readonly types?: SchemaTypes<Input, Output> | undefined;
}

/**
 * The input and output types a {@linkcode Schema} declares.
 *
 * @example
 * ```ts
 * import type { SchemaTypes } from "@pq/pq";
 *
 * type Parse = SchemaTypes<string, number>; // input text, output a number
 * ```
 */
export interface SchemaTypes<Input = unknown, Output = Input> {
  /** The type a schema accepts. */
  readonly input: Input;
  /** The type it hands back. */
  readonly output: Output;
}

/**
 * What a {@linkcode Schema}'s `validate` returns: the output, or issues.
 *
 * @example
 * ```ts
 * import type { SchemaResult } from "@pq/pq";
 *
 * const ok: SchemaResult<number> = { value: 1 };
 * const bad: SchemaResult<number> = { issues: [{ message: "too small" }] };
 * ```
 */
export type SchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<SchemaIssue> };

/**
 * One problem a {@linkcode Schema} found, and where.
 *
 * @example
 * ```ts
 * import type { SchemaIssue } from "@pq/pq";
 *
 * const issue: SchemaIssue = { message: "Invalid email", path: ["to"] };
 * ```
 */
export interface SchemaIssue {
  /** What is wrong. */
  readonly message: string;
  /** Where in the value, if not at its root. */
  readonly path?:
    | ReadonlyArray<PropertyKey | { readonly key: PropertyKey }>
    | undefined;
}

/**
 * The schema's input type: what `put()` and a task's call take.
 *
 * @example
 * ```ts
 * import type { Schema, SchemaInput } from "@pq/pq";
 *
 * type Text = SchemaInput<Schema<string, number>>; // string
 * ```
 */
export type SchemaInput<S extends Schema> = NonNullable<
  S["~standard"]["types"]
>["input"];

/**
 * The schema's output type: what `get()` and a handler receive.
 *
 * @example
 * ```ts
 * import type { Schema, SchemaOutput } from "@pq/pq";
 *
 * type Count = SchemaOutput<Schema<string, number>>; // number
 * ```
 */
export type SchemaOutput<S extends Schema> = NonNullable<
  S["~standard"]["types"]
>["output"];

/** Checks a `schema` option. */
export function checkSchema(value: unknown): Schema | undefined {
  if (value === undefined) return undefined;
  const standard = (value as { "~standard"?: { validate?: unknown } } | null)
    ?.["~standard"];
  if (
    (typeof value !== "object" && typeof value !== "function") ||
    value === null || typeof standard?.validate !== "function"
  ) {
    throw new TypeError(
      `'schema' must be a Standard Schema (Zod, Valibot, ArkType, ...): received ${
        describe(value)
      }`,
    );
  }
  return value as Schema;
}

/** The result of a validation: the output, or the issues as one message. */
export type Checked = { value: unknown } | { problem: string };

/** Runs the schema (sync or async) on a value. */
export async function check(schema: Schema, value: unknown): Promise<Checked> {
  let result = schema["~standard"].validate(value);
  if (result instanceof Promise) result = await result;
  if (result.issues) return { problem: formatIssues(result.issues) };
  return { value: result.value };
}

/**
 * Validates data about to be written, throwing a TypeError that lists the
 * schema's issues with their paths.
 */
export async function validateInput(
  schema: Schema,
  value: unknown,
  where: string,
): Promise<void> {
  const checked = await check(schema, value);
  if ("problem" in checked) {
    throw new TypeError(
      `Cannot ${where}: the data does not match the schema: ${checked.problem}`,
    );
  }
}

/** "data.to: Invalid email; data.tags[2]: Expected string". */
export function formatIssues(issues: readonly SchemaIssue[]): string {
  return issues.map((issue) => {
    const path = (issue.path ?? []).map((step): Segment => {
      const key = typeof step === "object" ? step.key : step;
      return typeof key === "symbol" ? { text: `[${String(key)}]` } : key;
    });
    return `${formatPath(path)}: ${issue.message}`;
  }).join("; ");
}
