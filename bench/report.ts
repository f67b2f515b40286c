/**
 * Summarizes runs (medians) and prints the table, in Markdown so that it
 * can be pasted into bench/RESULTS.md.
 *
 * @module
 */

import {
  formatCount,
  formatLatency,
  formatRatio,
  median,
  percentile,
} from "./stats.ts";
import type { RunResult, SideSummary, Summary, Workload } from "./workload.ts";

/** The medians of one side's runs. */
export function summarizeSide(runs: RunResult[]): SideSummary {
  const extra: Record<string, number> = {};
  for (const key of Object.keys(runs[0]?.extra ?? {})) {
    extra[key] = median(runs.map((r) => r.extra![key]));
  }
  const timed = runs.filter((r) => r.latencies?.length);
  return {
    rate: median(runs.map((r) => r.jobs / (r.ms / 1000))),
    p50: median(timed.map((r) => percentile(r.latencies!, 50))),
    p99: median(timed.map((r) => percentile(r.latencies!, 99))),
    extra,
  };
}

/** Both sides, and the median of the per-repetition ratios. */
export function summarize(
  workload: Workload,
  pq: RunResult[],
  raw: RunResult[],
): Summary {
  const ratio = workload.ratio ??
    ((a: RunResult, b: RunResult) => (a.jobs / a.ms) / (b.jobs / b.ms));
  return {
    pq: summarizeSide(pq),
    raw: summarizeSide(raw),
    ratio: median(pq.map((run, i) => ratio(run, raw[i]))),
  };
}

const HEADER = [
  "workload",
  "pq jobs/s",
  "raw jobs/s",
  "ratio",
  "target",
  "met",
  "pq p50/p99",
  "raw p50/p99",
  "notes",
];
const RIGHT = new Set([1, 2, 3]);

/** The table's row of one workload. */
export function row(workload: Workload, s: Summary): string[] {
  const rate = (n: number) =>
    workload.showRate === false ? "-" : formatCount(n);
  return [
    workload.name,
    rate(s.pq.rate),
    rate(s.raw.rate),
    formatRatio(s.ratio),
    workload.target?.text ?? "-",
    workload.target ? (workload.target.met(s) ? "yes" : "**no**") : "-",
    formatLatency(s.pq.p50, s.pq.p99),
    formatLatency(s.raw.p50, s.raw.p99),
    workload.notes,
  ];
}

/** A Markdown table with padded columns. */
export function table(rows: string[][]): string {
  const all = [HEADER, ...rows];
  const widths = HEADER.map((_, c) =>
    Math.max(3, ...all.map((r) => [...r[c]].length))
  );
  const cell = (text: string, c: number) => {
    const pad = " ".repeat(widths[c] - [...text].length);
    return RIGHT.has(c) ? pad + text : text + pad;
  };
  const line = (r: string[]) => `| ${r.map(cell).join(" | ")} |`;
  const rule = `|${
    widths.map((w, c) =>
      RIGHT.has(c) ? ` ${"-".repeat(w - 1)}: ` : ` ${"-".repeat(w)} `
    )
      .join("|")
  }|`;
  return [line(HEADER), rule, ...rows.map(line)].join("\n");
}
