/**
 * Every queue's cron schedules: expression, time zone, task, next and last
 * tick, and pause or resume.
 *
 * @module
 */

import { html } from "hono/html";
import { allSchedules } from "../admin.ts";
import {
  action,
  href,
  type Html,
  page,
  type PageContext,
  when,
} from "./layout.ts";

/** The schedules page. */
export async function schedulesPage(ctx: PageContext): Promise<Html> {
  const list = await allSchedules(ctx.pq);
  const rows = list.map((s) =>
    html`
      <tr>
        <td><a href="${href(ctx, "queue", { name: s.queue })}">${s
          .queue}</a></td>
        <td>${s.name}</td>
        <td><code>${s.cron}</code></td>
        <td>${s.timezone ?? "UTC"}</td>
        <td>${s.task}</td>
        <td><code>${s.args}</code></td>
        <td>${s.paused ? html`<em>paused</em>` : when(s.nextAt)}</td>
        <td>${when(s.lastAt)}</td>
        <td>${action(
          ctx,
          s.paused ? "schedules/resume" : "schedules/pause",
          s.paused ? "Resume" : "Pause",
          { queue: s.queue, name: s.name },
        )}</td>
      </tr>
    `
  );
  const body = html`<h1>Schedules</h1>${
    list.length
      ? html`
        <table>
          <thead>
            <tr>
              <th>Queue</th>
              <th>Name</th>
              <th>Cron</th>
              <th>Time zone</th>
              <th>Task</th>
              <th>Arguments</th>
              <th>Next (UTC)</th>
              <th>Last (UTC)</th>
              <th></th>
            </tr>
          </thead>
          <tbody>${rows}</tbody>
        </table>
      `
      : html`<p>No schedules.</p>`
  }`;
  return page(ctx, "Schedules", "schedules", body);
}
