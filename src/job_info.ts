/**
 * A job's life seen from outside: looking it up, and waiting for it to end.
 *
 * `waitFor()` is woken by NOTIFY: it registers a watch on the job
 * (`pq_signals`), and whichever worker ends the job sends `done <id>` with
 * its final state. It also looks again every `pollInterval`, the safety net
 * for a NOTIFY that cannot arrive (behind a pooler) or a watch registered
 * after a worker finished without it.
 *
 * @module
 */

import type { Codec } from "./codecs.ts";
import type { PQCore } from "./core.ts";
import { describe } from "./describe.ts";
import type { JobInfo, JobState } from "./options.ts";
import { type JobRow, readJob } from "./sql/job_state.ts";
import type { StoredError } from "./stored_error.ts";
import type { Executor } from "./types.ts";
import { Waiter } from "./waiters.ts";
import { Lane } from "./waiters.ts";

/** The largest job id: ids are PostgreSQL `bigint`s. */
const MAX_JOB_ID = 2n ** 63n - 1n;

/** The final states. */
const FINAL = new Set<JobState>(["completed", "failed", "cancelled"]);

/**
 * Checks a job id argument; numbers and bigints are taken as their digits.
 *
 * @throws {TypeError} If it is not a job id.
 */
export function checkJobId(id: unknown, action: string): string {
  const text = typeof id === "bigint" || typeof id === "number"
    ? String(id)
    : id;
  if (
    typeof text !== "string" || !/^[1-9]\d{0,18}$/.test(text) ||
    BigInt(text) > MAX_JOB_ID
  ) {
    throw new TypeError(
      `Cannot ${action}: expected a job id (a string of digits): received ${
        describe(id)
      }`,
    );
  }
  return text;
}

/** A stored job as {@linkcode JobInfo}, decoded with `codec` where it can. */
export function toJobInfo(row: JobRow, codec: Codec): JobInfo {
  const decode = (text: string | null) => {
    if (text === null) return undefined;
    try {
      return codec.decode(text);
    } catch {
      return undefined;
    }
  };
  return {
    id: row.id,
    queue: row.queue,
    task: row.task,
    key: row.key,
    group: row.group,
    state: stateOf(row),
    data: decode(row.data),
    rawData: row.data,
    attempt: row.attempts,
    maxAttempts: row.maxAttempts,
    progress: decode(row.progress),
    result: decode(row.result),
    error: row.error === null ? null : JSON.parse(row.error) as StoredError,
    enqueuedAt: row.enqueuedAt,
    scheduleAt: row.scheduleAt,
    expectedAt: row.expectedAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
  };
}

/**
 * The state to report: a ready row that a transaction holds for deletion is
 * running (in transaction mode, the worker's uncommitted delete is all that
 * shows); a `done` record (`job.update()`) is completed.
 */
function stateOf(row: JobRow): JobState {
  if (row.state === "ready" && row.locked) return "running";
  if (row.state === "done") return "completed";
  return row.state as JobState;
}

/**
 * Waits until a job ends; resolves with it, or null after `timeoutMs` (or
 * when the job is unknown). A job that disappears was completed without
 * being kept (`keep.completed` is off): it is reported completed, with what
 * was last seen of it.
 */
export async function waitForJob(
  core: PQCore,
  db: Executor,
  queue: string,
  codec: Codec,
  id: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<JobInfo | null> {
  const deadline = performance.now() + timeoutMs;
  const waiter = new Waiter(new Lane(queue, "plain"));
  const unsubscribe = core.listener.subscribe((message) => {
    if (message.kind === "done" && message.id === id) waiter.wake();
  });
  try {
    let seen: JobInfo | null = null;
    for (let first = true;; first = false) {
      // Before the read: a NOTIFY that lands while it runs wakes the wait
      // below at once, instead of being forgotten.
      waiter.woken = false;
      const row = await readJob(db, core.names, queue, id, first);
      if (!row) {
        if (!seen) return null;
        return { ...seen, state: "completed", finishedAt: new Date() };
      }
      seen = toJobInfo(row, codec);
      if (FINAL.has(seen.state)) return seen;
      const remaining = deadline - performance.now();
      if (remaining <= 0 || core.closed) return null;
      await waiter.wait(
        Math.min(remaining, core.listener.pollIntervalMs),
        signal,
      );
    }
  } finally {
    unsubscribe();
  }
}
