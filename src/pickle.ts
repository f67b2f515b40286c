/**
 * `richCodec`, the codec of queues whose names end in "/pickle": JSON text in
 * which values JSON cannot hold are tagged objects (the table, and what
 * becomes of class instances, are in `codecs.ts`), so they come back equal.
 *
 * @module
 */

import {
  article,
  assertStorable,
  type Codec,
  formatPath,
  type Segment,
  typedArrayName,
} from "./codecs.ts";

// ---------------------------------------------------------------------------
// richCodec: base64

type TypedArrayConstructor = {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): unknown;
  readonly BYTES_PER_ELEMENT: number;
};

/** The typed array kinds this runtime has, by name. */
const TYPED_ARRAYS = new Map<string, TypedArrayConstructor>();
const TYPED_ARRAY_NAMES = "Int8Array Uint8Array Uint8ClampedArray Int16Array" +
  " Uint16Array Int32Array Uint32Array Float16Array Float32Array Float64Array" +
  " BigInt64Array BigUint64Array";
for (const name of TYPED_ARRAY_NAMES.split(" ")) {
  const ctor = (globalThis as Record<string, unknown>)[name];
  if (typeof ctor === "function") {
    TYPED_ARRAYS.set(name, ctor as TypedArrayConstructor);
  }
}

/** Native base64 (Deno 2, Bun; not Node 20), used when present. */
const native = Uint8Array as unknown as {
  fromBase64?: (text: string) => Uint8Array;
  prototype: { toBase64?: (this: Uint8Array) => string };
};

/** Bytes per String.fromCharCode call, well below every engine's argument limit. */
const CHUNK = 8192;

function toBase64(bytes: Uint8Array): string {
  if (native.prototype.toBase64 !== undefined) {
    return native.prototype.toBase64.call(bytes);
  }
  let binary = "";
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/** Reads base64 into a new Uint8Array over a buffer of exactly its length. */
function fromBase64(text: string): Uint8Array {
  if (native.fromBase64 !== undefined) {
    const bytes = native.fromBase64(text);
    return bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function bytesOf(view: ArrayBufferView | ArrayBuffer): Uint8Array {
  return view instanceof ArrayBuffer
    ? new Uint8Array(view)
    : new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

// ---------------------------------------------------------------------------
// richCodec: encoding

const PICKLE = 'with the "pickle" codec';

/** Encodes a value into a tree of plain JSON values, checking as it goes. */
class Pickler {
  readonly path: Segment[] = [];
  readonly seen = new Set<object>();

  fail(what: string, hint = ""): never {
    throw new TypeError(
      `Cannot encode job data ${PICKLE}: ${what} at ${
        formatPath(this.path)
      }${hint}`,
    );
  }

  /**
   * @param replaced Whether `value` is what a `toJSON` returned, whose own
   * `toJSON` is not called again (as in JSON.stringify).
   */
  value(value: unknown, replaced = false): unknown {
    switch (typeof value) {
      case "string":
      case "boolean":
        return value;
      case "number":
        if (Number.isFinite(value) && !Object.is(value, -0)) return value;
        return {
          $pq: "number",
          v: Object.is(value, -0) ? "-0" : String(value),
        };
      case "undefined":
        return { $pq: "undefined" };
      case "bigint":
        return { $pq: "BigInt", v: value.toString() };
      case "object":
        if (value === null) return null;
        if (this.seen.has(value)) this.fail("a circular reference");
        this.seen.add(value);
        try {
          return this.object(value, replaced);
        } finally {
          this.seen.delete(value);
        }
      default:
        return this.fail(article(typeof value));
    }
  }

  object(value: object, replaced: boolean): unknown {
    const proto: unknown = Object.getPrototypeOf(value);
    const plain = proto === Object.prototype || proto === null ||
      Array.isArray(value);
    if (!plain) {
      // Before toJSON: Date has one, and so has Node's Buffer (a Uint8Array).
      const tagged = this.builtIn(value);
      if (tagged !== undefined) return tagged;
    }
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (!replaced && typeof toJSON === "function") {
      return this.value(toJSON.call(value, this.key()), true);
    }
    if (Array.isArray(value)) return this.array(value);
    if (plain) return this.record(value);
    const ctor = (proto as { constructor?: unknown }).constructor;
    const what = typeof ctor !== "function" || ctor.prototype !== proto
      ? "an object with a custom prototype"
      : ctor.name === ""
      ? "an instance of an anonymous class"
      : `an instance of ${ctor.name}`;
    return this.fail(
      what,
      " (give the class a toJSON method, or put a plain object)",
    );
  }

  /** The tagged form of a value of a built-in kind this codec keeps, if it is one. */
  builtIn(value: object): unknown {
    if (value instanceof Date) {
      const time = value.getTime();
      return {
        $pq: "Date",
        v: Number.isNaN(time) ? null : new Date(time).toISOString(),
      };
    }
    if (ArrayBuffer.isView(value)) {
      const tag = value instanceof DataView
        ? "DataView"
        : typedArrayName(value);
      return { $pq: tag, v: toBase64(bytesOf(value)) };
    }
    if (value instanceof ArrayBuffer) {
      return { $pq: "ArrayBuffer", v: toBase64(bytesOf(value)) };
    }
    if (value instanceof Map) return { $pq: "Map", v: this.map(value) };
    if (value instanceof Set) return { $pq: "Set", v: this.set(value) };
    if (value instanceof RegExp) {
      return { $pq: "RegExp", v: [value.source, value.flags] };
    }
    return undefined;
  }

  /** The key JSON.stringify would pass to `toJSON`: the property name or index, else "". */
  key(): string {
    const last = this.path.at(-1);
    return typeof last === "object" || last === undefined ? "" : String(last);
  }

  array(array: readonly unknown[]): unknown[] {
    const out = new Array<unknown>(array.length);
    for (let i = 0; i < array.length; i++) {
      this.path.push(i);
      out[i] = this.value(array[i]);
      this.path.pop();
    }
    return out;
  }

  /** An object of own enumerable properties; wrapped if it has a `$pq` key. */
  record(object: object): unknown {
    // A null prototype, so that a "__proto__" key is an ordinary property.
    const out: Record<string, unknown> = Object.create(null);
    let escape = false;
    for (const key of Object.keys(object)) {
      if (key === "$pq") escape = true;
      this.path.push(key);
      out[key] = this.value((object as Record<string, unknown>)[key]);
      this.path.pop();
    }
    return escape ? { $pq: "Object", v: out } : out;
  }

  map(map: ReadonlyMap<unknown, unknown>): unknown[] {
    const out: unknown[] = [];
    let i = 0;
    for (const [key, value] of map) {
      this.path.push({ text: `.keys()[${i}]` });
      const k = this.value(key);
      this.path.pop();
      this.path.push(mapValueStep(key, i++));
      out.push([k, this.value(value)]);
      this.path.pop();
    }
    return out;
  }

  set(set: ReadonlySet<unknown>): unknown[] {
    const out: unknown[] = [];
    for (const value of set) {
      this.path.push({ text: `.values()[${out.length}]` });
      out.push(this.value(value));
      this.path.pop();
    }
    return out;
  }
}

/** `.get("key")` for a string or number key, else `.values()[i]`. */
function mapValueStep(key: unknown, i: number): Segment {
  if (
    typeof key === "string" || (typeof key === "number" && Number.isFinite(key))
  ) {
    return { text: `.get(${JSON.stringify(key)})` };
  }
  return { text: `.values()[${i}]` };
}

// ---------------------------------------------------------------------------
// richCodec: decoding

/** The tags other than typed array kinds. */
const TAGS = new Set([
  "undefined",
  "number",
  "BigInt",
  "Date",
  "RegExp",
  "Map",
  "Set",
  "Object",
  "ArrayBuffer",
  "DataView",
]);

/** Rebuilds values from the tree JSON.parse made, in place where it can. */
class Unpickler {
  readonly path: Segment[] = [];

  fail(what: string): never {
    throw new TypeError(
      `Cannot decode job data ${PICKLE}: ${what} at ${formatPath(this.path)}`,
    );
  }

  value(value: unknown): unknown {
    if (typeof value !== "object" || value === null) return value;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        if (typeof item !== "object" || item === null) continue;
        this.path.push(i);
        value[i] = this.value(item);
        this.path.pop();
      }
      return value;
    }
    const record = value as Record<string, unknown>;
    return Object.hasOwn(record, "$pq")
      ? this.tagged(record)
      : this.record(record);
  }

  record(record: Record<string, unknown>): Record<string, unknown> {
    for (const key of Object.keys(record)) {
      const item = record[key];
      if (typeof item !== "object" || item === null) continue;
      this.path.push(key);
      record[key] = this.value(item); // an own "__proto__" key stays an own property
      this.path.pop();
    }
    return record;
  }

  tagged(record: Record<string, unknown>): unknown {
    const tag = record.$pq;
    if (typeof tag !== "string") this.fail(`a "$pq" tag that is not a string`);
    if (!TAGS.has(tag) && !TYPED_ARRAYS.has(tag)) {
      this.fail(`an unknown tag ${JSON.stringify(tag)}`);
    }
    const keys = Object.keys(record);
    const wanted = tag === "undefined" ? 1 : 2;
    if (
      keys.length !== wanted || (wanted === 2 && !Object.hasOwn(record, "v"))
    ) {
      const expected = wanted === 1 ? `only "$pq"` : `"$pq" and "v"`;
      this.fail(
        `a "${tag}" tag with keys ${
          JSON.stringify(keys)
        } (expected ${expected})`,
      );
    }
    return this.untag(tag, record.v);
  }

  untag(tag: string, v: unknown): unknown {
    const malformed = (expected: string): never =>
      this.fail(`a malformed "${tag}" tag (expected "v" to be ${expected})`);
    switch (tag) {
      case "undefined":
        return undefined;
      case "number":
        if (v === "NaN") return NaN;
        if (v === "Infinity") return Infinity;
        if (v === "-Infinity") return -Infinity;
        if (v === "-0") return -0;
        return malformed(`"NaN", "Infinity", "-Infinity" or "-0"`);
      case "BigInt":
        if (typeof v === "string" && /^-?\d+$/.test(v)) return BigInt(v);
        return malformed("a string of decimal digits");
      case "Date": {
        if (v === null) return new Date(NaN);
        const date = typeof v === "string" ? new Date(v) : undefined;
        if (date === undefined || Number.isNaN(date.getTime())) {
          return malformed("an ISO date string or null");
        }
        return date;
      }
      case "RegExp":
        if (
          Array.isArray(v) && v.length === 2 && typeof v[0] === "string" &&
          typeof v[1] === "string"
        ) {
          try {
            return new RegExp(v[0], v[1]);
          } catch {
            // reported below
          }
        }
        return malformed("[source, flags] of a valid regular expression");
      case "Map":
        if (!Array.isArray(v)) {
          return malformed("an array of [key, value] pairs");
        }
        return this.map(v, malformed);
      case "Set":
        if (!Array.isArray(v)) return malformed("an array");
        return this.set(v);
      case "Object":
        if (typeof v !== "object" || v === null || Array.isArray(v)) {
          return malformed("an object");
        }
        return this.record(v as Record<string, unknown>);
      default:
        return this.binary(tag, v, malformed);
    }
  }

  map(
    entries: unknown[],
    malformed: (expected: string) => never,
  ): Map<unknown, unknown> {
    const map = new Map<unknown, unknown>();
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      if (!Array.isArray(entry) || entry.length !== 2) {
        malformed("an array of [key, value] pairs");
      }
      this.path.push({ text: `.keys()[${i}]` });
      const key = this.value(entry[0]);
      this.path.pop();
      this.path.push(mapValueStep(key, i));
      map.set(key, this.value(entry[1]));
      this.path.pop();
    }
    return map;
  }

  set(values: unknown[]): Set<unknown> {
    const set = new Set<unknown>();
    for (let i = 0; i < values.length; i++) {
      this.path.push({ text: `.values()[${i}]` });
      set.add(this.value(values[i]));
      this.path.pop();
    }
    return set;
  }

  binary(
    tag: string,
    v: unknown,
    malformed: (expected: string) => never,
  ): unknown {
    if (typeof v !== "string") return malformed("a base64 string");
    let bytes: Uint8Array;
    try {
      bytes = fromBase64(v);
    } catch {
      return malformed("a base64 string");
    }
    if (tag === "ArrayBuffer") return bytes.buffer;
    if (tag === "DataView") {
      return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    // tagged() has checked that the tag is a typed array kind.
    const ctor = TYPED_ARRAYS.get(tag) as TypedArrayConstructor;
    const size = ctor.BYTES_PER_ELEMENT;
    if (bytes.byteLength % size !== 0) {
      return malformed(`base64 of a multiple of ${size} bytes`);
    }
    return new ctor(
      bytes.buffer as ArrayBuffer,
      bytes.byteOffset,
      bytes.byteLength / size,
    );
  }
}

/**
 * The codec of queues whose names end in "/pickle": JSON text in which
 * values JSON cannot hold are tagged objects (see the format at the top of
 * this module), so that these come back as they went in, nested anywhere:
 * Date (also invalid), BigInt, Map (any keys), Set, ArrayBuffer, DataView,
 * every typed array, RegExp, `undefined` (array holes come back as
 * `undefined`), NaN, ±Infinity and -0. An object with a `toJSON` method (a
 * URL, a Temporal value) is stored as what `toJSON` returns, as in JSON, and
 * comes back as that.
 *
 * Encoding throws a TypeError naming the value and its path for functions,
 * symbols, cycles, lone surrogates, and instances of other classes without
 * `toJSON` (Errors included), which could not come back as they went in;
 * decoding throws a TypeError for a malformed tag and a SyntaxError for text
 * that is not JSON.
 *
 * @example Round-tripping values JSON loses
 * ```ts
 * import { richCodec } from "@pq/pq";
 * import assert from "node:assert/strict";
 *
 * const data = {
 *   when: new Date("2020-01-01T00:00:00Z"),
 *   big: 2n ** 70n,
 *   seen: new Set(["a", "b"]),
 *   bytes: new Uint8Array([1, 2, 3]),
 *   missing: undefined,
 * };
 * const text = richCodec.encode(data);
 * assert.ok(text.includes('{"$pq":"Date","v":"2020-01-01T00:00:00.000Z"}'));
 * assert.deepEqual(richCodec.decode(text), data);
 *
 * // toJSON is honoured; other class instances are refused
 * assert.equal(richCodec.encode(new URL("https://example.com/")), '"https://example.com/"');
 * class Point {
 *   constructor(public x: number, public y: number) {}
 * }
 * assert.throws(() => richCodec.encode({ p: new Point(1, 2) }), {
 *   name: "TypeError",
 *   message: 'Cannot encode job data with the "pickle" codec: an instance of Point at data.p' +
 *     " (give the class a toJSON method, or put a plain object)",
 * });
 * ```
 */
export const richCodec: Codec = {
  encode(value: unknown): string {
    const text = JSON.stringify(new Pickler().value(value));
    assertStorable(text);
    return text;
  },
  decode(text: string): unknown {
    return new Unpickler().value(JSON.parse(text));
  },
};
