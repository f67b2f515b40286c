/**
 * `--busy`: CPU-bound processes beside the benchmark, to show pickup
 * latency on a host that is not idle (what users' servers mostly are).
 *
 * @module
 */

import { spawn } from "node:child_process";

/** Starts `count` processes that spin; returns what stops them. */
export function startBusy(count: number): () => void {
  const spinners = Array.from(
    { length: count },
    () => spawn("node", ["-e", "for (;;) {}"], { stdio: "ignore" }),
  );
  return () => {
    for (const spinner of spinners) spinner.kill("SIGKILL");
  };
}
