/**
 * The npm package, as users get it: `scripts/build_npm.ts --pack` builds the
 * tarball, which is installed from that file (with `postgres` from npm) into
 * temporary projects outside the repository:
 *
 * - a plain Node ESM project runs put/get/work (`smoke.mjs`) and type-checks
 *   a TypeScript consumer against the package's `.d.ts` with `tsc`;
 * - a Bun project runs the same script;
 * - a Cloudflare Worker (`worker.mjs`) bundled with esbuild runs in workerd
 *   through Miniflare and reaches PostgreSQL over `cloudflare:sockets`.
 *
 * Deno only (the subject is the other runtimes' install): `deno task
 * test:packaging`, which runs it through `tests/run.ts`.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { databaseUrl, type TestSchema, testSchema } from "../_db.ts";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = fileURLToPath(new URL("../..", import.meta.url));
/** The postgres version the repository tests with. */
const postgresVersion = (JSON.parse(
  readFileSync(join(root, "node_modules/postgres/package.json"), "utf8"),
) as { version: string }).version;

/**
 * Runs a command; returns its stdout, or throws with all of its output.
 */
function sh(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): string {
  const result = spawnSync(command, args, {
    cwd: options.cwd ?? root,
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    encoding: "utf8",
    timeout: 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error || result.status !== 0) {
    throw new Error(
      `\`${command} ${args.join(" ")}\` failed (${
        result.error?.message ?? `exit code ${result.status}`
      }) in ${options.cwd ?? root}:\n${result.stdout}${result.stderr}`,
    );
  }
  return result.stdout;
}

/** The last line of a command's output, parsed as JSON. */
function lastJson(output: string): unknown {
  return JSON.parse(output.trim().split("\n").at(-1)!);
}

/**
 * Runs the two bundled Workers in workerd through Miniflare and prints a
 * "RESPONSE <json>" line per response: the smoke worker's, then the example's
 * `POST /setup` and `POST /`.
 */
const RUN_WORKERS = `import process from "node:process";
import { readFileSync } from "node:fs";
import { Miniflare } from "miniflare";

async function run(scriptPath, bindings, requests) {
  const mf = new Miniflare({
    // The bundle as one module, as Wrangler passes it: with modules: true,
    // Miniflare parses the code and refuses the variable specifier of pq's
    // lazy import of its optional peer croner (ERR_MODULE_DYNAMIC_SPEC),
    // which workerd itself only meets if a schedule is used.
    modules: [{
      type: "ESModule",
      path: scriptPath,
      contents: readFileSync(scriptPath, "utf8"),
    }],
    compatibilityDate: "2025-09-01",
    compatibilityFlags: ["nodejs_compat"],
    bindings,
  });
  try {
    for (const [path, init] of requests) {
      const response = await mf.dispatchFetch("http://localhost" + path, init);
      const body = await response.text();
      console.log("RESPONSE " + JSON.stringify({ status: response.status, body }));
    }
  } finally {
    await mf.dispose();
  }
}

await run("smoke_worker.bundle.mjs", {
  DATABASE_URL: process.env.DATABASE_URL,
  SCHEMA: process.env.SCHEMA,
}, [["/", {}]]);
await run("example_worker.bundle.mjs", {
  DATABASE_URL: process.env.EXAMPLE_DATABASE_URL,
}, [
  ["/setup", { method: "POST" }],
  ["/", { method: "POST", body: JSON.stringify({ key: "cat.jpg" }) }],
]);
`;

describe("the npm package", () => {
  let tarball: string;
  let admin: postgres.Sql;
  let scratch: TestSchema;
  const projects: string[] = [];

  /** A new empty ESM project in a temporary folder. */
  function project(name: string): string {
    const dir = mkdtempSync(join(tmpdir(), `pq-${name}-`));
    projects.push(dir);
    writeFileSync(
      join(dir, "package.json"),
      JSON.stringify({ name: `pq-${name}`, private: true, type: "module" }),
    );
    return dir;
  }

  before(async () => {
    const built = sh(Deno.execPath(), [
      "run",
      "-A",
      "scripts/build_npm.ts",
      "--pack",
    ]);
    tarball = built.trim().split("\n").at(-1)!;
    assert.match(tarball, /\.tgz$/);
    admin = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
    scratch = await testSchema(admin, "packaging");
  });
  after(async () => {
    for (const dir of projects) rmSync(dir, { recursive: true, force: true });
    await scratch?.drop();
    await admin?.end();
  });

  test("installs into a plain Node ESM project: put, get and a burst of tasks work, and tsc accepts its types", () => {
    const dir = project("node");
    sh("npm", [
      "install",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      tarball,
      `postgres@${postgresVersion}`,
      "typescript@5",
      "@types/node@20",
    ], { cwd: dir });
    copyFileSync(join(here, "smoke.mjs"), join(dir, "smoke.mjs"));
    const out = sh("node", ["smoke.mjs", scratch.schema, "node"], {
      cwd: dir,
      env: { DATABASE_URL: databaseUrl() },
    });
    assert.deepEqual(lastJson(out), {
      got: { hello: "npm" },
      done: 2,
      seen: [1, 2],
    });

    copyFileSync(join(here, "types_check.ts"), join(dir, "types_check.ts"));
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          lib: ["ESNext"],
          types: ["node"],
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        },
        files: ["types_check.ts"],
      }),
    );
    sh(join(dir, "node_modules/.bin/tsc"), ["-p", "."], { cwd: dir });
  });

  test("installs into a Bun project: put, get and a burst of tasks work", () => {
    const dir = project("bun");
    sh("bun", ["add", tarball, `postgres@${postgresVersion}`], { cwd: dir });
    copyFileSync(join(here, "smoke.mjs"), join(dir, "smoke.mjs"));
    const out = sh("bun", ["smoke.mjs", scratch.schema, "bun"], {
      cwd: dir,
      env: { DATABASE_URL: databaseUrl() },
    });
    assert.deepEqual(lastJson(out), {
      got: { hello: "npm" },
      done: 2,
      seen: [1, 2],
    });
  });

  test("runs in Cloudflare Workers on workerd (Miniflare) over cloudflare:sockets: a smoke worker and examples/serverless/cloudflare_worker.ts", () => {
    const dir = project("workerd");
    sh("npm", [
      "install",
      "--no-audit",
      "--no-fund",
      "--loglevel=error",
      tarball,
      `postgres@${postgresVersion}`,
      "miniflare@4",
      "esbuild@0",
    ], { cwd: dir });
    copyFileSync(join(here, "worker.mjs"), join(dir, "smoke_worker.mjs"));
    copyFileSync(
      join(root, "examples/serverless/cloudflare_worker.ts"),
      join(dir, "example_worker.ts"),
    );
    for (const name of ["smoke_worker.mjs", "example_worker.ts"]) {
      sh(join(dir, "node_modules/.bin/esbuild"), [
        name,
        "--bundle",
        "--format=esm",
        "--platform=neutral",
        // postgres.js's export for workerd: cloudflare:sockets, not node:net.
        "--conditions=workerd,worker",
        "--main-fields=module,main",
        "--external:cloudflare:*",
        "--external:node:*",
        "--log-level=warning",
        `--outfile=${name.replace(/\.\w+$/, ".bundle.mjs")}`,
      ], { cwd: dir });
    }
    writeFileSync(join(dir, "run_workers.mjs"), RUN_WORKERS);
    // The example uses the search path's schema: point it at the scratch one.
    const exampleUrl = new URL(databaseUrl());
    exampleUrl.searchParams.set("search_path", scratch.schema);
    const out = sh("node", ["run_workers.mjs"], {
      cwd: dir,
      env: {
        DATABASE_URL: databaseUrl(),
        EXAMPLE_DATABASE_URL: exampleUrl.href,
        SCHEMA: scratch.schema,
      },
    });
    // The Workers' console.log lines come first; the responses are marked.
    const [smoke, setup, request] = out.split("\n")
      .filter((line) => line.startsWith("RESPONSE "))
      .map((line) =>
        JSON.parse(line.slice(9)) as { status: number; body: string }
      );
    assert.equal(smoke.status, 200, smoke.body);
    assert.deepEqual(JSON.parse(smoke.body), {
      sameId: true,
      got: { from: "workerd" },
      done: 2,
      seen: [1, 2],
    });
    assert.equal(setup.status, 200, setup.body);
    assert.equal(request.status, 200, request.body);
    const result = JSON.parse(request.body);
    assert.match(result.id, /^\d+$/);
    assert.deepEqual(
      { ...result, id: "" },
      { id: "", done: 1, retried: 0, failed: 0 },
    );
  });
});
