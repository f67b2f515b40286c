/**
 * What the CLI and the dashboard do to a PQ's table beyond the public API:
 * find a job by id alone, list a queue's jobs, every queue's schedules, the
 * paused queues and the tasks registered in this process with their limits,
 * and retry or delete all failed jobs in batches of a bounded size.
 *
 * @module
 */

import { coreOf, type PQ } from "./create_pq.ts";
import { checkJobId, toJobInfo } from "./job_info.ts";
import type { JobInfo } from "./options.ts";
import { jsonCodec } from "./codecs.ts";
import type { Queue } from "./queue.ts";
import {
  actOnFailed,
  type AnySchedule,
  BULK_BATCH,
  deleteFailedJob,
  type JobFilter,
  type JobSummary,
  listAllSchedules,
  listJobs,
  queueOfJob,
} from "./sql/browse_jobs.ts";
import { readJob } from "./sql/job_state.ts";
import { listPaused, type PausedQueue } from "./sql/pause.ts";

export type { AnySchedule, JobSummary, PausedQueue };

/** The states a list can be filtered by, as the user names them. */
export const LISTED_STATES: readonly string[] = [
  "ready",
  "scheduled",
  "running",
  "completed",
  "failed",
  "cancelled",
];

/**
 * The stored states of a state as users name it: `completed` includes the
 * `done` records of `job.update()`.
 *
 * @throws {TypeError} If `state` is not one of {@linkcode LISTED_STATES}.
 */
export function storedStates(state: string | undefined | null): string[] {
  if (!state) return [];
  if (!LISTED_STATES.includes(state)) {
    throw new TypeError(
      `Unknown state ${JSON.stringify(state)}: expected one of ${
        LISTED_STATES.join(", ")
      }`,
    );
  }
  return state === "completed" ? ["completed", "done"] : [state];
}

/** A queue by its exact name, with no codec suffix read from it. */
export function queueNamed(pq: PQ, name: string): Queue {
  return pq.queue(name, { codec: "json" });
}

/** A page of a queue's jobs, newest first. */
export async function browseJobs(
  pq: PQ,
  filter: JobFilter,
): Promise<JobSummary[]> {
  const core = coreOf(pq);
  return await listJobs(core.sql, core.names, filter);
}

/** A job of any queue by its id, or null. */
export async function findJob(pq: PQ, id: string): Promise<JobInfo | null> {
  const text = checkJobId(id, "look up job");
  const core = coreOf(pq);
  const queue = await queueOfJob(core.sql, core.names, text);
  if (queue === null) return null;
  const row = await readJob(core.sql, core.names, queue, text);
  return row && toJobInfo(row, jsonCodec);
}

/** Retries or deletes every failed job of a queue (or of all), in batches. */
export async function actOnAllFailed(
  pq: PQ,
  action: "retry" | "delete",
  queue: string | null,
): Promise<number> {
  const core = coreOf(pq);
  let total = 0;
  for (;;) {
    const n = await actOnFailed(core.sql, core.names, action, queue);
    total += n;
    if (n < BULK_BATCH) return total;
  }
}

/** Deletes one failed job; true if it was there. */
export async function deleteFailed(
  pq: PQ,
  queue: string,
  id: string,
): Promise<boolean> {
  const core = coreOf(pq);
  return await deleteFailedJob(
    core.sql,
    core.names,
    queue,
    checkJobId(id, "delete job"),
  );
}

/** Every queue's schedules. */
export async function allSchedules(pq: PQ): Promise<AnySchedule[]> {
  const core = coreOf(pq);
  return await listAllSchedules(core.sql, core.names);
}

/** Every paused queue of the table, by name. */
export async function pausedQueues(pq: PQ): Promise<PausedQueue[]> {
  const core = coreOf(pq);
  return await listPaused(core.sql, core.names);
}

/** A task registered in this process, with its mode and limits. */
export interface RegisteredTask {
  queue: string;
  task: string;
  /** Lease mode's lease in ms; null: transaction mode. */
  leaseMs: number | null;
  concurrency: number | null;
  /** Whether jobs get their group from the task's `group` function. */
  groupFunction: boolean;
  groupConcurrency: number | null;
  rateLimit: { limit: number; perMs: number } | null;
}

/**
 * The tasks registered on this PQ, by queue and name. Limits are code, not
 * data: they live in each process's registry, so another process may run
 * the same task with other limits, or not at all.
 */
export function registeredTasks(pq: PQ): RegisteredTask[] {
  const list: RegisteredTask[] = [];
  for (const [queue, registry] of coreOf(pq).tasks) {
    for (const d of registry.values()) {
      list.push({
        queue,
        task: d.name,
        leaseMs: d.leaseMs,
        concurrency: d.limits?.concurrency ?? null,
        groupFunction: Boolean(d.limits?.groupOf),
        groupConcurrency: d.limits?.groupConcurrency ?? null,
        rateLimit: d.limits?.rateLimit ?? null,
      });
    }
  }
  return list.sort((a, b) =>
    a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : a.task < b.task ? -1 : 1
  );
}
