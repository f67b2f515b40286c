import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseDuration, resolveTime } from "../src/duration.ts";
import { describe } from "../src/describe.ts";

const DURATION_MESSAGE =
  `'timeout' must be a number of milliseconds or a duration like "5m": received `;
const TIME_MESSAGE =
  `'scheduleAt' must be a Date, a number of milliseconds or a duration like "5m": received `;

/** The grammar of duration strings, written independently of the parser. */
const GRAMMAR =
  /^(?:\d+(?:\.\d+)?d)?(?:\d+(?:\.\d+)?h)?(?:\d+(?:\.\d+)?m)?(?:\d+(?:\.\d+)?s)?(?:\d+(?:\.\d+)?ms)?$/;

const valid: [string | number, number][] = [
  ["250ms", 250],
  ["10s", 10_000],
  ["5m", 300_000],
  ["1h30m", 5_400_000],
  ["2d", 172_800_000],
  ["2d4h", 187_200_000],
  ["1m30s500ms", 90_500],
  ["1d2h3m4s5ms", 93_784_005],
  ["1.5h", 5_400_000],
  ["0.25s", 250],
  ["1.1s", 1_100],
  ["0.4ms", 0],
  ["0.5ms", 1],
  ["0s", 0],
  ["000010s", 10_000],
  ["100000000d", 8.64e15],
  [0, 0],
  [250, 250],
  [1.5, 2],
  [8.64e15, 8.64e15],
];

for (const [input, expected] of valid) {
  const shown = typeof input === "string" ? JSON.stringify(input) : input;
  test(`parseDuration reads ${shown} as ${expected.toLocaleString("en-US")} ms`, () => {
    assert.equal(parseDuration(input, "timeout"), expected);
  });
}

test("parseDuration turns -0 into 0", () => {
  assert.ok(Object.is(parseDuration(-0, "timeout"), 0));
});

test("parseDuration names the option and the received string in its TypeError", () => {
  assert.throws(() => parseDuration("5x", "timeout"), {
    name: "TypeError",
    message: `${DURATION_MESSAGE}"5x"`,
  });
});

const unparseable = [
  "5x",
  "",
  "5",
  "m",
  "ms",
  " 5m",
  "5m ",
  "5 m",
  "1h 30m",
  "-5s",
  "+5s",
  "30m1h",
  "1h1h",
  "1s1m",
  "5ms5s",
  "1e3ms",
  ".5h",
  "5.h",
  "1.2.3s",
  "1,5h",
  "1H",
  "5mins",
  "1h30",
  "Infinityms",
  "NaNs",
  "٣s", // an Arabic-Indic digit
];

for (const input of unparseable) {
  test(`parseDuration rejects ${JSON.stringify(input)} with a TypeError`, () => {
    assert.throws(() => parseDuration(input, "timeout"), {
      name: "TypeError",
      message: DURATION_MESSAGE + JSON.stringify(input),
    });
  });
}

const wrongKinds: [string, unknown, string][] = [
  ["NaN", NaN, "NaN"],
  ["null", null, "null"],
  ["undefined", undefined, "undefined"],
  ["a boolean", true, "true"],
  ["a bigint", 5n, "5n"],
  ["an object", { ms: 5 }, "an object"],
  ["an array", [5], "an array"],
  ["a Date", new Date(0), "1970-01-01T00:00:00.000Z"],
  ["a function", () => 5, "a function"],
  ["a symbol", Symbol("five"), "Symbol(five)"],
  ["a String object", new String("5m"), "an instance of String"],
];

for (const [name, input, shown] of wrongKinds) {
  test(`parseDuration rejects ${name} with a TypeError naming it`, () => {
    assert.throws(() => parseDuration(input as number, "timeout"), {
      name: "TypeError",
      message: DURATION_MESSAGE + shown,
    });
  });
}

const outOfRange: [string | number, string][] = [
  [-1, "-1"],
  [-0.4, "-0.4"],
  [-Infinity, "-Infinity"],
  [Infinity, "Infinity"],
  [8.64e15 + 1, "8640000000000001"],
  ["100000001d", '"100000001d"'],
  ["1" + "0".repeat(400) + "ms", JSON.stringify(`1${"0".repeat(58)}…`)],
];

for (const [input, shown] of outOfRange) {
  test(`parseDuration rejects ${shown} with a RangeError naming it`, () => {
    assert.throws(() => parseDuration(input, "timeout"), {
      name: "RangeError",
      message:
        `'timeout' must be between 0 and 8.64e15 milliseconds (100,000,000 days): received ${shown}`,
    });
  });
}

test("parseDuration cuts a long received string to about 60 characters", () => {
  const input = "1h".repeat(100);
  assert.throws(() => parseDuration(input, "timeout"), (error: Error) => {
    assert.ok(error instanceof TypeError);
    assert.ok(error.message.endsWith(`received ${describe(input)}`));
    assert.ok(error.message.length < DURATION_MESSAGE.length + 64);
    assert.match(error.message, /"1h1h1h.*…"$/);
    return true;
  });
});

test("resolveTime returns a copy of a Date as { at }", () => {
  const date = new Date("2030-01-02T03:04:05.678Z");
  const result = resolveTime(date, "scheduleAt");
  assert.ok("at" in result);
  assert.notEqual(result.at, date);
  assert.equal(result.at.getTime(), date.getTime());
  date.setTime(0);
  assert.equal(result.at.toISOString(), "2030-01-02T03:04:05.678Z");
});

test("resolveTime returns a Date in the past as { at } too", () => {
  assert.deepEqual(resolveTime(new Date(0), "scheduleAt"), { at: new Date(0) });
});

test("resolveTime reads numbers and duration strings as { delayMs }", () => {
  assert.deepEqual(resolveTime("5m", "scheduleAt"), { delayMs: 300_000 });
  assert.deepEqual(resolveTime("1h30m", "scheduleAt"), { delayMs: 5_400_000 });
  assert.deepEqual(resolveTime(1_000, "scheduleAt"), { delayMs: 1_000 });
  assert.deepEqual(resolveTime(0, "scheduleAt"), { delayMs: 0 });
  assert.deepEqual(resolveTime("0s", "scheduleAt"), { delayMs: 0 });
});

test("resolveTime rejects an invalid Date with a TypeError", () => {
  assert.throws(() => resolveTime(new Date(NaN), "scheduleAt"), {
    name: "TypeError",
    message: `${TIME_MESSAGE}Invalid Date`,
  });
});

test("resolveTime names the option and the received value in its TypeError", () => {
  assert.throws(() => resolveTime("5x", "scheduleAt"), {
    name: "TypeError",
    message: `${TIME_MESSAGE}"5x"`,
  });
  assert.throws(() => resolveTime(NaN, "scheduleAt"), {
    name: "TypeError",
    message: `${TIME_MESSAGE}NaN`,
  });
  assert.throws(() => resolveTime(null as unknown as string, "scheduleAt"), {
    name: "TypeError",
    message: `${TIME_MESSAGE}null`,
  });
  assert.throws(() => resolveTime("30m1h", "scheduleAt"), {
    name: "TypeError",
    message: `${TIME_MESSAGE}"30m1h"`,
  });
});

test("resolveTime rejects a negative or too long delay with a RangeError", () => {
  for (
    const [input, shown] of [[-5, "-5"], [Infinity, "Infinity"], [
      "100000001d",
      '"100000001d"',
    ]]
  ) {
    assert.throws(() => resolveTime(input, "scheduleAt"), {
      name: "RangeError",
      message:
        `'scheduleAt' must be a Date or a delay between 0 and 8.64e15 milliseconds (100,000,000 days): received ${shown}`,
    });
  }
});

// Property-based tests

const UNITS = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1_000],
  ["ms", 1],
] as const;

test("parseDuration reads whole-number parts in descending unit order as their sum", () => {
  fc.assert(
    fc.property(
      fc.subarray([...UNITS], { minLength: 1 }),
      fc.array(fc.nat({ max: 100_000 }), { minLength: 5, maxLength: 5 }),
      (units, amounts) => {
        const text = units.map(([unit], i) => `${amounts[i]}${unit}`).join("");
        const expected = units.reduce(
          (sum, [, ms], i) => sum + amounts[i] * ms,
          0,
        );
        assert.equal(parseDuration(text, "timeout"), expected);
      },
    ),
  );
});

test("parseDuration reads decimal parts to within a millisecond of their sum", () => {
  const amount = fc.tuple(fc.nat({ max: 1_000 }), fc.nat({ max: 999 }))
    .map(([whole, fraction]) =>
      `${whole}.${String(fraction).padStart(3, "0")}`
    );
  fc.assert(
    fc.property(
      fc.subarray([...UNITS], { minLength: 1 }),
      fc.array(amount, { minLength: 5, maxLength: 5 }),
      (units, amounts) => {
        const text = units.map(([unit], i) => `${amounts[i]}${unit}`).join("");
        // Summed smallest unit first, unlike the parser.
        const exact = units.reduceRight(
          (sum, [, ms], i) => sum + Number(amounts[i]) * ms,
          0,
        );
        const result = parseDuration(text, "timeout");
        assert.ok(Number.isInteger(result));
        assert.ok(
          Math.abs(result - exact) <= 0.5 + 1e-6,
          `${text}: ${result} vs ${exact}`,
        );
      },
    ),
  );
});

test("parseDuration rejects units out of descending order or repeated", () => {
  fc.assert(
    fc.property(
      fc.nat({ max: 4 }),
      fc.nat({ max: 4 }),
      fc.nat({ max: 99 }),
      fc.nat({ max: 99 }),
      (first, second, a, b) => {
        fc.pre(second <= first);
        const text = `${a}${UNITS[first][0]}${b}${UNITS[second][0]}`;
        assert.throws(() => parseDuration(text, "timeout"), TypeError);
      },
    ),
  );
});

/** Checks the one outcome parseDuration may have for any input. */
function checkOutcome(input: string): void {
  let result: number;
  try {
    result = parseDuration(input, "timeout");
  } catch (error) {
    if (error instanceof TypeError) {
      assert.ok(
        input === "" || !GRAMMAR.test(input),
        `rejected ${JSON.stringify(input)}`,
      );
      assert.ok(error.message.endsWith(`received ${describe(input)}`));
      return;
    }
    // Only well-formed durations can be too long.
    assert.ok(error instanceof RangeError, `threw ${error}`);
    assert.ok(GRAMMAR.test(input), `RangeError for ${JSON.stringify(input)}`);
    return;
  }
  assert.ok(
    input !== "" && GRAMMAR.test(input),
    `accepted ${JSON.stringify(input)}`,
  );
  assert.ok(Number.isSafeInteger(result) && result >= 0 && result <= 8.64e15);
}

test("parseDuration reads garbage from duration characters or throws a TypeError", () => {
  const unit = fc.constantFrom(..."0123456789.dhmsms -+eE");
  fc.assert(fc.property(fc.string({ unit, maxLength: 12 }), checkOutcome), {
    numRuns: 2_000,
  });
});

test("parseDuration reads any string or throws a TypeError", () => {
  fc.assert(fc.property(fc.string({ unit: "binary" }), checkOutcome));
});

test("parseDuration returns rounded milliseconds for any number in range, else throws", () => {
  fc.assert(
    fc.property(fc.double(), (input) => {
      if (Number.isNaN(input)) {
        assert.throws(() => parseDuration(input, "timeout"), TypeError);
      } else if (input < 0 || Math.round(input) > 8.64e15) {
        assert.throws(() => parseDuration(input, "timeout"), RangeError);
      } else {
        assert.ok(
          Object.is(parseDuration(input, "timeout"), Math.round(input) + 0),
        );
      }
    }),
  );
});

test("resolveTime keeps the time of any valid Date and rejects invalid ones", () => {
  fc.assert(
    fc.property(fc.date({ noInvalidDate: false }), (date) => {
      if (Number.isNaN(date.getTime())) {
        assert.throws(() => resolveTime(date, "scheduleAt"), TypeError);
      } else {
        const result = resolveTime(date, "scheduleAt");
        assert.ok("at" in result && result.at.getTime() === date.getTime());
      }
    }),
  );
});
