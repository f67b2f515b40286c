/**
 * Failed jobs: the queues that have some, the failed jobs of one, and
 * retry or delete for one job or for all of a queue's (in statements of
 * at most 500 rows each, see `sql/browse_jobs.ts`).
 *
 * @module
 */

import { html } from "hono/html";
import { browseJobs } from "../admin.ts";
import { count } from "../cli/format.ts";
import {
  action,
  href,
  type Html,
  page,
  type PageContext,
  when,
} from "./layout.ts";
import { PAGE_SIZE } from "./queue_page.ts";

/** The failed jobs page. */
export async function failedPage(ctx: PageContext, url: URL): Promise<Html> {
  const stats = await ctx.pq.stats();
  const withFailures = stats.queues.filter((q) => q.counts.failed.count > 0);
  const queue = url.searchParams.get("queue") || withFailures[0]?.name || "";
  const beforeParam = url.searchParams.get("before");
  const before = beforeParam && /^[1-9]\d{0,18}$/.test(beforeParam)
    ? beforeParam
    : null;
  const jobs = queue
    ? await browseJobs(ctx.pq, {
      queue,
      states: ["failed"],
      before,
      limit: PAGE_SIZE,
    })
    : [];
  const queues = withFailures.map((q) =>
    html`<a href="${href(ctx, "failed", { queue: q.name })}" class="${
      q.name === queue ? "on" : ""
    }">${q.name} (${count(q.counts.failed)})</a>`
  );
  const rows = jobs.map((j) =>
    html`
      <tr data-id="${j.id}">
        <td><a href="${href(ctx, "job", { id: j.id })}">${j.id}</a></td>
        <td>${j.task ?? "-"}</td>
        <td class="n">${j.attempts}</td>
        <td>${when(j.finishedAt)}</td>
        <td class="error">${j.error ?? ""}</td>
        <td><code>${j.preview}</code></td>
        <td>${action(ctx, "retry", "Retry", { id: j.id })}${action(
          ctx,
          "delete",
          "Delete",
          { id: j.id },
          "Delete this job?",
        )}</td>
      </tr>
    `
  );
  const bulk = queue
    ? html`<p>${
      action(
        ctx,
        "failed/retry",
        `Retry all failed jobs of ${queue}`,
        { queue },
        `Retry every failed job of ${queue}?`,
      )
    } ${
      action(
        ctx,
        "failed/delete",
        `Delete all failed jobs of ${queue}`,
        { queue },
        `Delete every failed job of ${queue}?`,
      )
    }</p>`
    : html``;
  const body = html`<h1>Failed jobs${
    queue
      ? html`
        of ${queue}
      `
      : ""
  }</h1>
<p class="tabs">${
    queues.length ? queues : html`<span>No failed jobs.</span>`
  }</p>
${bulk}
${
    jobs.length
      ? html`
        <table class="jobs">
          <thead>
            <tr>
              <th>Id</th>
              <th>Task</th>
              <th class="n">Attempts</th>
              <th>Failed</th>
              <th>Error</th>
              <th>Data</th>
              <th></th>
            </tr>
          </thead>
          <tbody>${rows}</tbody>
        </table>
      `
      : ""
  }
${
    jobs.length === PAGE_SIZE
      ? html`<p><a href="${
        href(ctx, "failed", { queue, before: jobs[jobs.length - 1].id })
      }">Older →</a></p>`
      : ""
  }`;
  return page(ctx, "Failed jobs", "failed", body);
}
