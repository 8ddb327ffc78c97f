import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { isIPv4, isIPv6, type Socket } from 'node:net';

/**
 * How many connections a server keeps and for how long, so that strangers
 * cannot hold its door shut: the node, the proxy and the observer each
 * serve behind a connection guard with these.
 *
 * @example
 * ```ts
 * const alice = await WtdNode.start({
 *   name: 'alice',
 *   dataDir: './alice-data',
 *   limits: { maxConnections: 128, maxConnectionsPerSource: 16, headersTimeoutMs: 3000 },
 * });
 * const proxy = await WtdProxy.start({ dataDir: './proxy-data', connections: { maxConnectionsPerSource: 64 } });
 * ```
 */
export interface ConnectionLimits {
  /**
   * Most connections open at once. A newcomer when all are taken closes an
   * idle one instead (one that has sent nothing, or only part of its
   * headers, or waits between requests; oldest first), else one still
   * sending its body (oldest first); only when every connection is being
   * answered is the newcomer closed. Default 256.
   */
  maxConnections: number;
  /**
   * Most connections open at once from one address (IPv6: one /64). The
   * next is closed as soon as it opens. Default 32; a WTD node opens at
   * most this many to one server.
   */
  maxConnectionsPerSource: number;
  /** Time to receive a request's headers, from its first byte (or from connecting), in ms. Default 5 s. */
  headersTimeoutMs: number;
  /** Time to receive a whole request, headers and body, in ms. Default 10 s. Time spent answering does not count. */
  requestTimeoutMs: number;
  /** How long a kept-alive connection may wait for its next request, in ms (Node adds up to 1 s of grace). Default 5 s. */
  idleTimeoutMs: number;
}

/** The limits for a node on a small machine (a 1 GB Raspberry Pi). */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 256,
  maxConnectionsPerSource: 32,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 5_000,
};

/** What a guard did to a connection, for its server's log. */
export interface GuardReport {
  /** `refused`: the newcomer was closed; `evicted`: a connection still sending its body was closed to let one in. */
  action: 'refused' | 'evicted';
  /** `source`: its address had its share; `full`: every connection was being answered. */
  reason: 'source' | 'full';
  /** The address (for IPv6, the /64) of the connection closed. */
  source: string;
  /** What happened, as one line for a log. */
  message: string;
}

/**
 * The address a connection counts against: an IPv4 address as it is (also
 * when it arrives IPv4-mapped, `::ffff:1.2.3.4`), an IPv6 address by its /64
 * (`2001:db8:1:2::/64`), since one household or server holds a whole /64.
 */
export function sourceOf(address: string | undefined): string | undefined {
  if (address === undefined || address === '') return undefined;
  const bare = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped !== null) return mapped[1]!;
  if (isIPv4(bare) || !isIPv6(bare)) return bare;
  const [head, tail = ''] = bare.toLowerCase().split('::') as [string, string?];
  const front = head === '' ? [] : head.split(':');
  const back = tail === '' ? [] : tail.split(':');
  // An embedded IPv4 tail (64:ff9b::1.2.3.4) stands for two groups.
  const width = (groups: string[]): number => groups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const groups = bare.includes('::')
    ? [...front, ...Array<string>(Math.max(0, 8 - width(front) - width(back))).fill('0'), ...back]
    : front;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** A connection being tracked: where it comes from, and how many of its requests are being answered. */
interface Tracked {
  source: string;
  active: number;
}

/**
 * Throws a TypeError naming the first of `limits` that is not a positive
 * integer, or saying that the headers timeout is longer than the request's
 * (the headers are part of the request).
 */
export function checkConnectionLimits(limits: ConnectionLimits): void {
  for (const key of Object.keys(DEFAULT_CONNECTION_LIMITS) as (keyof ConnectionLimits)[]) {
    const value = limits[key];
    if (!Number.isInteger(value) || value < 1) {
      throw new TypeError(`the connection limit ${key} must be a positive integer, got ${String(value)}`);
    }
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new TypeError(
      `headersTimeoutMs must be at most requestTimeoutMs, got ${limits.headersTimeoutMs} > ${limits.requestTimeoutMs}`,
    );
  }
}

/**
 * Bounds the connections of one `node:http` server: Node's own timers cut
 * a connection whose headers or whole request take too long (answered 408,
 * then closed) and one idle between requests; the guard counts connections
 * per source and in all, and makes room for a newcomer by closing those
 * that cost the most to keep and give the least: idle ones first, then
 * ones still sending a body. A request whose body is in and is being
 * answered (a call running, a long poll held) is never closed to make room.
 *
 * A connection over a cap is destroyed as soon as it opens, with no answer:
 * nothing is written to a socket that may never read it, and the caller
 * sees a reset connection (a WTD caller: `ERR_NODE_DOWN`).
 */
export class ConnectionGuard {
  readonly server: Server;
  readonly #limits: ConnectionLimits;
  readonly #report: (report: GuardReport) => void;
  // Invariant: #sockets holds every open connection the guard let in, and
  // #bySource counts them per source. A connection with no request being
  // answered is also in #idle, in the order it became idle (oldest first);
  // one whose latest request is still being received may be in #receiving
  // (in the order its request began; stale entries are dropped lazily).
  readonly #sockets = new Map<Socket, Tracked>();
  readonly #bySource = new Map<string, number>();
  readonly #idle = new Map<Socket, Tracked>();
  readonly #receiving = new Map<Socket, IncomingMessage>();
  // The answer each busy connection is being given, to find those whose client does not read it.
  readonly #answering = new Map<Socket, ServerResponse>();
  // What closes an upgraded connection politely when it must make room (instead of destroying it).
  readonly #evictors = new Map<Socket, () => void>();

  /** Creates a server answering with `handler`, behind a guard with `limits`; `report` hears what the guard closes. */
  static serve(
    handler: RequestListener,
    limits: ConnectionLimits,
    report: (report: GuardReport) => void = () => {},
  ): ConnectionGuard {
    checkConnectionLimits(limits);
    const server = createServer(
      {
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.idleTimeoutMs,
        // How often Node looks for headers and requests past their time: often enough to cut them within a fifth.
        connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(limits.headersTimeoutMs / 5))),
      },
      handler,
    );
    server.maxHeadersCount = 64;
    return new ConnectionGuard(server, limits, report);
  }

  private constructor(server: Server, limits: ConnectionLimits, report: (report: GuardReport) => void) {
    this.server = server;
    this.#limits = limits;
    this.#report = report;
    server.on('connection', (socket: Socket) => this.#admit(socket));
    server.prependListener('request', (req, res) => {
      const tracked = this.#sockets.get(req.socket);
      if (tracked === undefined) return;
      tracked.active++;
      this.#idle.delete(req.socket);
      this.#receiving.delete(req.socket); // re-entered, so the order is that of this request
      if (!req.complete) this.#receiving.set(req.socket, req);
      this.#answering.delete(req.socket);
      this.#answering.set(req.socket, res);
      res.once('close', () => {
        if (this.#receiving.get(req.socket) === req) this.#receiving.delete(req.socket);
        if (this.#answering.get(req.socket) === res) this.#answering.delete(req.socket);
        if (--tracked.active === 0 && this.#sockets.has(req.socket) && !req.socket.destroyed) {
          this.#idle.set(req.socket, tracked);
        }
      });
    });
  }

  /**
   * Marks an upgraded connection (a call stream) busy, as a request being
   * answered is: it is not closed to make room until the function returned
   * is called (once; later calls do nothing).
   */
  hold(socket: Socket): () => void {
    const tracked = this.#sockets.get(socket);
    if (tracked === undefined) return () => {};
    tracked.active++;
    this.#idle.delete(socket);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      if (--tracked.active === 0 && this.#sockets.has(socket) && !socket.destroyed) this.#idle.set(socket, tracked);
    };
  }

  /** What to call, instead of destroying an idle upgraded connection, when it must make room. */
  onEvict(socket: Socket, evict: () => void): void {
    if (!this.#sockets.has(socket)) return;
    this.#evictors.set(socket, evict);
  }

  /** Connections open now, in all or from `source` (as {@link sourceOf} names it). */
  open(source?: string): number {
    return source === undefined ? this.#sockets.size : (this.#bySource.get(source) ?? 0);
  }

  #admit(socket: Socket): void {
    const source = sourceOf(socket.remoteAddress);
    if (source === undefined) {
      socket.destroy(); // it closed before we saw it
      return;
    }
    const perSource = this.#limits.maxConnectionsPerSource;
    if ((this.#bySource.get(source) ?? 0) >= perSource) {
      const message = `refused a connection from ${source}: it has ${perSource} open, the most one address may`;
      this.#report({ action: 'refused', reason: 'source', source, message });
      socket.destroy();
      return;
    }
    if (this.#sockets.size >= this.#limits.maxConnections && !this.#makeRoom()) {
      const message = `refused a connection from ${source}: all ${this.#limits.maxConnections} connections are being answered`;
      this.#report({ action: 'refused', reason: 'full', source, message });
      socket.destroy();
      return;
    }
    const tracked: Tracked = { source, active: 0 };
    this.#sockets.set(socket, tracked);
    this.#idle.set(socket, tracked);
    this.#bySource.set(source, (this.#bySource.get(source) ?? 0) + 1);
    socket.once('close', () => this.#forget(socket));
  }

  /**
   * Closes the oldest idle connection, else the oldest still sending its
   * body, else one that does not read the answer written to it; false if
   * every one is being answered.
   */
  #makeRoom(): boolean {
    for (const socket of this.#idle.keys()) {
      const evict = this.#evictors.get(socket);
      this.#forget(socket);
      if (evict === undefined) socket.destroy();
      else evict();
      return true;
    }
    for (const [socket, req] of this.#receiving) {
      this.#receiving.delete(socket);
      const tracked = this.#sockets.get(socket);
      if (tracked === undefined || req.complete || socket.destroyed) continue;
      const message = `closed a connection from ${tracked.source} still sending its body, to make room for a newcomer`;
      this.#report({ action: 'evicted', reason: 'full', source: tracked.source, message });
      this.#forget(socket);
      socket.destroy();
      return true;
    }
    // Then one whose answer is written but that does not read it: its client holds a slot by not reading.
    for (const [socket, res] of this.#answering) {
      const tracked = this.#sockets.get(socket);
      if (tracked === undefined || socket.destroyed) continue;
      if (!(res.writableEnded && !res.writableFinished) && !socket.writableNeedDrain) continue;
      const message = `closed a connection from ${tracked.source} that does not read its answer, to make room for a newcomer`;
      this.#report({ action: 'evicted', reason: 'full', source: tracked.source, message });
      this.#forget(socket);
      socket.destroy();
      return true;
    }
    return false;
  }

  #forget(socket: Socket): void {
    const tracked = this.#sockets.get(socket);
    if (tracked === undefined) return;
    this.#sockets.delete(socket);
    this.#idle.delete(socket);
    this.#receiving.delete(socket);
    this.#answering.delete(socket);
    this.#evictors.delete(socket);
    const left = this.#bySource.get(tracked.source)! - 1;
    if (left === 0) this.#bySource.delete(tracked.source);
    else this.#bySource.set(tracked.source, left);
  }
}
