import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import type { JWK } from 'jose';
import { ProxyRefusal, WireError, WtdError } from '../errors.js';
import { every, systemWallClock, type ClockTimer, type WallClock } from '../runtime/clock.js';
import { isClientError, LogThrottle } from '../runtime/log-throttle.js';
import type { Logger } from '../runtime/node.js';
import { authenticate, type KeyResolver } from '../security/authenticate.js';
import {
  checkConnectionLimits,
  ConnectionGuard,
  DEFAULT_CONNECTION_LIMITS,
  type ConnectionLimits,
} from '../security/connection-guard.js';
import { exportPrivate, importPrivate, importPublic, newKeyPair, shortId, type KeyPair } from '../security/keys.js';
import { ReplayWindow } from '../security/replay-window.js';
import { MESSAGE_TTL_S, type ProxyClaims } from '../wire/claims.js';
import { parsePingBody, parseRegisterBody, type DirectoryEntry, type PingAnswer } from '../wire/relay.js';
import { readJwsBody } from '../wire/request-body.js';
import { RelayHub, type Live } from './relay-hub.js';
import { statusPage } from './status-page.js';
import { ProxyStore, type NodeRecord } from './store.js';

/**
 * Options for {@link WtdProxy.start}.
 *
 * @example
 * ```ts
 * const proxy = await Proxy.start({ dataDir: './proxy-data', host: '0.0.0.0', maxQueue: 500 });
 * ```
 */
export interface ProxyOptions {
  /** Where registrations and queues are kept (`proxy.db`); `':memory:'` keeps nothing. */
  dataDir: string;
  /** Default 14152, the original EPMD's port; 0 picks a free one. */
  port?: number;
  /** Default `'127.0.0.1'`; `'0.0.0.0'` to serve other machines. */
  host?: string;
  /** Most messages waiting for one node. Default 1000. */
  maxQueue?: number;
  /** Largest relayed message, in bytes. Default 64 KiB. */
  maxMessageBytes?: number;
  /** Largest request body, in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /** How long a message waits for an offline node, in ms. Default 60 s. */
  messageTtlMs?: number;
  /** Most polls held at once, for all nodes. Default 1000. */
  maxPolls?: number;
  /** How long a poll is held when there is nothing to deliver, in ms. Default 20 s. */
  pollHoldMs?: number;
  /** A node silent for longer than this is offline, in ms. Default 5 s. */
  offlineAfterMs?: number;
  /**
   * Connection bounds ({@link ConnectionLimits}). Defaults: `maxPolls` + 512
   * connections in all, 32 per source (which bounds the polls one address
   * can hold), headers in 5 s, a whole request in 10 s (a held poll's
   * waiting does not count: its request is in), 5 s idle between requests.
   */
  connections?: Partial<ConnectionLimits>;
  /** Where the proxy reports what went wrong (throttled: at most 10 lines of a kind a minute). Default: the console. */
  logger?: Logger;
  /** The time of day for signatures, holds, TTLs and who is online. Default: the system's. */
  wallClock?: WallClock;
}

/**
 * One node's line of the proxy's status.
 *
 * @example
 * ```ts
 * for (const n of proxy.status().nodes) console.log(n.name, n.online, n.queued);
 * ```
 */
export interface ProxyNodeStatus {
  id: string;
  name: string;
  online: boolean;
  missions: string[];
  /** How many grant keys it accepts. */
  grants: number;
  address: string | null;
  /** Messages waiting for it. */
  queued: number;
  lastSeen: number;
  /** Messages relayed from it and to it since the proxy started. */
  sent: number;
  received: number;
}

/**
 * What `GET /status.json` (and the page at `GET /`) shows.
 *
 * @example
 * ```ts
 * const status: ProxyStatus = proxy.status();
 * console.log(`${status.nodes.filter((n) => n.online).length} online, ${status.relayed} relayed`);
 * ```
 */
export interface ProxyStatus {
  id: string;
  startedAt: number;
  now: number;
  relayed: number;
  waitingPolls: number;
  nodes: ProxyNodeStatus[];
}

function refuse(code: 'ERR_PROXY_NOT_REGISTERED' | 'ERR_PROXY_DENIED', status: number, message: string): never {
  throw new ProxyRefusal(code, status, message);
}

/**
 * WTD's EPMD as a web service: nodes behind home routers register with it,
 * ping it every second with what they offer and read who else is online,
 * and it relays their signed messages by long polling. It can delay or drop
 * a message, never forge or alter one: every relayed request and reply is
 * signed end to end by its sender, and every request to the proxy itself is
 * signed by the node key that registered.
 *
 * Routes: `GET /` (status page), `GET /status.json`, `GET /id`,
 * `PUT /register`, `PUT /nodes/<id>/ping` and `PUT /nodes/<id>/poll`
 * (which carries the node's outgoing messages and acknowledgements, and
 * brings back what is waiting for it).
 *
 * @example
 * ```ts
 * const proxy = await WtdProxy.start({ dataDir: './proxy-data', port: 14152 });
 * await bob.joinProxy({ url: proxy.url, email: 'bob@example.org' });
 * // ... later
 * await proxy.close();
 * ```
 */
export class WtdProxy {
  /** The proxy's id: requests to it are signed for this audience. */
  readonly id: string;
  readonly publicJwk: JWK;
  readonly #store: ProxyStore;
  readonly #options: Required<Omit<ProxyOptions, 'logger' | 'dataDir' | 'port' | 'host' | 'wallClock' | 'connections'>>;
  readonly #log: LogThrottle;
  readonly #connections: ConnectionLimits;
  readonly #clock: WallClock;
  readonly #replay: ReplayWindow;
  readonly #relay: RelayHub;
  readonly #nodes = new Map<string, Live>();
  readonly #byKid = new Map<string, Live>();
  readonly #keys = new Map<string, Awaited<ReturnType<typeof importPublic>>['key']>();
  readonly #startedAt: number;
  #server: Server | undefined;
  #sweeper: ClockTimer | undefined;
  #url = '';
  #port = 0;
  // Checks waiting for a state of the proxy (see until), looked at after every change.
  readonly #watchers = new Set<() => void>();

  private constructor(store: ProxyStore, keys: KeyPair, options: ProxyOptions) {
    this.#store = store;
    this.id = shortId(keys.thumbprint);
    this.publicJwk = keys.publicJwk;
    this.#clock = options.wallClock ?? systemWallClock;
    this.#log = new LogThrottle(options.logger ?? console, this.#clock);
    this.#startedAt = this.#clock.now();
    this.#replay = new ReplayWindow(store.replay, this.#clock);
    this.#options = {
      maxQueue: options.maxQueue ?? 1000,
      maxMessageBytes: options.maxMessageBytes ?? 64 * 1024,
      maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
      messageTtlMs: options.messageTtlMs ?? MESSAGE_TTL_S * 1000,
      maxPolls: options.maxPolls ?? 1000,
      pollHoldMs: options.pollHoldMs ?? 20_000,
      offlineAfterMs: options.offlineAfterMs ?? 5000,
    };
    this.#connections = {
      ...DEFAULT_CONNECTION_LIMITS,
      maxConnections: this.#options.maxPolls + 512,
      ...options.connections,
    };
    for (const record of store.nodes()) {
      const live = { record, online: false, queued: store.depth(record.id), sent: 0, received: 0 };
      this.#nodes.set(record.id, live);
      this.#byKid.set(record.kid, live);
    }
    this.#relay = new RelayHub(store, this.#nodes, this.#options, this.#clock, () => this.#changed());
  }

  /** Opens the store in `dataDir` and starts serving. */
  static async start(options: ProxyOptions): Promise<WtdProxy> {
    if (options === undefined || typeof options.dataDir !== 'string') {
      throw new TypeError("WtdProxy.start(options) needs options.dataDir (a directory, or ':memory:')");
    }
    checkConnectionLimits({ ...DEFAULT_CONNECTION_LIMITS, ...options.connections });
    const store = new ProxyStore(options.dataDir);
    let keys: KeyPair;
    const stored = store.getMeta('proxy_key');
    if (stored === undefined) {
      keys = await newKeyPair();
      store.setMeta('proxy_key', JSON.stringify(await exportPrivate(keys)));
    } else {
      keys = await importPrivate(JSON.parse(stored) as JWK);
    }
    const proxy = new WtdProxy(store, keys, options);
    try {
      await proxy.#listen(options.port ?? 14152, options.host ?? '127.0.0.1');
    } catch (err) {
      store.close();
      throw new WtdError(
        'ERR_LISTEN',
        `the proxy could not listen on port ${options.port ?? 14152}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return proxy;
  }

  /** Where nodes reach it, e.g. `http://127.0.0.1:14152`. */
  get url(): string {
    return this.#url;
  }

  get port(): number {
    return this.#port;
  }

  /** Nodes online, their offers and queues, relay counts. */
  status(): ProxyStatus {
    return {
      id: this.id,
      startedAt: this.#startedAt,
      now: this.#clock.now(),
      relayed: this.#relay.relayed,
      waitingPolls: this.#relay.waitingPolls,
      nodes: [...this.#nodes.values()].map((n) => ({
        id: n.record.id,
        name: n.record.name,
        online: n.online,
        missions: n.record.missions,
        grants: n.record.grants.length,
        address: n.record.address,
        queued: n.queued,
        lastSeen: n.record.lastSeen,
        sent: n.sent,
        received: n.received,
      })),
    };
  }

  /**
   * Resolves once `check` holds of the proxy's {@link status}, looked at now
   * and after every request it handles and every sweep: an awaitable
   * settle point, so a program (or a spec) waits for an event, not a timer.
   *
   * @example
   * ```ts
   * await proxy.until((s) => s.nodes.filter((n) => n.online).length === 2);
   * ```
   */
  until(check: (status: ProxyStatus) => boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const look = (): void => {
        if (!check(this.status())) return;
        this.#watchers.delete(look);
        resolve();
      };
      this.#watchers.add(look);
      look();
    });
  }

  #changed(): void {
    for (const look of [...this.#watchers]) look();
  }

  /** Stops serving, releases every held poll and closes the store. Queued messages stay for the next start. */
  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    this.#sweeper?.cancel();
    this.#relay.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.#store.close();
    this.#log.flush();
  }

  async #listen(port: number, host: string): Promise<void> {
    const app = new Koa();
    // Paths match exactly as written: /Nodes/x/PING is not /nodes/x/ping.
    const router = new Router({ sensitive: true, strict: true });
    app.silent = true;
    app.use(async (ctx, next) => {
      ctx.res.once('finish', () => this.#changed());
      try {
        await next();
        if (ctx.status === 404 && ctx.body === undefined) throw new WireError('ERR_NOT_FOUND', 404, 'no such route');
      } catch (err) {
        let refusal: WireError;
        if (err instanceof WireError) refusal = err;
        else if (isClientError(err)) {
          // The caller hung up or stalled (an aborted body, a reset socket): one line, no stack.
          this.#log.error(
            'aborted',
            `proxy: a request to ${ctx.path} from ${ctx.req.socket.remoteAddress} was cut off`,
            err,
          );
          refusal = new ProxyRefusal('ERR_PROXY_BAD_REQUEST', 400, 'the request could not be read');
        } else {
          this.#log.error('internal', `proxy: a request to ${ctx.path} failed`, err);
          refusal = new WireError('ERR_INTERNAL', 500, 'the proxy failed to handle this request');
        }
        ctx.status = refusal.status;
        ctx.type = 'application/json';
        ctx.body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } });
      }
    });
    router.get('/', (ctx) => {
      ctx.type = 'text/html; charset=utf-8';
      // No other site may frame the page (clickjacking).
      ctx.set(
        'Content-Security-Policy',
        "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'",
      );
      ctx.set('X-Frame-Options', 'DENY');
      ctx.body = statusPage();
    });
    router.get('/status.json', (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = this.status();
    });
    router.get('/id', (ctx) => {
      ctx.body = { id: this.id, publicJwk: this.publicJwk };
    });
    router.put('/register', async (ctx) => {
      ctx.body = await this.#register(ctx);
    });
    router.put('/nodes/:id/ping', async (ctx) => {
      const { live, claims } = await this.#authenticate(ctx, ctx.params.id!, false);
      ctx.body = this.#ping(live, claims.body);
    });
    router.put('/nodes/:id/poll', async (ctx) => {
      // The poll's id is admitted in the same commit as its acknowledgements and messages.
      const { live, claims, admit } = await this.#authenticate(ctx, ctx.params.id!, true);
      const answer = await this.#relay.poll(live, claims.body, admit, ctx);
      // The queued messages are JSON already: they are spliced in, not parsed and written again.
      ctx.type = 'application/json';
      ctx.body =
        `{"results":${JSON.stringify(answer.results)},"messages":[${answer.messages.join(',')}]` +
        `${answer.retryMs === undefined ? '' : `,"retryMs":${answer.retryMs}`}}`;
    });
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: false }));

    const server = ConnectionGuard.serve(app.callback(), this.#connections, (r) =>
      this.#log.line('connection', `proxy: ${r.message}`),
    ).server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
    this.#url = `http://${host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host}:${this.#port}`;
    this.#sweeper = every(this.#clock, 1000, () => this.#sweep());
    this.#sweeper.unref?.();
  }

  /** The one pipeline for a signed request to the proxy, with `key` finding the key it names. */
  async #verified<T>(ctx: Koa.Context, key: KeyResolver<T>, admitLater: boolean) {
    const jws = await readJwsBody(ctx.req, this.#options.maxBodyBytes);
    return authenticate(jws, {
      kind: 'proxy',
      key,
      aud: this.id,
      method: 'PUT',
      path: ctx.path,
      clock: this.#clock,
      replay: this.#replay,
      admitLater,
    });
  }

  /** A registered node's request: the pipeline, then that the node acts as itself. */
  async #authenticate(
    ctx: Koa.Context,
    nodeId: string,
    admitLater: boolean,
  ): Promise<{ live: Live; claims: ProxyClaims; admit: () => void }> {
    const { claims, found: live, admit } = await this.#verified(ctx, this.#registered, admitLater);
    if (live.record.id !== nodeId) refuse('ERR_PROXY_DENIED', 403, 'a node can only ping, poll or send as itself');
    return { live, claims, admit };
  }

  readonly #registered: KeyResolver<Live> = async (kid) => {
    const live = this.#byKid.get(kid);
    if (live === undefined) refuse('ERR_PROXY_NOT_REGISTERED', 401, 'this key is not registered here; register first');
    let key = this.#keys.get(kid);
    if (key === undefined) {
      key = (await importPublic(live.record.publicJwk)).key;
      this.#keys.set(kid, key);
    }
    return { key, found: live };
  };

  /** A registration proves it holds the key it registers: it is signed by it, and names it in `kid`. */
  readonly #selfSigned: KeyResolver<ReturnType<typeof parseRegisterBody>> = async (kid, peek) => {
    const body = parseRegisterBody(peek().body);
    let imported: Awaited<ReturnType<typeof importPublic>>;
    try {
      imported = await importPublic(body.publicJwk);
    } catch {
      throw new ProxyRefusal('ERR_PROXY_BAD_REQUEST', 400, 'publicJwk must be an Ed25519 public key');
    }
    if (imported.thumbprint !== kid) {
      refuse('ERR_PROXY_DENIED', 401, 'the registration is not signed by the key it registers');
    }
    return { key: imported.key, found: body };
  };

  async #register(ctx: Koa.Context): Promise<{ id: string }> {
    const { kid, found: body } = await this.#verified(ctx, this.#selfSigned, false);
    const id = shortId(kid);
    const known = this.#nodes.get(id);
    const record: NodeRecord = known?.record ?? {
      id,
      kid,
      email: body.email,
      name: body.name,
      publicJwk: body.publicJwk,
      registeredAt: this.#clock.now(),
      missions: [],
      grants: [],
      address: null,
      lastSeen: 0,
    };
    record.email = body.email;
    record.name = body.name;
    this.#store.register(record);
    if (known === undefined) {
      const live = { record, online: false, queued: 0, sent: 0, received: 0 };
      this.#nodes.set(id, live);
      this.#byKid.set(kid, live);
    }
    return { id };
  }

  #ping(live: Live, body: unknown): PingAnswer {
    const { missions, grants, address } = parsePingBody(body);
    const record = live.record;
    const changed =
      !live.online ||
      record.address !== address ||
      JSON.stringify(record.missions) !== JSON.stringify(missions) ||
      JSON.stringify(record.grants) !== JSON.stringify(grants);
    record.missions = missions;
    record.grants = grants;
    record.address = address;
    record.lastSeen = this.#clock.now();
    live.online = true;
    if (changed) this.#store.saveOffers(record);
    const directory: DirectoryEntry[] = [...this.#nodes.values()]
      .filter((n) => n.online)
      .map((n) => ({
        id: n.record.id,
        name: n.record.name,
        missions: n.record.missions,
        grants: n.record.grants,
        address: n.record.address,
        online: true,
        lastSeen: n.record.lastSeen,
      }));
    return { directory };
  }

  /** Once a second: nodes silent too long go offline, expired messages are answered and dropped, old ids forgotten. */
  #sweep(): void {
    const now = this.#clock.now();
    for (const n of this.#nodes.values()) {
      if (n.online && now - n.record.lastSeen > this.#options.offlineAfterMs) n.online = false;
    }
    this.#relay.sweep();
    this.#replay.prune();
    this.#changed();
  }
}
