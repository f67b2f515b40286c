/**
 * Installs the peers (bench/peers/package.json) into bench/peers/node_modules
 * with `npm ci`, the exact versions of bench/peers/package-lock.json, unless
 * that lock file is installed already. They stay out of pq's own install.
 * No peer needs an install script, so none is run (`--ignore-scripts`).
 *
 * `deno task install:peers`; `deno task bench:peers` calls it first.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const DIR = fileURLToPath(new URL(".", import.meta.url));

/** Runs `npm ci` in bench/peers unless its lock file is installed. */
export function installPeers(): void {
  const lock = readFileSync(join(DIR, "package-lock.json"));
  const digest = createHash("sha256").update(lock).digest("hex");
  // Written after a successful install: node_modules matches this lock.
  const stamp = join(DIR, "node_modules", ".pq-installed-lock");
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === digest) return;
  process.stderr.write("Installing the peers into bench/peers/node_modules\n");
  const npm = spawnSync(
    "npm",
    ["ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
    { cwd: DIR, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8" },
  );
  // npm's summary goes to stderr too: our stdout is the table.
  process.stderr.write(npm.stdout ?? "");
  if (npm.error || npm.status !== 0) {
    throw new Error(
      `npm ci in ${DIR} failed: ${npm.error?.message ?? `exit ${npm.status}`}`,
    );
  }
  writeFileSync(stamp, digest);
}

/** The version of an installed peer package. */
export function peerVersion(name: string): string {
  const json = readFileSync(
    join(DIR, "node_modules", name, "package.json"),
    "utf8",
  );
  return (JSON.parse(json) as { version: string }).version;
}

if (import.meta.main) installPeers();
