import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import PQueue from 'p-queue';
import { GenEvent } from '../behaviours/gen-event.js';
import { GenFsm } from '../behaviours/gen-fsm.js';
import { GenServer } from '../behaviours/gen-server.js';
import { Supervisor } from '../behaviours/supervisor.js';
import { WireError, WtdError } from '../errors.js';
import { missionTable, type LoadOptions, type MissionTable, type AnyClass } from '../missions/mission-table.js';
import { Node, type NodeOptions } from '../runtime/node.js';
import type { GrantRecord, GrantStore, RateLimit } from '../security/grant-store.js';
import { isUsable, usableGrant } from '../security/grants.js';
import { exportPrivate, importPrivate, importPublic, newKeyPair, shortId, type KeyPair } from '../security/keys.js';
import { parseRate, RateLimiter } from '../security/rate-limiter.js';
import { SqliteGrantStore } from '../security/sqlite-store.js';
import { WireCodec, type BilletDoux } from '../wire/codec.js';
import { MESSAGE_TTL_S, newMessageId, sign, type Claims } from '../wire/envelope.js';
import type { HttpResponse } from './http-client.js';
import { directLink, type Link } from './link.js';
import { ProxyClient, type DirectoryEntry, type JoinOptions } from './proxy-client.js';
import { PidRegistry, type PidRoute, type PidSender } from './pid-registry.js';
import { RemoteNode, type GrantFile } from './remote-node.js';
import {
  buildServer,
  DEFAULT_LIMITS,
  Dispatcher,
  type Arrival,
  errorBody,
  payloadOf,
  RateLimitedError,
  type ServerLimits,
  type Verified,
} from './server.js';

/**
 * Options for {@link WtdNode.start}.
 *
 * @example
 * ```ts
 * const alice = await WtdNode.start({ name: 'alice', dataDir: './alice-data', limits: { maxBodyBytes: 16_384 } });
 * ```
 */
export interface WtdNodeOptions extends NodeOptions {
  /** Where the node keeps its key, grants and replay window. `':memory:'` keeps nothing. */
  dataDir: string;
  /** Another grant store to use instead of SQLite in `dataDir`. */
  store?: GrantStore;
  /** Server limits. */
  limits?: Partial<ServerLimits>;
  /**
   * Where grant files say the node can be reached when it is not listening
   * or on a proxy in this program (the `wtd` command grants for a node that
   * runs in another).
   */
  advertise?: { address?: string | null; proxy?: string | null };
}

/**
 * A request the node refused, as the observer lists it.
 *
 * @example
 * ```ts
 * for (const r of alice.recentRefusals()) console.log(r.code, r.status, r.path);
 * ```
 */
export interface Refusal {
  at: number;
  code: string;
  status: number;
  path: string;
  message: string;
}

/**
 * The rate state of a grant: tokens left now, out of its burst.
 *
 * @example
 * ```ts
 * const state = alice.rateState(grant.kid); // { tokens: 7, burst: 10 }
 * ```
 */
export interface RateState {
  tokens: number;
  burst: number;
}

/**
 * Options for {@link WtdNode.grant}.
 *
 * @example
 * ```ts
 * await alice.grant({ missions: ['greetings'], rate: '10/s', expires: 7 * 86_400_000, label: 'bob', to: bobKey });
 * ```
 */
export interface GrantOptions {
  missions: string[];
  /** `'10/s'`, `'100/min'`..., or a {@link RateLimit}. */
  rate: string | RateLimit;
  /** When the grant ends: a Date, or a lifetime in ms. */
  expires?: Date | number;
  label?: string;
  /** The grantee's public key (the safer way: their private key never moves). Without it a key pair is made and put in the grant file. */
  to?: JWK;
}

/** Where a pid message goes: the peer's node id and how to reach it. */
interface Peer {
  nodeId: string;
  link: Link;
}

/**
 * Options for {@link WtdNode.connect}.
 *
 * @example
 * ```ts
 * const remote = await bob.connect(grantFile, { via: 'proxy' }); // even if the file has an address
 * ```
 */
export interface ConnectOptions {
  /**
   * `'direct'` to the node's address, or `'proxy'` through the proxy this
   * node joined. Default: direct when the target has an address, else proxy.
   */
  via?: 'direct' | 'proxy';
}

/**
 * Whom to connect to without a grant file: a node that granted missions to this node's own key.
 *
 * @example
 * ```ts
 * // Alice granted missions to Bob's own key; Bob needs only her key and address:
 * const remote = await bob.connect({ nodeKey: alicePublicJwk, address: 'http://192.168.1.20:14153' });
 * ```
 */
export interface ConnectTarget {
  /** The node's public key (its id is derived from it). */
  nodeKey: JWK;
  /** Its address, if it listens; without one the call goes through the proxy. */
  address?: string | null;
}

/** Call context for the codec: who the pids are being handed to, and how messages come back. */
interface CodecContext {
  sender: PidSender;
  route: PidRoute;
}

const MISSION = /^[a-z][a-z0-9_]{0,63}$/;

/** How long a message to a remote pid may take to be accepted. */
const PID_SEND_TIMEOUT_MS = 10_000;

/** How long close() lets requests being answered finish. */
const CLOSE_GRACE_MS = 1000;

/** How many requests under one grant run user code at once; the rest wait their turn. */
export const EXECUTIONS_PER_GRANT = 8;

/**
 * A node that other nodes can reach: a {@link Node} with an Ed25519
 * identity, a grant store, a mission table and an HTTP server. Alice grants
 * Bob a narrow, revocable, rate-limited right; Bob's node connects with it.
 *
 * @example
 * ```ts
 * const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:' });
 * alice.load(Greeter);
 * await alice.listen({ port: 0 });
 * const grantFile = await alice.grant({ missions: ['greetings'], rate: '10/s' });
 *
 * const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
 * const remote = await bob.connect(grantFile);
 * await remote.call('Greeter', 'hello', ['bob']); // => 'hello, bob'
 * alice.revoke(grantFile.kid);                     // the next call is refused: ERR_GRANT_REVOKED
 * ```
 * (This example runs in `samples/two-nodes.ts`.)
 */
export class WtdNode extends Node {
  /** The node id others address it by: a short fingerprint of its key. */
  readonly id: string;
  /** The node's public key, to give to others. */
  readonly publicJwk: JWK;
  /** @internal */ readonly store: GrantStore;
  /** @internal */ readonly _pids: PidRegistry;
  /** @internal */ readonly _codec: WireCodec<CodecContext>;
  readonly #keys: KeyPair;
  readonly #limiter = new RateLimiter();
  readonly #limits: ServerLimits;
  readonly #peers = new Map<string, { key: KeyObject; context: CodecContext }>();
  readonly #routes = new Map<string, PidRoute>();
  readonly #queues = new Map<string, PQueue>();
  readonly #pidQueues = new Map<string, PQueue>();
  readonly #executions = new Map<string, PQueue>();
  #server: Server | undefined;
  #pruner: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #address: string | undefined;
  readonly #remotes = new Set<RemoteNode>();
  readonly #dispatcher: Dispatcher;
  #proxy: ProxyClient | undefined;
  readonly #advertise: { address?: string | null; proxy?: string | null };
  readonly #refusals: Refusal[] = [];

  private constructor(options: WtdNodeOptions, store: GrantStore, keys: KeyPair) {
    super(options);
    this.store = store;
    this.#keys = keys;
    this.id = shortId(keys.thumbprint);
    this.publicJwk = keys.publicJwk;
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#advertise = options.advertise ?? {};
    this._pids = new PidRegistry(this, this.id);
    this._codec = new WireCodec<CodecContext>({
      out: (pid, ctx) => this._pids.hand(pid, ctx.sender),
      in: (billet: BilletDoux, ctx) => this._pids.proxy(billet, ctx.route),
    });
    this.#dispatcher = new Dispatcher(this, {
      apply: (v, p) => this.#apply(v, p),
      behaviour: (v, p) => this.#behaviour(v, p),
      pid: (v, p) => this.#pidMessage(v, p),
    });
  }

  /** Opens (or creates) the node's data directory and identity. */
  static async start(options: WtdNodeOptions): Promise<WtdNode> {
    if (options === undefined || typeof options.dataDir !== 'string') {
      throw new TypeError("WtdNode.start(options) needs options.dataDir (a directory, or ':memory:')");
    }
    const store = options.store ?? new SqliteGrantStore(options.dataDir);
    const stored = store.getNodeKey();
    let keys: KeyPair;
    if (stored === undefined) {
      keys = await newKeyPair();
      store.setNodeKey(await exportPrivate(keys));
    } else {
      keys = await importPrivate(stored);
    }
    store.prune(Math.floor(Date.now() / 1000));
    return new WtdNode(options, store, keys);
  }

  /** The mission table of this node. */
  get missions(): MissionTable {
    return missionTable(this);
  }

  /** Loads a class's `@WtdExport`s and `@WtdBehaviour`s (see {@link MissionTable.load}). */
  load(target: AnyClass | object, options?: LoadOptions): this {
    this.missions.load(target, options);
    return this;
  }

  /** The URL others reach this node at, once listening. */
  get address(): string | undefined {
    return this.#address;
  }

  /** Starts the HTTP server (default port 14153, loopback only unless `host` says otherwise). */
  async listen(options: { port?: number; host?: string } = {}): Promise<{ port: number; address: string }> {
    if (this.#server !== undefined)
      throw new WtdError('ERR_ALREADY_LISTENING', `node ${this.name} is already listening at ${this.#address}`);
    const server = buildServer(this.#dispatcher, this.#limits);
    const host = options.host ?? '127.0.0.1';
    const wanted = options.port ?? 14153;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void =>
        reject(
          new WtdError('ERR_LISTEN', `node ${this.name} could not listen on ${host}:${wanted}: ${err.message}`, {
            cause: err,
          }),
        );
      server.once('error', onError);
      server.listen(wanted, host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    this.#server = server;
    // Forget replay ids once their messages could no longer be accepted anyway.
    this.#pruner = setInterval(() => this.store.prune(Math.floor(Date.now() / 1000)), 60_000);
    this.#pruner.unref();
    this.#address = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    return { port, address: this.#address };
  }

  /** Stops the server, closes the store and ends every process. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of this.#remotes) r._close();
    clearInterval(this.#pruner);
    await this.#proxy?.leave();
    this.#proxy = undefined;
    const server = this.#server;
    this.#server = undefined;
    if (server !== undefined) {
      // Requests being answered finish (a message delivered is acknowledged),
      // for at most a second; idle connections close at once.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
      await closed;
      clearTimeout(force);
    }
    this.stop();
    this.store.close();
  }

  // ---------------------------------------------------------------- proxy

  /**
   * Joins the proxy at `url`: registers `email` with this node's public key
   * (the private key never leaves the node), then pings every second with
   * the missions and grant key ids it offers, and long-polls for requests
   * relayed to it. A node behind a home router needs nothing else to be
   * called. Resolves once registered and listed.
   *
   * @example
   * ```ts
   * await bob.joinProxy({ url: 'http://proxy.example.org:14152', email: 'bob@example.org' });
   * bob.directory(); // => [{ id, name: 'alice', missions: ['dev_mission'], online: true, ... }, ...]
   * ```
   */
  async joinProxy(options: JoinOptions): Promise<void> {
    if (this.#proxy !== undefined) {
      throw new WtdError('ERR_ALREADY_JOINED', `node ${this.name} already joined the proxy at ${this.#proxy.url}`);
    }
    this.#proxy = await ProxyClient.join(this, options);
  }

  /** Leaves the proxy: stops pinging and polling (the node drops off the directory a few seconds later). */
  async leaveProxy(): Promise<void> {
    const proxy = this.#proxy;
    this.#proxy = undefined;
    await proxy?.leave();
  }

  /** The URL of the proxy this node joined, if any. */
  get proxyUrl(): string | undefined {
    return this.#proxy?.url;
  }

  /** The online nodes the proxy listed at the last ping (empty before joining one). */
  directory(): DirectoryEntry[] {
    return this.#proxy?.directory() ?? [];
  }

  /** Calls `listener` when a node comes online (`nodeup`) or goes offline (`nodedown`) at the proxy. */
  on(event: 'nodeup' | 'nodedown', listener: (entry: DirectoryEntry) => void): this {
    this.#needProxy().on(event, listener);
    return this;
  }

  /** Stops calling a listener given to {@link on}. */
  off(event: 'nodeup' | 'nodedown', listener: (entry: DirectoryEntry) => void): this {
    this.#proxy?.off(event, listener);
    return this;
  }

  #needProxy(): ProxyClient {
    if (this.#proxy === undefined) {
      throw new WtdError(
        'ERR_NO_PROXY',
        `node ${this.name} has not joined a proxy: await node.joinProxy({ url, email }) first`,
      );
    }
    return this.#proxy;
  }

  /** @internal Runs a request that arrived other than by this node's HTTP server (relayed by a proxy). */
  _dispatch(method: string, path: string, jws: string, arrival: Arrival): Promise<HttpResponse> {
    return this.#dispatcher.dispatch(method, path, jws, arrival);
  }

  // ---------------------------------------------------------------- grants

  /**
   * Grants `missions` at `rate`. With `to` (the grantee's public key) the
   * grant is stored and its record returned; without it a key pair is made
   * and a grant file returned for the grantee: keep it secret, it is the key.
   */
  async grant(options: GrantOptions & { to: JWK }): Promise<GrantRecord>;
  async grant(options: GrantOptions): Promise<GrantFile>;
  async grant(options: GrantOptions): Promise<GrantRecord | GrantFile> {
    const missions = options.missions;
    if (
      !Array.isArray(missions) ||
      missions.length === 0 ||
      !missions.every((m) => typeof m === 'string' && MISSION.test(m))
    ) {
      throw new TypeError(
        `grant({ missions }) expects a non-empty list of mission names, got ${JSON.stringify(missions)}`,
      );
    }
    const rate = typeof options.rate === 'string' ? parseRate(options.rate) : options.rate;
    if (!(rate?.count >= 1 && rate.intervalMs > 0 && rate.burst >= 1)) {
      throw new RangeError(
        `grant({ rate }) expects '10/s' or { count, intervalMs, burst }, got ${JSON.stringify(options.rate)}`,
      );
    }
    const now = Date.now();
    const expiresAt =
      options.expires === undefined
        ? null
        : options.expires instanceof Date
          ? options.expires.getTime()
          : now + options.expires;
    let publicJwk: JWK;
    let kid: string;
    let privateJwk: JWK | undefined;
    if (options.to !== undefined) {
      const imported = await importPublic(options.to);
      publicJwk = { kty: options.to.kty, crv: options.to.crv, x: options.to.x };
      kid = imported.thumbprint;
    } else {
      const pair = await newKeyPair();
      publicJwk = pair.publicJwk;
      kid = pair.thumbprint;
      privateJwk = await exportPrivate(pair);
    }
    const record: GrantRecord = {
      kid,
      label: options.label ?? '',
      missions: [...missions],
      publicJwk,
      rate,
      expiresAt,
      createdAt: now,
      revokedAt: null,
      uses: 0,
      lastUsedAt: null,
    };
    this.store.addGrant(record);
    if (privateJwk === undefined) return record;
    return {
      wtd: 'grant',
      version: 1,
      node: {
        id: this.id,
        name: this.name,
        address: this.#address ?? this.#advertise.address ?? null,
        proxy: this.#proxy?.url ?? this.#advertise.proxy ?? null,
        publicJwk: this.publicJwk,
      },
      kid,
      privateJwk,
      missions: record.missions,
      expiresAt,
    };
  }

  /** Revokes a grant at once, for every request not yet checked; it stays revoked after a restart. */
  revoke(kid: string): boolean {
    const done = this.store.revoke(kid, Date.now());
    if (done) this.#limiter.forget(kid);
    return done;
  }

  /** Every grant this node has made. */
  grants(): GrantRecord[] {
    return this.store.listGrants();
  }

  /** How much of its rate a grant has left now. */
  rateState(kid: string): RateState | undefined {
    const grant = this.store.getGrant(kid);
    if (grant === undefined) return undefined;
    return { tokens: Math.floor(this.#limiter.peek(kid, grant.rate, Date.now())), burst: grant.rate.burst };
  }

  /** The last requests this node refused (most recent last, at most 100). */
  recentRefusals(): Refusal[] {
    return [...this.#refusals];
  }

  /** @internal Keeps a refusal for {@link recentRefusals}. */
  _noteRefusal(err: WireError, path: string): void {
    this.#refusals.push({ at: Date.now(), code: err.code, status: err.status, path, message: err.message });
    if (this.#refusals.length > 100) this.#refusals.shift();
  }

  /**
   * Connects to another node with a grant file (the seed's way), or with
   * `{ nodeKey, address }` for a grant made to this node's own public key.
   * The calls go straight to the node's address, or through the proxy this
   * node joined when the target has no address (or `via: 'proxy'`).
   */
  async connect(target: GrantFile | ConnectTarget, options: ConnectOptions = {}): Promise<RemoteNode> {
    let nodeJwk: JWK;
    let address: string | null;
    let grantKid: string;
    let grantKey: KeyObject;
    let reachable = true;
    if ('wtd' in target && target.wtd === 'grant') {
      nodeJwk = target.node.publicJwk;
      address = target.node.address;
      reachable = address !== null || (target.node.proxy ?? null) !== null;
      const grantKeys = await importPrivate(target.privateJwk);
      grantKid = target.kid;
      grantKey = grantKeys.privateKey;
    } else {
      const t = target as ConnectTarget;
      nodeJwk = t.nodeKey;
      address = t.address ?? null;
      grantKid = this.#keys.thumbprint;
      grantKey = this.#keys.privateKey;
    }
    const nodeKey = await importPublic(nodeJwk);
    const nodeId = shortId(nodeKey.thumbprint);
    const via = options.via ?? (address !== null ? 'direct' : 'proxy');
    let link: Link;
    if (via === 'direct' || (options.via === undefined && !reachable)) {
      if (address === null) {
        throw new WtdError(
          'ERR_NO_ADDRESS',
          'this grant file has no address: the granting node was neither listening nor on a proxy when it made it',
        );
      }
      link = directLink(address);
    } else if (this.#proxy === undefined) {
      throw new WtdError(
        'ERR_NO_PROXY',
        `node ${nodeId} has no address to call directly; join a proxy first: await node.joinProxy({ url, email })`,
      );
    } else {
      link = this.#proxy.link(nodeId);
    }
    const remote = new RemoteNode(this, {
      link,
      via,
      nodeId,
      nodeKey: nodeKey.key,
      nodeKid: nodeKey.thumbprint,
      grantKid,
      grantKey,
    });
    this.#remotes.add(remote);
    return remote;
  }

  // ---------------------------------------------------------------- internals shared with RemoteNode and the server

  /** @internal Signs with this node's own key. */
  _signAsNode(kind: 'reply' | 'pid' | 'proxy', claims: Claims): Promise<string> {
    return sign(kind, claims, this.#keys.privateKey, this.#keys.thumbprint);
  }

  /** @internal The key of a sender allowed to send pid messages here (a grantee, or a node we called). */
  _peerKey(kid: string): KeyObject | undefined {
    return this.#peers.get(kid)?.key;
  }

  /**
   * @internal Lets `kid` send pid messages here: its key, and the codec
   * context its messages are decoded in (how pids inside them are answered).
   */
  _registerPeer(kid: string, key: KeyObject, context: CodecContext): void {
    this.#peers.set(kid, { key, context });
  }

  /** @internal The outbound queue to one remote node: bounds concurrent requests to it. */
  _queueFor(link: Link): PQueue {
    let q = this.#queues.get(link.key);
    if (q === undefined) {
      q = new PQueue({ concurrency: 64 });
      this.#queues.set(link.key, q);
    }
    return q;
  }

  /** @internal How this node sends to pids a grantee handed it: signed by this node, only while the grant stands. */
  _routeTo(peer: Peer, grantKid: string): PidRoute {
    const key = `${peer.nodeId}@${peer.link.key}/${grantKid}`;
    let route = this.#routes.get(key);
    if (route === undefined) {
      route = {
        sendToPid: (id, token, msg) => {
          const context = this.#peers.get(grantKid)?.context;
          if (context === undefined || !context.sender.valid()) return;
          void this._sendPid(peer.link, peer.nodeId, id, token, msg, context, (claims) =>
            this._signAsNode('pid', claims),
          ).catch((err: unknown) =>
            this.logger.error(`could not deliver a message to <${peer.nodeId}.${id}.0>: ${(err as Error).message}`),
          );
        },
      };
      this.#routes.set(key, route);
    }
    return route;
  }

  /**
   * @internal PUT /pid/<id> over `link`: `msg` encoded in `context` now,
   * then signed by `signer` and sent in order: messages from this node to
   * another arrive in the order they were sent, as between Erlang processes.
   */
  _sendPid(
    link: Link,
    aud: string,
    id: number,
    token: string,
    msg: unknown,
    context: CodecContext,
    signer: (claims: Claims) => Promise<string>,
  ): Promise<void> {
    const path = `/pid/${id}`;
    const body = { token, msg: this._codec.encode(msg, context) };
    let queue = this.#pidQueues.get(link.key);
    if (queue === undefined) {
      queue = new PQueue({ concurrency: 1 });
      this.#pidQueues.set(link.key, queue);
    }
    return queue.add(async () => {
      const nowS = Math.floor(Date.now() / 1000);
      const claims: Claims = {
        id: newMessageId(),
        iat: nowS,
        exp: nowS + MESSAGE_TTL_S,
        aud,
        iss: this.id,
        method: 'PUT',
        path,
        body,
      };
      const jws = await signer(claims);
      const res = await link.request(path, jws, PID_SEND_TIMEOUT_MS);
      if (res.status !== 204) {
        throw new WireError('ERR_PID_REFUSED', res.status, `the node refused the message: ${res.text}`);
      }
    });
  }

  // For pids from a caller that gave no address and came through no proxy:
  // messages to them cannot go anywhere (dropped, as Erlang drops messages
  // to an unreachable node), and the owner is told why.
  readonly #nullRoute: PidRoute = {
    sendToPid: (id) =>
      this.logger.error(
        `a message to pid ${id} of another node was dropped: that node neither listens nor came through a proxy`,
      ),
  };

  // ---------------------------------------------------------------- request handlers (run after every check passed)

  /** The mission a request acts under: the one it names, or the first granted one that covers the target. */
  #missionFor(v: Verified, covers: (mission: string) => boolean): string {
    const granted = v.grant!.missions;
    const claimed = v.claims.mission;
    if (claimed !== undefined) {
      if (typeof claimed !== 'string' || !granted.includes(claimed) || !covers(claimed)) {
        throw new WireError('ERR_MISSION_NOT_GRANTED', 403, 'this grant does not cover that mission and target');
      }
      return claimed;
    }
    const found = granted.find(covers);
    if (found === undefined)
      throw new WireError('ERR_MISSION_NOT_GRANTED', 403, 'this grant does not cover that target');
    return found;
  }

  #rate(v: Verified): void {
    const grant = v.grant!;
    const wait = this.#limiter.take(grant.kid, grant.rate, Date.now());
    if (wait > 0) throw new RateLimitedError(Math.max(1, Math.ceil(wait / 1000)));
  }

  /**
   * The codec context for a call under a grant: our pids in the reply are
   * handed to the grantee (while the grant stands), and theirs in the
   * arguments are answered at the caller's address, signed by this node.
   */
  async #grantContext(v: Verified): Promise<CodecContext> {
    const grant = v.grant!;
    const known = this.#peers.get(grant.kid);
    const addr = v.claims.addr;
    // Pids in the arguments are answered the way the request came: through
    // the same proxy, or at the address the caller gave.
    const route: PidRoute =
      v.replyLink !== undefined
        ? this._routeTo({ nodeId: v.claims.iss, link: v.replyLink }, grant.kid)
        : typeof addr === 'string' && /^https?:\/\//.test(addr)
          ? this._routeTo({ nodeId: v.claims.iss, link: directLink(addr) }, grant.kid)
          : (known?.context.route ?? this.#nullRoute);
    const key = known?.key ?? (await importPublic(grant.publicJwk)).key;
    const sender: PidSender = {
      kid: grant.kid,
      key,
      valid: () => isUsable(this.store.getGrant(grant.kid), Date.now()),
    };
    const context = { sender, route };
    this._registerPeer(grant.kid, key, context);
    return context;
  }

  async #reply(v: Verified, result: { ok: unknown } | { error: unknown }, context: CodecContext): Promise<string> {
    const nowS = Math.floor(Date.now() / 1000);
    let body: unknown;
    if ('ok' in result) {
      try {
        body = { ok: this._codec.encode(result.ok, context) };
      } catch (err) {
        body = { error: errorBody(err) };
      }
    } else {
      body = { error: errorBody(result.error) };
    }
    return this._signAsNode('reply', {
      id: v.claims.id,
      iat: nowS,
      exp: nowS + MESSAGE_TTL_S,
      aud: v.claims.iss,
      iss: this.id,
      body,
    });
  }

  async #apply(v: Verified, params: Record<string, string>): Promise<{ status: number; body?: string }> {
    const { module, fn } = params as { module: string; fn: string };
    const mission = this.#missionFor(v, (m) => this.missions.lookupFunction(module, fn, m) !== undefined);
    this.#rate(v);
    const context = await this.#grantContext(v);
    const args = this._codec.decode(payloadOf(v.claims), context);
    if (!Array.isArray(args)) throw new WireError('ERR_BAD_ARGUMENTS', 400, 'the arguments must be an array');
    const exported = this.missions.lookupFunction(module, fn, mission)!;
    const run = this.#execute(v, () => exported.invoke(...args));
    if (v.claims.cast === true) {
      run.catch(() => undefined); // a cast whose grant was revoked while it waited is dropped
      return { status: 202 };
    }
    return { status: 200, body: await this.#reply(v, await run, context) };
  }

  /**
   * Runs user code for a request, at most {@link EXECUTIONS_PER_GRANT} at a
   * time per grant. A request that waited here checks its grant again
   * before it runs, so a revocation also stops requests already queued.
   */
  async #execute(v: Verified, work: () => unknown): Promise<{ ok: unknown } | { error: unknown }> {
    const kid = v.grant!.kid;
    let queue = this.#executions.get(kid);
    if (queue === undefined) {
      queue = new PQueue({ concurrency: EXECUTIONS_PER_GRANT });
      this.#executions.set(kid, queue);
    }
    return queue.add(
      async () => {
        usableGrant(this.store.getGrant(kid), Date.now());
        // Accepted: only now does it count as a use of the grant.
        this.store.recordUse(kid, Date.now());
        try {
          return { ok: await work() };
        } catch (err) {
          return { error: err };
        }
      },
      { throwOnTimeout: true },
    ) as Promise<{ ok: unknown } | { error: unknown }>;
  }

  async #behaviour(v: Verified, params: Record<string, string>): Promise<{ status: number; body?: string }> {
    const { mission, name, op } = params as { mission: string; name: string; op: string };
    const proc = this._lookup(name);
    const module =
      proc?._behaviour === null || proc === undefined
        ? undefined
        : (proc._behaviour.behaviourModule ?? proc._behaviour);
    const exposed = module === undefined ? undefined : this.missions.behaviourOf(module, mission);
    this.#missionFor(v, (m) => m === mission && exposed !== undefined && exposed.ops.includes(op));
    this.#rate(v);
    const context = await this.#grantContext(v);
    const args = this._codec.decode(payloadOf(v.claims), context);
    if (!Array.isArray(args)) throw new WireError('ERR_BAD_ARGUMENTS', 400, 'the arguments must be an array');
    const ref = { node: this as Node, name };
    const timeout = Math.min(Number(v.claims.timeout) || 5000, 60_000);
    const ops: Record<string, () => unknown> = {
      call: () => GenServer.call(ref, args[0], timeout),
      cast: () => GenServer.cast(ref, args[0]),
      which_children: () => Supervisor.whichChildren(ref),
      count_children: () => Supervisor.countChildren(ref),
      start_child: () => Supervisor.startChild(ref, args[0] as unknown[]),
      terminate_child: () => Supervisor.terminateChild(ref, args[0] as string),
      restart_child: () => Supervisor.restartChild(ref, args[0] as string),
      notify: () => GenEvent.notify(ref, args[0]),
      sync_notify: () => GenEvent.syncNotify(ref, args[0], timeout),
      which_handlers: () => GenEvent.whichHandlers(ref),
      send_event: () => GenFsm.sendEvent(ref, args[0]),
      sync_send_event: () => GenFsm.syncSendEvent(ref, args[0], timeout),
      send_all_state_event: () => GenFsm.sendAllStateEvent(ref, args[0]),
      sync_send_all_state_event: () => GenFsm.syncSendAllStateEvent(ref, args[0], timeout),
    };
    const opFn =
      exposed!.kind === 'gen_event' && op === 'call'
        ? () => GenEvent.call(ref, args[0] as string, args[1], timeout)
        : ops[op]!;
    return { status: 200, body: await this.#reply(v, await this.#execute(v, opFn), context) };
  }

  async #pidMessage(v: Verified, params: Record<string, string>): Promise<{ status: number }> {
    const id = Number(params.id);
    const body = v.claims.body as { token?: unknown; msg?: unknown } | undefined;
    if (!Number.isSafeInteger(id) || body === null || typeof body !== 'object' || typeof body.token !== 'string') {
      throw new WireError('ERR_BAD_ARGUMENTS', 400, 'a pid message carries { token, msg }');
    }
    const handed = this._pids.accept(id, body.token, v.kid);
    if (handed === undefined || !handed.sender.valid()) {
      throw new WireError(
        'ERR_PID_NOT_GRANTED',
        403,
        'this pid was not handed to you, or the grant that carried it ended',
      );
    }
    const context = this.#peers.get(v.kid)?.context ?? { sender: handed.sender, route: this.#nullRoute };
    const msg = this._codec.decode(body.msg as never, context);
    this.send(handed.pid, msg);
    return { status: 204 };
  }

  /** @internal */
  _encode(value: unknown, context: CodecContext): ReturnType<WireCodec<CodecContext>['encode']> {
    return this._codec.encode(value, context);
  }

  /** @internal */
  _decode(encoded: Parameters<WireCodec<CodecContext>['decode']>[0], context: CodecContext): unknown {
    return this._codec.decode(encoded, context);
  }
}
