/**
 * The table of the side-by-side run: one row per figure, one column per
 * system, each cell the median of the repetitions with their range and the
 * median of the per-repetition ratios to the minimal raw queue.
 *
 * @module
 */

import { formatCount, median, percentile } from "../stats.ts";
import { BASELINE, type System } from "./systems.ts";
import type { RunResult } from "./workloads.ts";

/** Runs of each workload (by id), of each system (by id), in rep order. */
export type Results = Map<string, Map<string, RunResult[]>>;

/** One row: a figure taken from each run of one workload. */
interface Figure {
  workload: string;
  label: (runs: RunResult[]) => string;
  value: (run: RunResult) => number | undefined;
  format: (n: number) => string;
}

const rate = (r: RunResult) => r.jobs / (r.ms / 1000);
const perThousand = (ms: number | undefined, r: RunResult) =>
  ms === undefined ? undefined : ms / r.jobs * 1000;
const ms2 = (n: number) => n.toFixed(2);
const jobs = (runs: RunResult[]) => formatCount(runs[0]?.jobs ?? NaN);

const FIGURES: Figure[] = [
  {
    workload: "put1",
    label: () => "put, 1 producer (jobs/s)",
    value: rate,
    format: formatCount,
  },
  {
    workload: "put8",
    label: () => "put, 8 producers (jobs/s)",
    value: rate,
    format: formatCount,
  },
  {
    workload: "bulk",
    label: () => "bulk put, batches of 1,000 (jobs/s)",
    value: rate,
    format: formatCount,
  },
  {
    workload: "work",
    label: (runs) => `work ${jobs(runs)} no-op jobs, concurrency 8 (jobs/s)`,
    value: rate,
    format: formatCount,
  },
  ...[50, 95, 99].map((p): Figure => ({
    workload: "latency",
    label: () => `pickup latency p${p} (ms)`,
    value: (r) => percentile(r.latencies ?? [], p),
    format: ms2,
  })),
  {
    workload: "put1",
    label: () => "server CPU per 1,000 single puts (ms)",
    value: (r) => perThousand(r.cpu?.serverMs, r),
    format: formatCount,
  },
  {
    workload: "put1",
    label: () => "client CPU per 1,000 single puts (ms)",
    value: (r) => perThousand(r.cpu?.clientMs, r),
    format: formatCount,
  },
  {
    workload: "work",
    label: () => "server CPU per 1,000 jobs worked (ms)",
    value: (r) => perThousand(r.cpu?.serverMs, r),
    format: formatCount,
  },
  {
    workload: "work",
    label: () => "client CPU per 1,000 jobs worked (ms)",
    value: (r) => perThousand(r.cpu?.clientMs, r),
    format: formatCount,
  },
];

/** `median (min–max) ratio`, or "-" without data. */
function cell(
  figure: Figure,
  runs: RunResult[],
  baseline: RunResult[] | undefined,
): string {
  const values = runs.map(figure.value).filter((v): v is number =>
    v !== undefined && Number.isFinite(v)
  );
  if (!values.length) return "-";
  let text = figure.format(median(values));
  if (values.length > 1) {
    text += ` (${figure.format(Math.min(...values))}–${
      figure.format(Math.max(...values))
    })`;
  }
  if (baseline && runs !== baseline) {
    // Runs of the same repetition ran next to each other: compare those.
    const ratios = runs.map((run, i) => {
      const base = baseline[i] && figure.value(baseline[i]);
      const value = figure.value(run);
      return base && value !== undefined ? value / base : NaN;
    }).filter(Number.isFinite);
    if (ratios.length) text += ` ${median(ratios).toFixed(2)}x`;
  }
  return text;
}

/** The Markdown table of `results` with padded columns. */
export function table(results: Results, systems: readonly System[]): string {
  const header = ["figure", ...systems.map((s) => s.label)];
  const rows: string[][] = [];
  for (const figure of FIGURES) {
    const bySystem = results.get(figure.workload);
    if (!bySystem) continue;
    const baseline = bySystem.get(BASELINE);
    const first = [...bySystem.values()][0] ?? [];
    rows.push([
      figure.label(first),
      ...systems.map((s) => cell(figure, bySystem.get(s.id) ?? [], baseline)),
    ]);
  }
  const all = [header, ...rows];
  const widths = header.map((_, c) =>
    Math.max(3, ...all.map((r) => [...r[c]].length))
  );
  const line = (r: string[]) =>
    `| ${
      r.map((text, c) => {
        const pad = " ".repeat(widths[c] - [...text].length);
        return c ? pad + text : text + pad;
      }).join(" | ")
    } |`;
  const rule = `|${
    widths.map((w, c) => c ? ` ${"-".repeat(w - 1)}: ` : ` ${"-".repeat(w)} `)
      .join("|")
  }|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}
