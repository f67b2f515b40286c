/**
 * Array parameters, written as PostgreSQL array literals by pq itself.
 *
 * postgres.js 3.4.9 types a JS array parameter by its first element and
 * looks the array type up in types it fetches when it connects; before that
 * fetch ends (the first statement of a new client), and always on a client
 * with `fetch_types: false` such as pq's own connection, it sends `a,b,c`,
 * which the server refuses ("Array value must start with {";
 * porsager/postgres#789, #1164). A worker's first take then failed. So pq
 * sends every array as text, `{"a","b"}`, cast in the statement
 * (`$2::text::text[]`).
 *
 * @module
 */

/**
 * The literal of a one-dimensional array: each element double-quoted (with
 * `\` and `"` escaped), or NULL.
 */
export function arrayLiteral(
  values: readonly (string | number | boolean | null | undefined)[],
): string {
  let out = "{";
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ",";
    const value = values[i];
    out += value === null || value === undefined
      ? "NULL"
      : `"${String(value).replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
  }
  return out + "}";
}
