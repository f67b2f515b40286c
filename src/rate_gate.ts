/**
 * A worker's side of rate limits: before a batch of a rate-limited task,
 * reserve its start (committed at once, see `sql/rate_limit.ts`), and skip
 * the task until the window has room when the reservation is refused.
 *
 * The limit holds for the handlers' starts, not only for the
 * reservations: a start counts for its window plus a slack (a tenth of the window, at most
 * 100 ms), and a job taken later than four fifths of that after its
 * reservation was sent is put back unstarted. The last fifth (20 ms at
 * most) is for what runs between the take and the handler's first line:
 * reading the job's data, the `start` event, a pause of the garbage
 * collector on a busy machine. So a handler starts within the slack after
 * its reservation, and no window of `per` holds more than `limit` starts,
 * unless that way in takes longer than the fifth. (Without the fifth, a
 * take that came back just within the slack started its handler just
 * after it, and a window of CI's once held 51 starts of 50.)
 *
 * @module
 */

import type { PQCore } from "./core.ts";
import { backgroundError } from "./report.ts";
import { releaseStart, reserveStart } from "./sql/rate_limit.ts";
import type { TaskDefinition } from "./tasks.ts";

/** The most slack between a reservation and its handler's start. */
const MAX_SLACK_MS = 100;
/** The share of the slack a take may use; the rest is the handler's way in. */
const TAKE_SHARE_OF_SLACK = 0.8;

/** What a batch of a task may do. */
export interface Gate {
  /** Greater than 0: start nothing; look again in this many ms. */
  waitMs: number;
  /** Once jobs are taken: whether they may start (else put them back). */
  admit?: () => boolean;
  /** True once a start was used (or none was needed). */
  used: boolean;
  /** Gives the reserved start back, unused. */
  giveBack(): void;
}

const OPEN: Gate = { waitMs: 0, used: true, giveBack() {} };

/** The rate limits of one worker's limited tasks. */
export class RateGate {
  readonly #core: PQCore;
  readonly #queue: string;
  /** When each refused task may try again (performance.now() time). */
  readonly #closedUntil = new Map<string, number>();

  /**
   * @param core The PQ's shared state.
   * @param queue The worker's queue.
   */
  constructor(core: PQCore, queue: string) {
    this.#core = core;
    this.#queue = queue;
  }

  /** Reserves a start of `task` if it has a rate limit. */
  async enter(task: TaskDefinition): Promise<Gate> {
    const rate = task.limits?.rateLimit;
    if (!rate) return OPEN;
    const now = performance.now();
    const until = this.#closedUntil.get(task.name) ?? 0;
    if (until > now) return { ...OPEN, waitMs: until - now };
    const core = this.#core;
    const slackMs = Math.min(MAX_SLACK_MS, rate.perMs / 10);
    const sentAt = performance.now();
    const reservation = await reserveStart(
      core.listener.client(),
      core.names,
      this.#queue,
      task.name,
      rate.limit,
      rate.perMs + slackMs,
    );
    if (reservation.id === null) {
      this.#closedUntil.set(task.name, performance.now() + reservation.waitMs);
      return { ...OPEN, waitMs: reservation.waitMs };
    }
    const id = reservation.id;
    const takeWithinMs = slackMs * TAKE_SHARE_OF_SLACK;
    const gate: Gate = {
      waitMs: 0,
      used: false,
      admit() {
        gate.used = performance.now() - sentAt <= takeWithinMs;
        return gate.used;
      },
      giveBack() {
        releaseStart(core.listener.client(), core.names, id).catch((error) =>
          core.report(
            backgroundError("Giving back a rate limit's start", error),
          )
        );
      },
    };
    return gate;
  }
}
