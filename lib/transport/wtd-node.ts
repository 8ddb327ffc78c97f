import { randomBytes } from 'node:crypto';
import type { JWK } from 'jose';
import { NoProcError, WtdError } from '../errors.js';
import type { Pid, Ref } from '../runtime/pid.js';
import { missionTable, type LoadOptions, type MissionTable, type AnyClass } from '../missions/mission-table.js';
import { every, epochSeconds, systemWallClock, type ClockTimer, type WallClock } from '../runtime/clock.js';
import { Node, type Logger } from '../runtime/node.js';
import type { LogThrottle } from '../runtime/log-throttle.js';
import { DataDirLock } from '../security/data-dir-lock.js';
import type { GrantRecord, GrantStore } from '../security/grant-store.js';
import { isUsable } from '../security/grants.js';
import { exportPrivate, importPrivate, newKeyPair, type KeyPair } from '../security/keys.js';
import { SqliteGrantStore } from '../security/sqlite-store.js';
import { busyWait, busyWaitOption } from '../runtime/busy-wait.js';
import type { DirectoryEntry } from '../wire/relay.js';
import { connectionTo, type ConnectOptions, type ConnectTarget } from './connect.js';
import type { ContactCard } from './contact-card.js';
import type { GrantFile, GrantOptions } from './grant-issuer.js';
import { Listener } from './listener.js';
import { assembleParts, type NodeParts } from './node-parts.js';
import { ProxyClient, type JoinOptions } from './proxy-client.js';
import type { Refusal } from './refusal-log.js';
import { RemoteNode } from './remote-node.js';
import { MissionGroup, type GroupOptions } from './group.js';
import type { RateState, WtdNodeOptions } from './node-options.js';
import { DEFAULT_OUTBOX, type OutboxStats } from './outbox.js';
import { DEFAULT_LIMITS } from './server.js';

/** How long a grant that ended (revoked or expired) is still named to the proxy as accepted: its holder hears why from this node. */
const ENDED_GRANT_NOTICE_MS = 24 * 60 * 60 * 1000;

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
  /**
   * A random id picked when this node started, sent with its pings: a
   * proxy that sees another one for the same node id knows it restarted.
   */
  readonly incarnation: string = randomBytes(12).toString('base64url');
  readonly #parts: NodeParts;
  readonly #whereabouts: () => { address: string | null; proxy: string | null };
  readonly #store: GrantStore;
  readonly #dataDir: string;
  #lock: DataDirLock | undefined;
  readonly #listener: Listener;
  readonly #remotes = new Set<RemoteNode>();
  readonly #groups = new Map<string, MissionGroup>();
  #pruner: ClockTimer | undefined;
  #closed = false;
  #proxy: ProxyClient | undefined;
  readonly #peerDownAfterMs: number | undefined;

  /** Takes back this node's busy wait (see {@link WtdNodeOptions.busyWaitMs}). */
  readonly #unbusy: () => void;

  private constructor(options: WtdNodeOptions, store: GrantStore, keys: KeyPair, lock: DataDirLock | undefined) {
    super(options);
    this.wallClock = options.wallClock ?? systemWallClock;
    this.#store = store;
    this.#lock = lock;
    this.#dataDir = options.dataDir;
    const advertise = options.advertise ?? {};
    this.#whereabouts = () => ({
      address: this.address ?? advertise.address ?? null,
      proxy: this.#proxy?.url ?? advertise.proxy ?? null,
    });
    this.#parts = assembleParts(this, {
      store,
      keys,
      clock: this.wallClock,
      whereabouts: this.#whereabouts,
      outbox: { ...DEFAULT_OUTBOX, ...options.outbox },
      ...(options.maxMonitorsPerPeer === undefined ? {} : { maxMonitorsPerPeer: options.maxMonitorsPerPeer }),
      ...(options.peerDownAfterMs === undefined ? {} : { peerDownAfterMs: options.peerDownAfterMs }),
      ...(options.encryption === undefined ? {} : { encryption: options.encryption }),
      ...(options.sessions === undefined ? {} : { sessions: options.sessions }),
      known: (nodeId) =>
        this.directory().some((e) => e.id === nodeId) ||
        this.#parts.routes.knows(nodeId) ||
        [...this.#remotes].some((r) => r.nodeId === nodeId),
    });
    this.#peerDownAfterMs = options.peerDownAfterMs;
    if (!this.#parts.encryption) {
      this.logger.error(
        `node ${this.name}: encryption is off: its requests and answers travel in the clear, and a proxy can read them (for debugging only)`,
      );
    }
    this.id = this.#parts.identity.id;
    this.publicJwk = keys.publicJwk;
    this.#listener = new Listener(
      this.#parts.dispatcher,
      { ...DEFAULT_LIMITS, ...options.limits },
      this.name,
      this.#parts.log,
    );
    // Last: a constructor that threw before this keeps no budget.
    this.#unbusy = busyWait.enlist(busyWaitOption('WtdNode.start', options.busyWaitMs));
  }

  /** Opens (or creates) the node's data directory and identity, and locks the directory (`ERR_DATA_DIR_LOCKED`). */
  static async start(options: WtdNodeOptions): Promise<WtdNode> {
    if (options === undefined || typeof options.dataDir !== 'string') {
      throw new TypeError("WtdNode.start(options) needs options.dataDir (a directory, or ':memory:')");
    }
    busyWaitOption('WtdNode.start', options.busyWaitMs);
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

  /**
   * This node's contact card: its name, id, public key, and where it can be
   * reached now (its address, the proxy it joined). Nothing secret: send it
   * to whoever should grant this node missions, or call it under a grant
   * made to its key.
   *
   * @example
   * ```ts
   * writeFileSync('bob.card', JSON.stringify(bob.card())); // Alice: grant({ missions, rate, to: bobCard })
   * ```
   */
  card(): ContactCard {
    const { address, proxy } = this.#whereabouts();
    return { wtd: 'card', version: 1, name: this.name, id: this.id, publicJwk: this.publicJwk, address, proxy };
  }

  /** The URL others reach this node at, once listening. */
  get address(): string | undefined {
    return this.#listener.address;
  }

  /** Starts the HTTP server (default port 14153, loopback only unless `host` says otherwise). */
  async listen(options: { port?: number; host?: string } = {}): Promise<{ port: number; address: string }> {
    this.#takeLock();
    const where = await this.#listener.listen(options.host ?? '127.0.0.1', options.port ?? 14153);
    // Forget replay ids once their messages could no longer be accepted anyway.
    this.#pruner ??= every(this.wallClock, 60_000, () => this.#parts.replay.prune());
    this.#pruner.unref?.();
    return where;
  }

  /** Stops the server, leaves the proxy, ends every process, closes the store and unlocks the data directory. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unbusy();
    for (const g of this.#groups.values()) g.close();
    for (const r of this.#remotes) r._close();
    this.#parts.routes.close();
    this.#pruner?.cancel();
    await this.leaveProxy();
    await this.#listener.close();
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
    const { executions, routes, outbound, batches } = this.#parts;
    const parts = (): { onIdle(): Promise<void>; size: number }[] =>
      this.#proxy === undefined
        ? [executions, routes, batches, outbound]
        : [executions, routes, batches, outbound, this.#proxy];
    do await Promise.all(parts().map((p) => p.onIdle()));
    while (parts().some((p) => p.size > 0));
  }

  /**
   * Resolves once `check` holds for the requests this node runs for other
   * nodes (`running` user code now, `waiting` for a turn), looked at after
   * every change: a settle point for programs and specs, as
   * `WtdProxy.until` is for a proxy.
   *
   * @example
   * ```ts
   * await alice.until((load) => load.waiting === 0 && load.running === 0);
   * ```
   */
  until(check: (load: { running: number; waiting: number }) => boolean): Promise<void> {
    const executions = this.#parts.executions;
    if (check(executions.load)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const stop = executions.watch(() => {
        if (!check(executions.load)) return;
        stop();
        resolve();
      });
    });
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
    const { identity, routes, dispatcher, monitors } = this.#parts;
    this.#proxy = await ProxyClient.join(
      {
        identity,
        name: this.name,
        incarnation: this.incarnation,
        plaintext: !this.#parts.encryption,
        clock: this.wallClock,
        logger: throttled(this.#parts.log, 'proxy'),
        offers: () => ({
          missions: Object.keys(this.missions.describe()),
          accepts: this.#accepts(routes.kids()),
          address: this.address ?? null,
        }),
        dispatch: (method, path, jws, arrival) => dispatcher.dispatch(method, path, jws, arrival),
      },
      options,
    );
    // A node the directory says went down (silent too long, or restarted): its monitors fire.
    this.#proxy.on('nodedown', (entry) => monitors.nodeDown(entry.id));
    for (const g of this.#groups.values()) void g._attachDirectory();
  }

  /**
   * The key ids this node accepts messages under, for the proxy (which
   * queues nothing else for it), most wanted first: its usable grants, the
   * node keys of peers it takes pid messages from, then grants ended in the
   * last day, so that their holders still hear from this node why it
   * refuses them (revoked, expired) rather than from the proxy.
   */
  #accepts(peers: string[]): string[] {
    const now = this.wallClock.now();
    const grants = this.grants();
    const ended = (g: GrantRecord): number => Math.min(g.revokedAt ?? Infinity, g.expiresAt ?? Infinity);
    return [
      ...new Set([
        ...grants.filter((g) => isUsable(g, now)).map((g) => g.kid),
        ...peers,
        ...grants.filter((g) => !isUsable(g, now) && now - ended(g) < ENDED_GRANT_NOTICE_MS).map((g) => g.kid),
      ]),
    ];
  }

  /** Leaves the proxy: stops pinging and polling (the node drops off the directory a few seconds later). */
  async leaveProxy(): Promise<void> {
    for (const g of this.#groups.values()) g._detachDirectory();
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

  // ---------------------------------------------------------------- monitors of nodes

  /**
   * Watches node `nodeId` for process `pid` (OTP's `monitor_node(Node,
   * true)`, made for another process): when the node goes down, `pid`
   * receives a {@link Processes.NodeDownMessage | NodeDownMessage} `{ tag: 'nodedown', node, ref }`,
   * once. Down means: the proxy's directory says so (silent for its
   * `downAfterMs`, or it restarted), or this node called it directly and
   * its polls failed for `peerDownAfterMs`. A node that cannot be reached
   * now (not in the directory, no connection to it) is down at once. A
   * process's own `self.monitorNode(nodeId)` does the same.
   *
   * @example
   * ```ts
   * const ref = bob.monitorNode(alice.id, watcher);
   * // in watcher: await self.receive((m) => isNodeDown(m, alice.id));
   * bob.demonitorNode(ref);
   * ```
   */
  monitorNode(nodeId: string, pid: Pid): Ref {
    const proc = this._lookup(pid);
    if (proc === undefined) throw new NoProcError(pid);
    return proc.monitorNode(nodeId);
  }

  /**
   * How many monitors cross to other nodes now: held by this node's
   * processes on other nodes' (`out`), by other nodes on this node's
   * (`in`), and of nodes (`nodes`).
   *
   * @example
   * ```ts
   * bob.monitorCounts(); // => { out: 1, in: 0, nodes: 0 }
   * ```
   */
  monitorCounts(): { out: number; in: number; nodes: number } {
    return this.#parts.monitors.held;
  }

  /** Stops a monitor {@link monitorNode} set; false if it had fired already. */
  demonitorNode(ref: Ref): boolean {
    return this.#parts.monitors.demonitorNode(ref);
  }

  // ---------------------------------------------------------------- grants

  /**
   * Grants `missions` at `rate`. With `to` (the grantee's public key) the
   * grant is stored and its record returned; without it a key pair is made
   * and a grant file returned for the grantee: keep it secret, it is the key.
   */
  async grant(options: GrantOptions & { to: JWK | ContactCard }): Promise<GrantRecord>;
  async grant(options: GrantOptions): Promise<GrantFile>;
  async grant(options: GrantOptions): Promise<GrantRecord | GrantFile> {
    const made = await this.#parts.issuer.grant(options);
    // The proxy queues for this node only what its last ping accepts: it hears of the grant now.
    await this.#proxy?.ping().catch(() => undefined);
    return made;
  }

  /** Revokes a grant at once, for every request not yet checked; it stays revoked after a restart. */
  revoke(kid: string): boolean {
    return this.#parts.issuer.revoke(kid);
  }

  /** Every grant this node has made. */
  grants(): GrantRecord[] {
    return this.#store.listGrants();
  }

  /** How much of its rate a grant has left now. */
  rateState(kid: string): RateState | undefined {
    const grant = this.#store.getGrant(kid);
    return grant === undefined ? undefined : { tokens: this.#parts.gate.tokens(grant), burst: grant.rate.burst };
  }

  /**
   * What waits for each grantee's pids, and what was dropped because its
   * outbox was full, by grant key id (the observer shows it).
   */
  outboxStats(): Record<string, OutboxStats> {
    return this.#parts.routes.outboxStats();
  }

  /**
   * Whether this node's requests travel encrypted in sessions (the
   * `encryption` option), and how many sessions it holds: made by callers
   * with it (`server`) and made by it as a caller (`client`); and how many
   * call streams callers hold open to it (`streams`: one per calling node,
   * whatever its sessions).
   *
   * @example
   * ```ts
   * const { encryption, server, client, streams } = alice.sessionStats(); // { encryption: true, server: 2, client: 0, streams: 1 }
   * ```
   * `proxyStream` is whether the node relays on a stream to its proxy now
   * (false when it polls, or joined none).
   */
  sessionStats(): { encryption: boolean; server: number; client: number; streams: number; proxyStream: boolean } {
    return {
      encryption: this.#parts.encryption,
      ...this.#parts.sessions.size,
      streams: this.#listener.streams,
      proxyStream: this.#proxy?.streaming ?? false,
    };
  }

  /** The last requests this node refused (most recent last, at most 100). */
  recentRefusals(): Refusal[] {
    return this.#parts.refusals.list();
  }

  /**
   * Connects to another node with a grant file (the seed's way), or, for a
   * grant made to this node's own public key, with the node's contact card
   * (what `wtd whoami --out` writes, or its {@link card}) or `{ nodeKey, address }`.
   * The calls go straight to the node's address, or through the proxy this
   * node joined when the target has no address (or `via: 'proxy'`).
   */
  async connect(target: GrantFile | ContactCard | ConnectTarget, options: ConnectOptions = {}): Promise<RemoteNode> {
    const { identity, codec, routes, outbound, receive } = this.#parts;
    const conn = await connectionTo(target, options, identity, this.#proxy, this.wallClock);
    const remote = new RemoteNode(
      {
        nodeId: this.id,
        codec,
        routes,
        outbound,
        clock: this.wallClock,
        logger: throttled(this.#parts.log, 'messages'),
        receive,
        monitors: this.#parts.monitors,
        ...(this.#peerDownAfterMs === undefined ? {} : { peerDownAfterMs: this.#peerDownAfterMs }),
        ...(this.#parts.encryption ? { sessions: this.#parts.sessions, batches: this.#parts.batches.set } : {}),
      },
      conn,
    );
    this.#remotes.add(remote);
    for (const g of this.#groups.values()) g._offer(remote);
    // Its pid messages come back through the proxy, which queues them once this node's ping accepts its key.
    const proxy = this.#proxy;
    if (conn.via === 'proxy' && proxy !== undefined && !proxy.publishes(conn.nodeKid)) {
      await proxy.ping().catch(() => undefined);
    }
    return remote;
  }

  /**
   * The nodes that granted this node `mission`, as one {@link MissionGroup}:
   * calls spread over them (least busy first, or round-robin, or by key)
   * and move to another member when one refuses or is down. Members are the
   * nodes this node connected to (and `options.members`) whose grant covers
   * the mission, and the nodes of the proxy directory that advertise it and
   * granted it to this node's key; each is verified by a signed probe first.
   * The same mission and options give the same group; closing the node
   * closes it.
   *
   * @example
   * ```ts
   * const maths = bob.group('maths', { members: [aliceGrant, carolGrant] });
   * await maths.call('Maths', 'add', [1, 2]); // => 3
   * ```
   */
  group(mission: string, options: GroupOptions = {}): MissionGroup {
    if (typeof mission !== 'string' || mission.length === 0) {
      throw new TypeError(`group(mission) expects a mission name, got ${String(mission)}`);
    }
    if (this.#closed) throw new WtdError('ERR_NO_MEMBERS', `node ${this.name} is closed: it has no group`);
    const key = `${mission}\0${JSON.stringify(options)}`;
    let group = this.#groups.get(key);
    if (group === undefined) {
      const proxy = (): ProxyClient | undefined => this.#proxy;
      group = new MissionGroup(
        {
          id: this.id,
          wallClock: this.wallClock,
          missions: this.missions,
          logger: throttled(this.#parts.log, 'groups'),
          remotes: () => this.#remotes,
          connect: (target, o) => this.connect(target, o),
          directory: () => proxy()?.directory(),
          onDirectory: (event, l) => proxy()?.on(event, l),
          offDirectory: (event, l) => proxy()?.off(event, l),
        },
        mission,
        options,
      );
      this.#groups.set(key, group);
    }
    return group;
  }

  /** A shared node (see {@link WtdNodeOptions.shared}) takes the lock of its directory when it starts to run. */
  #takeLock(): void {
    if (this.#lock === undefined && this.#dataDir !== ':memory:') this.#lock = DataDirLock.acquire(this.#dataDir);
  }
}

/** A logger whose lines go through the node's throttled log, as lines of `kind`. */
function throttled(log: LogThrottle, kind: string): Logger {
  return { error: (message: string) => log.line(kind, message) };
}
