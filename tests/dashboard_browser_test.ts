/**
 * The dashboard in a real browser: Debian's Chromium (`/usr/bin/chromium`,
 * or `PQ_CHROMIUM`) driven by `playwright-core`, against a real table.
 *
 * Without Chromium the test fails in CI (`CI=true`) and is skipped with a
 * message elsewhere. Screenshots of each page (1280x800) go to a folder the
 * test prints; `PQ_UPDATE_SCREENSHOT=1` also writes the overview to
 * `docs/dashboard.png` (the README's picture).
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { dashboard } from "../dashboard.ts";
import { serve, type Serving } from "../src/cli/serve.ts";
import { openTestPQ, type TestPQ } from "./_pq.ts";

const chromiumPath = process.env.PQ_CHROMIUM || "/usr/bin/chromium";
const found = existsSync(chromiumPath);
if (!found && process.env.CI === "true") {
  throw new Error(
    `Chromium is missing at ${chromiumPath}: install Debian's package (apt-get install -y chromium) or set PQ_CHROMIUM; the dashboard's browser tests cannot run without it`,
  );
}
if (!found) {
  console.log(
    `SKIPPED the dashboard's browser tests: no Chromium at ${chromiumPath} (apt-get install -y chromium, or set PQ_CHROMIUM)`,
  );
}

const XSS = "<script>alert(1)</script>";

describe("dashboard in a browser", { skip: !found }, () => {
  let t: TestPQ;
  let server: Serving;
  let browser: Browser;
  let page: Page;
  let failedId: string;
  let xssId: string;
  const shots = mkdtempSync(join(tmpdir(), "pq-dashboard-shots-"));
  const problems: string[] = [];
  const dialogs: string[] = [];
  /** Refused submissions: the browser logs each 403 as a console error. */
  let refusals = 0;
  const table = () => `"${t.scratch.schema}".queue`;
  const stateOf = async (id: string) =>
    (await t.sql.unsafe(`select state from ${table()} where id = $1`, [id]))[0]
      ?.state;
  const shoot = async (name: string) => {
    const path = join(shots, `${name}.png`);
    await page.screenshot({ path, fullPage: false });
    return path;
  };

  /**
   * Submits a form the page builds (as a user's browser would, with its
   * cookie); resolves with the status of the POST.
   */
  const submit = async (action: string, fields: Record<string, string>) => {
    const path = new URL(action, server.url).pathname;
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "POST"),
      page.waitForURL((url) => url.pathname === path),
      page.evaluate(`(() => {
        const form = document.createElement("form");
        form.method = "post";
        form.action = ${JSON.stringify(action)};
        for (const [name, value] of Object.entries(${JSON.stringify(fields)})) {
          const input = document.createElement("input");
          input.type = "hidden";
          input.name = name;
          input.value = value;
          form.append(input);
        }
        document.body.append(form);
        form.submit();
      })()`),
    ]);
    if (response.status() === 403) refusals++;
    return response.status();
  };

  before(async () => {
    t = await openTestPQ("dashboard_browser");
    const alpha = t.pq.queue("alpha");
    await alpha.putMany([{ data: 1 }, { data: 2 }]);
    xssId = await alpha.put({ note: XSS });
    const beta = t.pq.queue("beta");
    const grow = beta.task("grow", (n: number) => {
      if (n === 13) throw new Error("the apple was rotten");
    });
    await grow(1);
    await grow(13);
    await grow(2, { scheduleAt: "1h" });
    await grow(3, { scheduleAt: "1h" });
    await beta.work({ burst: true, onEvent: () => {} });
    failedId = (await beta.failed())[0].id;
    // Limits are code: the flow-control page shows this process's registry.
    t.pq.queue("gamma").task("press", () => {}, {
      lease: "5m",
      concurrency: 3,
      group: (args: { farm: string }) => args.farm,
      groupConcurrency: 2,
      rateLimit: { limit: 100, per: "1m" },
    });
    const writable = dashboard(t.pq, { readOnly: false });
    const readOnly = dashboard(t.pq, { basePath: "/ro/" });
    server = await serve(
      (request) =>
        new URL(request.url).pathname.startsWith("/ro/")
          ? readOnly(request)
          : writable(request),
      0,
    );
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(e.message));
    page.on("dialog", async (d) => {
      dialogs.push(d.message());
      await d.accept();
    });
    console.log(`screenshots: ${shots}`);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await t?.close();
  });

  test("the overview shows every queue with its counts", async () => {
    await page.goto(server.url);
    const cell = (queue: string, state: string) =>
      page.locator(`tr[data-queue="${queue}"] td[data-state="${state}"]`)
        .innerText();
    assert.equal(await cell("alpha", "ready"), "3");
    assert.equal(await cell("beta", "ready"), "0");
    assert.equal(await cell("beta", "scheduled"), "2");
    assert.equal(await cell("beta", "failed"), "1");
    assert.equal(await page.locator("svg.chart").count() >= 3, true);
    const overview = await shoot("overview");
    if (process.env.PQ_UPDATE_SCREENSHOT === "1") {
      copyFileSync(
        overview,
        fileURLToPath(new URL("../docs/dashboard.png", import.meta.url)),
      );
    }
  });

  test("a failed job shows its error and stack", async () => {
    await page.goto(`${server.url}failed?queue=beta`);
    await shoot("failed");
    await page.click(`tr[data-id="${failedId}"] a`);
    assert.equal(
      await page.locator("#error").innerText(),
      "the apple was rotten",
    );
    assert.match(await page.locator("#stack").innerText(), /rotten/);
    await shoot("job");
  });

  test("retry makes the failed job ready, in the table too", async () => {
    await page.goto(`${server.url}job?id=${failedId}`);
    await page.click("form.action button:has-text('Retry')");
    await page.waitForURL(/job\?id=/);
    assert.equal(await page.locator("#state").innerText(), "ready");
    assert.equal(await stateOf(failedId), "ready");
  });

  test("a job's data is shown as text, never run", async () => {
    await page.goto(`${server.url}queue?name=alpha`);
    await shoot("queue");
    assert.ok((await page.locator("table.jobs").innerText()).includes(XSS));
    await page.goto(`${server.url}job?id=${xssId}`);
    assert.ok((await page.locator("#data").innerText()).includes(XSS));
    assert.deepEqual(dialogs, []);
  });

  test("the schedules page lists schedules", async () => {
    const beta = t.pq.queue("beta");
    await beta.schedule("nightly", "0 3 * * *", "grow", { args: 5 });
    await page.goto(`${server.url}schedules`);
    assert.match(await page.locator("main").innerText(), /nightly/);
    await shoot("schedules");
  });

  test("a read-only dashboard shows no actions and refuses a forged one", async () => {
    const id = await t.pq.queue("alpha").put("keep me");
    await t.pq.queue("alpha").cancel(id); // cancelled: nothing to retry
    const failed = await t.sql.unsafe(
      `insert into ${table()} (queue, task, state, data, error)
      values ('beta', 'grow', 'failed', '7', '{"message":"again"}')
      returning id::text`,
    );
    const victim = failed[0].id as string;
    await page.goto(`${server.url}ro/job?id=${victim}`);
    assert.equal(await page.locator("form.action").count(), 0);
    await shoot("read-only");
    const status = await submit("/ro/retry", {
      id: victim,
      csrf: "0".repeat(64),
    });
    assert.equal(status, 403);
    assert.equal(await stateOf(victim), "failed");
  });

  test("an action with a bad CSRF token is refused and changes nothing", async () => {
    const [{ id }] = await t.sql.unsafe(
      `insert into ${table()} (queue, task, state, data, error)
      values ('beta', 'grow', 'failed', '8', '{"message":"again"}')
      returning id::text`,
    );
    await page.goto(`${server.url}job?id=${id}`);
    // The page's own form, with its token changed, posted by the page
    // (with its cookie).
    const form = page.locator("form.action").first();
    const status = await submit((await form.getAttribute("action"))!, {
      id: (await form.locator("input[name=id]").getAttribute("value"))!,
      csrf: "f".repeat(64),
    });
    assert.equal(status, 403);
    assert.equal(await stateOf(id), "failed");
  });

  test("pausing a queue from its page stores the pause and shows the badge; resume from flow control", async () => {
    const alpha = t.pq.queue("alpha");
    await page.goto(`${server.url}queue?name=alpha`);
    assert.equal(await page.locator("#paused").count(), 0);
    await page.click("form.action button:has-text('Pause')");
    await page.waitForURL(/queue\?name=alpha/);
    assert.equal(
      dialogs.at(-1),
      "Pause alpha? No process will take its jobs until it is resumed.",
    );
    assert.equal(await page.locator("#paused").innerText(), "paused");
    assert.equal(await alpha.paused(), true);

    await page.goto(server.url);
    assert.equal(
      await page.locator('tr[data-queue="alpha"] .state-paused').innerText(),
      "paused",
    );
    assert.equal(
      await page.locator('tr[data-queue="beta"] .state-paused').count(),
      0,
    );
    assert.match(await page.locator("#paused-banner").innerText(), /alpha/);
    await shoot("overview-paused");

    await page.goto(`${server.url}flow`);
    const row = page.locator('#paused tr[data-queue="alpha"]');
    assert.match(await row.innerText(), /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
    await shoot("flow");
    await row.locator("button:has-text('Resume')").click();
    await page.waitForURL(/\/flow$/);
    assert.equal(await alpha.paused(), false);
    assert.equal(await page.locator("#none-paused").count(), 1);
    await page.goto(server.url);
    assert.equal(await page.locator(".state-paused").count(), 0);
  });

  test("pause and resume are refused read-only or with a bad CSRF token, changing nothing", async () => {
    const alpha = t.pq.queue("alpha");
    await page.goto(`${server.url}ro/queue?name=alpha`);
    assert.equal(await page.locator("form.action").count(), 0);
    await page.goto(`${server.url}ro/flow`);
    assert.equal(await page.locator("form.action").count(), 0);
    assert.equal(
      await submit("/ro/queue/pause", { queue: "alpha", csrf: "0".repeat(64) }),
      403,
    );
    assert.equal(await alpha.paused(), false);

    await page.goto(`${server.url}queue?name=alpha`);
    const form = page.locator("form.action").first();
    assert.equal(
      await submit((await form.getAttribute("action"))!, {
        queue: "alpha",
        csrf: "f".repeat(64),
      }),
      403,
    );
    assert.equal(await alpha.paused(), false);

    await alpha.pause();
    await page.goto(`${server.url}flow`);
    const resume = page.locator('#paused tr[data-queue="alpha"] form.action');
    assert.equal(
      await submit((await resume.getAttribute("action"))!, {
        queue: "alpha",
        csrf: "f".repeat(64),
      }),
      403,
    );
    assert.equal(await alpha.paused(), true);
    await alpha.resume();
  });

  test("the flow-control page lists this process's tasks with their limits", async () => {
    await page.goto(`${server.url}flow`);
    assert.match(
      await page.locator("main").innerText(),
      /tasks registered in this process/i,
    );
    const cell = (queue: string, task: string, limit: string) =>
      page.locator(
        `#limits tr[data-queue="${queue}"][data-task="${task}"] td[data-limit="${limit}"]`,
      ).innerText();
    assert.equal(await cell("gamma", "press", "mode"), "lease (5m)");
    assert.equal(await cell("gamma", "press", "concurrency"), "3");
    assert.equal(await cell("gamma", "press", "group"), "2 per group()");
    assert.equal(await cell("gamma", "press", "rate"), "100 per 1m");
    assert.equal(await cell("beta", "grow", "mode"), "transaction");
    assert.equal(await cell("beta", "grow", "concurrency"), "-");
    assert.equal(await cell("beta", "grow", "rate"), "-");
  });

  test("a paused queue and a task named like a script show as text", async () => {
    // A "/" would name a codec: take the name as it is.
    const evil = t.pq.queue(XSS, { codec: "json" });
    evil.task(XSS, () => {}, { concurrency: 1 });
    await evil.pause();
    const seen = dialogs.length;
    await page.goto(server.url);
    assert.match(await page.locator("#paused-banner").innerText(), /<script>/);
    await page.goto(`${server.url}ro/flow`);
    assert.ok((await page.locator("#paused").innerText()).includes(XSS));
    assert.ok((await page.locator("#limits").innerText()).includes(XSS));
    assert.doesNotMatch(
      await page.locator("main").innerText(),
      /Pause a queue from its page/,
    );
    assert.equal(dialogs.length, seen);
    await evil.resume();
  });

  test("no page logged an error to the console", () => {
    const refused = problems.filter((p) => /status of 403/.test(p));
    assert.equal(refused.length, refusals);
    assert.deepEqual(problems.filter((p) => !refused.includes(p)), []);
  });
});
