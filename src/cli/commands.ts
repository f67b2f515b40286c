/**
 * The CLI's commands. Each takes the PQ and the parsed command line, and
 * prints its result (plain text, or JSON with `--json`).
 *
 * @module
 */

import process from "node:process";
import {
  actOnAllFailed,
  allSchedules,
  browseJobs,
  findJob,
  queueNamed,
  storedStates,
} from "../admin.ts";
import type { PQ } from "../create_pq.ts";
import { checkJobId } from "../job_info.ts";
import type { PQStats } from "../stats.ts";
import { count, duration, table, time } from "./format.ts";
import { serve } from "./serve.ts";
import { type CommandLine, numberOption, UsageError } from "./usage.ts";

/** What a command prints with. */
export interface Output {
  out(text: string): void;
}

/** A command: resolves with the exit code. */
export type Command = (
  pq: PQ,
  line: CommandLine,
  output: Output,
) => Promise<number>;

const json = (value: unknown) => JSON.stringify(value, null, 2);

/** The one positional argument a command needs. */
function argument(line: CommandLine, name: string): string {
  const [value, ...rest] = line.positionals;
  if (value === undefined || rest.length) {
    throw new UsageError(
      `${line.command} needs exactly one <${name}>: received ${line.positionals.length}`,
    );
  }
  return value;
}

/** A job id argument, checked. */
function jobId(line: CommandLine): string {
  const value = argument(line, "id");
  try {
    return checkJobId(value, `${line.command} job`);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function statusText(stats: PQStats): string {
  const sum = (
    ms: PQStats["queues"][0]["perMinute"],
    key: "completed" | "failed",
  ) => ms.reduce((s, m) => s + m[key], 0);
  const rows = stats.queues.map((q) => [
    q.name,
    count(q.counts.ready),
    count(q.counts.scheduled),
    count(q.counts.running),
    count(q.counts.failed),
    count(q.counts.completed),
    count(q.counts.cancelled),
    duration(q.lagMs),
    `${sum(q.perMinute, "completed")}`,
    `${sum(q.perMinute, "failed")}`,
  ]);
  const header = [
    "QUEUE",
    "READY",
    "SCHEDULED",
    "RUNNING",
    "FAILED",
    "COMPLETED",
    "CANCELLED",
    "LAG",
    "DONE/1H",
    "FAILED/1H",
  ];
  return rows.length
    ? table(header, rows)
    : "No queues yet: no jobs, and nothing finished in the last hour.";
}

const migrate: Command = async (pq, _line, output) => {
  await pq.create();
  output.out(`The table ${pq.table} is ready.`);
  return 0;
};

const status: Command = async (pq, line, output) => {
  const render = async () => {
    const stats = await pq.stats();
    return line.options.json ? json(stats) : statusText(stats);
  };
  if (!line.options.watch) {
    output.out(await render());
    return 0;
  }
  // Redraws every second until Ctrl-C (or SIGTERM).
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    while (!stop.signal.aborted) {
      const text = await render();
      output.out(`\x1b[2J\x1b[H${time(new Date())}\n\n${text}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1_000);
        stop.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  return 0;
};

const jobs: Command = async (pq, line, output) => {
  const queue = argument(line, "queue");
  let states: string[];
  try {
    states = storedStates(line.options.state);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const limit = numberOption(line.options.limit, "limit", 20, 1, 10_000);
  const before = line.options.before;
  if (before !== undefined && !/^[1-9]\d{0,18}$/.test(before)) {
    throw new UsageError(
      `--before must be a job id: received ${JSON.stringify(before)}`,
    );
  }
  const list = await browseJobs(pq, { queue, states, before, limit });
  if (line.options.json) {
    output.out(json(list));
    return 0;
  }
  output.out(table(
    ["ID", "STATE", "TASK", "ATTEMPTS", "ENQUEUED", "DATA", "ERROR"],
    list.map((j) => [
      j.id,
      j.state === "done" ? "completed" : j.state,
      j.task ?? "-",
      `${j.attempts}`,
      time(j.enqueuedAt),
      j.preview.length > 40 ? `${j.preview.slice(0, 39)}…` : j.preview,
      j.error ?? "",
    ]),
  ));
  return 0;
};

const job: Command = async (pq, line, output) => {
  const id = jobId(line);
  const info = await findJob(pq, id);
  if (!info) {
    console.error(`pq: no job ${id}`);
    return 1;
  }
  if (line.options.json) {
    output.out(json(info));
    return 0;
  }
  const rows: [string, string][] = [
    ["id", info.id],
    ["queue", info.queue],
    ["task", info.task ?? "-"],
    ["key", info.key ?? "-"],
    ["state", info.state],
    [
      "attempt",
      `${info.attempt}${info.maxAttempts ? ` of ${info.maxAttempts}` : ""}`,
    ],
    ["enqueued", time(info.enqueuedAt)],
    ["scheduled", time(info.scheduleAt)],
    ["started", time(info.startedAt)],
    ["finished", time(info.finishedAt)],
    ["data", json(info.data ?? info.rawData)],
  ];
  if (info.progress !== undefined) rows.push(["progress", json(info.progress)]);
  if (info.result !== undefined) rows.push(["result", json(info.result)]);
  if (info.error) {
    rows.push(["error", info.error.message]);
    if (info.error.stack) rows.push(["stack", info.error.stack]);
  }
  output.out(
    rows.map(([k, v]) =>
      `${k.padEnd(10)} ${v.replaceAll("\n", "\n           ")}`
    ).join("\n"),
  );
  return 0;
};

const retry: Command = async (pq, line, output) => {
  if (line.options.failed) {
    if (line.positionals.length) {
      throw new UsageError("retry takes either <id> or --failed, not both");
    }
    const n = await actOnAllFailed(pq, "retry", line.options.queue ?? null);
    output.out(
      line.options.json ? json({ retried: n }) : `Retried ${n} failed jobs.`,
    );
    return 0;
  }
  if (line.options.queue !== undefined) {
    throw new UsageError("--queue goes with retry --failed");
  }
  const id = jobId(line);
  const info = await findJob(pq, id);
  if (!info || !await queueNamed(pq, info.queue).retry(id)) {
    console.error(`pq: no failed job ${id}`);
    return 1;
  }
  output.out(
    line.options.json ? json({ retried: 1 }) : `Job ${id} is ready again.`,
  );
  return 0;
};

const cancel: Command = async (pq, line, output) => {
  const id = jobId(line);
  const info = await findJob(pq, id);
  const found = info && await queueNamed(pq, info.queue).cancel(id);
  if (!found) {
    console.error(
      `pq: no job ${id} that can be cancelled${
        info ? ` (it is ${info.state})` : ""
      }`,
    );
    return 1;
  }
  output.out(
    line.options.json
      ? json({ id, was: found })
      : found === "failed"
      ? `Job ${id} was failed: removed.`
      : `Job ${id} (${found}) is cancelled.`,
  );
  return 0;
};

/** `pause <queue>` and `resume <queue>`: stored, so every process obeys. */
function pauseCommand(pause: boolean): Command {
  return async (pq, line, output) => {
    const name = argument(line, "queue");
    const queue = queueNamed(pq, name);
    const changed = pause ? await queue.pause() : await queue.resume();
    const state = pause ? "paused" : "running";
    output.out(
      line.options.json
        ? json({ queue: name, state, changed })
        : changed
        ? `Queue ${name} is ${state}.`
        : `Queue ${name} was ${state} already.`,
    );
    return 0;
  };
}

const prune: Command = async (pq, line, output) => {
  const n = await pq.prune();
  output.out(
    line.options.json ? json({ removed: n }) : `Removed ${n} finished jobs.`,
  );
  return 0;
};

const schedules: Command = async (pq, line, output) => {
  const list = await allSchedules(pq);
  if (line.options.json) {
    output.out(json(list));
    return 0;
  }
  output.out(
    list.length
      ? table(
        ["QUEUE", "NAME", "CRON", "TIMEZONE", "TASK", "NEXT", "LAST"],
        list.map((s) => [
          s.queue,
          s.name,
          s.cron,
          s.timezone ?? "UTC",
          s.task,
          s.paused ? "paused" : time(s.nextAt),
          time(s.lastAt),
        ]),
      )
      : "No schedules.",
  );
  return 0;
};

const dashboardCommand: Command = async (pq, line, output) => {
  const port = numberOption(line.options.port, "port", 8080, 0, 65_535);
  // Loaded here: the other commands do not need Hono.
  const { dashboard } = await import("../../dashboard.ts");
  const server = await serve(
    dashboard(pq, { readOnly: !line.options.write }),
    port,
  );
  output.out(
    `Dashboard at ${server.url} (${
      line.options.write ? "read-write" : "read-only"
    }); Ctrl-C stops it.`,
  );
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await server.close();
  return 0;
};

/** The commands by name. */
export const COMMANDS: Record<string, Command> = {
  migrate,
  status,
  jobs,
  job,
  retry,
  cancel,
  pause: pauseCommand(true),
  resume: pauseCommand(false),
  prune,
  schedules,
  dashboard: dashboardCommand,
};
