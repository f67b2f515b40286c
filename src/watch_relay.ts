/**
 * Tells `waitFor()`s that a transaction-mode job ended, whenever their watch
 * arrived.
 *
 * A batch's jobs end at its commit. A watch registered before the take is
 * seen by the take itself; one registered while the batch runs arrives by
 * NOTIFY (`watch <id>`) and is answered in the batch's last statement; one
 * that arrives after that statement, or just after the commit, while the
 * waiter still saw the job running, is answered here with a NOTIFY of its
 * own; one that arrives while the take runs (committed after its snapshot)
 * is remembered until the take returns. Without these, such a waiter slept
 * until its next poll (tests/lifecycle_test.ts, on Node about one run in
 * six).
 *
 * @module
 */

/** How long after its commit a job's end can still be told. */
const RECENT_MS = 2_000;

/** Sends `done <id> <state>`. */
export type Tell = (id: string, state: string) => Promise<void>;

/** The watches of one worker's transaction-mode jobs. */
export class WatchRelay {
  readonly #tell: Tell;
  /** Jobs of open batches: watched, and told in the batch already. */
  readonly #inFlight = new Map<string, { watched: boolean; told: boolean }>();
  /** Jobs that ended lately: their final state and when. */
  readonly #recent = new Map<string, { state: string; at: number }>();
  /**
   * Watches that arrived before the take that took their job returned (the
   * watch committed while the take ran, after its snapshot): when.
   */
  readonly #early = new Map<string, number>();

  /** @param tell Sends the NOTIFY, on a connection of pq's own. */
  constructor(tell: Tell) {
    this.#tell = tell;
  }

  /** A batch took these jobs. */
  taken(ids: readonly string[]): void {
    const now = performance.now();
    for (const id of ids) {
      const early = this.#early.get(id);
      const watched = early !== undefined && now - early < RECENT_MS;
      this.#early.delete(id);
      this.#inFlight.set(id, { watched, told: false });
    }
  }

  /** Whether a watch arrived for a job of an open batch. */
  watched(id: string): boolean {
    return this.#inFlight.get(id)?.watched ?? false;
  }

  /** The batch's last statement tells this job's end. */
  told(id: string): void {
    const job = this.#inFlight.get(id);
    if (job) job.told = true;
  }

  /** A `watch <id>` notification arrived. */
  onWatch(id: string): void {
    const job = this.#inFlight.get(id);
    if (job) {
      job.watched = true;
      return;
    }
    const now = performance.now();
    const recent = this.#recent.get(id);
    if (recent && now - recent.at < RECENT_MS) {
      this.#send(id, recent.state);
      return;
    }
    for (const [other, at] of this.#early) {
      if (now - at < RECENT_MS) break;
      this.#early.delete(other);
    }
    this.#early.delete(id);
    this.#early.set(id, now);
  }

  /**
   * The batch ended: `ended` has the final state of the jobs that ended if
   * it committed (empty if it rolled back).
   */
  settled(
    ids: readonly string[],
    ended: ReadonlyMap<string, string>,
  ): void {
    const now = performance.now();
    // Oldest first (a Map keeps insertion order): stop at the first fresh
    // one, so a busy worker pays for what expired, not for all it keeps.
    for (const [id, recent] of this.#recent) {
      if (now - recent.at < RECENT_MS) break;
      this.#recent.delete(id);
    }
    for (const id of ids) {
      const job = this.#inFlight.get(id);
      this.#inFlight.delete(id);
      const state = ended.get(id);
      if (state === undefined) continue;
      this.#recent.delete(id); // re-inserted last, in time order
      this.#recent.set(id, { state, at: now });
      if (job?.watched && !job.told) this.#send(id, state);
    }
  }

  #send(id: string, state: string): void {
    this.#tell(id, state).catch(() => {
      // The waiter looks again at its next poll.
    });
  }
}
