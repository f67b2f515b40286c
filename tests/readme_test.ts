/**
 * Every TypeScript block of README.md is a program that type-checks and runs
 * against the database, as `deno test --doc` does for the JSDoc examples, so
 * that the README cannot drift from the code.
 *
 * - Each ` ```ts ` block is written to a file of its own in a temporary
 *   folder of the repository (`.readme-*`, ignored by git), padded with
 *   blank lines so that its line numbers are the README's. `@pq/pq` and
 *   `postgres` resolve through the repository's `deno.json` (the package's
 *   own name resolves to `mod.ts`), other packages (`zod`) through its
 *   `package.json`.
 * - All of them are type-checked with one `deno check`, then each runs with
 *   `deno run -A` in a schema of its own: `DATABASE_URL` gets
 *   `?search_path=<schema>`, so `createPQ(sql)` and the snippet's own tables
 *   land there, and the schema is dropped afterwards.
 * - A snippet passes if it exits with code 0 within {@linkcode RUN_TIMEOUT_MS}
 *   (a forgotten `sql.end()` or a worker without a stop fails) and its
 *   output has, in order, the lines its `// prints: <line>` comments name.
 * - A block fenced ` ```ts ignore ` (the marker `deno test --doc` knows) is
 *   not run; use it only for fragments that cannot be programs, and say why
 *   in the text. Blocks in other languages (`sh`) are not run.
 *
 * Deno only: the snippets run on Deno whichever runtime runs this file, so
 * Node and Bun skip it.
 *
 * @module
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { databaseUrl, testSchema } from "./_db.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const config = join(root, "deno.json");

/** How long a snippet may run before it counts as hanging; the slowest takes about 2 s. */
const RUN_TIMEOUT_MS = 60_000;

const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
const skip = deno === undefined
  ? "the README snippets run on Deno: `deno task test`"
  : false;

/** A fenced TypeScript block of a Markdown file. */
interface Snippet {
  /** The line of its first line of code, counting from 1. */
  line: number;
  /** The heading it is under, for test names. */
  heading: string;
  code: string;
  /** The lines its `// prints: <line>` comments expect, in order. */
  prints: string[];
  /** Whether it is fenced ` ```ts ignore `. */
  ignore: boolean;
}

const FENCE = /^(`{3,}|~{3,})\s*(\S*)\s*(.*)$/;
const PRINTS = /\/\/ prints: (.*)$/;

/** The ` ```ts ` (or `typescript`) blocks of a Markdown text. */
function extractSnippets(markdown: string): Snippet[] {
  const lines = markdown.split("\n");
  const snippets: Snippet[] = [];
  let heading = "(top)";
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith("#")) heading = lines[i].replace(/^#+\s*/, "");
    const open = FENCE.exec(lines[i]);
    if (open === null) continue;
    const [, fence, lang, info] = open;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !lines[j].startsWith(fence)) {
      body.push(lines[j++]);
    }
    if (lang === "ts" || lang === "typescript") {
      snippets.push({
        line: i + 2,
        heading,
        code: body.join("\n") + "\n",
        prints: body.flatMap((line) => PRINTS.exec(line)?.[1] ?? []),
        ignore: info.split(/\s+/).includes("ignore"),
      });
    }
    i = j;
  }
  return snippets;
}

/** What became of a command. */
interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs `deno` with `args` from the repository root; kills it after `timeoutMs`. */
function runDeno(
  args: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(deno!.execPath(), args, {
      cwd: root,
      env: { ...process.env, ...env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (text) => (stdout += text));
    child.stderr.setEncoding("utf8").on("data", (text) => (stderr += text));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** The file a snippet is written to; its name says where it comes from. */
function fileOf(dir: string, source: string, snippet: Snippet): string {
  return join(dir, `${source.replace(/\W/g, "_")}_line_${snippet.line}.ts`);
}

/** Writes the snippets and type-checks them together; returns the problems of each. */
async function checkSnippets(
  dir: string,
  source: string,
  snippets: Snippet[],
): Promise<Map<Snippet, string>> {
  const files = new Map<Snippet, string>();
  for (const snippet of snippets) {
    const file = fileOf(dir, source, snippet);
    // Blank lines first, so that type errors point at the README's lines.
    await writeFile(file, "\n".repeat(snippet.line - 1) + snippet.code);
    files.set(snippet, file);
  }
  const checked = await runDeno(
    ["check", "--quiet", "--config", config, ...files.values()],
    {},
    RUN_TIMEOUT_MS,
  );
  const problems = new Map<Snippet, string>();
  if (checked.code === 0) return problems;
  const output = checked.stdout + checked.stderr;
  for (const [snippet, file] of files) {
    if (output.includes(file)) {
      problems.set(snippet, `does not type-check:\n${output}`);
    }
  }
  if (problems.size === 0) {
    for (const snippet of snippets) {
      problems.set(snippet, `deno check failed:\n${output}`);
    }
  }
  return problems;
}

/**
 * Runs a checked snippet in a schema of its own and returns what is wrong
 * with it, or undefined.
 */
async function runSnippet(
  admin: postgres.Sql,
  dir: string,
  source: string,
  snippet: Snippet,
  timeoutMs: number,
): Promise<string | undefined> {
  await using scratch = await testSchema(admin, `readme_${snippet.line}`);
  const url = new URL(databaseUrl());
  url.searchParams.set("search_path", scratch.schema);
  const ran = await runDeno(
    ["run", "-A", "--config", config, fileOf(dir, source, snippet)],
    { DATABASE_URL: url.href },
    timeoutMs,
  );
  const output = `stdout:\n${ran.stdout}\nstderr:\n${ran.stderr}`;
  if (ran.timedOut) {
    return `did not exit within ${timeoutMs} ms (does it end its client ` +
      `with \`await sql.end()\` and stop its workers?)\n${output}`;
  }
  if (ran.code !== 0) return `exited with code ${ran.code}\n${output}`;
  const printed = ran.stdout.split("\n");
  let at = 0;
  for (const expected of snippet.prints) {
    const found = printed.indexOf(expected, at);
    if (found === -1) {
      return `did not print ${JSON.stringify(expected)} (after the lines ` +
        `printed before)\n${output}`;
    }
    at = found + 1;
  }
  return undefined;
}

/** Checks and runs the snippets; returns the problems, by snippet. */
async function verify(
  source: string,
  snippets: Snippet[],
  timeoutMs = RUN_TIMEOUT_MS,
): Promise<Map<Snippet, string>> {
  // Inside the repository, so that the snippets' npm imports (`zod`)
  // resolve through its package.json and node_modules, as a user's would.
  const dir = await mkdtemp(join(root, ".readme-"));
  const admin = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
  try {
    const problems = await checkSnippets(dir, source, snippets);
    for (const snippet of snippets) {
      if (problems.has(snippet)) continue;
      const problem = await runSnippet(admin, dir, source, snippet, timeoutMs);
      if (problem !== undefined) problems.set(snippet, problem);
    }
    return problems;
  } finally {
    await admin.end();
    await rm(dir, { recursive: true, force: true });
  }
}

function where(source: string, snippet: Snippet): string {
  return `${source}:${snippet.line} (${snippet.heading})`;
}

test("every TypeScript snippet of README.md type-checks and runs as written", {
  skip,
}, async () => {
  const readme = await readFile(join(root, "README.md"), "utf8");
  const snippets = extractSnippets(readme).filter((s) => !s.ignore);
  assert.ok(snippets.length >= 4, `only ${snippets.length} snippets found`);
  const problems = await verify("README.md", snippets);
  const report = [...problems].map(([snippet, problem]) =>
    `${where("README.md", snippet)} ${problem}`
  );
  if (report.length > 0) assert.fail(report.join("\n\n"));
});

test(
  "a snippet that fails to type-check, throws, hangs or prints another line fails",
  {
    skip,
  },
  async () => {
    const imports = 'import process from "node:process";\n' +
      'import postgres from "postgres";\n' +
      'import { createPQ } from "@pq/pq";\n';
    const markdown = [
      "# Broken",
      "```ts",
      `${imports}const n: number = createPQ;`,
      "```",
      "```ts",
      `${imports}throw new Error("boom");`,
      "```",
      "```ts",
      `${imports}const sql = postgres(process.env.DATABASE_URL!);`,
      "await sql`select 1`; // never ends the client",
      "```",
      "```ts",
      `${imports}console.log("Fuji"); // prints: Gala`,
      "```",
      "```ts ignore",
      "this is not TypeScript",
      "```",
      "```sh",
      "neither is this",
      "```",
    ].join("\n");
    const snippets = extractSnippets(markdown);
    assert.deepEqual(snippets.map((s) => s.ignore), [
      false,
      false,
      false,
      false,
      true,
    ]);
    assert.equal(snippets[0].line, 3);
    assert.deepEqual(snippets[3].prints, ["Gala"]);
    const [typeError, throws, hangs, printsOther] = snippets;
    const problems = await verify("BROKEN.md", snippets.slice(0, 4), 5_000);
    const failing = (pattern: RegExp) =>
      [...problems].filter(([, problem]) => pattern.test(problem))
        .map(([snippet]) => snippet);
    assert.deepEqual(failing(/^does not type-check/), [typeError]);
    assert.deepEqual(failing(/^exited with code 1[\s\S]*boom/), [throws]);
    assert.deepEqual(failing(/^did not exit within 5000 ms/), [hangs]);
    assert.deepEqual(failing(/^did not print "Gala"/), [printsOther]);
  },
);
