/**
 * Enqueues the ticks of a queue's schedules, in every running `work()` of
 * the queue (and once in `work({ burst: true })`, for serverless cron
 * triggers).
 *
 * Exactly one job per tick, however many processes run: a tick is claimed
 * by a compare-and-set on the schedule's next tick (`claimTicks`) in the
 * same transaction that inserts its job. No leader, no session lock, so it
 * works behind a transaction-mode pooler. Each process sleeps until the next
 * tick of the queue (by the server's clock) or until a `schedule <queue>`
 * NOTIFY says that schedules changed; when idle it costs one statement per
 * due tick, not one per second. Without LISTEN it also looks every minute.
 *
 * Missed ticks (no worker ran): only the latest is enqueued, or with
 * `backfill` every tick within that window, oldest first, at most 1,000.
 *
 * @module
 */

import type { PQCore } from "./core.ts";
import { type Cron, parseCron } from "./cron.ts";
import { delay } from "./delay.ts";
import { backgroundError } from "./report.ts";
import { insertJobs } from "./sql/insert_jobs.ts";
import { claimTicks, dueSchedules, type ScheduleRow } from "./sql/schedules.ts";

/** Due schedules read per wake. */
const DUE_BATCH = 100;
/** Look again at least this often (changes that no NOTIFY announced). */
const RECHECK_MS = 60_000;
/** The most ticks one backfill enqueues. */
const MAX_BACKFILL = 1_000;

/** Enqueues the due ticks of one queue's schedules. */
export class Scheduler {
  readonly #core: PQCore;
  readonly #queue: string;
  /** Parsed crons, by expression and time zone. */
  readonly #crons = new Map<string, Cron>();
  #wake: AbortController | null = null;

  /**
   * @param core The PQ's shared state.
   * @param queue The queue whose schedules to run.
   */
  constructor(core: PQCore, queue: string) {
    this.#core = core;
    this.#queue = queue;
  }

  /** Schedules changed (a NOTIFY): look again now. */
  poke(): void {
    this.#wake?.abort();
  }

  /** Runs until `stop` aborts: enqueue due ticks, sleep until the next. */
  async run(stop: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      let sleepMs = RECHECK_MS;
      try {
        const next = await this.enqueueDue();
        if (next !== null) sleepMs = Math.min(sleepMs, next);
      } catch (error) {
        this.#core.report(backgroundError("Enqueuing scheduled jobs", error));
        sleepMs = Math.min(sleepMs, this.#core.listener.pollIntervalMs);
      }
      // A stop while enqueueDue() ran fired no listener: without this check
      // the sleep below held the worker's stop for up to RECHECK_MS.
      if (stop.aborted) return;
      const wake = new AbortController();
      this.#wake = wake;
      const onStop = () => wake.abort();
      stop.addEventListener("abort", onStop, { once: true });
      try {
        await delay(sleepMs, wake.signal);
      } finally {
        stop.removeEventListener("abort", onStop);
        this.#wake = null;
      }
    }
  }

  /**
   * Enqueues every due tick once. Returns milliseconds until the next tick
   * of the queue's schedules, or null when none is pending.
   */
  async enqueueDue(): Promise<number | null> {
    const { sql, names } = this.#core;
    for (;;) {
      const read = await dueSchedules(sql, names, this.#queue, DUE_BATCH);
      let soonest = read.nextInMs ?? Infinity;
      for (const schedule of read.due) {
        const next = await this.#fire(schedule, read.now);
        if (next) {
          soonest = Math.min(soonest, next.getTime() - read.now.getTime());
        }
      }
      if (read.due.length < DUE_BATCH) {
        return soonest === Infinity ? null : Math.max(0, soonest);
      }
    }
  }

  /**
   * Claims and enqueues a due schedule's ticks, if no other worker did.
   * Returns its next tick.
   */
  async #fire(schedule: ScheduleRow, now: Date): Promise<Date | null> {
    const cron = await this.#cron(schedule);
    const from = schedule.backfillMs === null ? schedule.nextAt : new Date(
      Math.max(schedule.nextAt.getTime(), now.getTime() - schedule.backfillMs),
    );
    // Without backfill, the latest due tick; with it, those in its window
    // (possibly none: the schedule then only moves on).
    const ticks = cron.between(
      from,
      now,
      schedule.backfillMs === null ? 1 : MAX_BACKFILL,
    );
    const next = cron.next(now);
    if (next === null) return null; // never again: leave it as it is
    const { sql, names } = this.#core;
    await sql.begin(async (tx) => {
      const won = await claimTicks(
        tx,
        names,
        this.#queue,
        schedule,
        ticks.at(-1) ?? schedule.lastAt,
        next,
      );
      if (!won || ticks.length === 0) return;
      // Each job is scheduled at its tick: ready at once, and its handler
      // knows which tick it is (job.scheduleAt).
      await insertJobs(
        tx,
        this.#core.statements.insert,
        this.#queue,
        schedule.task,
        ticks.map((tick) => ({
          data: schedule.args,
          scheduleAt: { at: tick },
        })),
      );
    });
    return next;
  }

  async #cron(schedule: ScheduleRow): Promise<Cron> {
    const key = `${schedule.timezone ?? ""} ${schedule.cron}`;
    let cron = this.#crons.get(key);
    if (!cron) {
      cron = await parseCron(schedule.cron, schedule.timezone ?? undefined);
      this.#crons.set(key, cron);
    }
    return cron;
  }
}
