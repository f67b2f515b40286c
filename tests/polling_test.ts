/**
 * Polling mode (`listen: false`) and the safety-net poll: blocking gets find
 * jobs without LISTEN, the poll costs one statement per interval per PQ
 * however many getters wait, and a get still finds a job when the LISTEN
 * connection died and cannot come back.
 *
 * The PQs under test connect through a TCP proxy (`_proxy.ts`) that counts
 * their statements and can refuse new connections.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ, type PQ } from "../mod.ts";
import { databaseUrl, type TestSchema, testSchema } from "./_db.ts";
import { since, sleep } from "./_pq.ts";
import { startProxy, type TcpProxy } from "./_proxy.ts";

const POLL_MS = 250;
/** The longest a poll may take to come: the interval plus its jitter. */
const POLL_BOUND_MS = POLL_MS * 1.1;
/** Generous room for the poll's query, the take and a busy machine. */
const MARGIN_MS = 750;

describe("polling", () => {
  /** A direct client: setup, and the "other connection" that puts. */
  let admin: postgres.Sql;
  let scratch: TestSchema;
  let n = 0;

  before(async () => {
    admin = postgres(databaseUrl(), { max: 2, onnotice: () => {} });
    scratch = await testSchema(admin, "polling");
    await createPQ(admin, { schema: scratch.schema }).create();
  });
  after(async () => {
    await scratch.drop();
    await admin.end();
  });

  /** Puts a job from the admin connection, which is not the PQ's. */
  async function putElsewhere(queue: string, data: unknown): Promise<void> {
    await createPQ(admin, { schema: scratch.schema }).queue(queue).put(data);
  }

  /** A client and a PQ that reach the server through a fresh proxy. */
  async function proxied(
    options: { listen: boolean; max?: number },
  ): Promise<{
    proxy: TcpProxy;
    sql: postgres.Sql;
    pq: PQ;
    [Symbol.asyncDispose](): Promise<void>;
  }> {
    const proxy = await startProxy(databaseUrl());
    const sql = postgres(proxy.url, {
      max: options.max ?? 4,
      prepare: false,
      onnotice: () => {},
    });
    const pq = createPQ(sql, {
      schema: scratch.schema,
      listen: options.listen,
      pollInterval: `${POLL_MS}ms`,
    });
    return {
      proxy,
      sql,
      pq,
      async [Symbol.asyncDispose]() {
        proxy.refuse = false;
        await pq.close();
        await sql.end({ timeout: 1 });
        await proxy.close();
      },
    };
  }

  test("with listen: false a blocking get returns a job put by another connection within the poll interval", async () => {
    await using p = await proxied({ listen: false });
    const name = `plain${n++}`;
    const got = p.pq.queue(name).get({ timeout: "10s" });
    await sleep(600); // a few polls find nothing
    await putElsewhere(name, "polled");
    const putAt = performance.now();
    const job = await got;
    const waited = since(putAt);
    assert.equal(job?.data, "polled");
    assert.ok(
      waited < POLL_BOUND_MS + MARGIN_MS,
      `returned ${waited.toFixed(0)} ms after the put`,
    );
    // Nothing of LISTEN went over the wire, not even the registration.
    const listenTexts = p.proxy.texts.filter((text) =>
      /^\s*(listen|unlisten)\b|pq_wait/i.test(text)
    );
    assert.deepEqual(listenTexts, []);
    assert.deepEqual(p.proxy.namedStatements, []);
  });

  test("many waiting getters cost one poll query per interval", async () => {
    await using p = await proxied({ listen: false });
    const queues = [0, 1, 2, 3].map(() => p.pq.queue(`many${n++}`));
    // 24 getters on 4 queues, all waiting on empty queues.
    const gets = Array.from(
      { length: 24 },
      (_, i) => queues[i % 4].get({ timeout: "2500ms" }),
    );
    await sleep(500); // every getter has made its first attempt
    const before = p.proxy.statements;
    const windowStart = performance.now();
    await sleep(1_500);
    const polled = p.proxy.statements - before;
    const window = since(windowStart);
    assert.deepEqual(await Promise.all(gets), new Array(24).fill(null));
    // One query per interval for the whole PQ: about 6 in 1.5 s. Per getter
    // it would be about 144.
    const most = Math.ceil(window / (POLL_MS * 0.9)) + 1;
    assert.ok(
      polled >= 3 && polled <= most,
      `${polled} statements in ${window.toFixed(0)} ms (expected 3 to ${most})`,
    );
  });

  test("with LISTEN on but its connection killed and kept from reconnecting, a blocking get still returns a job within the poll interval", async () => {
    await using p = await proxied({ listen: true, max: 3 });
    // Open every pool connection now: only new connections are refused.
    await Promise.all(
      [1, 2, 3].map(() => p.sql`select pg_sleep(0.1)`.execute()),
    );
    const name = `safety${n++}`;
    const start = performance.now();
    const got = p.pq.queue(name).get({ timeout: "20s" });
    const listener = await listenerPid(p.proxy);
    p.proxy.refuse = true;
    await admin`select pg_terminate_backend(${listener})`;
    await sleep(500); // the listener tries to reconnect and is refused
    assert.ok(p.proxy.refused > 0, "the listener tried to reconnect");
    await putElsewhere(name, "safety net");
    const putAt = performance.now();
    const job = await got;
    const waited = since(putAt);
    assert.equal(job?.data, "safety net");
    assert.ok(
      waited < POLL_BOUND_MS + MARGIN_MS,
      `returned ${waited.toFixed(0)} ms after the put (${
        since(start).toFixed(0)
      } ms after the get began)`,
    );
    // It was the poll, not a reconnected listener.
    assert.deepEqual(await listenerBackends(p.proxy), []);
  });

  /** Backends of pq listeners that came through `proxy`. */
  async function listenerBackends(proxy: TcpProxy): Promise<number[]> {
    const ports = proxy.upstreamPorts();
    if (ports.length === 0) return [];
    const rows = await admin`select pid from pg_stat_activity
      where application_name = 'pq listener'
        and client_port = any(${ports}::int[])`;
    return rows.map((row) => row.pid as number);
  }

  /** Waits until the PQ behind `proxy` has its LISTEN connection. */
  async function listenerPid(proxy: TcpProxy): Promise<number> {
    for (let i = 0; i < 100; i++) {
      const [pid] = await listenerBackends(proxy);
      if (pid) return pid;
      await sleep(50);
    }
    throw new Error("no pq listener connected through the proxy in 5 s");
  }
});
