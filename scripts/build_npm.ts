/**
 * Builds the npm package from the same source as the JSR one:
 * `deno run -A scripts/build_npm.ts [--pack]`.
 *
 * `deno pack` turns the files that `deno.json`'s `publish` field includes
 * into ESM `.js` with `.d.ts` beside them (the same "no slow types" check as
 * `deno publish`). This script unpacks that into `dist/npm/` and writes the
 * package.json npm users need: `postgres` as a peer dependency (pq uses the
 * caller's client), `croner`, `hono` and `@opentelemetry/api` as optional ones (schedules; the dashboard; traces and metrics), a `pq` bin (the CLI), `type: module`, `exports` with types, `engines`. With
 * `--pack` it then runs `npm pack`, leaving `dist/<name>-<version>.tgz`, and
 * prints that path as its last line.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = join(root, "dist", "npm");

interface DenoJson {
  name: string;
  version: string;
  license?: string;
  imports?: Record<string, string>;
}

/** Runs a command from `cwd`; throws with its output if it fails. */
function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: "utf8" });
  if (result.error || result.status !== 0) {
    throw new Error(
      `\`${command} ${args.join(" ")}\` failed (${
        result.error?.message ?? `exit code ${result.status}`
      }):\n${result.stdout ?? ""}${result.stderr ?? ""}`,
    );
  }
  return result.stdout;
}

/** `npm:postgres@^3.4.9` -> `^3.4.9`. */
function npmRange(specifier: string | undefined, name: string): string {
  const match = specifier?.match(/^npm:(?:@[^/]+\/)?[^@]+@(.+)$/);
  if (!match) {
    throw new Error(
      `deno.json must import ${name} as "npm:${name}@<range>": found ${
        JSON.stringify(specifier)
      }`,
    );
  }
  return match[1];
}

/** Every file under `dir`, relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)));
}

/**
 * Checks that every relative import of the package's `.js` and `.d.ts`
 * files names a file that is in the package.
 */
function checkImports(dir: string): void {
  const missing: string[] = [];
  for (const file of filesUnder(dir)) {
    if (!/\.(js|d\.ts)$/.test(file)) continue;
    const text = readFileSync(join(dir, file), "utf8")
      // Imports inside doc comments are examples, not imports.
      .replace(/\/\*[^]*?\*\//g, "");
    for (const [, spec] of text.matchAll(/\bfrom\s+["'](\.[^"']+)["']/g)) {
      const target = resolve(dir, dirname(file), spec);
      const found = file.endsWith(".d.ts")
        ? existsSync(target.replace(/\.js$/, ".d.ts"))
        : existsSync(target);
      if (!found) missing.push(`${file} imports ${spec}`);
    }
  }
  if (missing.length) {
    throw new Error(`The package has broken imports:\n${missing.join("\n")}`);
  }
}

function main(args: string[]): void {
  const deno = JSON.parse(
    readFileSync(join(root, "deno.json"), "utf8"),
  ) as DenoJson;
  const work = mkdtempSync(join(tmpdir(), "pq-build-npm-"));
  try {
    const tarball = join(work, "package.tgz");
    run(Deno.execPath(), [
      "pack",
      "--allow-dirty",
      // The .js files are readable as they are; inline maps doubled the size.
      "--no-source-maps",
      "-o",
      tarball,
    ], root);
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    run("tar", ["xzf", tarball, "-C", out, "--strip-components=1"], root);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (existsSync(join(root, "README.md"))) {
    writeFileSync(
      join(out, "README.md"),
      readFileSync(join(root, "README.md")),
    );
  }
  const manifest = {
    name: deno.name,
    version: deno.version,
    description: "A transactional job queue for PostgreSQL, on the " +
      "postgres (postgres.js) driver: put/get with LISTEN or polling, " +
      "tasks and workers, for Node, Bun, Deno and edge runtimes",
    license: deno.license,
    type: "module",
    main: "./mod.js",
    types: "./mod.d.ts",
    exports: {
      ".": { types: "./mod.d.ts", import: "./mod.js", default: "./mod.js" },
      "./cli": { types: "./cli.d.ts", import: "./cli.js", default: "./cli.js" },
      "./dashboard": {
        types: "./dashboard.d.ts",
        import: "./dashboard.js",
        default: "./dashboard.js",
      },
    },
    // `npx pq status`: cli.js runs its main when it is the program.
    bin: { pq: "./cli.js" },
    sideEffects: false,
    engines: { node: ">=20" },
    peerDependencies: {
      postgres: npmRange(deno.imports?.postgres, "postgres"),
      // Only for schedules, loaded when one is used (src/cron.ts).
      croner: npmRange(deno.imports?.croner, "croner"),
      // Only for the dashboard entry point (`@pq/pq/dashboard`).
      hono: npmRange(deno.imports?.hono, "hono"),
      // Only for traces and metrics, loaded when present (src/telemetry.ts).
      "@opentelemetry/api": npmRange(
        deno.imports?.["@opentelemetry/api"],
        "@opentelemetry/api",
      ),
    },
    peerDependenciesMeta: {
      croner: { optional: true },
      hono: { optional: true },
      "@opentelemetry/api": { optional: true },
    },
    keywords: ["postgres", "postgresql", "queue", "job queue", "worker"],
  };
  writeFileSync(
    join(out, "package.json"),
    JSON.stringify(manifest, null, 2) + "\n",
  );
  // Node runs the bin through its shebang: `deno run` would not be there.
  const cliJs = join(out, "cli.js");
  writeFileSync(
    cliJs,
    "#!/usr/bin/env node\n" +
      readFileSync(cliJs, "utf8").replace(/^#!.*\n/, ""),
  );
  checkImports(out);
  const files = filesUnder(out);
  console.log(
    `built ${relative(root, out)}: ${manifest.name}@${manifest.version}, ` +
      `${files.filter((f) => f.endsWith(".js")).length} .js and ` +
      `${files.filter((f) => f.endsWith(".d.ts")).length} .d.ts files`,
  );
  if (args.includes("--pack")) {
    const dist = join(root, "dist");
    const name = run(
      "npm",
      ["pack", "--silent", "--pack-destination", dist],
      out,
    ).trim().split("\n").at(-1)!;
    console.log(join(dist, name));
  }
}

try {
  main(process.argv.slice(2));
} catch (error) {
  console.error(`build_npm: ${(error as Error).message}`);
  process.exit(1);
}
