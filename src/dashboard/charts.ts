/**
 * Inline SVG charts, drawn on the server: no script, no library, no CDN.
 *
 * @module
 */

import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { MinuteCounts } from "../stats.ts";

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/**
 * Completed (green) and failed (red) jobs per minute, as bars, oldest on
 * the left; the title of each bar says its minute and counts.
 */
export function minutesChart(
  minutes: readonly MinuteCounts[],
  width = 360,
  height = 60,
): Html {
  const most = Math.max(1, ...minutes.map((m) => m.completed + m.failed));
  const bar = width / Math.max(1, minutes.length);
  const bars = minutes.map((m, i) => {
    const done = (m.completed / most) * (height - 2);
    const failed = (m.failed / most) * (height - 2);
    const x = (i * bar).toFixed(1);
    const w = Math.max(1, bar - 1).toFixed(1);
    const label = `${
      m.minute.toISOString().slice(11, 16)
    } UTC: ${m.completed} completed, ${m.failed} failed`;
    return html`
      <g>
        <title>${label}</title>
        <rect x="${x}" y="${(height - done).toFixed(
          1,
        )}" width="${w}" height="${done.toFixed(1)}"
          class="ok"></rect>
        <rect x="${x}" y="${(height - done - failed).toFixed(
          1,
        )}" width="${w}" height="${failed.toFixed(1)}"
          class="bad"></rect>
      </g>
    `;
  });
  return html`
    <svg class="chart" viewBox="0 0 ${width} ${height}" width="${width}"
      height="${height}" role="img"
      aria-label="completed and failed per minute, last hour">${bars}</svg>
  `;
}

/** One segment of a depth bar. */
export interface DepthPart {
  label: string;
  count: number;
  className: string;
}

/** A horizontal bar of a queue's jobs by state, scaled to `most`. */
export function depthBar(
  parts: readonly DepthPart[],
  most: number,
  width = 240,
  height = 14,
): Html {
  let x = 0;
  const rects = parts.filter((p) => p.count > 0).map((p) => {
    const w = (p.count / Math.max(1, most)) * width;
    const rect = html`
      <rect x="${x.toFixed(1)}" y="0" width="${Math.max(1, w).toFixed(
        1,
      )}" height="${height}"
        class="${p.className}">
        <title>${p.label}: ${p.count}</title>
      </rect>
    `;
    x += w;
    return rect;
  });
  return html`
    <svg class="depth" viewBox="0 0 ${width} ${height}" width="${width}"
      height="${height}" role="img" aria-label="jobs by state">${rects}</svg>
  `;
}
