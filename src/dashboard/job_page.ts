/**
 * One job: its data pretty-printed, error and stack, attempts, times,
 * progress and result, and what can be done to it.
 *
 * @module
 */

import { html } from "hono/html";
import { findJob } from "../admin.ts";
import { action, type Html, page, type PageContext, when } from "./layout.ts";

const pretty = (value: unknown) => {
  try {
    return JSON.stringify(value, null, 2) ?? String(value);
  } catch {
    return String(value);
  }
};

/** The job page; null when there is no such job. */
export async function jobPage(
  ctx: PageContext,
  id: string,
): Promise<Html | null> {
  const job = await findJob(ctx.pq, id);
  if (!job) return null;
  const rows: [string, string][] = [
    ["Queue", job.queue],
    ["Task", job.task ?? "-"],
    ["Key", job.key ?? "-"],
    [
      "Attempt",
      `${job.attempt}${job.maxAttempts ? ` of ${job.maxAttempts}` : ""}`,
    ],
    ["Enqueued", when(job.enqueuedAt)],
    ["Scheduled at", when(job.scheduleAt)],
    ["Expected at", when(job.expectedAt)],
    ["Started", when(job.startedAt)],
    ["Finished", when(job.finishedAt)],
  ];
  const fields = { id: job.id };
  const actions = [
    job.state === "failed" ? action(ctx, "retry", "Retry", fields) : "",
    ["ready", "scheduled", "running"].includes(job.state)
      ? action(ctx, "cancel", "Cancel", fields, "Cancel this job?")
      : "",
    job.state === "failed"
      ? action(ctx, "delete", "Delete", fields, "Delete this job?")
      : "",
  ];
  const body =
    html`<h1>Job ${job.id} <span class="state state-${job.state}" id="state">${job.state}</span></h1>
<p>${actions}</p>
<table class="fields">${
      rows.map(([k, v]) =>
        html`
          <tr>
            <th>${k}</th>
            <td>${v}</td>
          </tr>
        `
      )
    }</table>
${
      job.error
        ? html`<h2>Error</h2><p class="error" id="error">${job.error.message}</p>${
          job.error.stack ? html`<pre id="stack">${job.error.stack}</pre>` : ""
        }`
        : ""
    }
<h2>Data</h2><pre id="data">${
      job.data === undefined ? job.rawData : pretty(job.data)
    }</pre>
${
      job.progress !== undefined
        ? html`
          <h2>Progress</h2>
          <pre id="progress">${pretty(job.progress)}</pre>
        `
        : ""
    }
${
      job.result !== undefined
        ? html`
          <h2>Result</h2>
          <pre id="result">${pretty(job.result)}</pre>
        `
        : ""
    }`;
  return page(ctx, `Job ${job.id}`, "job", body);
}
