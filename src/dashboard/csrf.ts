/**
 * CSRF protection without server-side sessions (double submit, signed):
 * each browser gets a random cookie (`HttpOnly`, `SameSite=Strict`), and
 * each form carries the HMAC of that cookie under a key that lives only in
 * this dashboard's memory. Another site can neither read the cookie nor
 * compute the token, so a POST it forges carries no valid pair.
 *
 * @module
 */

const encoder = new TextEncoder();

/** The random value of a new cookie: 32 hex digits. */
export function newCookieValue(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** Signs cookie values with a key made for one dashboard. */
export class CsrfKey {
  readonly #key: Promise<CryptoKey>;

  constructor() {
    this.#key = crypto.subtle.generateKey(
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    ) as Promise<CryptoKey>;
  }

  /** The token of a cookie value, as hex. */
  async token(cookie: string): Promise<string> {
    const signature = await crypto.subtle.sign(
      "HMAC",
      await this.#key,
      encoder.encode(cookie),
    );
    return Array.from(
      new Uint8Array(signature),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
  }

  /** True when `token` is the token of `cookie` (compared in constant time). */
  async check(cookie: string | undefined, token: unknown): Promise<boolean> {
    if (!cookie || typeof token !== "string" || !/^[0-9a-f]{64}$/.test(token)) {
      return false;
    }
    const bytes = new Uint8Array(
      token.match(/../g)!.map((h) => parseInt(h, 16)),
    );
    return await crypto.subtle.verify(
      "HMAC",
      await this.#key,
      bytes,
      encoder.encode(cookie),
    );
  }
}
