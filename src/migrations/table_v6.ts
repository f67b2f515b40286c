/**
 * The job table, version 6: trace context.
 *
 * - `trace`: the W3C `traceparent` of the put that made the job, when
 *   OpenTelemetry was in use (see `telemetry.ts`), so that the span of its
 *   run continues the trace of the request that put it, in any process.
 *   Null otherwise; a null costs no space in the row (the null bitmap).
 * - `put_keyed` with one more parameter, the batch's trace context (an
 *   overload: the older ones stay for the previous releases).
 * - `take_limited` returning the trace too. A function's return type cannot
 *   be changed by `create or replace`, so it is dropped and created again,
 *   in the migration's transaction: no caller ever finds it missing. Its
 *   callers select its columns by name (`sql/take_limited.ts`), so the
 *   processes of the previous release keep working with the new version
 *   during a rolling deploy; a second function name would have left the
 *   old one behind for good.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import { putKeyedFunctionSql } from "./table_v4.ts";
import { takeLimitedFunctionSql } from "./table_v5.ts";

/** The statements of table step 6. */
export function tableV6(n: TableNames): string[] {
  return [
    `alter table ${n.qualified} add column trace text`,
    putKeyedFunctionSql(n, true, true),
    `drop function ${n.takeLimitedFunction}(text, text, int4, int4, int4,
      float8, int8, int4, bool)`,
    takeLimitedFunctionSql(n, true),
  ];
}
