/**
 * A queue's jobs by state, newest first, 50 a page with keyset paging
 * ("older" continues below the last id shown), and a search by job id or
 * unique key. Shows whether the queue is paused, with a pause or resume
 * button.
 *
 * @module
 */

import { html } from "hono/html";
import {
  browseJobs,
  LISTED_STATES,
  queueNamed,
  storedStates,
} from "../admin.ts";
import type { JobSummary } from "../sql/browse_jobs.ts";
import {
  action,
  href,
  type Html,
  page,
  type PageContext,
  when,
} from "./layout.ts";

/** Jobs per page. */
export const PAGE_SIZE = 50;

/** A table of jobs, with links to each. */
export function jobTable(ctx: PageContext, jobs: readonly JobSummary[]): Html {
  if (!jobs.length) return html`<p>No jobs.</p>`;
  return html`
    <table class="jobs">
      <thead>
        <tr>
          <th>Id</th>
          <th>State</th>
          <th>Task</th>
          <th>Key</th>
          <th class="n">Attempts</th>
          <th>Enqueued</th>
          <th>Data</th>
          <th>Error</th>
        </tr>
      </thead>
      <tbody>${jobs.map((j) => {
        const state = j.state === "done" ? "completed" : j.state;
        return html`
          <tr data-id="${j.id}">
            <td><a href="${href(ctx, "job", { id: j.id })}">${j.id}</a></td>
            <td><span class="state state-${state}">${state}</span></td>
            <td>${j.task ?? "-"}</td>
            <td>${j.key ?? ""}</td>
            <td class="n">${j.attempts}</td>
            <td>${when(j.enqueuedAt)}</td>
            <td><code>${j.preview}</code></td>
            <td class="error">${j.error ?? ""}</td>
          </tr>
        `;
      })}</tbody>
    </table>
  `;
}

/** The queue page. */
export async function queuePage(ctx: PageContext, url: URL): Promise<Html> {
  const name = url.searchParams.get("name") ?? "";
  const state = url.searchParams.get("state") || null;
  const search = url.searchParams.get("q") || null;
  const beforeParam = url.searchParams.get("before");
  const before = beforeParam && /^[1-9]\d{0,18}$/.test(beforeParam)
    ? beforeParam
    : null;
  const states = storedStates(state);
  const [jobs, paused] = name
    ? await Promise.all([
      browseJobs(ctx.pq, {
        queue: name,
        states,
        before,
        search,
        limit: PAGE_SIZE,
      }),
      queueNamed(ctx.pq, name).paused(),
    ])
    : [[], false];
  const tabs = [null, ...LISTED_STATES].map((s) =>
    html`<a href="${href(ctx, "queue", { name, state: s })}" class="${
      s === state ? "on" : ""
    }">${s ?? "all"}</a>`
  );
  const older = jobs.length === PAGE_SIZE
    ? html`<p><a id="older" href="${
      href(ctx, "queue", {
        name,
        state,
        q: search,
        before: jobs[jobs.length - 1].id,
      })
    }">Older jobs →</a></p>`
    : html``;
  const body = html`
    <h1>Queue ${name}${paused
      ? html`
        <span class="state state-paused" id="paused">paused</span>
      `
      : ""}</h1>
    ${name
      ? html`<p>${
        paused
          ? action(ctx, "queue/resume", "Resume", { queue: name })
          : action(
            ctx,
            "queue/pause",
            "Pause",
            { queue: name },
            `Pause ${name}? No process will take its jobs until it is resumed.`,
          )
      }</p>`
      : ""}
    <p class="tabs">${tabs}</p>
    <form method="get"
      action="${href(
        ctx,
        "queue",
      )}"><input type="hidden" name="name" value="${name}"><input type="hidden" name="state" value="${state ??
        ""}"><input type="search" name="q" placeholder="job id or key" value="${search ??
        ""}"> <button type="submit">Search</button></form>
    ${jobTable(ctx, jobs)}
    ${older}
  `;
  return page(ctx, `Queue ${name}`, "queue", body);
}
