/**
 * Medians, percentiles and the number formats of the benchmark table.
 *
 * @module
 */

/** The median of `values` (NaN when empty). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The `p`-th percentile (0-100) of `values` by nearest rank (NaN when empty). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** `12,345` */
export function formatCount(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-";
}

/** `0.84x` */
export function formatRatio(n: number): string {
  return Number.isFinite(n) ? `${n.toFixed(2)}x` : "-";
}

/** `0.31 / 1.70 ms` */
export function formatLatency(p50: number, p99: number): string {
  if (!Number.isFinite(p50)) return "-";
  return `${p50.toFixed(2)} / ${p99.toFixed(2)} ms`;
}

/** `123.4 MB` */
export function formatBytes(n: number): string {
  return `${(n / 1_048_576).toFixed(1)} MB`;
}
