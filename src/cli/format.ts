/**
 * Plain-text output of the CLI: aligned tables, counts with their kind,
 * durations.
 *
 * @module
 */

import type { StatCount } from "../stats.ts";

/** Aligns rows of cells under a header, columns two spaces apart. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length))
  );
  const line = (cells: string[]) =>
    cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** `12`, `10000+` (at least), `~3500000` (the planner's estimate). */
export function count(c: StatCount): string {
  return c.kind === "exact"
    ? `${c.count}`
    : c.kind === "atLeast"
    ? `${c.count}+`
    : `~${c.count}`;
}

/** `850ms`, `12s`, `4m10s`, `3h2m`, `2d5h`; `-` for null. */
export function duration(ms: number | null): string {
  if (ms === null) return "-";
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1_000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? `${s % 60}s` : ""}`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${m % 60 ? `${m % 60}m` : ""}`;
  return `${Math.floor(h / 24)}d${h % 24 ? `${h % 24}h` : ""}`;
}

/** An ISO time, or `-`. */
export function time(date: Date | null | undefined): string {
  return date ? date.toISOString() : "-";
}
