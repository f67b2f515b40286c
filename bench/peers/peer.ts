/**
 * What every system in the side-by-side benchmark offers: pq, pg-boss,
 * graphile-worker and the two raw-SQL queues each implement {@linkcode Peer}
 * with their own fastest documented calls, and the workloads
 * (./workloads.ts) only talk to this interface.
 *
 * @module
 */

/**
 * The data of every job: its index in the run. (A type alias, not an
 * interface, so that it counts as a JSON value for postgres.js's types.)
 */
export type Payload = { i: number };

/** A running worker. */
export interface Worker {
  /** Stops taking jobs and waits for the running ones to finish. */
  stop(): Promise<void>;
}

/** One system, opened on a schema of its own. */
export interface Peer {
  /** Enqueues one job; no worker is running unless a workload started one. */
  put(data: Payload): Promise<unknown>;
  /** Enqueues many jobs with the system's bulk call. */
  putMany(data: readonly Payload[]): Promise<unknown>;
  /**
   * Starts a worker that runs `handler` on each job, up to `concurrency` at
   * a time, with the system's own fetch, wake-up and completion.
   */
  work(concurrency: number, handler: (data: Payload) => void): Promise<Worker>;
  /** How many jobs are still waiting (0 once a worker did them all). */
  pending(): Promise<number>;
  /** Closes every connection it opened. */
  close(): Promise<void>;
}

/** Where a peer keeps its tables. */
export interface PeerOptions {
  /** The server; its `application_name` names this run's connections. */
  url: string;
  /** A schema that exists and is empty, dropped after the run. */
  schema: string;
}

/** What each adapter module exports as `open`. */
export type OpenPeer = (options: PeerOptions) => Promise<Peer>;
