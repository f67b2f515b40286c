/**
 * Typed, validated payloads with Standard Schema, through Zod, Valibot and
 * ArkType: checked at enqueue (nothing written when invalid) and again when
 * taken (invalid stored data fails the job at once, never lost), with
 * transforms applied and types that follow the schema.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import * as v from "valibot";
import { type } from "arktype";
import type { Schema } from "../mod.ts";
import { openTestPQ, type TestPQ } from "./_pq.ts";

/** The same email schema in each library: `to`, a `subject` up to 20 characters, and `count` given as text and handed over as a number. */
const libraries: { name: string; email: Schema<unknown, Email> }[] = [
  {
    name: "Zod",
    email: z.object({
      to: z.string().email(),
      subject: z.string().max(20),
      count: z.string().transform((s) => Number(s)),
    }) as Schema<unknown, Email>,
  },
  {
    name: "Valibot",
    email: v.object({
      to: v.pipe(v.string(), v.email()),
      subject: v.pipe(v.string(), v.maxLength(20)),
      count: v.pipe(v.string(), v.transform((s) => Number(s))),
    }) as Schema<unknown, Email>,
  },
  {
    name: "ArkType",
    email: type({
      to: "string.email",
      subject: "string <= 20",
      count: type("string").pipe((s) => Number(s)),
    }) as Schema<unknown, Email>,
  },
];

interface Email {
  to: string;
  subject: string;
  count: number;
}

const good = { to: "a@b.co", subject: "hi", count: "3" };
const bad = { to: "not an email", subject: "x".repeat(30), count: "1" };

describe("schemas", () => {
  let t: TestPQ;
  let n = 0;
  const quiet = { onEvent: () => {} };
  const rawInsert = async (queue: string, task: string | null, data: unknown) =>
    (await t.sql`insert into ${
      t.sql(t.scratch.schema)
    }.queue (queue, task, data) values (${queue}, ${task}, ${
      JSON.stringify(data)
    }::text::json) returning id::text`)[0].id as string;

  before(async () => {
    t = await openTestPQ("schemas");
  });
  after(async () => {
    await t.close();
  });

  for (const { name, email } of libraries) {
    test(`${name}: a task validates at enqueue and hands the handler the schema's output`, async () => {
      const q = t.pq.queue(`task${n++}`);
      const seen: Email[] = [];
      const send = q.task("send", { schema: email }, (args) => {
        seen.push(args);
      });
      await send(good);
      await assert.rejects(send(bad), (error: Error) => {
        assert.equal(error.name, "TypeError");
        assert.match(error.message, /^Cannot enqueue task "send": the data/);
        assert.match(error.message, /data\.to: /);
        assert.match(error.message, /data\.subject: /);
        return true;
      });
      await assert.rejects(
        send.many([{ args: good }, { args: bad }]),
        /\(item 1\).*data\.to/,
      );
      assert.equal(await q.size(), 1, "nothing of the bad calls was written");
      assert.deepEqual(await q.work({ burst: true }), {
        done: 1,
        retried: 0,
        failed: 0,
      });
      assert.deepEqual(seen, [{ to: "a@b.co", subject: "hi", count: 3 }]);
    });

    test(`${name}: stored data that fails the schema fails the job at once, with the issues`, async () => {
      const q = t.pq.queue(`stored${n++}`);
      let runs = 0;
      q.task("send", () => void runs++, { schema: email, maxRetries: 3 });
      const id = await rawInsert(q.name, "send", bad);
      await rawInsert(q.name, "send", good);
      const stats = await q.work({ burst: true, ...quiet });
      assert.deepEqual(stats, { done: 1, retried: 0, failed: 1 });
      assert.equal(runs, 1);
      const [failed] = await q.failed();
      assert.equal(failed.id, id);
      assert.equal(failed.attempts, 1);
      assert.equal(failed.error?.code, "INVALID_DATA");
      assert.match(failed.error?.message ?? "", /data\.to: /);
      assert.deepEqual(failed.data, bad, "the data is kept as it was");
    });

    test(`${name}: a queue validates put() and get() returns the output; bad stored data is parked`, async () => {
      const errors: Error[] = [];
      const pq = (await import("../mod.ts")).createPQ(t.sql, {
        schema: t.scratch.schema,
        onError: (error) => void errors.push(error),
      });
      try {
        const mail = pq.queue(`mail${n++}`, { schema: email });
        await assert.rejects(mail.put(bad), TypeError);
        await assert.rejects(
          mail.putMany([{ data: good }, { data: bad }]),
          TypeError,
        );
        const parked = await rawInsert(mail.name, null, bad);
        await mail.put(good);
        const job = await mail.get({ block: false });
        assert.deepEqual(job?.data, { to: "a@b.co", subject: "hi", count: 3 });
        assert.equal(await mail.get({ block: false }), null);
        const [failed] = await mail.failed();
        assert.equal(failed.id, parked);
        assert.equal(failed.error?.code, "INVALID_DATA");
        assert.equal((errors[0] as { code?: string }).code, "INVALID_DATA");
      } finally {
        await pq.close();
      }
    });
  }

  test("an async schema works for tasks and queues", async () => {
    const even: Schema<number> = {
      "~standard": {
        version: 1,
        vendor: "test",
        validate: async (value) => {
          await new Promise((resolve) => setTimeout(resolve, 1));
          return typeof value === "number" && value % 2 === 0
            ? { value }
            : { issues: [{ message: "odd", path: ["n"] }] };
        },
      },
    };
    const q = t.pq.queue(`async${n++}`);
    const seen: number[] = [];
    const task = q.task("t", (x: number) => void seen.push(x), {
      schema: even,
    });
    await task(2);
    await assert.rejects(task(3), /data\.n: odd/);
    await q.work({ burst: true });
    assert.deepEqual(seen, [2]);
    const evens = t.pq.queue(`evens${n++}`, { schema: even });
    await evens.put(4);
    await assert.rejects(evens.put(5), TypeError);
    assert.equal((await evens.get({ block: false }))?.data, 4);
  });

  test("a schema option that is not a Standard Schema is refused", () => {
    const q = t.pq.queue(`refuse${n++}`);
    assert.throws(
      () => q.task("t", () => {}, { schema: {} as Schema }),
      /'schema' must be a Standard Schema/,
    );
    assert.throws(
      () => t.pq.queue("x", { schema: (() => {}) as unknown as Schema }),
      /'schema' must be a Standard Schema/,
    );
  });

  test("types follow the schema (checked by deno check)", () => {
    const q = t.pq.queue(`types${n++}`);
    const Email = z.object({ to: z.string(), count: z.string() });
    const send = q.task("send", { schema: Email }, (args) => {
      const to: string = args.to;
      // @ts-expect-error: the handler's argument is the schema's output
      const wrong: number = args.to;
      return [to, wrong];
    });
    const call = () => {
      // @ts-expect-error: the enqueue function takes the schema's input
      send({ to: 1, count: "2" });
      // @ts-expect-error: a missing field
      send({ to: "a" });
    };
    const mail = t.pq.queue(`typed${n++}`, {
      schema: z.object({ n: z.string().transform(Number) }),
    });
    const typed = async () => {
      await mail.put({ n: "1" });
      // @ts-expect-error: put() takes the input: a string
      await mail.put({ n: 1 });
      const job = await mail.get();
      const num: number | undefined = job?.data.n;
      // @ts-expect-error: get() returns the output: a number
      const str: string | undefined = job?.data.n;
      return [num, str];
    };
    // The options form types the handler too.
    q.task("other", (args) => {
      // @ts-expect-error: args.count is a string here
      const c: number = args.count;
      return c;
    }, { schema: Email });
    assert.equal(typeof call, "function");
    assert.equal(typeof typed, "function");
  });
});

// pq's Schema is @standard-schema/spec's StandardSchemaV1, written out:
// each is assignable to the other (deno check fails otherwise).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemaIsStandard: Same<
  Schema<string, number>,
  import("@standard-schema/spec").StandardSchemaV1<string, number>
> = true;
void schemaIsStandard;
