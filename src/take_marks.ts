/**
 * Low-water marks: where a lane's takes start while dead index entries pile
 * up at the head of its index.
 *
 * Every take deletes the rows it takes (a lease claim moves them out of the
 * ready index). Their index entries go when vacuum runs, or sooner when a
 * scan sees that the rows are dead to every snapshot and marks the entries.
 * While an old snapshot lives (an idle `BEGIN` that took an xid, a long
 * `REPEATABLE READ` report, `pg_dump`), neither may happen, and a take that
 * walks its index from the start visits the entry of every job taken since
 * the snapshot began: 4,048 buffers and a millisecond a take after 15 s at
 * 250 jobs/s, 5 ms after 12,000 jobs (bench/RESULTS.md, pressure).
 *
 * So each lane remembers the highest key (`expected_at`, `id`) its takes
 * reached, in each region of the order (jobs with an `expected_at` first,
 * then jobs without). A mark settles {@linkcode SETTLE_MS} after the take
 * that reached it: every ready job below it that this take could see was
 * taken, or locked by another taker. While a take from the start runs
 * longer than {@linkcode SLOW_WALK_MS} on the server, the lane's takes start
 * at its settled marks instead, and one take per {@linkcode FULL_CHECK_MS}
 * still starts from the index's start. That one finds the jobs that became
 * ready below the marks: a put whose transaction committed more than
 * `SETTLE_MS` after its insert, a scheduled job that another process made
 * ready under its old id, a job whose taker rolled back. They are taken
 * within about a second, after jobs that sort behind them. Takes past the
 * marks also skip the look for the queue's next due time (a scheduled job
 * that came due, a lease that ended), whose indexes fill with dead entries
 * in the same way (see `dueCte`): the take from the start makes it. While
 * takes from the start are fast, every take is one, and the order is
 * strict.
 *
 * @module
 */

import type { TakenRow } from "./sql/take_jobs.ts";
import type { TakeLane } from "./take.ts";

/** A take from the start slower than this (ms, on the server) is slow. */
export const SLOW_WALK_MS = 1;
/** A mark is trusted this many ms after the take that reached it. */
export const SETTLE_MS = 250;
/** While takes start past marks, one in this many ms starts at the start. */
export const FULL_CHECK_MS = 1_000;

/** A position among jobs with an `expected_at`. */
interface EarlyKey {
  /** `expected_at` in ms since 1970, rounded down. */
  ms: number;
  id: string;
}

/** The highest positions one take reached, by region. */
interface Reached {
  at: number;
  early: EarlyKey | null;
  late: string | null;
}

/** The low-water marks of one lane of one PQ. */
export class LaneMarks {
  /** The last take from the start was slow. */
  #slow = false;
  /** When the last take from the start began. */
  #fullAt = -Infinity;
  /** The last take started past the marks. */
  #lastMarked = false;
  #early: EarlyKey | null = null;
  #late: string | null = null;
  /** Takes whose marks have not settled yet, oldest first. */
  #recent: Reached[] = [];

  /**
   * Where a take that begins `now` starts: the marks as its three
   * parameters (see `pickReadySql`), or null for the index's start.
   */
  start(now: number): string[] | null {
    if (!this.#slow || now - this.#fullAt >= FULL_CHECK_MS) {
      this.#fullAt = now;
      return null;
    }
    this.#settle(now);
    const early = this.#early, late = this.#late;
    if (!early && !late) return null;
    return [
      // A millisecond early: `expected_at` has microseconds.
      early ? new Date(early.ms - 1).toISOString() : "-infinity",
      early?.id ?? "0",
      late ?? "0",
    ];
  }

  /**
   * Notes what a take that began at `startedAt` found; `fromStart` when it
   * walked from the index's start, which ran `walkMs` on the server.
   */
  note(
    startedAt: number,
    fromStart: boolean,
    walkMs: number,
    rows: readonly TakenRow[],
  ): void {
    this.#lastMarked = !fromStart;
    if (fromStart) {
      this.#fullAt = startedAt;
      this.#slow = walkMs > SLOW_WALK_MS;
    }
    // Marks are only of use while the walk is slow: keep no history before.
    if (!this.#slow || !rows.length) return;
    this.#settle(startedAt);
    const reached: Reached = { at: startedAt, early: null, late: null };
    for (const row of rows) {
      if (row.expectedAt === null) {
        if (!reached.late || idBefore(reached.late, row.id)) {
          reached.late = row.id;
        }
      } else {
        const key = { ms: row.expectedAt.getTime(), id: row.id };
        if (!reached.early || earlyBefore(reached.early, key)) {
          reached.early = key;
        }
      }
    }
    this.#recent.push(reached);
  }

  /**
   * After a take past the marks: ms until the next take from the start,
   * which a lane that found nothing should not wait beyond (a job below the
   * marks announces itself, but only a take from the start finds it). Null
   * after a take from the start: it hid nothing, and a getter on an empty
   * queue polls no more than before.
   */
  fullCheckInMs(now: number): number | null {
    return this.#lastMarked
      ? Math.max(1, this.#fullAt + FULL_CHECK_MS - now)
      : null;
  }

  /** Folds the marks of takes older than `SETTLE_MS` into the settled ones. */
  #settle(now: number): void {
    const recent = this.#recent;
    let settled = 0;
    while (settled < recent.length && now - recent[settled].at >= SETTLE_MS) {
      const { early, late } = recent[settled++];
      if (early && (!this.#early || earlyBefore(this.#early, early))) {
        this.#early = early;
      }
      if (late && (!this.#late || idBefore(this.#late, late))) {
        this.#late = late;
      }
    }
    if (settled) recent.splice(0, settled);
  }
}

/**
 * Plain lanes kept at most: an application that gets from ever new queue
 * names (one per user, say) must not grow this map forever. Forgetting marks
 * costs nothing but a walk from the start.
 */
const MAX_PLAIN_LANES = 10_000;

/** The marks of every lane of one PQ. */
export class TakeMarks {
  readonly #plain = new Map<string, LaneMarks>();
  /** Task lanes by their task list, which a worker keeps while it runs. */
  readonly #tasks = new WeakMap<readonly string[], LaneMarks>();

  /** The marks of a lane of `queue`, or null when its takes keep none. */
  of(queue: string, lane: TakeLane): LaneMarks | null {
    switch (lane.kind) {
      case "plain":
        if (this.#plain.size >= MAX_PLAIN_LANES && !this.#plain.has(queue)) {
          this.#plain.clear();
        }
        return getOrAdd(this.#plain, queue);
      case "task":
        return getOrAdd(this.#tasks, lane.tasks);
      case "lease":
        return getOrAdd(this.#tasks, lane.claim.tasks);
      default:
        // A limited take chooses among groups (see `take_limited.ts`).
        return null;
    }
  }
}

function getOrAdd<K>(
  map: { get(key: K): LaneMarks | undefined; set(key: K, v: LaneMarks): void },
  key: K,
): LaneMarks {
  let marks = map.get(key);
  if (!marks) map.set(key, marks = new LaneMarks());
  return marks;
}

/** Ids are positive int8 as text: shorter is smaller. */
function idBefore(a: string, b: string): boolean {
  return a.length < b.length || (a.length === b.length && a < b);
}

function earlyBefore(a: EarlyKey, b: EarlyKey): boolean {
  return a.ms < b.ms || (a.ms === b.ms && idBefore(a.id, b.id));
}
