/**
 * Flow control: the paused queues (read from the table, so every process's
 * pauses), with when each was paused and a resume button; and the limits of
 * the tasks registered in this process. Limits are code, not data: they
 * come from `queue.task(name, handler, { concurrency, ... })` in the process
 * that serves the dashboard, and the page says so.
 *
 * @module
 */

import { html } from "hono/html";
import {
  pausedQueues,
  type RegisteredTask,
  registeredTasks,
} from "../admin.ts";
import { duration } from "../cli/format.ts";
import {
  action,
  href,
  type Html,
  page,
  type PageContext,
  when,
} from "./layout.ts";

/** `5`, or `-` for no limit. */
const limit = (n: number | null) => n === null ? "-" : String(n);

/** `2 per group()`, `2 per group` (per-call groups only), or `-`. */
function groupLimit(t: RegisteredTask): string {
  if (t.groupConcurrency === null) return "-";
  return `${t.groupConcurrency} per ${t.groupFunction ? "group()" : "group"}`;
}

function tasksTable(tasks: readonly RegisteredTask[]): Html {
  if (!tasks.length) {
    return html`<p>No task is registered in this process.</p>`;
  }
  return html`
    <table id="limits">
      <thead>
        <tr>
          <th>Queue</th>
          <th>Task</th>
          <th>Mode</th>
          <th class="n">Concurrency</th>
          <th class="n">Group concurrency</th>
          <th class="n">Rate limit</th>
        </tr>
      </thead>
      <tbody>${tasks.map((t) =>
        html`
          <tr data-queue="${t.queue}" data-task="${t.task}">
            <td>${t.queue}</td>
            <td>${t.task}</td>
            <td data-limit="mode">${t.leaseMs === null
              ? "transaction"
              : `lease (${duration(t.leaseMs)})`}</td>
            <td class="n" data-limit="concurrency">${limit(t.concurrency)}</td>
            <td class="n" data-limit="group">${groupLimit(t)}</td>
            <td class="n" data-limit="rate">${t.rateLimit
              ? `${t.rateLimit.limit} per ${duration(t.rateLimit.perMs)}`
              : "-"}</td>
          </tr>
        `
      )}</tbody>
    </table>
  `;
}

/** The flow-control page. */
export async function flowPage(ctx: PageContext): Promise<Html> {
  const paused = await pausedQueues(ctx.pq);
  const rows = paused.map((p) =>
    html`
      <tr data-queue="${p.queue}">
        <td><a href="${href(ctx, "queue", { name: p.queue })}">${p
          .queue}</a> <span class="state state-paused">paused</span></td>
        <td>${when(p.pausedAt)}</td>
        <td>${action(ctx, "queue/resume", "Resume", { queue: p.queue })}</td>
      </tr>
    `
  );
  const body = html`
    <h1>Flow control</h1>
    <h2>Paused queues</h2>
    <p class="muted">Stored in the table: no process takes jobs from these
      queues until they are resumed; puts still enqueue.${ctx.readOnly
        ? ""
        : " Pause a queue from its page."}</p>
    ${paused.length
      ? html`
        <table id="paused">
          <thead>
            <tr>
              <th>Queue</th>
              <th>Paused at (UTC)</th>
              <th></th>
            </tr>
          </thead>
          <tbody>${rows}</tbody>
        </table>
      `
      : html`<p id="none-paused">No queue is paused.</p>`}
    <h2>Task limits: tasks registered in this process</h2>
    <p class="muted">Limits are code, not data: this is what the process
      serving this dashboard registered with <code>queue.task()</code>.
      Workers in other processes may register other tasks or other limits.
      Concurrency and rate limits count all processes together.</p>
    ${tasksTable(registeredTasks(ctx.pq))}
  `;
  return page(ctx, "Flow control", "flow", body);
}
