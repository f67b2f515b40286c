/**
 * The systems side by side, in the table's order: what the driver lists and
 * the module a child process loads for each.
 *
 * @module
 */

/** One column of the table. */
export interface System {
  /** For `--systems=` and the child's argument. */
  id: string;
  /** The column's heading. */
  label: string;
  /** The adapter module (exports `open`), relative to this file. */
  module: string;
  /** The npm package it measures, whose version the report prints. */
  npm?: string;
  /** The workloads it runs, when not all: the others would repeat a column. */
  workloads?: readonly string[];
}

export const SYSTEMS: readonly System[] = [
  { id: "pq", label: "pq", module: "./pq.ts" },
  {
    id: "pqlease",
    label: "pq, lease mode",
    module: "./pq_lease.ts",
    // Its puts are pq's: only the worker differs.
    workloads: ["work", "latency"],
  },
  {
    id: "pgboss",
    label: "pg-boss",
    module: "./npm/pgboss.ts",
    npm: "pg-boss",
  },
  {
    id: "graphile",
    label: "graphile-worker",
    module: "./npm/graphile.ts",
    npm: "graphile-worker",
  },
  { id: "raw", label: "raw minimal", module: "./raw_minimal.ts" },
  { id: "rawpq", label: "raw, pq's table", module: "./raw_pq.ts" },
];

/** The system all ratios are taken against. */
export const BASELINE = "raw";
