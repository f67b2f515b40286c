/**
 * CPU time of the client process and of the PostgreSQL backends serving
 * it, for "CPU per 1,000 jobs". The backends are the ones whose
 * `application_name` is the run's (every connection of a run carries it);
 * their times come from `/proc/<pid>/stat`, so the server must run on this
 * machine (elsewhere the server column reads "-").
 *
 * @module
 */

import { readFileSync } from "node:fs";
import process from "node:process";
import type { Sql } from "../../mod.ts";

/**
 * Clock ticks per second of utime and stime in /proc/<pid>/stat: USER_HZ,
 * which Linux fixes at 100 for user space on every architecture we run on.
 */
const TICKS_PER_SECOND = 100;

/** utime + stime of a process in milliseconds; undefined once it is gone. */
export function processCpuMs(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces; count from the ")" after it.
  // Then field 3 is at [0], utime (field 14) at [11], stime (15) at [12].
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 1000 / TICKS_PER_SECOND;
}

/** CPU milliseconds of each backend of `appName`, or undefined if remote. */
async function backendTimes(
  monitor: Sql,
  appName: string,
): Promise<Map<number, number> | undefined> {
  const rows = await monitor`
    select pid from pg_stat_activity where application_name = ${appName}`;
  const times = new Map<number, number>();
  for (const { pid } of rows) {
    const ms = processCpuMs(pid);
    if (ms !== undefined) times.set(pid, ms);
  }
  return rows.length && !times.size ? undefined : times;
}

/** CPU used between a meter's start and `read()`. */
export interface CpuReading {
  /**
   * This process: user + system time of all its threads, from
   * `process.cpuUsage()` (the counters of /proc/self/stat, in microseconds
   * instead of ticks).
   */
  clientMs: number;
  /**
   * The backends serving it, from their first sample (0 for backends opened
   * after the start) to their last. Undefined when the server is not on
   * this machine.
   */
  serverMs: number | undefined;
}

/** How often backends are sampled while a meter runs. */
const SAMPLE_MS = 200;

/**
 * Starts measuring; call `read()` at the end of the timed part. Backends
 * are sampled every 200 ms as well, because some close before the end (a
 * peer that ends its own pool on stop, a pool's idle timeout) and their
 * time would be lost with only a first and a last look.
 */
export async function startMeter(
  monitor: Sql,
  appName: string,
): Promise<{ read(): Promise<CpuReading> }> {
  const first = await backendTimes(monitor, appName);
  const last = new Map(first);
  let remote = first === undefined;
  const sample = async () => {
    const now = await backendTimes(monitor, appName);
    if (!now) remote = true;
    for (const [pid, ms] of now ?? []) last.set(pid, ms);
  };
  let sampling = Promise.resolve();
  const timer = setInterval(() => {
    sampling = sampling.then(sample);
  }, SAMPLE_MS);
  const client = process.cpuUsage();
  return {
    async read() {
      const used = process.cpuUsage(client);
      clearInterval(timer);
      await sampling;
      await sample();
      let serverMs = 0;
      for (const [pid, ms] of last) serverMs += ms - (first?.get(pid) ?? 0);
      return {
        clientMs: (used.user + used.system) / 1000,
        serverMs: remote ? undefined : serverMs,
      };
    },
  };
}
