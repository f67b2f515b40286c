/**
 * Runs a TypeScript file in a child process on the runtime running the
 * tests (Deno, Node with tsx, or Bun), for tests that need real processes.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";

/** The command that runs a TypeScript file on the current runtime. */
export function runtimeCommand(file: string): [string, string[]] {
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  if (deno) return [deno.execPath(), ["run", "-A", file]];
  if ("Bun" in globalThis) return [process.execPath, [file]];
  return [process.execPath, ["--import", "tsx", file]];
}

/** A child process with its output collected line by line. */
export interface Child {
  process: ChildProcess;
  /** Lines written to stdout so far. */
  lines: string[];
  /** Resolves with the first stdout line that starts with `prefix`. */
  line(prefix: string, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

/** Starts `file` with `args`; its stderr goes to ours. */
export function spawnTs(
  file: string,
  args: string[],
  env: Record<string, string> = {},
): Child {
  const [command, base] = runtimeCommand(file);
  const child = spawn(command, [...base, ...args], {
    env: { ...process.env, ...env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines: string[] = [];
  const waiters: { prefix: string; resolve: (line: string) => void }[] = [];
  let buffered = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    buffered += chunk;
    let end;
    while ((end = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      lines.push(line);
      for (const w of [...waiters]) {
        if (line.startsWith(w.prefix)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  const exited = new Promise<number | string>((resolve) => {
    child.on("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
  });
  return {
    process: child,
    lines,
    exited,
    line(prefix, timeoutMs = 30_000) {
      const found = lines.find((l) => l.startsWith(prefix));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(entry), 1);
          reject(
            new Error(`no line starting with ${prefix} in ${timeoutMs} ms`),
          );
        }, timeoutMs);
        const entry = {
          prefix,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        waiters.push(entry);
        exited.then(() => {
          if (waiters.includes(entry)) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(entry), 1);
            reject(new Error(`the process exited before printing ${prefix}`));
          }
        });
      });
    },
  };
}
