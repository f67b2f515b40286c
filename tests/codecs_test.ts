import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { assertStorable, jsonCodec } from "../src/codecs.ts";
import { richCodec } from "../src/pickle.ts";

// ---------------------------------------------------------------------------
// A deep equality for round trips. node:assert's deepStrictEqual differs
// between runtimes (Node 20 finds two invalid Dates unequal), so this one is
// spelled out: Object.is for primitives (NaN equals NaN, -0 differs from 0),
// same prototypes, Dates by time, RegExps by source and flags, binary data by
// kind and bytes, Maps and Sets by deep matching, arrays and objects by own
// enumerable keys (a hole differs from undefined).

/** Describes the first difference between two values, or returns undefined. */
function difference(
  a: unknown,
  b: unknown,
  path = "value",
): string | undefined {
  if (Object.is(a, b)) return undefined;
  if (
    typeof a !== "object" || typeof b !== "object" || a === null || b === null
  ) {
    return `${path}: ${show(a)} is not ${show(b)}`;
  }
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) {
    return `${path}: the prototypes differ`;
  }
  if (a instanceof Date) {
    const same = Object.is(a.getTime(), (b as Date).getTime());
    return same
      ? undefined
      : `${path}: ${a.getTime()} is not ${(b as Date).getTime()}`;
  }
  if (a instanceof RegExp) {
    const r = b as RegExp;
    return a.source === r.source && a.flags === r.flags
      ? undefined
      : `${path}: ${a} is not ${r}`;
  }
  if (ArrayBuffer.isView(a) || a instanceof ArrayBuffer) {
    const x = bytes(a);
    const y = bytes(b as ArrayBuffer);
    const same = x.length === y.length && x.every((byte, i) => byte === y[i]);
    return same ? undefined : `${path}: the bytes differ`;
  }
  if (a instanceof Map) {
    return mapDifference(a, b as Map<unknown, unknown>, path);
  }
  if (a instanceof Set) return setDifference(a, b as Set<unknown>, path);
  if (Array.isArray(a) && a.length !== (b as unknown[]).length) {
    return `${path}: the lengths differ`;
  }
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.join("\0") !== keysB.join("\0")) {
    return `${path}: keys ${JSON.stringify(keysA)} are not ${
      JSON.stringify(keysB)
    }`;
  }
  for (const key of keysA) {
    const found = difference(
      (a as Record<string, unknown>)[key],
      (b as Record<string, unknown>)[key],
      `${path}[${JSON.stringify(key)}]`,
    );
    if (found !== undefined) return found;
  }
  return undefined;
}

function mapDifference(
  a: Map<unknown, unknown>,
  b: Map<unknown, unknown>,
  path: string,
): string | undefined {
  if (a.size !== b.size) return `${path}: the sizes differ`;
  const unmatched = [...b];
  for (const [key, value] of a) {
    const i = unmatched.findIndex(([k, v]) =>
      difference(key, k) === undefined && difference(value, v) === undefined
    );
    if (i === -1) return `${path}: no entry matches the key ${show(key)}`;
    unmatched.splice(i, 1);
  }
  return undefined;
}

function setDifference(
  a: Set<unknown>,
  b: Set<unknown>,
  path: string,
): string | undefined {
  if (a.size !== b.size) return `${path}: the sizes differ`;
  const unmatched = [...b];
  for (const value of a) {
    const i = unmatched.findIndex((v) => difference(value, v) === undefined);
    if (i === -1) return `${path}: no element matches ${show(value)}`;
    unmatched.splice(i, 1);
  }
  return undefined;
}

function bytes(value: ArrayBufferView | ArrayBuffer): Uint8Array {
  return value instanceof ArrayBuffer
    ? new Uint8Array(value)
    : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function show(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  if (Object.is(value, -0)) return "-0";
  return typeof value === "object" && value !== null
    ? "an object"
    : String(value);
}

function assertSame(actual: unknown, expected: unknown): void {
  const found = difference(actual, expected);
  if (found !== undefined) assert.fail(found);
}

function roundTrip(value: unknown): unknown {
  return richCodec.decode(richCodec.encode(value));
}

test("the test's deep equality tells apart what a round trip must keep", () => {
  const pairs: [unknown, unknown][] = [
    [-0, 0],
    [NaN, 0],
    [1n, 1],
    [{ a: undefined }, {}],
    [[, 1], [undefined, 1]], // a hole
    [new Uint8Array([1]), new Int8Array([1])],
    [new Uint8Array([1]), new Uint8Array([2])],
    [new Date(1), new Date(2)],
    [new Date(NaN), new Date(0)],
    [/a/g, /a/i],
    [new Map([[{}, 1]]), new Map([[{}, 2]])],
    [new Map([[1, 2]]), new Map([[2, 1]])],
    [new Set([{ a: 1 }]), new Set([{ a: 2 }])],
    [Object.create(null), {}],
    [new DataView(new ArrayBuffer(1)), new DataView(new ArrayBuffer(2))],
  ];
  for (const [a, b] of pairs) assert.notEqual(difference(a, b), undefined);
  assert.equal(difference(new Date(NaN), new Date(NaN)), undefined);
  assert.equal(
    difference(new Map([[{}, 1], [{}, 2]]), new Map([[{}, 2], [{}, 1]])),
    undefined,
  );
  assert.equal(difference([NaN, -0], [NaN, -0]), undefined);
});

// ---------------------------------------------------------------------------
// jsonCodec

test("jsonCodec writes what JSON.stringify writes", () => {
  const data = {
    kind: "Cox",
    n: 1,
    tags: ["a", "b"],
    nested: { ok: true, none: null },
  };
  assert.equal(jsonCodec.encode(data), JSON.stringify(data));
  assert.deepEqual(jsonCodec.decode(jsonCodec.encode(data)), data);
});

test("jsonCodec drops undefined properties and writes undefined in arrays as null, like JSON", () => {
  assert.equal(
    jsonCodec.encode({ a: undefined, b: [undefined, 1] }),
    '{"b":[null,1]}',
  );
});

test("jsonCodec writes Dates as ISO strings and honours toJSON", () => {
  const when = new Date("2020-01-01T00:00:00Z");
  const money = { toJSON: () => "12.50 EUR" };
  assert.equal(
    jsonCodec.encode({ when, money }),
    '{"when":"2020-01-01T00:00:00.000Z","money":"12.50 EUR"}',
  );
});

test("jsonCodec writes -0 as 0, like JSON", () => {
  assert.equal(jsonCodec.encode(-0), "0");
});

test("jsonCodec writes class instances as their own enumerable properties", () => {
  class Point {
    constructor(public x: number, public y: number) {}
    get length(): number {
      return Math.hypot(this.x, this.y);
    }
  }
  assert.equal(jsonCodec.encode(new Point(3, 4)), '{"x":3,"y":4}');
});

test("jsonCodec keeps a __proto__ key as data", () => {
  const text = '{"__proto__":{"admin":true}}';
  const value = jsonCodec.decode(text) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(value), Object.prototype);
  assert.equal(jsonCodec.encode(value), text);
});

const HINT = ' (use the "pickle" codec for values JSON cannot hold)';

const jsonRefusals: [string, unknown, string][] = [
  ["a BigInt", { big: 1n }, `a BigInt at data.big${HINT}`],
  [
    "a BigInt deep in an array",
    { list: [1, [2, 3n]] },
    `a BigInt at data.list[1][1]${HINT}`,
  ],
  ["a BigInt at the top", 10n, `a BigInt at data${HINT}`],
  [
    "a BigInt under an odd key",
    { "a b": { "0": 1n } },
    `a BigInt at data["a b"]["0"]${HINT}`,
  ],
  ["a function", { f() {} }, "a function at data.f"],
  ["a function in an array", [() => 1], "a function at data[0]"],
  ["a function at the top", () => 1, "a function at data"],
  ["a symbol", { s: Symbol("s") }, "a symbol at data.s"],
  ["a symbol at the top", Symbol("s"), "a symbol at data"],
  ["NaN", { n: NaN }, `NaN at data.n${HINT}`],
  ["Infinity", { n: [Infinity] }, `Infinity at data.n[0]${HINT}`],
  ["-Infinity", { n: -Infinity }, `-Infinity at data.n${HINT}`],
  ["a Map", { m: new Map([[1, 2]]) }, `a Map at data.m${HINT}`],
  ["a Set", { s: new Set([1]) }, `a Set at data.s${HINT}`],
  ["a Uint8Array", { b: new Uint8Array([1]) }, `a Uint8Array at data.b${HINT}`],
  ["an Int16Array", { b: new Int16Array(2) }, `an Int16Array at data.b${HINT}`],
  [
    "a Float64Array",
    { b: new Float64Array(2) },
    `a Float64Array at data.b${HINT}`,
  ],
  [
    "a BigInt64Array",
    { b: new BigInt64Array(1) },
    `a BigInt64Array at data.b${HINT}`,
  ],
  [
    "an ArrayBuffer",
    { b: new ArrayBuffer(4) },
    `an ArrayBuffer at data.b${HINT}`,
  ],
  [
    "a DataView",
    { b: new DataView(new ArrayBuffer(4)) },
    `a DataView at data.b${HINT}`,
  ],
  ["a RegExp", { r: /a/g }, `a RegExp at data.r${HINT}`],
  ["an invalid Date", { d: new Date(NaN) }, `an invalid Date at data.d${HINT}`],
  ["undefined at the top", undefined, `undefined at data${HINT}`],
  [
    "an Error, whose message and stack JSON drops",
    { error: new RangeError("boom") },
    "a RangeError at data.error",
  ],
  [
    "a toJSON returning a BigInt",
    { x: { toJSON: () => 5n } },
    `a BigInt at data.x${HINT}`,
  ],
];

for (const [name, value, problem] of jsonRefusals) {
  test(`jsonCodec refuses ${name}, naming it and its path`, () => {
    assert.throws(() => jsonCodec.encode(value), {
      name: "TypeError",
      message: `Cannot encode job data as JSON: ${problem}`,
    });
  });
}

test("jsonCodec refuses a cycle, naming where it closes", () => {
  const a: Record<string, unknown> = { name: "a" };
  a.list = [1, { back: a }];
  assert.throws(() => jsonCodec.encode({ a }), {
    name: "TypeError",
    message:
      "Cannot encode job data as JSON: a circular reference at data.a.list[1].back",
  });
});

test("jsonCodec accepts the same object twice when it is not a cycle", () => {
  const shared = { x: 1 };
  assert.equal(jsonCodec.encode([shared, shared]), '[{"x":1},{"x":1}]');
});

test("jsonCodec passes on an error thrown by toJSON", () => {
  const boom = new Error("boom");
  assert.throws(() =>
    jsonCodec.encode({
      x: {
        toJSON() {
          throw boom;
        },
      },
    }), (error) => error === boom);
});

test("jsonCodec decodes with JSON.parse and throws its SyntaxError", () => {
  assert.deepEqual(jsonCodec.decode('{"a":[1,"b",null]}'), {
    a: [1, "b", null],
  });
  assert.throws(() => jsonCodec.decode("{nope"), SyntaxError);
});

test("jsonCodec round-trips any JSON value exactly", () => {
  // JSON.parse(JSON.stringify(v)) turns -0 into 0, which JSON cannot tell apart.
  const json = fc.jsonValue().map((value) => JSON.parse(JSON.stringify(value)));
  fc.assert(
    fc.property(json, (value) => {
      const text = jsonCodec.encode(value);
      assert.equal(text, JSON.stringify(value));
      assert.deepStrictEqual(jsonCodec.decode(text), value);
    }),
  );
});

// ---------------------------------------------------------------------------
// Lone surrogates

const lone = ["\ud800", "a\udbffz", "\udc00", "😀".slice(0, 1), "😀".slice(1)];

test("both codecs refuse strings with a lone surrogate, in values and in keys", () => {
  for (const codec of [jsonCodec, richCodec]) {
    for (const text of lone) {
      const unit = text.match(/[\ud800-\udfff]/)![0].charCodeAt(0).toString(16)
        .toUpperCase();
      const message =
        `Cannot store job data: it contains a lone surrogate (U+${unit}) in a string`;
      assert.throws(() => codec.encode({ text }), {
        name: "TypeError",
        message,
      });
      assert.throws(() => codec.encode({ [text]: 1 }), {
        name: "TypeError",
        message,
      });
      assert.throws(() => codec.encode([1, [text]]), {
        name: "TypeError",
        message,
      });
    }
  }
});

test("both codecs round-trip paired surrogates (emoji) and text that looks like an escape", () => {
  const data = {
    emoji: "😀👍🏽",
    flag: "🇫🇷",
    escape: "\\ud800",
    escaped: "\\\\ud800",
    nul: "a\u0000b",
  };
  assert.deepEqual(jsonCodec.decode(jsonCodec.encode(data)), data);
  assertSame(roundTrip(data), data);
});

test("assertStorable tells a lone surrogate escape from an escaped backslash", () => {
  assertStorable(String.raw`"\\ud800"`);
  assertStorable(String.raw`"\\\\ud800"`);
  assertStorable(String.raw`"\u0000\n"`);
  assert.throws(() => assertStorable(String.raw`"\\\ud800"`), TypeError);
  assert.throws(() => assertStorable(String.raw`"\uDFFF"`), TypeError);
  assert.throws(() => assertStorable(String.raw`{"a":"x\udc12"}`), /U\+DC12/);
});

test("both codecs refuse exactly the strings that are not well formed", () => {
  const units = fc.oneof(
    fc.integer({ min: 0, max: 0xffff }).map((unit) =>
      String.fromCharCode(unit)
    ),
    fc.constantFrom("\ud83d", "\ude00", "😀", "\\", "u", "d"),
  );
  fc.assert(
    fc.property(fc.string({ unit: units, maxLength: 8 }), (text) => {
      for (const codec of [jsonCodec, richCodec]) {
        if ((text as unknown as { isWellFormed(): boolean }).isWellFormed()) {
          assert.equal(codec.decode(codec.encode(text)), text);
        } else {
          assert.throws(() => codec.encode(text), /lone surrogate/);
        }
      }
    }),
  );
});

// ---------------------------------------------------------------------------
// richCodec

test("richCodec writes a Date as a tagged ISO string", () => {
  const when = new Date("2020-01-01T00:00:00Z");
  assert.equal(
    richCodec.encode({ when }),
    '{"when":{"$pq":"Date","v":"2020-01-01T00:00:00.000Z"}}',
  );
  assertSame(roundTrip({ when }), { when });
});

test("richCodec round-trips invalid Dates and Dates at the ends of time", () => {
  const dates = [
    new Date(NaN),
    new Date(8.64e15),
    new Date(-8.64e15),
    new Date(-62198755200000),
  ];
  assertSame(roundTrip(dates), dates);
});

test("richCodec writes plain JSON values as JSON does", () => {
  const data = { kind: "Cox", n: 1.5, tags: ["a", "b"], ok: true, none: null };
  assert.equal(richCodec.encode(data), JSON.stringify(data));
});

test("richCodec round-trips BigInts of any size and sign", () => {
  const values = [0n, -1n, 2n ** 64n, -(10n ** 40n)];
  assert.equal(richCodec.encode(-1n), '{"$pq":"BigInt","v":"-1"}');
  assertSame(roundTrip(values), values);
});

test("richCodec round-trips NaN, Infinity, -Infinity and -0", () => {
  const values = [NaN, Infinity, -Infinity, -0, 0];
  assert.equal(
    richCodec.encode(values),
    '[{"$pq":"number","v":"NaN"},{"$pq":"number","v":"Infinity"},' +
      '{"$pq":"number","v":"-Infinity"},{"$pq":"number","v":"-0"},0]',
  );
  assertSame(roundTrip(values), values);
});

test("richCodec round-trips undefined at the top, in objects and in arrays", () => {
  assert.equal(roundTrip(undefined), undefined);
  assertSame(roundTrip({ a: undefined, b: [undefined, 1] }), {
    a: undefined,
    b: [undefined, 1],
  });
});

test("richCodec turns array holes into undefined", () => {
  // deno-lint-ignore no-sparse-arrays
  assertSame(roundTrip([1, , 3]), [1, undefined, 3]);
});

test("richCodec round-trips Maps with keys of any kind", () => {
  const map = new Map<unknown, unknown>([
    ["a", 1],
    [1, "one"],
    [NaN, "nan"],
    [{ id: 1 }, new Date(0)],
    [[1, 2], undefined],
    [new Map([[1n, 2n]]), new Set([1])],
    [undefined, null],
  ]);
  assertSame(roundTrip({ map }), { map });
});

test("richCodec round-trips Sets, nested in anything", () => {
  const set = new Set<unknown>([
    1,
    "1",
    { a: 1 },
    { a: 1 },
    new Set([new Map()]),
    undefined,
  ]);
  assertSame(roundTrip([set, { set }]), [set, { set }]);
});

test("richCodec round-trips every kind of typed array, including views into larger buffers", () => {
  const kinds = [
    new Int8Array([-128, 0, 127]),
    new Uint8Array([0, 1, 255]),
    new Uint8ClampedArray([0, 255]),
    new Int16Array([-32768, 32767]),
    new Uint16Array([65535]),
    new Int32Array([-(2 ** 31)]),
    new Uint32Array([2 ** 32 - 1]),
    new Float32Array([1.5, NaN, -0, Infinity]),
    new Float64Array([Math.PI, -0, NaN, -Infinity]),
    new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]),
    new BigUint64Array([2n ** 64n - 1n]),
    new Uint8Array(0),
    new Float64Array([1, 2, 3, 4]).subarray(1, 3),
    new Uint16Array(new ArrayBuffer(16), 6, 3).fill(7),
  ];
  for (const array of kinds) {
    const back = roundTrip(array) as ArrayBufferView;
    assertSame(back, array);
    assert.equal(back.byteOffset, 0);
    assert.equal(back.buffer.byteLength, array.byteLength);
  }
});

test("richCodec round-trips a Float16Array where the runtime has one", () => {
  const Float16 = (globalThis as Record<string, unknown>).Float16Array as
    | (new (values: number[]) => ArrayBufferView)
    | undefined;
  if (Float16 === undefined) return; // Node 20
  const array = new Float16([1.5, -0, NaN, 65504]);
  assert.equal(
    richCodec.encode(array).slice(0, 24),
    '{"$pq":"Float16Array","v',
  );
  assertSame(roundTrip(array), array);
});

test("richCodec writes typed arrays as base64 of the bytes viewed", () => {
  assert.equal(
    richCodec.encode(new Uint8Array([1, 2, 3])),
    '{"$pq":"Uint8Array","v":"AQID"}',
  );
  const view = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
  assert.equal(richCodec.encode(view), '{"$pq":"Uint8Array","v":"AQID"}');
});

test("richCodec round-trips ArrayBuffers and DataViews", () => {
  const buffer = new Uint8Array([1, 2, 3, 4]).buffer;
  const view = new DataView(buffer, 1, 2);
  assert.equal(richCodec.encode(view), '{"$pq":"DataView","v":"AgM="}');
  assertSame(roundTrip({ buffer, view }), { buffer, view });
});

test("richCodec round-trips megabytes of binary data compactly", () => {
  const data = new Uint8Array(3 * 1024 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  const text = richCodec.encode(data);
  assert.ok(text.length < data.length * 1.34 + 40, `${text.length} characters`);
  assertSame(richCodec.decode(text), data);
});

test("richCodec round-trips RegExps with their flags", () => {
  const patterns = [
    /a+b/gi,
    /\d{2,}\/x/u,
    /[\]"$]/,
    new RegExp("\\\\u0000", "s"),
  ];
  assert.equal(richCodec.encode(/a+b/gi), '{"$pq":"RegExp","v":["a+b","gi"]}');
  assertSame(roundTrip(patterns), patterns);
});

test("richCodec escapes objects that have a $pq key so they round-trip", () => {
  const data = [
    { $pq: "Date", v: "2020-01-01T00:00:00.000Z" },
    { $pq: { $pq: "undefined" } },
    { $pq: 1, nested: { $pq: "Object", v: {} } },
  ];
  assert.equal(
    richCodec.encode(data[0]),
    '{"$pq":"Object","v":{"$pq":"Date","v":"2020-01-01T00:00:00.000Z"}}',
  );
  assertSame(roundTrip(data), data);
});

test("richCodec keeps a __proto__ key as data", () => {
  const data = JSON.parse('{"__proto__":{"a":[1]},"x":1}');
  data.x = 2n;
  const back = roundTrip(data) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(back), Object.prototype);
  assert.ok(Object.hasOwn(back, "__proto__"));
  assertSame(back, data);
});

test("richCodec round-trips strings with NUL characters", () => {
  const data = { text: "a\u0000b", [`key\u0000`]: "\u0000" };
  assert.ok(richCodec.encode(data).includes("\\u0000"));
  assertSame(roundTrip(data), data);
});

const PICKLE_ENCODE = 'Cannot encode job data with the "pickle" codec: ';

// Class instances: an object with toJSON is stored as what toJSON returns,
// by both codecs; the built-in kinds above keep their type (a subclass comes
// back as its base class); any other class instance is refused by richCodec,
// which promises values back as they went in, and written as its own
// enumerable properties by jsonCodec, as JSON.stringify does.

class Money {
  constructor(readonly cents: number, readonly currency: string) {}
  toJSON(): string {
    return `${this.cents / 100} ${this.currency}`;
  }
}

test("richCodec stores an object with toJSON as what toJSON returns, as jsonCodec does", () => {
  const data = {
    url: new URL("https://example.com/a?b=c#d"),
    price: new Money(1250, "EUR"),
    plain: { toJSON: () => "plain" },
  };
  const expected = {
    url: "https://example.com/a?b=c#d",
    price: "12.5 EUR",
    plain: "plain",
  };
  assert.equal(richCodec.encode(data), JSON.stringify(expected));
  assertSame(roundTrip(data), expected);
  assert.equal(jsonCodec.encode(data), JSON.stringify(expected));
});

test("richCodec keeps what toJSON returns in full, BigInts and Dates included", () => {
  const data = [
    { toJSON: () => 5n },
    { toJSON: () => ({ at: new Date(0), n: NaN }) },
  ];
  assertSame(roundTrip(data), [5n, { at: new Date(0), n: NaN }]);
});

test("richCodec calls toJSON once per value, with its key, as JSON.stringify does", () => {
  const keys: string[] = [];
  const inner = { toJSON: () => "inner" };
  const outer = {
    toJSON(key: string) {
      keys.push(key);
      return { inner: 1, again: { toJSON: () => "again" } };
    },
  };
  assert.equal(
    richCodec.encode({ outer, list: [outer], inner }),
    JSON.stringify({ outer, list: [outer], inner }),
  );
  assert.deepEqual(keys, ["outer", "0", "outer", "0"]);
  // JSON.stringify writes the object toJSON returned without its toJSON, as
  // {}; richCodec refuses the function rather than drop it.
  assert.throws(() => richCodec.encode({ chained: { toJSON: () => inner } }), {
    name: "TypeError",
    message: `${PICKLE_ENCODE}a function at data.chained.toJSON`,
  });
});

test("richCodec keeps the built-in kinds' tags even when they have toJSON", () => {
  class Bytes extends Uint8Array {
    toJSON(): unknown {
      return { type: "Bytes", data: [...this] }; // as Node's Buffer does
    }
  }
  const bytes = new Bytes([1, 2, 3]);
  assert.equal(richCodec.encode(bytes), '{"$pq":"Uint8Array","v":"AQID"}');
  assertSame(roundTrip(bytes), new Uint8Array([1, 2, 3]));
});

test("both codecs store a Temporal.Instant as its ISO string, where the runtime has Temporal", () => {
  const Temporal = (globalThis as Record<string, unknown>).Temporal as
    | { Instant: { from(text: string): object } }
    | undefined;
  if (Temporal === undefined) return; // Node 20
  const instant = Temporal.Instant.from("2020-01-01T00:00:00.123456789Z");
  assert.equal(
    richCodec.encode({ instant }),
    '{"instant":"2020-01-01T00:00:00.123456789Z"}',
  );
  assert.equal(
    jsonCodec.encode({ instant }),
    '{"instant":"2020-01-01T00:00:00.123456789Z"}',
  );
});

const CLASS_HINT = " (give the class a toJSON method, or put a plain object)";

class Point {
  constructor(public x: number, public y: number) {}
}

class Secret {
  #value = "hidden";
  reveal(): string {
    return this.#value;
  }
}

const instanceRefusals: [string, unknown, string][] = [
  [
    "a class instance",
    { p: new Point(1, 2) },
    "an instance of Point at data.p",
  ],
  [
    "a class instance with private fields only",
    [new Secret()],
    "an instance of Secret at data[0]",
  ],
  [
    "an Error",
    { error: new TypeError("boom") },
    "an instance of TypeError at data.error",
  ],
  [
    "an instance in a Map",
    new Map([["k", new Point(1, 2)]]),
    'an instance of Point at data.get("k")',
  ],
  [
    "an instance of an anonymous class",
    { x: new (class {})() },
    "an instance of an anonymous class at data.x",
  ],
  [
    "an object with another object as its prototype",
    { x: Object.create({ inherited: 1 }) },
    "an object with a custom prototype at data.x",
  ],
  [
    "a String object",
    { s: new String("a") },
    "an instance of String at data.s",
  ],
  [
    "a class instance returned by toJSON",
    { x: { toJSON: () => new Point(1, 2) } },
    "an instance of Point at data.x",
  ],
];

for (const [name, value, problem] of instanceRefusals) {
  test(`richCodec refuses ${name}, naming its class and path`, () => {
    assert.throws(() => richCodec.encode(value), {
      name: "TypeError",
      message: PICKLE_ENCODE + problem + CLASS_HINT,
    });
  });
}

test("richCodec accepts the same object twice when it is not a cycle", () => {
  const shared = new Map([[1, 2]]);
  assertSame(roundTrip([shared, shared]), [
    new Map([[1, 2]]),
    new Map([[1, 2]]),
  ]);
});

const pickleRefusals: [string, unknown, string][] = [
  ["a function", { f: () => 1 }, "a function at data.f"],
  ["a function at the top", () => 1, "a function at data"],
  ["a symbol in an array", [1, Symbol("s")], "a symbol at data[1]"],
  [
    "a function as a Map value",
    { m: new Map([["k", () => 1]]) },
    'a function at data.m.get("k")',
  ],
  [
    "a function as a Map key",
    { m: new Map([[() => 1, 1]]) },
    "a function at data.m.keys()[0]",
  ],
  [
    "a symbol in a Set",
    { s: new Set([1, Symbol()]) },
    "a symbol at data.s.values()[1]",
  ],
];

for (const [name, value, problem] of pickleRefusals) {
  test(`richCodec refuses ${name}, naming its path`, () => {
    assert.throws(() => richCodec.encode(value), {
      name: "TypeError",
      message: PICKLE_ENCODE + problem,
    });
  });
}

test("richCodec refuses a cycle, naming where it closes", () => {
  const node: Record<string, unknown> = { name: "n" };
  node.children = new Set([{ parent: node }]);
  assert.throws(() => richCodec.encode({ node }), {
    name: "TypeError",
    message:
      `${PICKLE_ENCODE}a circular reference at data.node.children.values()[0].parent`,
  });
});

const PICKLE_DECODE = 'Cannot decode job data with the "pickle" codec: ';

const malformed: [string, string, string][] = [
  [
    "an unknown tag",
    '{"x":[1,{"$pq":"Nope","v":1}]}',
    'an unknown tag "Nope" at data.x[1]',
  ],
  [
    "a tag that is not a string",
    '{"$pq":1}',
    'a "$pq" tag that is not a string at data',
  ],
  [
    "a tag with extra keys",
    '{"$pq":"BigInt","v":"1","w":2}',
    'a "BigInt" tag with keys ["$pq","v","w"] (expected "$pq" and "v") at data',
  ],
  [
    "a tag without its payload",
    '{"$pq":"BigInt"}',
    'a "BigInt" tag with keys ["$pq"] (expected "$pq" and "v") at data',
  ],
  [
    "an undefined tag with a payload",
    '{"$pq":"undefined","v":1}',
    'a "undefined" tag with keys ["$pq","v"] (expected only "$pq") at data',
  ],
  [
    "a bad number",
    '{"$pq":"number","v":"1"}',
    'a malformed "number" tag (expected "v" to be "NaN", "Infinity", "-Infinity" or "-0") at data',
  ],
  [
    "a bad BigInt",
    '{"$pq":"BigInt","v":"1.5"}',
    'a malformed "BigInt" tag (expected "v" to be a string of decimal digits) at data',
  ],
  [
    "a bad Date",
    '{"d":{"$pq":"Date","v":"nope"}}',
    'a malformed "Date" tag (expected "v" to be an ISO date string or null) at data.d',
  ],
  [
    "a Date of a number",
    '{"$pq":"Date","v":0}',
    'a malformed "Date" tag (expected "v" to be an ISO date string or null) at data',
  ],
  [
    "a bad RegExp",
    '{"$pq":"RegExp","v":["(",""]}',
    'a malformed "RegExp" tag (expected "v" to be [source, flags] of a valid regular expression) at data',
  ],
  [
    "a bad Map",
    '{"$pq":"Map","v":[[1,2],[3]]}',
    'a malformed "Map" tag (expected "v" to be an array of [key, value] pairs) at data',
  ],
  [
    "a Map of an object",
    '{"$pq":"Map","v":{}}',
    'a malformed "Map" tag (expected "v" to be an array of [key, value] pairs) at data',
  ],
  [
    "a bad Set",
    '{"$pq":"Set","v":"abc"}',
    'a malformed "Set" tag (expected "v" to be an array) at data',
  ],
  [
    "a bad Object",
    '{"$pq":"Object","v":[]}',
    'a malformed "Object" tag (expected "v" to be an object) at data',
  ],
  [
    "bad base64",
    '{"$pq":"Uint8Array","v":"@@@"}',
    'a malformed "Uint8Array" tag (expected "v" to be a base64 string) at data',
  ],
  [
    "base64 of a number",
    '{"$pq":"ArrayBuffer","v":5}',
    'a malformed "ArrayBuffer" tag (expected "v" to be a base64 string) at data',
  ],
  [
    "a partial element",
    '{"$pq":"Float64Array","v":"AQID"}',
    'a malformed "Float64Array" tag (expected "v" to be base64 of a multiple of 8 bytes) at data',
  ],
  [
    "a bad tag inside a Map",
    '{"$pq":"Map","v":[["k",{"$pq":"?"}]]}',
    'an unknown tag "?" at data.get("k")',
  ],
];

for (const [name, text, problem] of malformed) {
  test(`richCodec refuses to decode ${name}`, () => {
    assert.throws(() => richCodec.decode(text), {
      name: "TypeError",
      message: PICKLE_DECODE + problem,
    });
  });
}

test("richCodec decodes text that is not JSON with a SyntaxError", () => {
  assert.throws(() => richCodec.decode("{nope"), SyntaxError);
});

// Property-based tests

const strings = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary", maxLength: 8 }),
  fc.constantFrom("$pq", "v", "__proto__", "\u0000", "😀"),
);

/**
 * Object keys. Not the one-backslash key on Deno: its JSON.parse (Deno
 * 2.9.6, V8 15.0) reads an escaped one-character key as "\\" once an
 * earlier object with the same keys before it had a "\\" key there:
 * after `JSON.parse('{"a":1,"\\\\":2}')`, `JSON.parse('{"a":1,"\\u0041":2}')`
 * has the keys "a" and "\\", not "A" (Node and Bun read "A"). pq decodes
 * with JSON.parse, so no codec can do better there; the property test
 * found it (1 value in about 500,000) and failed CI once.
 */
const keys = "Deno" in globalThis
  ? strings.filter((key) => key !== "\\")
  : strings;

const leaves = fc.oneof(
  strings,
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.double(),
  fc.integer(),
  fc.constantFrom(NaN, -0, Infinity, -Infinity),
  fc.bigInt(),
  fc.date({ noInvalidDate: false }),
  fc.constantFrom(/a+b/gi, /^$/, /[\]"\\]/u),
  fc.oneof(
    fc.uint8Array({ maxLength: 8 }),
    fc.int8Array({ maxLength: 8 }),
    fc.uint8ClampedArray({ maxLength: 8 }),
    fc.int16Array({ maxLength: 8 }),
    fc.uint16Array({ maxLength: 8 }),
    fc.int32Array({ maxLength: 8 }),
    fc.uint32Array({ maxLength: 8 }),
    fc.float32Array({ maxLength: 8 }),
    fc.float64Array({ maxLength: 8 }),
    fc.bigInt64Array({ maxLength: 8 }),
    fc.bigUint64Array({ maxLength: 8 }),
    fc.uint8Array({ maxLength: 8 }).map((bytes) => bytes.buffer),
    fc.uint8Array({ minLength: 1, maxLength: 8 }).map((bytes) =>
      new DataView(bytes.buffer, 1)
    ),
  ),
);

const { value: richValues } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaves,
    tie("array"),
    tie("object"),
    tie("map"),
    tie("set"),
  ),
  array: fc.array(tie("value"), { maxLength: 5 }),
  object: fc.dictionary(keys, tie("value"), {
    maxKeys: 5,
    noNullPrototype: true,
  }),
  map: fc.array(fc.tuple(tie("value"), tie("value")), { maxLength: 4 }).map((
    entries,
  ) => new Map(entries)),
  set: fc.array(tie("value"), { maxLength: 4 }).map((values) =>
    new Set(values)
  ),
}));

test("richCodec round-trips generated values exactly", () => {
  fc.assert(
    fc.property(richValues, (value) => {
      const text = richCodec.encode(value);
      assert.doesNotThrow(() => JSON.parse(text));
      assertSame(richCodec.decode(text), value);
    }),
    { numRuns: 300 },
  );
});

test("jsonCodec either writes what JSON.stringify writes or throws a TypeError", () => {
  fc.assert(
    fc.property(richValues, (value) => {
      let text: string;
      try {
        text = jsonCodec.encode(value);
      } catch (error) {
        assert.ok(error instanceof TypeError, String(error));
        assert.match(
          error.message,
          /^Cannot encode job data as JSON: .+ at data/,
        );
        return;
      }
      assert.equal(text, JSON.stringify(value));
      JSON.parse(text);
    }),
    { numRuns: 300 },
  );
});
