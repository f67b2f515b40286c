/**
 * The overview: every queue with its jobs by state, its lag, its depth and
 * its completed and failed jobs per minute over the last hour, and a badge
 * on each paused queue. The paused queues are one extra statement, run
 * beside `stats()`: an index probe of a table that is usually empty.
 *
 * @module
 */

import { html } from "hono/html";
import { pausedQueues } from "../admin.ts";
import { count, duration } from "../cli/format.ts";
import type { MinuteCounts, QueueStats } from "../stats.ts";
import { depthBar, minutesChart } from "./charts.ts";
import { href, type Html, page, type PageContext } from "./layout.ts";

/** Adds up the queues' minutes. */
function allMinutes(queues: readonly QueueStats[]): MinuteCounts[] {
  if (!queues.length) return [];
  return queues[0].perMinute.map((m, i) => ({
    minute: m.minute,
    completed: queues.reduce((s, q) => s + q.perMinute[i].completed, 0),
    failed: queues.reduce((s, q) => s + q.perMinute[i].failed, 0),
    retried: queues.reduce((s, q) => s + q.perMinute[i].retried, 0),
  }));
}

/** The overview page. */
export async function overviewPage(ctx: PageContext): Promise<Html> {
  const [stats, paused] = await Promise.all([
    ctx.pq.stats(),
    pausedQueues(ctx.pq),
  ]);
  const queues = stats.queues;
  const isPaused = new Set(paused.map((p) => p.queue));
  const depth = (q: QueueStats) =>
    q.counts.ready.count + q.counts.scheduled.count + q.counts.running.count +
    q.counts.failed.count;
  const most = Math.max(1, ...queues.map(depth));
  const sum = (q: QueueStats, key: "completed" | "failed") =>
    q.perMinute.reduce((s, m) => s + m[key], 0);
  const rows = queues.map((q) =>
    html`
      <tr data-queue="${q.name}">
        <td><a href="${href(ctx, "queue", { name: q.name })}">${q
          .name}</a>${isPaused.has(q.name)
          ? html`
            <span class="state state-paused">paused</span>
          `
          : ""}</td>
        <td class="n" data-state="ready">${count(q.counts.ready)}</td>
        <td class="n" data-state="scheduled">${count(q.counts.scheduled)}</td>
        <td class="n" data-state="running">${count(q.counts.running)}</td>
        <td class="n" data-state="failed"><a href="${href(ctx, "failed", {
          queue: q.name,
        })}">${count(q.counts.failed)}</a></td>
        <td class="n" data-state="completed">${count(q.counts.completed)}</td>
        <td class="n" data-state="cancelled">${count(q.counts.cancelled)}</td>
        <td class="n">${duration(q.lagMs)}</td>
        <td>${depthBar([
          { label: "ready", count: q.counts.ready.count, className: "ready" },
          {
            label: "scheduled",
            count: q.counts.scheduled.count,
            className: "scheduled",
          },
          {
            label: "running",
            count: q.counts.running.count,
            className: "running",
          },
          {
            label: "failed",
            count: q.counts.failed.count,
            className: "failed",
          },
        ], most)}</td>
        <td>${minutesChart(q.perMinute, 180, 28)}</td>
        <td class="n">${sum(q, "completed")} / ${sum(q, "failed")}</td>
      </tr>
    `
  );
  const body = html`
    <h1>Queues</h1>
    ${paused.length
      ? html`
        <p class="banner"
          id="paused-banner">Paused: ${paused.map((p, i) =>
            html`${i ? ", " : ""}<a href="${
              href(ctx, "queue", {
                name: p.queue,
              })
            }">${p.queue}</a>`
          )} (<a href="${href(ctx, "flow")}">flow control</a>)</p>
      `
      : ""}
    <p
      class="muted">Counts stop at ${stats.limit.toLocaleString(
        "en-US",
      )} per state (shown as "N+"); "~N" is the planner's estimate. As of ${stats
        .at.toISOString().slice(11, 19)} UTC.</p>
    <h2>Completed and failed per minute, last hour, all queues</h2>
    ${minutesChart(allMinutes(queues), 720, 90)}
    <h2>By queue</h2>
    ${queues.length
      ? html`
        <table id="queues">
          <thead>
            <tr>
              <th>Queue</th>
              <th class="n">Ready</th>
              <th class="n">Scheduled</th>
              <th class="n">Running</th>
              <th class="n">Failed</th>
              <th class="n">Completed</th>
              <th class="n">Cancelled</th>
              <th class="n">Lag</th>
              <th>Depth</th>
              <th>Last hour</th>
              <th class="n">Done / failed</th>
            </tr>
          </thead>
          <tbody>${rows}</tbody>
        </table>
      `
      : html`<p>No queues yet: no jobs, and nothing finished in the last hour.</p>`}
  `;
  return page(ctx, "Overview", "", body);
}
