import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import type { JWK } from 'jose';
import { WireError, WtdError } from '../errors.js';
import type { Logger } from '../runtime/node.js';
import { exportPrivate, importPrivate, importPublic, newKeyPair, shortId, type KeyPair } from '../security/keys.js';
import { MESSAGE_TTL_S, checkClaims, readKid, verify, type Claims } from '../wire/envelope.js';
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
  /** Where the proxy reports what went wrong. Default: the console. */
  logger?: Logger;
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

interface Live {
  record: NodeRecord;
  online: boolean;
  /** Messages waiting for it, kept in step with the store (so an empty queue costs no query). */
  queued: number;
  sent: number;
  received: number;
}

interface Waiter {
  /** Answers the held poll: with what waits, or with nothing when a newer poll took its place. */
  release(bySuccessor?: boolean): void;
  /** Messages queued for the node while this poll waited (it waited because there were none before). */
  arrived: string[];
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,190}$/;
const RELAY_ID = /^[A-Za-z0-9_.-]{1,64}$/;
/** Most messages delivered by one poll. */
const POLL_BATCH = 256;
/** Most messages in one send request. */
const SEND_BATCH = 1000;

/**
 * A refusal of the proxy: the original's vocabulary (`not_registered`,
 * `denied`, `queue_full`...) as `code`, with its HTTP status.
 *
 * @example
 * ```ts
 * // A proxy refusing a request: code 'not_registered', 'denied', 'queue_full', ...
 * const err = new ProxyRefusal('queue_full', 503, 'the queue of node X is full');
 * ```
 */
export class ProxyRefusal extends WireError {}

function refuse(code: string, status: number, message: string): never {
  throw new ProxyRefusal(code, status, message);
}

/** The proxy's word for a refusal of the signed envelope. */
function envelopeRefusal(err: WireError): ProxyRefusal {
  if (err.code === 'ERR_STALE') return new ProxyRefusal('stale', 401, err.message);
  if (err.status === 400) return new ProxyRefusal('bad_request', 400, err.message);
  return new ProxyRefusal('denied', 401, err.message);
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  if (Number(req.headers['content-length'] ?? '0') > limit) refuse('too_large', 413, `the body is over ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) refuse('too_large', 413, `the body is over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function strings(value: unknown, max: number, what: string): string[] {
  if (!Array.isArray(value) || value.length > max || !value.every((v) => typeof v === 'string' && v.length <= 128)) {
    refuse('bad_request', 400, `${what} must be a list of at most ${max} short strings`);
  }
  return value as string[];
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
  readonly #options: Required<Omit<ProxyOptions, 'logger' | 'dataDir' | 'port' | 'host'>>;
  readonly #logger: Logger;
  readonly #nodes = new Map<string, Live>();
  readonly #byKid = new Map<string, Live>();
  readonly #keys = new Map<string, Awaited<ReturnType<typeof importPublic>>['key']>();
  readonly #waiters = new Map<string, Waiter>();
  readonly #startedAt = Date.now();
  #relayed = 0;
  #server: Server | undefined;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #url = '';
  #port = 0;

  private constructor(store: ProxyStore, keys: KeyPair, options: ProxyOptions) {
    this.#store = store;
    this.id = shortId(keys.thumbprint);
    this.publicJwk = keys.publicJwk;
    this.#logger = options.logger ?? console;
    this.#options = {
      maxQueue: options.maxQueue ?? 1000,
      maxMessageBytes: options.maxMessageBytes ?? 64 * 1024,
      maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
      messageTtlMs: options.messageTtlMs ?? MESSAGE_TTL_S * 1000,
      maxPolls: options.maxPolls ?? 1000,
      pollHoldMs: options.pollHoldMs ?? 20_000,
      offlineAfterMs: options.offlineAfterMs ?? 5000,
    };
    for (const record of store.nodes()) {
      const live = { record, online: false, queued: store.depth(record.id), sent: 0, received: 0 };
      this.#nodes.set(record.id, live);
      this.#byKid.set(record.kid, live);
    }
  }

  /** Opens the store in `dataDir` and starts serving. */
  static async start(options: ProxyOptions): Promise<WtdProxy> {
    if (options === undefined || typeof options.dataDir !== 'string') {
      throw new TypeError("WtdProxy.start(options) needs options.dataDir (a directory, or ':memory:')");
    }
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
    const now = Date.now();
    return {
      id: this.id,
      startedAt: this.#startedAt,
      now,
      relayed: this.#relayed,
      waitingPolls: this.#waiters.size,
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

  /** Stops serving, releases every held poll and closes the store. Queued messages stay for the next start. */
  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    clearInterval(this.#sweeper);
    for (const w of [...this.#waiters.values()]) w.release();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.#store.close();
  }

  async #listen(port: number, host: string): Promise<void> {
    const app = new Koa();
    const router = new Router();
    app.silent = true;
    app.use(async (ctx, next) => {
      try {
        await next();
        if (ctx.status === 404 && ctx.body === undefined) refuse('not_found', 404, 'no such route');
      } catch (err) {
        const refusal =
          err instanceof ProxyRefusal
            ? err
            : err instanceof WireError
              ? envelopeRefusal(err)
              : new ProxyRefusal('internal', 500, 'the proxy failed to handle this request');
        if (!(err instanceof WireError)) this.#logger.error(`proxy: ${(err as Error).message}`, err);
        ctx.status = refusal.status;
        ctx.type = 'application/json';
        ctx.body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } });
      }
    });
    router.get('/', (ctx) => {
      ctx.type = 'text/html; charset=utf-8';
      ctx.set('Content-Security-Policy', "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'");
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
      ctx.body = await this.#register(await this.#read(ctx), ctx.path);
    });
    router.put('/nodes/:id/ping', async (ctx) => {
      const { live, claims } = await this.#authenticate(ctx, ctx.params.id!);
      this.#remember(claims);
      ctx.body = this.#ping(live, claims.body);
    });
    router.put('/nodes/:id/poll', async (ctx) => {
      const { live, claims } = await this.#authenticate(ctx, ctx.params.id!);
      const answer = await this.#poll(live, claims, ctx);
      // The queued messages are JSON already: they are spliced in, not parsed and written again.
      ctx.type = 'application/json';
      ctx.body =
        `{"results":${JSON.stringify(answer.results)},"messages":[${answer.messages.join(',')}]` +
        `${answer.retryMs === undefined ? '' : `,"retryMs":${answer.retryMs}`}}`;
    });
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: false }));

    const server = createServer(
      { requestTimeout: 0, headersTimeout: 10_000, connectionsCheckingInterval: 1000 },
      app.callback(),
    );
    server.maxConnections = this.#options.maxPolls + 512;
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
    this.#sweeper = setInterval(() => this.#sweep(), 1000);
    this.#sweeper.unref();
  }

  /** Size, type and shape checks; returns the JWS. */
  async #read(ctx: Koa.Context): Promise<string> {
    if (ctx.req.headers['content-encoding'] !== undefined && ctx.req.headers['content-encoding'] !== 'identity') {
      refuse('unsupported_media', 415, 'compressed bodies are not accepted');
    }
    const type = (ctx.req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/jose') {
      refuse('unsupported_media', 415, 'the body must be a compact JWS with content type application/jose');
    }
    return readBody(ctx.req, this.#options.maxBodyBytes);
  }

  /** The checks of a registered node's request: key, signature, audience, path, time, replay, and that it acts as itself. */
  async #authenticate(ctx: Koa.Context, nodeId: string): Promise<{ live: Live; claims: Claims }> {
    const jws = await this.#read(ctx);
    const kid = readKid(jws, 'proxy');
    const live = this.#byKid.get(kid);
    if (live === undefined) refuse('not_registered', 401, 'this key is not registered here; register first');
    let key = this.#keys.get(kid);
    if (key === undefined) {
      key = (await importPublic(live.record.publicJwk)).key;
      this.#keys.set(kid, key);
    }
    const claims = await verify(jws, key);
    this.#checkTime(claims, ctx.path);
    if (live.record.id !== nodeId) refuse('denied', 403, 'a node can only ping, poll or send as itself');
    return { live, claims };
  }

  /** Audience, method, path and time window. */
  #checkTime(claims: Claims, path: string): void {
    checkClaims(claims, { aud: this.id, method: 'PUT', path, nowS: Math.floor(Date.now() / 1000) });
  }

  /** Records the request's id; a replay is refused (409). */
  #remember(claims: Claims): void {
    if (!this.#store.remember(claims.id, claims.exp + MESSAGE_TTL_S)) {
      refuse('replay', 409, 'this request was already received');
    }
  }

  async #register(jws: string, path: string): Promise<{ id: string }> {
    const kid = readKid(jws, 'proxy');
    // A registration proves it holds the key it registers: it is signed by it.
    let unverified: unknown;
    try {
      unverified = JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString('utf8'));
    } catch {
      refuse('bad_request', 400, 'the JWS payload is not JSON');
    }
    const jwk = (unverified as { body?: { publicJwk?: JWK } } | null)?.body?.publicJwk;
    if (jwk === undefined || jwk === null || typeof jwk !== 'object') {
      refuse('bad_request', 400, 'a registration carries { email, name, publicJwk }');
    }
    let imported: Awaited<ReturnType<typeof importPublic>>;
    try {
      imported = await importPublic({ kty: jwk.kty, crv: jwk.crv, x: jwk.x });
    } catch {
      refuse('bad_request', 400, 'publicJwk must be an Ed25519 public key');
    }
    if (imported.thumbprint !== kid) refuse('denied', 401, 'the registration is not signed by the key it registers');
    const claims = await verify(jws, imported.key);
    this.#checkTime(claims, path);
    this.#remember(claims);
    const body = claims.body as { email?: unknown; name?: unknown };
    if (typeof body.email !== 'string' || !EMAIL.test(body.email)) {
      refuse('bad_request', 400, 'a registration needs a valid e-mail');
    }
    const name = typeof body.name === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(body.name) ? body.name : 'node';
    const id = shortId(kid);
    const now = Date.now();
    const known = this.#nodes.get(id);
    const record: NodeRecord = known?.record ?? {
      id,
      kid,
      email: body.email,
      name,
      publicJwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x },
      registeredAt: now,
      missions: [],
      grants: [],
      address: null,
      lastSeen: 0,
    };
    record.email = body.email;
    record.name = name;
    this.#store.register(record);
    if (known === undefined) {
      const live = { record, online: false, queued: 0, sent: 0, received: 0 };
      this.#nodes.set(id, live);
      this.#byKid.set(kid, live);
      this.#keys.set(kid, imported.key);
    }
    return { id };
  }

  #ping(live: Live, body: unknown): { directory: unknown[] } {
    const b = (body ?? {}) as { missions?: unknown; grants?: unknown; address?: unknown };
    const missions = strings(b.missions ?? [], 256, 'missions');
    const grants = strings(b.grants ?? [], 4096, 'grants');
    const address = typeof b.address === 'string' && /^https?:\/\/[^\s]{1,200}$/.test(b.address) ? b.address : null;
    const record = live.record;
    const changed =
      !live.online ||
      record.address !== address ||
      JSON.stringify(record.missions) !== JSON.stringify(missions) ||
      JSON.stringify(record.grants) !== JSON.stringify(grants);
    record.missions = missions;
    record.grants = grants;
    record.address = address;
    record.lastSeen = Date.now();
    live.online = true;
    if (changed) this.#store.saveOffers(record);
    return {
      directory: [...this.#nodes.values()]
        .filter((n) => n.online)
        .map((n) => ({
          id: n.record.id,
          name: n.record.name,
          missions: n.record.missions,
          grants: n.record.grants,
          address: n.record.address,
          online: true,
          lastSeen: n.record.lastSeen,
        })),
    };
  }

  /**
   * A poll: relays the messages it carries, marks those it acknowledges as
   * received, then answers with what waits for the node, holding the answer
   * (up to `pollHoldMs`) while nothing does. One poll per node is held; a
   * new one releases the old with nothing, and brings what is waiting.
   */
  async #poll(
    live: Live,
    claims: Claims,
    ctx: Koa.Context,
  ): Promise<{ results: unknown[]; messages: string[]; retryMs?: number }> {
    const id = live.record.id;
    const b = (claims.body ?? {}) as { ack?: unknown; messages?: unknown };
    const ack = strings(b.ack ?? [], 10 * SEND_BATCH, 'ack');
    const outgoing = b.messages ?? [];
    if (!Array.isArray(outgoing) || outgoing.length > SEND_BATCH) {
      refuse('bad_request', 400, `a poll carries at most ${SEND_BATCH} messages`);
    }
    // One commit for the replay id, the acknowledgements and the messages.
    const results = this.#store.batch(() => {
      this.#remember(claims);
      live.queued -= this.#store.ack(id, ack);
      return outgoing.length === 0 ? [] : this.#send(live, outgoing);
    });
    // One poll per node is held: a new one releases the old, with nothing,
    // after the answers this one may wake have gone out.
    const old = this.#waiters.get(id);
    if (old !== undefined) {
      this.#waiters.delete(id);
      setImmediate(() => old.release(true));
    }
    let messages = this.#take(live);
    if (messages.length > 0 || results.some((r) => 'error' in r)) return { results, messages };
    if (this.#waiters.size >= this.#options.maxPolls) {
      // Messages it carried were taken; only the waiting is refused.
      if (outgoing.length > 0) return { results, messages, retryMs: 1000 };
      refuse('busy', 503, 'the proxy holds as many polls as it can; poll again in a second');
    }
    let waiter!: Waiter;
    const superseded = await new Promise<boolean>((resolve) => {
      waiter = {
        arrived: [],
        release: (bySuccessor = false) => {
          clearTimeout(timer);
          if (this.#waiters.get(id) === waiter) this.#waiters.delete(id);
          ctx.res.off('close', onClose);
          resolve(bySuccessor);
        },
      };
      const onClose = (): void => waiter.release(true);
      const timer = setTimeout(() => waiter.release(), this.#options.pollHoldMs);
      this.#waiters.set(id, waiter);
      // A poller that hangs up stops waiting.
      ctx.res.once('close', onClose);
    });
    if (superseded || this.#server === undefined) return { results, messages: [] };
    // What arrived while it waited is all that waits, unless some of it expired: then ask the store.
    messages = waiter.arrived.length === live.queued ? waiter.arrived : this.#take(live);
    return { results, messages };
  }

  /** The JSON of the oldest messages waiting for `live`. */
  #take(live: Live): string[] {
    if (live.queued === 0) return [];
    return this.#store.take(live.record.id, Date.now(), POLL_BATCH).map((m) => m.body);
  }

  /** Queues messages for their destinations, each with its own result; wakes the destinations' polls. */
  #send(live: Live, messages: unknown[]): ({ id: unknown } | { id: unknown; error: unknown })[] {
    const now = Date.now();
    const woken = new Set<string>();
    const results = this.#store.batch(() =>
      messages.map((m: unknown) => {
        const r = this.#relayOne(live, m, now);
        if (!('error' in r)) woken.add(r.to);
        return 'error' in r ? { id: r.id, error: r.error } : { id: r.id };
      }),
    );
    for (const to of woken) this.#waiters.get(to)?.release();
    return results;
  }

  #relayOne(
    live: Live,
    m: unknown,
    now: number,
  ): { id: unknown; to: string } | { id: unknown; error: { code: string; status: number; message: string } } {
    const msg = m as Record<string, unknown> | null;
    const id = msg?.id;
    const fail = (code: string, status: number, message: string) => ({ id, error: { code, status, message } });
    if (msg === null || typeof msg !== 'object' || typeof id !== 'string' || !RELAY_ID.test(id)) {
      return fail('bad_request', 400, 'a relayed message needs an id');
    }
    if (msg.kind !== 'request' && msg.kind !== 'response')
      return fail('bad_request', 400, 'kind is request or response');
    const to = typeof msg.to === 'string' ? this.#nodes.get(msg.to) : undefined;
    if (to === undefined) return fail('not_registered', 404, `no node ${String(msg.to)} is registered here`);
    let expiresAt = now + this.#options.messageTtlMs;
    let stored: Record<string, unknown>;
    if (msg.kind === 'request') {
      if (typeof msg.path !== 'string' || typeof msg.jws !== 'string') {
        return fail('bad_request', 400, 'a request carries a path and a JWS');
      }
      stored = { id, kind: 'request', from: live.record.id, path: msg.path, jws: msg.jws };
      // Never later than the request's own expiry: a message past its exp is never delivered.
      const exp = expiryOf(msg.jws);
      if (exp !== undefined) expiresAt = Math.min(expiresAt, exp * 1000);
    } else {
      if (typeof msg.re !== 'string' || typeof msg.status !== 'number') {
        return fail('bad_request', 400, 'a response carries re and status');
      }
      stored = {
        id,
        kind: 'response',
        from: live.record.id,
        re: msg.re,
        status: msg.status,
        contentType: String(msg.contentType ?? ''),
        text: String(msg.text ?? ''),
        ...(typeof msg.retryAfter === 'string' ? { retryAfter: msg.retryAfter } : {}),
      };
    }
    const text = JSON.stringify(stored);
    if (Buffer.byteLength(text) > this.#options.maxMessageBytes) {
      return fail('too_large', 413, `a relayed message is at most ${this.#options.maxMessageBytes} bytes`);
    }
    if (expiresAt <= now) return fail('expired', 410, 'this message has already expired');
    if (to.queued >= this.#options.maxQueue) {
      return fail('queue_full', 503, `the queue of node ${to.record.id} is full; try again later`);
    }
    if (this.#store.enqueue(to.record.id, id, text, expiresAt)) {
      to.queued++;
      this.#waiters.get(to.record.id)?.arrived.push(text);
      live.sent++;
      to.received++;
      this.#relayed++;
    }
    return { id, to: to.record.id };
  }

  /** Once a second: nodes silent too long go offline, and expired messages are answered and dropped. */
  #sweep(): void {
    const now = Date.now();
    for (const n of this.#nodes.values()) {
      if (n.online && now - n.record.lastSeen > this.#options.offlineAfterMs) n.online = false;
    }
    const lost = this.#store.expire(now);
    for (const m of lost) {
      const to = this.#nodes.get(m.to);
      if (to !== undefined) to.queued--;
    }
    const woken = new Set<string>();
    this.#store.batch(() => {
      for (const m of lost) {
        const msg = JSON.parse(m.body) as { kind: string; from: string; id: string };
        if (msg.kind !== 'request' || !this.#nodes.has(msg.from)) continue;
        // Tell the caller at once rather than let it wait for its timeout.
        const answer = {
          id: `x.${msg.id}`.slice(0, 64),
          kind: 'response',
          from: m.to,
          re: msg.id,
          status: 504,
          contentType: 'application/json',
          text: JSON.stringify({
            error: { code: 'expired', message: `node ${m.to} did not collect the message before it expired` },
          }),
        };
        if (this.#store.enqueue(msg.from, answer.id, JSON.stringify(answer), now + this.#options.messageTtlMs)) {
          this.#nodes.get(msg.from)!.queued++;
          woken.add(msg.from);
        }
      }
    });
    for (const to of woken) this.#waiters.get(to)?.release();
    this.#store.prune(Math.floor(now / 1000));
  }
}

/** The `exp` a JWS claims, read without verifying (the receiver verifies). */
function expiryOf(jws: string): number | undefined {
  try {
    const claims = JSON.parse(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp : undefined;
  } catch {
    return undefined;
  }
}
