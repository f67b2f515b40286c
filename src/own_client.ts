/**
 * pq's own connections: the listener's, and the one a stopping worker uses to
 * end stuck transactions. Each is a one-connection `postgres` client built
 * from the caller's options, so it reaches the same server the same way (TLS,
 * password, multi-host), but it never fires the caller's callbacks: the
 * caller's `onclose` would report pq's connections as the app's, and its
 * `onnotify` would see pq's notifications.
 *
 * @module
 */

import postgres from "postgres";
import type { Sql } from "./types.ts";

/** Callbacks and name of an own client. */
export interface OwnClientOptions {
  /** `application_name`, so the connection can be told apart on the server. */
  name: string;
  /** Receives notifications on channels this client LISTENs to. */
  onnotify?: (channel: string, payload: string) => void;
  /** Called when the connection closes. */
  onclose?: () => void;
}

/**
 * Opens a one-connection client from the caller's client's options. It
 * connects on its first statement and stays open until `end()`.
 */
export function openOwnClient(sql: Sql, options: OwnClientOptions): Sql {
  const base = sql.options as unknown as Record<string, unknown> & {
    connection?: Record<string, unknown>;
  };
  return postgres({
    ...base,
    max: 1,
    idle_timeout: null,
    max_lifetime: null,
    fetch_types: false,
    connection: { ...base.connection, application_name: options.name },
    onnotice: () => {},
    onparameter: () => {},
    onnotify: options.onnotify ?? (() => {}),
    onclose: options.onclose ?? (() => {}),
  } as unknown as postgres.Options<Record<string, never>>);
}
