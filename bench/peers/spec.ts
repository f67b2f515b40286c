/**
 * What the driver (./run.ts) tells a child process (./child.ts), and how
 * the child answers.
 *
 * @module
 */

/** The child's one argument, as JSON. */
export interface Spec {
  /** A system's id (./systems.ts). */
  system: string;
  /** A workload's id (./workloads.ts). */
  workload: string;
  url: string;
  /** An empty schema of this run's own. */
  schema: string;
  /** 1 for the full run, 1/20 with `--quick`. */
  scale: number;
}

/**
 * The prefix of the child's result line on stdout, followed by the JSON of
 * a `RunResult`; peers may log around it.
 */
export const RESULT = "RESULT ";
