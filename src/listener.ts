/**
 * Wakes getters and workers that wait for jobs.
 *
 * Each PQ has one listener with one connection of its own (see
 * `own_client.ts`). It LISTENs on the table's channel, registers the queues
 * that have waiters in `pq_waiting` (so puts notify only when somebody waits)
 * and renews those registrations on a timer of their own, and runs the
 * safety-net poll. It is separate from the caller's pool so that a getter
 * inside a transaction on a one-connection pool still gets woken, and so that
 * a dead LISTEN connection is noticed (`onclose`) and replaced.
 *
 * The same connection promotes scheduled jobs that came due when the taker
 * is inside a transaction (see `take.ts`): a promotion made there would stay
 * locked by that transaction, hiding the job from everyone until it ended.
 *
 * @module
 */

import { connectDeadlineMs } from "./connect_deadline.ts";
import { PQError } from "./errors.ts";
import { openOwnClient } from "./own_client.ts";
import { backgroundError, type Report } from "./report.ts";
import type { TableNames } from "./schema.ts";
import { countReady, registerWaiting, tableOid } from "./sql/listen.ts";
import type { Sql } from "./types.ts";
import { Lane, type LaneKind, Waiter } from "./waiters.ts";
import { MAX_TIMER_MS } from "./delay.ts";

/** How long a registration in `pq_waiting` lives unless renewed. */
const REGISTRATION_TTL_MS = 30_000;
/** Renew registrations this often while anybody waits: a third of their life. */
const RENEW_EVERY_MS = REGISTRATION_TTL_MS / 3;
/** Close the own connection after this long unused. */
const IDLE_CLOSE_MS = 10_000;
/** Longest pause between attempts to reconnect the own connection. */
const MAX_RECONNECT_DELAY_MS = 5_000;

/**
 * A notification about one job, on the table's channel: a running job was
 * cancelled (`cancel`), a job ended (`done`, with its final state), or a
 * `waitFor()` started watching a job (`watch`).
 */
export interface JobMessage {
  /** `schedule`: the schedules of the queue `id` changed. */
  kind: "cancel" | "done" | "watch" | "schedule";
  /** The job's id (the queue's name for `schedule`). */
  id: string;
  /** For `done`: `completed`, `failed` or `cancelled`. */
  state?: string;
}

/** Settings of a {@linkcode Listener}. */
export interface ListenerOptions {
  /** The caller's client: its options build the own connection. */
  sql: Sql;
  /** The table whose jobs are waited for. */
  names: TableNames;
  /** LISTEN for notifications (false: poll only, for poolers). */
  listen: boolean;
  /** The safety-net poll's interval in milliseconds. */
  pollIntervalMs: number;
  /** The task names a queue's workers take (the poll counts only those). */
  tasksOf: (queue: string) => readonly string[];
  /** Where background failures go. */
  report: Report;
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
  /** Workers and waitFor()s that hear job messages. */
  readonly #subscribers = new Set<(message: JobMessage) => void>();
  #client: Sql | null = null;
  #relid: number | null = null;
  #up = false;
  #connecting: Promise<void> | null = null;
  #reconnectDelay = 100;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #renewTimer: ReturnType<typeof setTimeout> | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #lastUse = 0;
  /**
   * Queue names registered in `pq_waiting` (while the connection is up),
   * with when they were registered or last renewed (`performance.now()`).
   */
  readonly #registered = new Map<string, number>();
  #closed = false;
  /** Set by cancelWaits(): new waits end at once. */
  #draining = false;

  /** @param options The client, table, mode and poll interval. */
  constructor(options: ListenerOptions) {
    this.#options = options;
  }

  /** The safety-net poll's interval in milliseconds. */
  get pollIntervalMs(): number {
    return this.#options.pollIntervalMs;
  }

  /** True while LISTEN is active, so notifications will wake waiters. */
  get listening(): boolean {
    return this.#options.listen && this.#up;
  }

  /**
   * Adds a waiter to a lane; starts listening and polling as needed. After
   * `close()`, the waiter is cancelled: its waits return false at once.
   */
  enter(queue: string, kind: LaneKind): Waiter {
    const key = `${kind}:${queue}`;
    let lane = this.#lanes.get(key);
    if (!lane) lane = new Lane(queue, kind);
    const waiter = new Waiter(lane);
    if (this.#closed || this.#draining) {
      waiter.cancel();
      return waiter;
    }
    this.#lanes.set(key, lane);
    lane.waiters.add(waiter);
    this.#waiting++;
    this.#schedulePoll();
    this.#scheduleRenew();
    if (this.#up) {
      if (this.#registrationDue(queue)) this.#register([queue]);
    } else this.#connect();
    return waiter;
  }

  /**
   * Hears the job messages of the table (see {@linkcode JobMessage}) until
   * the returned function is called; keeps LISTEN connected meanwhile.
   * Without LISTEN (`listen: false`) nothing arrives: callers poll.
   */
  subscribe(handler: (message: JobMessage) => void): () => void {
    if (this.#closed) return () => {};
    this.#subscribers.add(handler);
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#options.listen && !this.#up) this.#connect();
    return () => {
      this.#subscribers.delete(handler);
      this.#armIdle();
    };
  }

  /** Wakes up to `n` waiters of a lane of this process. */
  wake(queue: string, kind: LaneKind, n: number): void {
    if (n > 0) this.#lanes.get(`${kind}:${queue}`)?.wake(n);
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
      clearTimeout(this.#renewTimer);
      this.#renewTimer = undefined;
      this.#armIdle();
    }
  }

  /**
   * The own connection, for statements that must commit at once whatever
   * transaction the caller is in. Opened on first use; closed after a while
   * unused.
   *
   * @throws {PQError} `CLOSED` after `close()`.
   */
  client(): Sql {
    if (this.#closed) {
      throw new PQError("CLOSED", "Cannot use the PQ: it is closed");
    }
    this.#lastUse = performance.now();
    this.#armIdle();
    return this.#client ??= this.#open();
  }

  /**
   * Ends every wait now and every later one at once (the PQ is closing),
   * while the connection stays up for the workers' last writes.
   */
  cancelWaits(): void {
    this.#draining = true;
    for (const lane of this.#lanes.values()) {
      lane.stop();
      for (const waiter of lane.waiters) waiter.cancel();
    }
  }

  /** Stops listening and polling; ends the own connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.cancelWaits();
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#renewTimer);
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#reconnectTimer);
    await this.#connecting;
    await this.#disconnect();
  }

  #open(): Sql {
    const client = openOwnClient(this.#options.sql, {
      name: "pq listener",
      onnotify: (_channel, payload) => this.#onNotify(payload),
      onclose: () => client === this.#client && this.#onClose(),
    });
    return client;
  }

  /** Connects the own connection, LISTENs and registers, then wakes all. */
  #connect(): void {
    if (this.#connecting || this.#closed) return;
    // With several hosts in its URL, postgres.js 3.4.9 swallows the error of
    // a new connection that dies while its first statement runs, and that
    // statement never settles (porsager/postgres#1174): a primary killed as
    // the listener connected left it waiting forever, its getters asleep
    // until their timeout and close() stuck (tests/fault/failover_test.ts).
    // So an attempt not done by its deadline (`connect_deadline.ts`) ends its
    // client, which rejects the lost statement, and the next attempt opens a
    // new one.
    let attempt: Sql | null = null;
    const deadline = setTimeout(() => {
      if (attempt === null || attempt !== this.#client) return;
      this.#client = null;
      this.#up = false;
      attempt.end({ timeout: 0 }).catch(() => {});
    }, connectDeadlineMs(this.#options.sql));
    this.#connecting = (async () => {
      try {
        const { names, listen } = this.#options;
        const client = attempt = this.#client ??= this.#open();
        this.#relid ??= await tableOid(client, names);
        if (this.#relid === null) {
          throw new Error(`${names.qualified} does not exist`);
        }
        if (listen) await client.unsafe(`listen pq_${this.#relid}`);
        this.#up = true;
        this.#reconnectDelay = 100;
        this.#registered.clear();
        await this.#register(this.#queues());
        // Anything put while we were not listening was not announced.
        this.generation++;
        for (const lane of this.#lanes.values()) lane.wakeAll();
      } catch (error) {
        this.#up = false;
        if (!this.#closed) {
          this.#options.report(
            backgroundError("The listener's connection", error),
          );
        }
        this.#retryConnect();
      } finally {
        clearTimeout(deadline);
        this.#connecting = null;
      }
    })();
  }

  /** Tries to connect again later, while somebody waits or listens. */
  #retryConnect(): void {
    if (
      this.#closed || this.#reconnectTimer ||
      (this.#waiting === 0 && this.#subscribers.size === 0)
    ) return;
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
    const first = payload.charCodeAt(0);
    if (first < 48 || first > 57) return this.#onJobMessage(payload);
    this.generation++;
    // "<ready plain> <ready task> <scheduled> <queue>"
    const a = payload.indexOf(" ");
    const b = payload.indexOf(" ", a + 1);
    const c = payload.indexOf(" ", b + 1);
    if (a < 0 || b < 0 || c < 0) return;
    const queue = payload.slice(c + 1);
    const plain = this.#lanes.get(`plain:${queue}`);
    const task = this.#lanes.get(`task:${queue}`);
    // A scheduled job wakes one waiter, which notes when it comes due.
    const scheduled = Number(payload.slice(b + 1, c)) > 0 ? 1 : 0;
    plain?.wake(Number(payload.slice(0, a)) + scheduled);
    task?.wake(Number(payload.slice(a + 1, b)) + scheduled);
  }

  /** "cancel <id>", "done <id> <state>", "watch <id>", "schedule <queue>". */
  #onJobMessage(payload: string): void {
    const space = payload.indexOf(" ");
    const kind = payload.slice(0, space);
    let message: JobMessage;
    if (kind === "schedule") {
      message = { kind, id: payload.slice(space + 1) };
    } else if (kind === "cancel" || kind === "done" || kind === "watch") {
      const [, id, state] = payload.split(" ");
      message = { kind, id, state };
    } else return;
    for (const handler of this.#subscribers) {
      try {
        handler(message);
      } catch {
        // A subscriber's failure is its own.
      }
    }
  }

  /** The queues that have waiters. */
  #queues(): string[] {
    return [...new Set([...this.#lanes.values()].map((l) => l.queue))];
  }

  /**
   * Registers (or renews) queues in `pq_waiting`. A put that committed before
   * the registration did not notify, so one waiter of each lane looks again.
   */
  async #register(queues: string[]): Promise<void> {
    const client = this.#client;
    if (
      !this.#options.listen || !this.#up || this.#relid === null || !client ||
      queues.length === 0
    ) return;
    const now = performance.now();
    const fresh = queues.filter((q) =>
      now - (this.#registered.get(q) ?? -Infinity) >= REGISTRATION_TTL_MS
    );
    for (const q of queues) this.#registered.set(q, now);
    try {
      await registerWaiting(
        client,
        this.#options.names,
        this.#relid,
        queues,
        this.#id,
        REGISTRATION_TTL_MS,
      );
      if (fresh.length === 0) return;
      this.generation++;
      for (const lane of this.#lanes.values()) {
        if (fresh.includes(lane.queue)) lane.wake(1);
      }
    } catch (error) {
      for (const q of queues) this.#registered.delete(q);
      this.#options.report(
        backgroundError("Registering waiting queues", error),
      );
    }
  }

  /**
   * True when a waiter entering `queue` must register it: it never was, or
   * its registration is two thirds through its life. The renew timer stops
   * whenever nobody waits; a worker whose slots all run jobs now and then
   * restarted it over and over, so it never fired, its registration ended
   * 30 s after the start, and puts stopped waking its slots, which then
   * waited for the poll (bench/RESULTS.md, pressure: pickups of 100 ms
   * instead of 3).
   */
  #registrationDue(queue: string): boolean {
    const at = this.#registered.get(queue);
    return at === undefined ||
      performance.now() - at >= REGISTRATION_TTL_MS - RENEW_EVERY_MS;
  }

  /**
   * Renews every registration a third of its life before it ends, on a
   * timer of its own: renewing only on the poll let registrations expire
   * when `pollInterval` was longer than their life, and LISTEN wake-ups
   * stopped (tests/wakeups_test.ts).
   */
  #scheduleRenew(): void {
    if (this.#renewTimer || this.#closed || !this.#options.listen) return;
    this.#renewTimer = setTimeout(async () => {
      if (this.#up) await this.#register(this.#queues());
      this.#renewTimer = undefined;
      if (this.#waiting > 0) this.#scheduleRenew();
    }, RENEW_EVERY_MS);
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
      const db = this.#up && this.#client ? this.#client : this.#options.sql;
      const counts = await countReady(
        db,
        this.#options.names,
        lanes.map((l) => ({
          queue: l.queue,
          tasks: l.kind === "task" ? this.#options.tasksOf(l.queue) : null,
          cap: l.waiters.size,
        })),
      );
      lanes.forEach((lane, i) => lane.wake(counts[i]));
      if (!this.#up) this.#retryConnect();
    } catch (error) {
      // The next tick tries again; getters still end at their timeout.
      if (!this.#closed) {
        this.#options.report(backgroundError("The safety-net poll", error));
      }
    } finally {
      this.#pollTimer = undefined;
      if (this.#waiting > 0) this.#schedulePoll();
    }
  }

  /** Closes the own connection once nobody waited or used it for a while. */
  #armIdle(): void {
    if (
      this.#closed || this.#idleTimer || this.#waiting > 0 ||
      this.#subscribers.size > 0
    ) return;
    this.#idleTimer = setTimeout(async () => {
      this.#idleTimer = undefined;
      if (this.#waiting > 0 || this.#subscribers.size > 0) return;
      const unused = performance.now() - this.#lastUse;
      if (unused < IDLE_CLOSE_MS) return this.#armIdle();
      await this.#disconnect();
    }, IDLE_CLOSE_MS);
  }

  async #disconnect(): Promise<void> {
    const client = this.#client;
    const queues = [...this.#registered.keys()];
    this.#client = null;
    this.#up = false;
    this.#registered.clear();
    if (!client) return;
    try {
      if (queues.length && this.#relid !== null) {
        await registerWaiting(
          client,
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
    await client.end({ timeout: 1 });
  }
}
