/**
 * Recurring schedules of a queue: stored in the database (`pq_schedules`),
 * changeable at runtime from any process, run by every `work()` of the
 * queue (see `scheduler.ts`).
 *
 * @module
 */

import type { Codec } from "./codecs.ts";
import type { PQCore } from "./core.ts";
import { parseCron } from "./cron.ts";
import { describe } from "./describe.ts";
import { parseDuration } from "./duration.ts";
import { checkName } from "./names.ts";
import { checkBoolean, checkOptions } from "./check_options.ts";
import { withAction } from "./new_jobs.ts";
import type { ScheduleInfo, ScheduleOptions } from "./options.ts";
import {
  deleteSchedule,
  listSchedules,
  pauseSchedule,
  upsertSchedule,
} from "./sql/schedules.ts";
import type { Task } from "./tasks.ts";
import type { Executor } from "./types.ts";
import { validateInput } from "./validation.ts";

const SCHEDULE_OPTIONS = ["args", "timezone", "backfill", "paused"] as const;

/** Where a queue's schedules are kept, and how its data is encoded. */
export interface ScheduleTarget {
  core: PQCore;
  db: Executor;
  queue: string;
  codec: Codec;
}

/** Creates or updates a schedule (see `Queue.schedule`). */
export async function saveSchedule(
  target: ScheduleTarget,
  name: string,
  cron: string,
  task: Task<unknown> | string,
  options: ScheduleOptions | undefined,
): Promise<void> {
  const action = `schedule ${describe(name)}`;
  let input;
  try {
    checkName(name, "A schedule name");
    const taskName = typeof task === "string"
      ? checkName(task, "The task name")
      : typeof task === "function" && typeof task.taskName === "string"
      ? task.taskName
      : (() => {
        throw new TypeError(
          `the task must be a task from queue.task() or its name: received ${
            describe(task)
          }`,
        );
      })();
    const o = checkOptions(options, SCHEDULE_OPTIONS);
    const parsed = await parseCron(cron, o.timezone);
    const args = o.args === undefined ? {} : o.args;
    const schema = target.core.tasks.get(target.queue)?.get(taskName)?.schema;
    if (schema) await validateInput(schema, args, action);
    input = {
      name,
      cron,
      timezone: o.timezone ?? null,
      task: taskName,
      args: target.codec.encode(args),
      backfillMs: o.backfill === undefined
        ? null
        : parseDuration(o.backfill, "backfill"),
      paused: checkBoolean(o.paused, "paused"),
      nextAt: parsed.next(new Date())!,
    };
  } catch (error) {
    withAction(action, error);
  }
  await upsertSchedule(target.db, target.core.names, target.queue, input);
}

/** The queue's schedules, with their arguments decoded. */
export async function readSchedules(
  target: ScheduleTarget,
): Promise<ScheduleInfo[]> {
  const rows = await listSchedules(target.db, target.core.names, target.queue);
  return rows.map((row) => {
    let args: unknown;
    try {
      args = target.codec.decode(row.args);
    } catch {
      args = undefined;
    }
    return {
      name: row.name,
      cron: row.cron,
      timezone: row.timezone,
      task: row.task,
      args,
      backfillMs: row.backfillMs,
      nextAt: row.nextAt,
      lastAt: row.lastAt,
      paused: row.paused,
    };
  });
}

/** Removes a schedule; true if it existed. */
export async function removeSchedule(
  target: ScheduleTarget,
  name: string,
): Promise<boolean> {
  checkName(name, "A schedule name");
  return await deleteSchedule(
    target.db,
    target.core.names,
    target.queue,
    name,
  );
}

/** Pauses or resumes a schedule; true if it exists. */
export async function setSchedulePaused(
  target: ScheduleTarget,
  name: string,
  paused: boolean,
): Promise<boolean> {
  checkName(name, "A schedule name");
  return await pauseSchedule(
    target.db,
    target.core.names,
    target.queue,
    name,
    paused,
    async (cron, timezone) =>
      (await parseCron(cron, timezone ?? undefined)).next(new Date())!,
  );
}
