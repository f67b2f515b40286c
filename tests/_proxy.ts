/**
 * A small TCP proxy in front of PostgreSQL, for tests that need to see or
 * cut what goes over the wire.
 *
 * - `refuse = true` makes it drop new connections at once while the
 *   connections it already carries keep working: a client's pool stays up,
 *   but a connection it opens from now on fails.
 * - `cutAtFirstStatement = n` closes the next `n` connections when they send
 *   their first statement, after the startup went through: as when the
 *   server dies just as a new connection is put to use.
 * - `cutAtNextStatement = n` closes the connections that send the next `n`
 *   statements, new or old: as when the server dies during a statement.
 * - `stallWhen = (text) => boolean` holds a connection when it sends a
 *   statement whose text (of a Query or Parse message) passes the test:
 *   nothing more passes either way, and both sockets stay open until the
 *   proxy closes, as with a server that froze or a network that drops
 *   packets without a reset. The statement never gets an answer.
 * - `stopListening()` closes the listening socket: new connections are
 *   refused by the system (ECONNREFUSED, as with a server that is down),
 *   while the connections it carries go on.
 * - It reads the frontend protocol of every connection and counts the
 *   statements the clients run (each simple Query and each Execute), and
 *   keeps their texts and the names of named prepared statements, so a test
 *   can assert what a PQ sends (one poll per interval, no LISTEN, ...).
 *
 * @example Count the statements of a client
 * ```ts ignore
 * await using proxy = await startProxy(databaseUrl());
 * const sql = postgres(proxy.url, { max: 1 });
 * await sql`select 1`;
 * console.log(proxy.statements); // 1
 * ```
 *
 * @module
 */

import net from "node:net";

/** A running proxy; see {@linkcode startProxy}. */
export interface TcpProxy {
  /** The database URL with the proxy's host and port. */
  readonly url: string;
  /** The proxy's port on 127.0.0.1. */
  readonly port: number;
  /** While true, new connections are closed at once; old ones go on. */
  refuse: boolean;
  /** Close this many of the next connections at their first statement. */
  cutAtFirstStatement: number;
  /** Close the connections that send the next this many statements. */
  cutAtNextStatement: number;
  /** Hold a connection when it sends a statement whose text passes this. */
  stallWhen: ((text: string) => boolean) | null;
  /** Connections closed by `cutAtFirstStatement` so far. */
  readonly cuts: number;
  /** Connections closed by `cutAtNextStatement` so far. */
  readonly statementCuts: number;
  /** Connections held by `stallWhen` so far. */
  readonly stalls: number;
  /** Connections accepted and passed on so far. */
  readonly accepted: number;
  /** Connections closed at once because `refuse` was set. */
  readonly refused: number;
  /** Statements run so far: simple Query messages plus Execute messages. */
  readonly statements: number;
  /** The text of every Query and Parse message, in order. */
  readonly texts: string[];
  /** The names of named prepared statements (Parse with a name). */
  readonly namedStatements: string[];
  /** The local ports of the proxy's connections to the server. */
  upstreamPorts(): number[];
  /** Closes the listening socket; the open connections go on. */
  stopListening(): void;
  /** Closes the listening socket and every connection. */
  close(): Promise<void>;
  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Protocol codes of untyped messages sent before the startup is done. */
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

/**
 * Starts a proxy on a free port of 127.0.0.1 that forwards to the server of
 * `databaseUrl`.
 *
 * @param databaseUrl Where to forward, as a `postgres://` URL.
 * @returns The running proxy.
 */
export async function startProxy(databaseUrl: string): Promise<TcpProxy> {
  const target = new URL(databaseUrl);
  const upstreamHost = target.hostname || "127.0.0.1";
  const upstreamPort = Number(target.port || 5432);
  const sockets = new Set<net.Socket>();
  const upstreams = new Set<net.Socket>();
  let accepted = 0, refused = 0, statements = 0, cuts = 0;
  let statementCuts = 0, stalls = 0;
  const texts: string[] = [];
  const namedStatements: string[] = [];

  /** Counts and keeps a message; returns the text of a Query or Parse. */
  const onMessage = (type: number, body: Uint8Array): string | null => {
    if (type === 0x51 /* Q */) {
      statements++;
      const text = cString(body, 0).text;
      texts.push(text);
      return text;
    } else if (type === 0x45 /* E */) {
      statements++;
    } else if (type === 0x50 /* P */) {
      const name = cString(body, 0);
      const text = cString(body, name.end + 1).text;
      texts.push(text);
      if (name.text !== "") namedStatements.push(name.text);
      return text;
    }
    return null;
  };

  const server = net.createServer((client) => {
    if (proxy.refuse) {
      refused++;
      client.destroy();
      return;
    }
    accepted++;
    const upstream = net.connect(upstreamPort, upstreamHost);
    sockets.add(client);
    sockets.add(upstream);
    upstreams.add(upstream);
    let first = true, cut = false, stalled = false;
    const reader = frontendReader((type, body) => {
      const text = onMessage(type, body);
      if (text !== null && !cut && !stalled && proxy.stallWhen?.(text)) {
        stalls++;
        stalled = true;
      }
      const statement = type === 0x51 /* Q */ || type === 0x50 /* P */ ||
        type === 0x45 /* E */;
      if (statement && !cut && !stalled && proxy.cutAtNextStatement > 0) {
        proxy.cutAtNextStatement--;
        statementCuts++;
        cut = true;
      }
      if (first && (type === 0x51 /* Q */ || type === 0x50 /* P */)) {
        first = false;
        if (proxy.cutAtFirstStatement > 0) {
          proxy.cutAtFirstStatement--;
          cuts++;
          cut = true;
        }
      }
    });
    client.on("data", (chunk: Uint8Array) => {
      if (stalled) return;
      reader(chunk);
      if (cut) end();
      else if (!stalled) upstream.write(chunk);
    });
    upstream.on("data", (chunk: Uint8Array) => {
      if (!stalled) client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
      upstreams.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      socket.on("error", end);
      socket.on("close", end);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const url = new URL(databaseUrl);
  url.hostname = "127.0.0.1";
  url.port = String(port);

  /** Settles once the server closed: when no connection is left. */
  let serverClosed: Promise<void> | null = null;
  const stopListening = () => {
    serverClosed ??= new Promise<void>((resolve) =>
      server.close(() => resolve())
    );
  };
  const close = async () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    stopListening();
    await serverClosed;
  };
  const proxy: TcpProxy = {
    url: url.href,
    port,
    refuse: false,
    cutAtFirstStatement: 0,
    cutAtNextStatement: 0,
    stallWhen: null,
    get cuts() {
      return cuts;
    },
    get statementCuts() {
      return statementCuts;
    },
    get stalls() {
      return stalls;
    },
    get accepted() {
      return accepted;
    },
    get refused() {
      return refused;
    },
    get statements() {
      return statements;
    },
    texts,
    namedStatements,
    upstreamPorts: () =>
      [...upstreams].map((s) => s.localPort).filter((p): p is number =>
        p !== undefined
      ),
    stopListening,
    close,
    [Symbol.asyncDispose]: close,
  };
  return proxy;
}

/**
 * A parser of one connection's frontend messages, fed chunk by chunk; calls
 * `onMessage` with each typed message after the startup.
 */
function frontendReader(
  onMessage: (type: number, body: Uint8Array) => void,
): (chunk: Uint8Array) => void {
  let buffer = new Uint8Array(0);
  let started = false;
  return (chunk) => {
    const joined = new Uint8Array(buffer.length + chunk.length);
    joined.set(buffer);
    joined.set(chunk, buffer.length);
    buffer = joined;
    let at = 0;
    for (;;) {
      const view = new DataView(buffer.buffer, buffer.byteOffset + at);
      if (!started) {
        if (buffer.length - at < 8) break;
        const length = view.getInt32(0);
        if (buffer.length - at < length) break;
        const code = view.getInt32(4);
        if (
          code !== SSL_REQUEST && code !== GSSENC_REQUEST &&
          code !== CANCEL_REQUEST
        ) started = true;
        at += length;
      } else {
        if (buffer.length - at < 5) break;
        const length = view.getInt32(1);
        if (buffer.length - at < 1 + length) break;
        onMessage(buffer[at], buffer.subarray(at + 5, at + 1 + length));
        at += 1 + length;
      }
    }
    buffer = buffer.slice(at);
  };
}

/** The NUL-terminated UTF-8 string at `start`, and where its NUL is. */
function cString(bytes: Uint8Array, start: number): {
  text: string;
  end: number;
} {
  let end = bytes.indexOf(0, start);
  if (end < 0) end = bytes.length;
  return { text: new TextDecoder().decode(bytes.subarray(start, end)), end };
}
