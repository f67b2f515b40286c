/**
 * Wakes getters and workers that wait for jobs.
 *
 * Each PQ has one listener with one control connection of its own (a
 * one-connection `postgres` client built from the caller's options). It
 * LISTENs on the table's channel, registers the queues that have waiters in
 * `pq_waiting` (so puts notify only when somebody waits), and runs the
 * safety-net poll. It is separate from the caller's pool so that a getter
 * inside a transaction on a one-connection pool still gets woken, and so that
 * a dead LISTEN connection is noticed (`onclose`) and replaced.
 *
 * Waiters are grouped in lanes: the plain jobs (for `get()`) or the task jobs
 * (for `work()`) of one queue. A notification says how many jobs of each lane
 * a statement made ready, and wakes that many waiters, not all of them.
 *
 * @module
 */

import postgres from "postgres";
import type { TableNames } from "./schema.ts";
import type { Sql } from "./types.ts";
import { countReady, registerWaiting, tableOid } from "./sql/listen.ts";

/** The kind of jobs a waiter takes: plain jobs or task jobs. */
export type LaneKind = "plain" | "task";

/** How long a registration in `pq_waiting` lives unless renewed. */
const REGISTRATION_TTL_MS = 10_000;
/** Close the control connection after this long without waiters. */
const IDLE_CLOSE_MS = 10_000;
/** Longest pause between attempts to reconnect the control connection. */
const MAX_RECONNECT_DELAY_MS = 5_000;
/**
 * A connect attempt may take the driver's `connect_timeout` (30 s unless
 * set) plus this long for its statements before the control client is
 * given up and replaced: see `#connect()`.
 */
const CONNECT_STATEMENTS_MS = 5_000;
/**
 * The longest delay a timer takes (2^31 - 1 ms, about 24.8 days): runtimes
 * fire a longer `setTimeout` after 1 ms instead, which made getters poll in a
 * busy loop while a job was scheduled further ahead (tests/bad_input_test.ts).
 * Longer waits end early and look again.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** One getter (or idle worker slot) waiting for a job. */
export class Waiter {
  /** Set by a wake that this waiter has not acted on yet. */
  woken = false;
  #resolve: ((woken: boolean) => void) | null = null;

  constructor(readonly lane: Lane) {}

  /** Marks the waiter woken and ends its current wait. */
  wake(): void {
    this.woken = true;
    this.#resolve?.(true);
  }

  /** Ends the current wait as if it timed out (the PQ is closing). */
  cancel(): void {
    this.#resolve?.(false);
  }

  /**
   * Waits until woken (true), `ms` pass (false) or `signal` aborts (rejects
   * with its reason). Returns at once if a wake came in meanwhile.
   */
  wait(ms: number, signal?: AbortSignal): Promise<boolean> {
    if (this.woken) return Promise.resolve(true);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<boolean>((resolve, reject) => {
      const done = (result: boolean | { reason: unknown }) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.#resolve = null;
        if (typeof result === "boolean") resolve(result);
        else reject(result.reason);
      };
      const onAbort = () => done({ reason: signal!.reason });
      const timer = setTimeout(
        () => done(false),
        Math.min(Math.max(0, ms), MAX_TIMER_MS),
      );
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#resolve = done;
    });
  }
}

/** The waiters for one kind of job of one queue. */
export class Lane {
  /** Waiters in arrival order: wakes go to the longest waiting first. */
  readonly waiters: Set<Waiter> = new Set();
  #dueAt = Infinity;
  #dueTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly queue: string, readonly kind: LaneKind) {}

  /** Wakes up to `n` waiters that are not already woken. */
  wake(n: number): void {
    for (const waiter of this.waiters) {
      if (n <= 0) return;
      if (!waiter.woken) {
        waiter.wake();
        n--;
      }
    }
  }

  /** Wakes every waiter. */
  wakeAll(): void {
    this.wake(Infinity);
  }

  /**
   * Remembers when the earliest scheduled job of the queue comes due, and
   * wakes one waiter then (one timer per lane, not one per getter).
   */
  noteDue(dueInMs: number | null): void {
    if (dueInMs === null) return;
    const at = performance.now() + Math.max(0, dueInMs);
    if (at >= this.#dueAt) return;
    this.#dueAt = at;
    clearTimeout(this.#dueTimer);
    this.#dueTimer = setTimeout(() => {
      this.#dueAt = Infinity;
      this.wake(1);
    }, Math.min(Math.max(0, dueInMs) + 1, MAX_TIMER_MS));
  }

  /** Stops the due timer (the lane has no waiters left). */
  stop(): void {
    clearTimeout(this.#dueTimer);
    this.#dueTimer = undefined;
    this.#dueAt = Infinity;
  }
}

/** Settings of a {@linkcode Listener}. */
export interface ListenerOptions {
  /** The caller's client: its options build the control connection. */
  sql: Sql;
  /** The table whose jobs are waited for. */
  names: TableNames;
  /** LISTEN for notifications (false: poll only, for poolers). */
  listen: boolean;
  /** The safety-net poll's interval in milliseconds. */
  pollIntervalMs: number;
}

/** Wakes a PQ's waiters on notifications, polls and reconnects. */
export class Listener {
  readonly #options: ListenerOptions;
  readonly #id: string = crypto.randomUUID();
  /**
   * Moves on with every notification and reconnect, so a getter can tell
   * whether it may have missed one before it started to wait.
   */
  generation = 0;
  readonly #lanes = new Map<string, Lane>();
  #waiting = 0;
  #control: Sql | null = null;
  #relid: number | null = null;
  #up = false;
  #connecting: Promise<void> | null = null;
  #reconnectDelay = 100;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Queue name -> when (performance.now()) its registration expires. */
  readonly #registered = new Map<string, number>();
  #closed = false;

  constructor(options: ListenerOptions) {
    this.#options = options;
  }

  /** Adds a waiter to a lane; starts listening and polling as needed. */
  enter(queue: string, kind: LaneKind): Waiter {
    if (this.#closed) throw new Error("This PQ is closed");
    const key = `${kind}:${queue}`;
    let lane = this.#lanes.get(key);
    if (!lane) this.#lanes.set(key, lane = new Lane(queue, kind));
    const waiter = new Waiter(lane);
    lane.waiters.add(waiter);
    this.#waiting++;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#schedulePoll();
    if (this.#up) this.#renew([queue]);
    else this.#connect();
    return waiter;
  }

  /** Removes a waiter; hands an unused wake on to the next waiter. */
  leave(waiter: Waiter): void {
    const lane = waiter.lane;
    if (!lane.waiters.delete(waiter)) return;
    this.#waiting--;
    if (waiter.woken) lane.wake(1);
    if (lane.waiters.size === 0) {
      lane.stop();
      this.#lanes.delete(`${lane.kind}:${lane.queue}`);
    }
    if (this.#waiting === 0) {
      clearTimeout(this.#pollTimer);
      this.#pollTimer = undefined;
      // Not after close(): a getter that close() cancelled leaves later,
      // and that timer kept a short-lived process alive for 10 s.
      if (!this.#closed) {
        this.#idleTimer ??= setTimeout(() => this.#idle(), IDLE_CLOSE_MS);
      }
    }
  }

  /** Stops listening and polling; ends the control connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const lane of this.#lanes.values()) {
      lane.stop();
      for (const waiter of lane.waiters) waiter.cancel();
    }
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#reconnectTimer);
    await this.#disconnect();
  }

  /**
   * Opens the control connection, LISTENs and registers, then wakes all.
   *
   * With several hosts in its URL, postgres.js 3.4.9 swallows the error of
   * a new connection that dies while its first statement runs, and that
   * statement never settles (porsager/postgres#1174): a primary that died
   * as the listener connected left it waiting forever, and its getters
   * asleep until their timeout (tests/fault/failover_test.ts). So an
   * attempt that has not finished by its deadline ends its client, which
   * rejects the lost statement, and the next attempt makes a new one.
   */
  #connect(): void {
    if (this.#connecting || this.#closed) return;
    let attempt: Sql | null = null;
    const seconds = Number(this.#options.sql.options.connect_timeout) || 30;
    const deadline = setTimeout(() => {
      if (attempt === null || attempt !== this.#control) return;
      this.#control = null;
      this.#up = false;
      attempt.end({ timeout: 0 }).catch(() => {});
    }, seconds * 1000 + CONNECT_STATEMENTS_MS);
    this.#connecting = (async () => {
      try {
        const { sql, names, listen } = this.#options;
        if (!this.#control) {
          const control: Sql = postgres({
            ...sql.options,
            max: 1,
            idle_timeout: null,
            max_lifetime: null,
            fetch_types: false,
            connection: {
              ...sql.options.connection,
              application_name: "pq listener",
            },
            onnotify: (_channel: string, payload: string) =>
              this.#onNotify(payload),
            onclose: () => control === this.#control && this.#onClose(),
          } as unknown as postgres.Options<Record<string, never>>);
          this.#control = control;
        }
        attempt = this.#control;
        this.#relid ??= await tableOid(this.#control, names);
        if (this.#relid === null) {
          throw new Error(`${names.qualified} does not exist`);
        }
        if (listen) await this.#control.unsafe(`listen pq_${this.#relid}`);
        this.#up = true;
        this.#reconnectDelay = 100;
        this.#registered.clear();
        await this.#renew([
          ...new Set([...this.#lanes.values()].map((l) => l.queue)),
        ]);
        // Anything put while we were not listening was not announced.
        this.generation++;
        for (const lane of this.#lanes.values()) lane.wakeAll();
      } catch {
        this.#up = false;
        this.#retryConnect();
      } finally {
        clearTimeout(deadline);
        this.#connecting = null;
      }
    })();
  }

  /** Tries to connect again later, while somebody waits. */
  #retryConnect(): void {
    if (this.#closed || this.#waiting === 0 || this.#reconnectTimer) return;
    const delay = this.#reconnectDelay;
    this.#reconnectDelay = Math.min(delay * 2, MAX_RECONNECT_DELAY_MS);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#connect();
    }, delay);
  }

  #onClose(): void {
    this.#up = false;
    this.#registered.clear();
    this.#retryConnect();
  }

  #onNotify(payload: string): void {
    this.generation++;
    // "<ready plain> <ready task> <scheduled> <queue>"
    const a = payload.indexOf(" ");
    const b = payload.indexOf(" ", a + 1);
    const c = payload.indexOf(" ", b + 1);
    if (a < 0 || b < 0 || c < 0) return;
    const queue = payload.slice(c + 1);
    const plain = this.#lanes.get(`plain:${queue}`);
    const task = this.#lanes.get(`task:${queue}`);
    const scheduled = Number(payload.slice(b + 1, c)) > 0 ? 1 : 0;
    plain?.wake(Number(payload.slice(0, a)) + scheduled);
    task?.wake(Number(payload.slice(a + 1, b)) + scheduled);
  }

  /** Registers (or renews) queues whose registration is missing or aging. */
  async #renew(queues: string[]): Promise<void> {
    if (!this.#options.listen || !this.#up || this.#relid === null) return;
    const now = performance.now();
    const due = queues.filter((q) =>
      (this.#registered.get(q) ?? 0) - now < REGISTRATION_TTL_MS / 2
    );
    if (due.length === 0) return;
    for (const q of due) this.#registered.set(q, now + REGISTRATION_TTL_MS);
    try {
      await registerWaiting(
        this.#control!,
        this.#options.names,
        this.#relid,
        due,
        this.#id,
        REGISTRATION_TTL_MS,
      );
      // A put that committed before the registration did not notify:
      // let one waiter of each lane look again.
      this.generation++;
      for (const lane of this.#lanes.values()) {
        if (due.includes(lane.queue)) lane.wake(1);
      }
    } catch {
      for (const q of due) this.#registered.delete(q);
    }
  }

  #schedulePoll(): void {
    if (this.#pollTimer || this.#closed) return;
    // A little jitter keeps many processes from polling in step.
    const interval = this.#options.pollIntervalMs * (0.9 + Math.random() * 0.2);
    this.#pollTimer = setTimeout(
      () => this.#poll(),
      Math.min(interval, MAX_TIMER_MS),
    );
  }

  /** The safety net: one query for all lanes, then wakes as many as ready. */
  async #poll(): Promise<void> {
    const lanes = [...this.#lanes.values()];
    try {
      if (lanes.length === 0) return;
      const db = this.#up && this.#control ? this.#control : this.#options.sql;
      const counts = await countReady(
        db,
        this.#options.names,
        lanes.map((l) => ({
          queue: l.queue,
          task: l.kind === "task",
          cap: l.waiters.size,
        })),
      );
      lanes.forEach((lane, i) => lane.wake(counts[i]));
      if (this.#up) await this.#renew(lanes.map((l) => l.queue));
      else this.#retryConnect();
    } catch {
      // The next tick tries again; getters still end at their timeout.
    } finally {
      this.#pollTimer = undefined;
      if (this.#waiting > 0) this.#schedulePoll();
    }
  }

  /** Nobody waited for a while: unregister and close the connection. */
  async #idle(): Promise<void> {
    this.#idleTimer = undefined;
    if (this.#waiting === 0) await this.#disconnect();
  }

  async #disconnect(): Promise<void> {
    const control = this.#control;
    const queues = [...this.#registered.keys()];
    this.#control = null;
    this.#up = false;
    this.#registered.clear();
    if (!control) return;
    try {
      if (queues.length && this.#relid !== null) {
        await registerWaiting(
          control,
          this.#options.names,
          this.#relid,
          queues,
          this.#id,
          0,
        );
      }
    } catch {
      // Registrations expire by themselves.
    }
    await control.end({ timeout: 1 });
  }
}
