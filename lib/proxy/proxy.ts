import { createHash } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import type { JWK } from 'jose';
import { ProxyRefusal, WireError, WtdError } from '../errors.js';
import { every, systemWallClock, type ClockTimer, type WallClock } from '../runtime/clock.js';
import { isClientError, LogThrottle } from '../runtime/log-throttle.js';
import { authenticate, type KeyResolver } from '../security/authenticate.js';
import {
  checkConnectionLimits,
  ConnectionGuard,
  DEFAULT_CONNECTION_LIMITS,
  type ConnectionLimits,
} from '../security/connection-guard.js';
import { exportPrivate, importPrivate, importPublic, newKeyPair, shortId, type KeyPair } from '../security/keys.js';
import { ReplayWindow } from '../security/replay-window.js';
import type { ProxyClaims } from '../wire/claims.js';
import {
  parsePingBody,
  parseRegisterBody,
  type DirectoryEntry,
  type PingAnswer,
  type PingLimits,
  type RegisterAnswer,
} from '../wire/relay.js';
import { readJwsBody } from '../wire/request-body.js';
import { DirectoryLog } from './directory.js';
import { resolveOptions, type ProxyOptions, type ResolvedOptions } from './proxy-options.js';
import { Registry, sourceOf } from './registry.js';
import { RelayHub, type Live } from './relay-hub.js';
import { RelayStreams } from './relay-stream.js';
import { statusPage } from './status-page.js';
import { count, MAX_STATUS_LIMIT, ordered, statusOf, type ProxyStatus, type StatusQuery } from './status.js';
import { ProxyStore, type NodeRecord } from './store.js';
import { busyWait, busyWaitOption } from '../runtime/busy-wait.js';

/** How often a node's last-seen time is written while it keeps pinging (it is forgotten after forgetAfterMs unseen). */
const SEEN_WRITE_MS = 60 * 60 * 1000;

export type { ProxyOptions } from './proxy-options.js';
export type { ProxyNodeStatus, ProxyStatus, StatusQuery } from './status.js';

function refuse(code: 'ERR_PROXY_NOT_REGISTERED' | 'ERR_PROXY_DENIED', status: number, message: string): never {
  throw new ProxyRefusal(code, status, message);
}

/** The digest of a list of key ids, to tell whether it changed. */
function digest(kids: readonly string[]): string {
  return createHash('sha256').update(kids.join(',')).digest('base64url');
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
  readonly #options: ResolvedOptions;
  readonly #pingLimits: PingLimits;
  readonly #log: LogThrottle;
  readonly #connections: ConnectionLimits;
  readonly #clock: WallClock;
  readonly #replay: ReplayWindow;
  readonly #relay: RelayHub;
  readonly #registry: Registry;
  readonly #nodes: Map<string, Live>;
  readonly #directory = new DirectoryLog();
  readonly #keys = new Map<string, Awaited<ReturnType<typeof importPublic>>['key']>();
  readonly #startedAt: number;
  #server: Server | undefined;
  #streams: RelayStreams | undefined;
  #sweeper: ClockTimer | undefined;
  #liveness: ClockTimer | undefined;
  #url = '';
  #port = 0;
  // Checks waiting for a state of the proxy (see until), looked at after every change.
  readonly #watchers = new Set<() => void>();
  // The nodes in the order the status lists them, kept until one comes, goes or is renamed.
  #ordered: Live[] | undefined;

  /** Takes back this proxy's busy wait (see {@link ProxyOptions.busyWaitMs}). */
  readonly #unbusy: () => void;

  private constructor(store: ProxyStore, keys: KeyPair, options: ProxyOptions) {
    this.#store = store;
    this.id = shortId(keys.thumbprint);
    this.publicJwk = keys.publicJwk;
    this.#clock = options.wallClock ?? systemWallClock;
    this.#log = new LogThrottle(options.logger ?? console, this.#clock);
    this.#startedAt = this.#clock.now();
    this.#replay = new ReplayWindow(store.replay, this.#clock);
    this.#options = resolveOptions(options);
    this.#pingLimits = {
      missions: this.#options.maxMissions,
      accepts: this.#options.maxAccepts,
      bytes: this.#options.maxPingBytes,
    };
    this.#connections = {
      ...DEFAULT_CONNECTION_LIMITS,
      maxConnections: this.#options.maxPolls + 512,
      ...options.connections,
    };
    store.takeRemoved(); // removed while no proxy ran: gone from the store already
    this.#registry = new Registry(store, this.#options);
    this.#nodes = this.#registry.nodes;
    this.#relay = new RelayHub(
      store,
      this.#nodes,
      (kid) => this.#registry.byKid(kid),
      this.#options,
      this.#clock,
      () => this.#changed(),
    );
    // Last: a constructor that threw before this keeps no budget.
    this.#unbusy = busyWait.enlist(busyWaitOption('WtdProxy.start', options.busyWaitMs));
  }

  /** Opens the store in `dataDir` and starts serving. */
  static async start(options: ProxyOptions): Promise<WtdProxy> {
    if (options === undefined || typeof options.dataDir !== 'string') {
      throw new TypeError("WtdProxy.start(options) needs options.dataDir (a directory, or ':memory:')");
    }
    resolveOptions(options); // a wrong bound fails before the store is opened
    busyWaitOption('WtdProxy.start', options.busyWaitMs);
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
      proxy.#unbusy();
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

  /**
   * The proxy's counts, and its nodes (online first, then by name): all of
   * them, or the page `query` asks for.
   */
  status(query: StatusQuery = {}): ProxyStatus {
    this.#ordered ??= ordered(this.#nodes.values());
    return statusOf(this.#ordered, query, {
      id: this.id,
      startedAt: this.#startedAt,
      now: this.#clock.now(),
      relayed: this.#relay.relayed,
      refused: this.#relay.refused,
      waitingPolls: this.#relay.waitingPolls,
      streams: this.#relay.streams,
      queuedBytes: this.#relay.queuedBytes,
    });
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
    this.#unbusy();
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    this.#sweeper?.cancel();
    this.#liveness?.cancel();
    this.#relay.close();
    this.#streams?.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.#store.close();
    this.#log.flush();
  }

  async #listen(port: number, host: string): Promise<void> {
    // Loaded here, not when this module is: every program that imports wtd
    // imports this module, and a node that runs no proxy has no use for Koa.
    const [{ default: KoaApp }, { default: Router }] = await Promise.all([import('koa'), import('@koa/router')]);
    const app = new KoaApp();
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
      // One page at a time: what a fetch costs does not grow with the strangers registered.
      ctx.body = this.status({
        page: count(ctx.query.page, 1),
        limit: Math.min(count(ctx.query.limit, 100), MAX_STATUS_LIMIT),
        online: ctx.query.online === '1' || ctx.query.online === 'true',
      });
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

    const guard = ConnectionGuard.serve(app.callback(), this.#connections, (r) =>
      this.#log.line('connection', `proxy: ${r.message}`),
    );
    const server = guard.server;
    this.#streams = new RelayStreams(server, {
      proxyId: this.id,
      clock: this.#clock,
      hub: this.#relay,
      maxLineBytes: this.#options.maxBodyBytes,
      idleMs: this.#options.pollHoldMs,
      authenticate: async (jws, path, nodeId) => {
        const { claims, found: live } = await authenticate(jws, {
          kind: 'proxy',
          key: this.#registered,
          aud: this.id,
          method: 'PUT',
          path,
          clock: this.#clock,
          replay: this.#replay,
        });
        if (live.record.id !== nodeId) refuse('ERR_PROXY_DENIED', 403, 'a node can only stream as itself');
        return { live, claims };
      },
      hold: (socket) => guard.hold(socket),
      refusal: (err) => {
        const refusal =
          err instanceof WireError ? err : new WireError('ERR_INTERNAL', 500, 'the proxy failed to open this stream');
        if (!(err instanceof WireError)) this.#log.error('internal', 'proxy: a stream failed to open', err);
        return {
          status: refusal.status,
          text: JSON.stringify({ error: { code: refusal.code, message: refusal.message } }),
        };
      },
      log: (message) => this.#log.line('stream', `proxy: ${message}`),
    });
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
    const { suspectAfterMs, downAfterMs } = this.#options;
    this.#liveness = every(this.#clock, Math.max(10, Math.min(suspectAfterMs, downAfterMs, 2000) / 20), () =>
      this.#checkLiveness(),
    );
    this.#liveness.unref?.();
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
    const live = this.#registry.byKid(kid);
    if (live === undefined) refuse('ERR_PROXY_NOT_REGISTERED', 401, 'this key is not registered here; register first');
    let key = this.#keys.get(kid);
    if (key === undefined) {
      key = (await importPublic(live.record.publicJwk)).key;
      this.#keys.set(kid, key);
    }
    return { key, found: live };
  };

  /**
   * A registration proves it holds the key it registers: it is signed by
   * it, and names it in `kid`. One the proxy may not take (full, or the
   * e-mail is another key's) is refused before its signature is checked.
   */
  #selfSigned(source: string): KeyResolver<ReturnType<typeof parseRegisterBody>> {
    return async (kid, peek) => {
      const body = parseRegisterBody(peek().body);
      this.#registry.admit(kid, body.email, source);
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
  }

  async #register(ctx: Koa.Context): Promise<RegisterAnswer> {
    const source = sourceOf(ctx.req.socket.remoteAddress);
    const { kid, found: body } = await this.#verified(ctx, this.#selfSigned(source), false);
    // Checked again: another registration may have been taken while this one's signature was checked.
    this.#registry.admit(kid, body.email, source);
    const id = shortId(kid);
    const known = this.#nodes.get(id);
    if (known === undefined) {
      const record: NodeRecord = {
        id,
        kid,
        email: body.email,
        name: body.name,
        publicJwk: body.publicJwk,
        registeredAt: this.#clock.now(),
        missions: [],
        address: null,
        lastSeen: 0,
        source,
      };
      this.#store.register(record);
      this.#registry.add(record);
      this.#ordered = undefined;
    } else if (known.record.email !== body.email || known.record.name !== body.name) {
      this.#registry.rename(known, body.email, body.name);
      this.#store.register(known.record);
      this.#shown(known);
    }
    return { id, limits: this.#pingLimits };
  }

  #ping(live: Live, body: unknown): PingAnswer {
    const { missions, accepts, address, since, incarnation, plaintext } = parsePingBody(body, this.#pingLimits);
    const record = live.record;
    const now = this.#clock.now();
    // Another incarnation is a restart: readers of the directory see it as down, then up again.
    const restarted = incarnation !== undefined && incarnation !== live.incarnation;
    const shown =
      !live.online ||
      live.suspect ||
      restarted ||
      record.address !== address ||
      JSON.stringify(record.missions) !== JSON.stringify(missions);
    record.missions = missions;
    record.address = address;
    record.lastSeen = now;
    live.online = true;
    live.suspect = false;
    if (incarnation !== undefined) live.incarnation = incarnation;
    live.plaintext = plaintext === true;
    const kids = digest(accepts);
    if (kids !== live.acceptsDigest) {
      this.#store.setAccepts(record.id, accepts);
      live.acceptsDigest = kids;
      live.accepts = accepts.length;
    }
    if (shown) {
      this.#store.saveOffers(record);
      live.savedSeen = now;
      this.#shown(live);
    } else if (now - live.savedSeen >= SEEN_WRITE_MS) {
      this.#store.saveSeen(record.id, now);
      live.savedSeen = now;
    }
    return this.#directory.since(since, this.#options.directoryPage, (id) => this.#entry(id));
  }

  /** What the directory shows of a node now. */
  #entry(id: string): DirectoryEntry | undefined {
    const n = this.#nodes.get(id);
    if (n === undefined) return undefined;
    const { name, missions, address, lastSeen, publicJwk } = n.record;
    return {
      id,
      name,
      missions,
      address,
      online: n.online,
      ...(n.online ? { status: n.suspect ? ('suspect' as const) : ('up' as const) } : {}),
      ...(n.incarnation === undefined ? {} : { incarnation: n.incarnation }),
      lastSeen,
      publicJwk,
    };
  }

  /** What the directory and the status show of `live` changed. */
  #shown(live: Live): void {
    this.#directory.touch(live.record.id);
    this.#ordered = undefined;
  }

  /**
   * Lets a node go: from memory, the directory and the store (again, when
   * another program removed it: what a request wrote since goes too).
   */
  #forget(id: string): void {
    const gone = this.#registry.remove(id);
    if (gone === undefined) return;
    this.#store.remove(id);
    this.#keys.delete(gone.record.kid);
    this.#relay.release(id);
    this.#directory.remove(id);
    this.#ordered = undefined;
  }

  /**
   * Ten times a second (a twentieth of the shorter of the two times, at most):
   * an online node silent for `suspectAfterMs` is suspect, for
   * `downAfterMs` down (offline). Each is one change of the directory.
   */
  #checkLiveness(): void {
    const now = this.#clock.now();
    const { suspectAfterMs, downAfterMs } = this.#options;
    let changed = false;
    for (const n of this.#nodes.values()) {
      if (!n.online) continue;
      const silent = now - n.record.lastSeen;
      if (silent > downAfterMs) {
        n.online = false;
        n.suspect = false;
      } else if (silent > suspectAfterMs && !n.suspect) {
        n.suspect = true;
      } else continue;
      this.#shown(n);
      changed = true;
    }
    if (changed) this.#changed();
  }

  /**
   * Once a second: nodes unseen for
   * `forgetAfterMs` (or removed by `wtd proxy remove`) go, expired messages
   * are answered and dropped, old ids forgotten.
   */
  #sweep(): void {
    const now = this.#clock.now();
    const forgotten: string[] = [];
    for (const n of this.#nodes.values()) {
      const seen = Math.max(n.record.lastSeen, n.record.registeredAt);
      if (!n.online && now - seen > this.#options.forgetAfterMs) forgotten.push(n.record.id);
    }
    const removed = this.#store.takeRemoved();
    if (forgotten.length > 0 || removed.length > 0) {
      this.#store.batch(() => [...forgotten, ...removed].forEach((id) => this.#forget(id)));
      // Their queues went with them, and the bytes their senders had in flight there.
      this.#relay.recount();
    }
    this.#relay.sweep();
    this.#replay.prune();
    this.#changed();
  }
}
