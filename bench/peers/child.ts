/**
 * One run of one workload on one system, in a process of its own so that
 * its CPU time, memory and JIT state are its own: `node --import tsx
 * bench/peers/child.ts '<json Spec>'` (./spec.ts). Prints its result on
 * one line of stdout.
 *
 * @module
 */

import process from "node:process";
import postgres from "postgres";
import { startMeter } from "./cpu.ts";
import type { OpenPeer } from "./peer.ts";
import { RESULT, type Spec } from "./spec.ts";
import { SYSTEMS } from "./systems.ts";
import { WORKLOADS } from "./workloads.ts";

/** `url` with `application_name` set, so the run's backends can be found. */
function named(url: string, name: string): string {
  const u = new URL(url);
  u.searchParams.set("application_name", name);
  return u.href;
}

async function main(spec: Spec): Promise<void> {
  const system = SYSTEMS.find((s) => s.id === spec.system);
  const workload = WORKLOADS.find((w) => w.id === spec.workload);
  if (!system || !workload) {
    throw new Error(`No system ${spec.system} or workload ${spec.workload}`);
  }
  const appName = `pq_peers_${spec.schema}`;
  // Loaded by a computed name: only this system's library is loaded, and
  // `deno task check` does not follow it into the peers' packages.
  const { open } = await import(system.module) as { open: OpenPeer };
  const monitor = postgres(named(spec.url, "pq_peers_monitor"), {
    max: 1,
    onnotice: () => {},
  });
  try {
    const peer = await open({
      url: named(spec.url, appName),
      schema: spec.schema,
    });
    try {
      const result = await workload.run(peer, {
        scale: spec.scale,
        meter: () => startMeter(monitor, appName),
      });
      process.stdout.write(`${RESULT}${JSON.stringify(result)}\n`);
    } finally {
      await peer.close();
    }
  } finally {
    await monitor.end();
  }
}

await main(JSON.parse(process.argv[2]) as Spec);
