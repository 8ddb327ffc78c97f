import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';
import { WtdError } from '../errors.js';
import { missionTable, type LoadOptions, type MissionTable, type AnyClass } from '../missions/mission-table.js';
import { every, epochSeconds, systemWallClock, type ClockTimer, type WallClock } from '../runtime/clock.js';
import { Node, type NodeOptions } from '../runtime/node.js';
import { DataDirLock } from '../security/data-dir-lock.js';
import { GrantGate } from '../security/grant-gate.js';
import type { GrantRecord, GrantStore } from '../security/grant-store.js';
import { exportPrivate, importPrivate, newKeyPair, type KeyPair } from '../security/keys.js';
import { ReplayWindow } from '../security/replay-window.js';
import { SqliteGrantStore } from '../security/sqlite-store.js';
import { WireCodec } from '../wire/codec.js';
import type { DirectoryEntry } from '../wire/relay.js';
import type { CodecContext } from './codec-context.js';
import { connectionTo, type ConnectOptions, type ConnectTarget } from './connect.js';
import { Executions } from './executions.js';
import { GrantIssuer, type GrantFile, type GrantOptions } from './grant-issuer.js';
import { RequestHandlers } from './handlers.js';
import { NodeIdentity } from './identity.js';
import { Outbound } from './outbound.js';
import { PidRegistry } from './pid-registry.js';
import { PidRoutes } from './pid-routes.js';
import { ProxyClient, type JoinOptions } from './proxy-client.js';
import { RefusalLog, type Refusal } from './refusal-log.js';
import { RemoteNode } from './remote-node.js';
import { buildServer, DEFAULT_LIMITS, Dispatcher, type ServerLimits } from './server.js';

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
  /** The time of day for what is signed, expires or is rate limited. Default: the system's. */
  wallClock?: WallClock;
  /**
   * Opens the data directory beside a node that runs in another program,
   * to grant, revoke or list grants only: no lock is taken until this node
   * listens or joins a proxy (which then fail with `ERR_DATA_DIR_LOCKED` if
   * the other still runs). Default false: the directory is locked at start.
   */
  shared?: boolean;
  /**
   * Where grant files say the node can be reached when it is not listening
   * or on a proxy in this program (the `wtd` command grants for a node that
   * runs in another).
   */
  advertise?: { address?: string | null; proxy?: string | null };
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

/** How long close() lets requests being answered finish. */
const CLOSE_GRACE_MS = 1000;

/**
 * A node that other nodes can reach: a {@link Node} with an Ed25519
 * identity, a grant store, a mission table and an HTTP server. Alice grants
 * Bob a narrow, revocable, rate-limited right; Bob's node connects with it.
 * It is a facade: each concern is a part with narrow dependencies (see
 * docs/architecture.md).
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
  /** The time of day this node signs and expires by. */
  readonly wallClock: WallClock;
  readonly #identity: NodeIdentity;
  readonly #store: GrantStore;
  readonly #dataDir: string;
  #lock: DataDirLock | undefined;
  readonly #limits: ServerLimits;
  readonly #advertise: { address?: string | null; proxy?: string | null };
  readonly #replay: ReplayWindow;
  readonly #routes: PidRoutes;
  readonly #gate: GrantGate;
  readonly #executions = new Executions();
  readonly #outbound: Outbound;
  readonly #issuer: GrantIssuer;
  readonly #refusals: RefusalLog;
  readonly #dispatcher: Dispatcher;
  readonly #codec: WireCodec<CodecContext>;
  readonly #remotes = new Set<RemoteNode>();
  #server: Server | undefined;
  #pruner: ClockTimer | undefined;
  #closed = false;
  #address: string | undefined;
  #proxy: ProxyClient | undefined;

  private constructor(options: WtdNodeOptions, store: GrantStore, keys: KeyPair, lock: DataDirLock | undefined) {
    super(options);
    const clock = (this.wallClock = options.wallClock ?? systemWallClock);
    this.#store = store;
    this.#lock = lock;
    this.#dataDir = options.dataDir;
    this.#identity = new NodeIdentity(keys);
    this.id = this.#identity.id;
    this.publicJwk = keys.publicJwk;
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#advertise = options.advertise ?? {};
    this.#replay = new ReplayWindow(store, clock);
    const pids = new PidRegistry(this, this.id);
    this.#codec = new WireCodec<CodecContext>({
      out: (pid, ctx) => pids.hand(pid, ctx.sender),
      in: (billet, ctx) => pids.proxy(billet, ctx.route),
    });
    this.#routes = new PidRoutes({ codec: this.#codec, clock, logger: this.logger, nodeId: this.id });
    this.#gate = new GrantGate(store, clock, (kid) => this.#grantEnded(kid));
    this.#outbound = new Outbound(clock);
    this.#refusals = new RefusalLog(clock);
    this.#issuer = new GrantIssuer({
      store,
      identity: this.#identity,
      name: this.name,
      clock,
      whereabouts: () => ({
        address: this.#address ?? this.#advertise.address ?? null,
        proxy: this.#proxy?.url ?? this.#advertise.proxy ?? null,
      }),
      ended: (kid) => this.#gate.ended(kid),
    });
    const handlers = new RequestHandlers({
      node: this,
      missions: this.missions,
      gate: this.#gate,
      executions: this.#executions,
      routes: this.#routes,
      pids,
      codec: this.#codec,
      identity: this.#identity,
      clock,
      logger: this.logger,
    });
    this.#dispatcher = new Dispatcher({
      nodeId: this.id,
      gate: this.#gate,
      routes: this.#routes,
      replay: this.#replay,
      clock,
      handlers,
      refusals: this.#refusals,
      logger: this.logger,
    });
  }

  /** Opens (or creates) the node's data directory and identity, and locks the directory (`ERR_DATA_DIR_LOCKED`). */
  static async start(options: WtdNodeOptions): Promise<WtdNode> {
    if (options === undefined || typeof options.dataDir !== 'string') {
      throw new TypeError("WtdNode.start(options) needs options.dataDir (a directory, or ':memory:')");
    }
    const lock =
      options.shared === true || options.dataDir === ':memory:' ? undefined : DataDirLock.acquire(options.dataDir);
    try {
      const store = options.store ?? new SqliteGrantStore(options.dataDir);
      const stored = store.getNodeKey();
      let keys: KeyPair;
      if (stored === undefined) {
        keys = await newKeyPair();
        store.setNodeKey(await exportPrivate(keys));
      } else {
        keys = await importPrivate(stored);
      }
      store.prune(epochSeconds(options.wallClock ?? systemWallClock));
      return new WtdNode(options, store, keys, lock);
    } catch (err) {
      lock?.release();
      throw err;
    }
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
    this.#takeLock();
    const server = buildServer(this.#dispatcher, this.#limits);
    const host = options.host ?? '127.0.0.1';
    const wanted = options.port ?? 14153;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new WtdError('ERR_LISTEN', `node ${this.name} could not listen on ${host}:${wanted}: ${err.message}`, {
            cause: err,
          }),
        ),
      );
      server.listen(wanted, host, () => resolve());
    });
    server.removeAllListeners('error');
    const { port } = server.address() as AddressInfo;
    this.#server = server;
    // Forget replay ids once their messages could no longer be accepted anyway.
    this.#pruner = every(this.wallClock, 60_000, () => this.#replay.prune());
    this.#pruner.unref?.();
    this.#address = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    return { port, address: this.#address };
  }

  /** Stops the server, leaves the proxy, ends every process, closes the store and unlocks the data directory. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of this.#remotes) r._close();
    this.#pruner?.cancel();
    await this.leaveProxy();
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
    this.#store.close();
    this.#lock?.release();
  }

  /**
   * Resolves once nothing this node accepted or sent is in flight: no
   * request runs user code or waits to, and every call and pid message sent
   * to another node has been answered (the settle point specs wait on,
   * after p-queue's `onIdle()`).
   *
   * @example
   * ```ts
   * alice.send(bobsPid, 'hello');
   * await alice.onIdle(); // Bob's node has accepted (or refused) it
   * ```
   */
  async onIdle(): Promise<void> {
    const parts = (): { onIdle(): Promise<void>; size: number }[] =>
      this.#proxy === undefined
        ? [this.#executions, this.#routes, this.#outbound]
        : [this.#executions, this.#routes, this.#outbound, this.#proxy];
    do await Promise.all(parts().map((p) => p.onIdle()));
    while (parts().some((p) => p.size > 0));
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
    this.#takeLock();
    this.#proxy = await ProxyClient.join(
      {
        identity: this.#identity,
        name: this.name,
        clock: this.wallClock,
        logger: this.logger,
        offers: () => ({
          missions: Object.keys(this.missions.describe()),
          grants: this.grants()
            .filter((g) => this.#gate.isUsable(g.kid))
            .map((g) => g.kid),
          address: this.#address ?? null,
        }),
        dispatch: (method, path, jws, arrival) => this.#dispatcher.dispatch(method, path, jws, arrival),
      },
      options,
    );
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
    if (this.#proxy === undefined) {
      throw new WtdError(
        'ERR_NO_PROXY',
        `node ${this.name} has not joined a proxy: await node.joinProxy({ url, email }) first`,
      );
    }
    this.#proxy.on(event, listener);
    return this;
  }

  /** Stops calling a listener given to {@link on}. */
  off(event: 'nodeup' | 'nodedown', listener: (entry: DirectoryEntry) => void): this {
    this.#proxy?.off(event, listener);
    return this;
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
    return this.#issuer.grant(options);
  }

  /** Revokes a grant at once, for every request not yet checked; it stays revoked after a restart. */
  revoke(kid: string): boolean {
    return this.#issuer.revoke(kid);
  }

  /** Every grant this node has made. */
  grants(): GrantRecord[] {
    return this.#store.listGrants();
  }

  /** How much of its rate a grant has left now. */
  rateState(kid: string): RateState | undefined {
    const grant = this.#store.getGrant(kid);
    return grant === undefined ? undefined : { tokens: this.#gate.tokens(grant), burst: grant.rate.burst };
  }

  /** The last requests this node refused (most recent last, at most 100). */
  recentRefusals(): Refusal[] {
    return this.#refusals.list();
  }

  /**
   * Connects to another node with a grant file (the seed's way), or with
   * `{ nodeKey, address }` for a grant made to this node's own public key.
   * The calls go straight to the node's address, or through the proxy this
   * node joined when the target has no address (or `via: 'proxy'`).
   */
  async connect(target: GrantFile | ConnectTarget, options: ConnectOptions = {}): Promise<RemoteNode> {
    const conn = await connectionTo(target, options, this.#identity, this.#proxy);
    const remote = new RemoteNode(
      {
        nodeId: this.id,
        codec: this.#codec,
        routes: this.#routes,
        outbound: this.#outbound,
        clock: this.wallClock,
        address: () => this.#address,
      },
      conn,
    );
    this.#remotes.add(remote);
    return remote;
  }

  /** A shared node (see {@link WtdNodeOptions.shared}) takes the lock of its directory when it starts to run. */
  #takeLock(): void {
    if (this.#lock === undefined && this.#dataDir !== ':memory:') this.#lock = DataDirLock.acquire(this.#dataDir);
  }

  /** A grant was revoked or expired: drop what was kept for it. */
  #grantEnded(kid: string): void {
    this.#routes.forget(kid);
    this.#dispatcher.forget(kid);
  }
}
