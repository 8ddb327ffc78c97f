import { CallTimeoutError, WtdError, outcomeOf } from '../errors.js';
import { BEHAVIOUR_OP_TABLE, camelCase, type BehaviourKind, type BehaviourOp } from '../missions/behaviour-ops.js';
import { every, type ClockTimer } from '../runtime/clock.js';
import { importPublic, shortId } from '../security/keys.js';
import type { DirectoryEntry } from '../wire/relay.js';
import {
  CALLERS_FAULT,
  GRANT_ENDED,
  Member,
  NOT_A_MEMBER,
  snapshot,
  TRANSPORT,
  type Listener,
} from './group-member.js';
import type {
  GroupBehaviourClient,
  GroupCallOptions,
  GroupHost,
  GroupMember,
  GroupMulticallResult,
  GroupOptions,
} from './group-options.js';
import { leastBusy, rendezvous, RoundRobin } from './group-pick.js';
import type { RemoteCallOptions, RemoteNode } from './remote-node.js';

export type {
  GroupBehaviourClient,
  GroupCallOptions,
  GroupHost,
  GroupMember,
  GroupMulticallResult,
  GroupOptions,
} from './group-options.js';

/**
 * The nodes that granted this node a mission, as one: each call goes to one
 * member, picked least-busy (or round-robin, or by `key`), and moves to
 * another within the same deadline when it was refused before running or
 * its member is down. A call that may have run (`ERR_MAYBE_RAN`) moves only
 * when its function is idempotent; one that ran and failed never does.
 *
 * Members: every node this node holds a grant from that covers the mission
 * and that answers a signed probe saying so: the nodes it connected to,
 * those in `options.members`, and the nodes of the proxy directory that
 * advertise the mission and granted it to this node's key. A node that
 * advertises the mission without granting it is never one. Each member
 * keeps its own grant, rate and revocation; a member whose grant is refused
 * leaves at once (`member_down`, state `'left'`); one that cannot be reached
 * is sidelined (`member_down`, `'sidelined'`) until a probe, every
 * `probeEveryMs`, passes (`member_up`).
 *
 * Errors: `ERR_NO_MEMBERS` when no member takes calls; otherwise the last
 * member's error, as a {@link RemoteNode} throws it.
 *
 * @example
 * ```ts
 * const maths = bob.group('maths', { members: [aliceGrant, carolGrant] });
 * await maths.call('Maths', 'add', [1, 2]); // => 3, on whichever member is least busy
 * await maths.call('Cache', 'get', ['k'], { key: 'k' }); // always the same member for 'k'
 * const { good, bad } = await maths.multicall('Maths', 'version', []);
 * maths.on('member_down', (m) => console.log(`${m.nodeId} ${m.state}`));
 * ```
 */
export class MissionGroup {
  /** The mission every member granted. */
  readonly mission: string;
  readonly #host: GroupHost;
  readonly #options: GroupOptions;
  readonly #members = new Map<string, Member>();
  // Remotes weighed (a member, refused, or waiting for a probe), with their first probe: each is weighed once.
  readonly #seen = new WeakMap<RemoteNode, Promise<void>>();
  // Candidates whose probe failed for a reason that may pass (down, busy): probed again each tick.
  readonly #pending = new Set<RemoteNode>();
  // One remote per node of the directory, made once and probed again when the node comes back.
  readonly #viaDirectory = new Map<string, RemoteNode>();
  readonly #listeners = { member_up: new Set<Listener>(), member_down: new Set<Listener>() };
  readonly #roundRobin = new RoundRobin();
  readonly #ticker: ClockTimer;
  readonly #ratio: number;
  readonly #maxTokens: number;
  #tokens: number;
  #ready: Promise<void>;
  #closed = false;
  #directoryOn = false;

  /** @internal */
  constructor(host: GroupHost, mission: string, options: GroupOptions = {}) {
    this.#host = host;
    this.mission = mission;
    this.#options = options;
    this.#ratio = options.retryBudget?.ratio ?? 0.1;
    this.#maxTokens = options.retryBudget?.max ?? 20;
    this.#tokens = this.#maxTokens;
    const probeEvery = options.probeEveryMs ?? 1000;
    if (!(probeEvery > 0)) throw new RangeError(`probeEveryMs must be a number of ms > 0, got ${String(probeEvery)}`);
    this.#ticker = every(host.wallClock, probeEvery, () => void this.#tick());
    this.#ticker.unref?.();
    const first: Promise<unknown>[] = [...host.remotes()].map((r) => this.#weigh(r));
    for (const target of options.members ?? []) {
      first.push(
        host.connect(target).then(
          (r) => this.#weigh(r),
          (err: unknown) => host.logger.error(`group ${mission}: a member could not be connected to: ${String(err)}`),
        ),
      );
    }
    first.push(this._attachDirectory());
    this.#ready = Promise.all(first).then(() => undefined);
  }

  /** Resolves once every candidate known when the group was made has been probed once. */
  ready(): Promise<void> {
    return this.#ready;
  }

  /** The members now, sidelined ones included (not those that left). */
  members(): GroupMember[] {
    return [...this.#members.values()].map(snapshot);
  }

  /** Calls `listener` with a member that joined or came back (`member_up`), or was sidelined or left (`member_down`). */
  on(event: 'member_up' | 'member_down', listener: (member: GroupMember) => void): this {
    this.#listeners[event].add(listener);
    return this;
  }

  /** Stops calling a listener given to {@link on}. */
  off(event: 'member_up' | 'member_down', listener: (member: GroupMember) => void): this {
    this.#listeners[event].delete(listener);
    return this;
  }

  /** Calls `module.fn(...args)` on one member, failing over as the class doc says. */
  async call<R = unknown>(
    module: string,
    fn: string,
    args: unknown[] = [],
    options: GroupCallOptions = {},
  ): Promise<R> {
    const own = options.idempotent ?? this.#idempotent(module, fn);
    // Else what a reply of that member said of the function, once one did.
    const mayRepeat = (r: RemoteNode): boolean => own || r.knownIdempotent(module, fn) === true;
    return (await this.#run((r, o) => r.call(module, fn, args, o), options, mayRepeat)) as R;
  }

  /** Runs `module.fn(...args)` on one member without waiting for its result; a cast that may have run is never sent again. */
  async cast(module: string, fn: string, args: unknown[] = [], options: GroupCallOptions = {}): Promise<void> {
    await this.#run(
      (r, o) => r.cast(module, fn, args, o),
      options,
      () => false,
    );
  }

  /** Calls `module.fn(...args)` on every member at once, each with the whole timeout, none retried. */
  async multicall<R = unknown>(
    module: string,
    fn: string,
    args: unknown[] = [],
    options: RemoteCallOptions = {},
  ): Promise<GroupMulticallResult<R>> {
    await this.#ready;
    const members = [...this.#members.values()];
    const settled = await Promise.allSettled(
      members.map((m) => this.#attempt(m, () => m.remote.call<R>(module, fn, args, options))),
    );
    const result: GroupMulticallResult<R> = { good: [], bad: [] };
    settled.forEach((s, i) => {
      const nodeId = members[i]!.nodeId;
      if (s.status === 'fulfilled') result.good.push({ nodeId, value: s.value });
      else result.bad.push({ nodeId, error: s.reason });
    });
    return result;
  }

  /** The GenServer registered as `name` on the members, exposed under the group's mission: `call`, `cast`. */
  genServer(name: string): GroupBehaviourClient<'gen_server'> {
    return this.behaviour('gen_server', name);
  }

  /** The GenStatem registered as `name` on the members. */
  genStatem(name: string): GroupBehaviourClient<'gen_statem'> {
    return this.behaviour('gen_statem', name);
  }

  /** The GenFsm registered as `name` on the members. */
  genFsm(name: string): GroupBehaviourClient<'gen_fsm'> {
    return this.behaviour('gen_fsm', name);
  }

  /** The GenEvent manager registered as `name` on the members. */
  genEvent(name: string): GroupBehaviourClient<'gen_event'> {
    return this.behaviour('gen_event', name);
  }

  /** The Supervisor registered as `name` on the members. */
  supervisor(name: string): GroupBehaviourClient<'supervisor'> {
    return this.behaviour('supervisor', name);
  }

  /**
   * A behaviour of kind `kind` registered as `name` on the members, under
   * the group's mission: each operation picks a member and fails over like
   * {@link call} (a maybe-ran one only with `{ idempotent: true }`).
   */
  behaviour<K extends BehaviourKind>(kind: K, name: string): GroupBehaviourClient<K> {
    const client: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
    for (const [op, spec] of Object.entries(BEHAVIOUR_OP_TABLE[kind]) as [string, BehaviourOp][]) {
      const method = camelCase(op);
      client[method] = (...given: unknown[]) => {
        const options = ((given.length > spec.arity ? given[spec.arity] : undefined) ?? {}) as GroupCallOptions;
        const args = given.slice(0, spec.arity);
        return this.#run(
          (r, o) => {
            const remote = r.behaviour(kind, this.mission, name) as unknown as Record<
              string,
              (...a: unknown[]) => Promise<unknown>
            >;
            return remote[method]!(...args, o);
          },
          options,
          () => options.idempotent === true,
        );
      };
    }
    return client as GroupBehaviourClient<K>;
  }

  /** Stops probing and listening to the directory; later calls fail with `ERR_NO_MEMBERS`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ticker.cancel();
    this.#host.offDirectory('nodeup', this.#nodeup);
    this.#host.offDirectory('nodedown', this.#nodedown);
    this.#members.clear();
    this.#pending.clear();
  }

  // ------------------------------------------------------------ membership

  /** @internal A remote the node just made: a candidate. */
  _offer(remote: RemoteNode): void {
    void this.#weigh(remote);
  }

  /** @internal The node joined a proxy (or had when the group was made): its directory is a source of candidates. */
  async _attachDirectory(): Promise<void> {
    if (this.#closed || this.#directoryOn || this.#options.directory === false) return;
    const entries = this.#host.directory();
    if (entries === undefined) return;
    this.#directoryOn = true;
    this.#host.onDirectory('nodeup', this.#nodeup);
    this.#host.onDirectory('nodedown', this.#nodedown);
    await Promise.all(entries.map((e) => this.#fromDirectory(e)));
  }

  /** @internal The node leaves its proxy: the directory is no longer a source (until it joins one again). */
  _detachDirectory(): void {
    this.#directoryOn = false;
    this.#host.offDirectory('nodeup', this.#nodeup);
    this.#host.offDirectory('nodedown', this.#nodedown);
    this.#viaDirectory.clear();
  }

  readonly #nodeup = (entry: DirectoryEntry): void => void this.#fromDirectory(entry);

  readonly #nodedown = (entry: DirectoryEntry): void => {
    const member = this.#members.get(entry.id);
    if (member !== undefined && member.via === 'proxy') {
      this.#leave(member);
      // Its calls are taken back: those the proxy still held did not run, and move to another member.
      for (const call of member.calls) call.abort(new WtdError('ERR_NODE_DOWN', `node ${entry.id} went down`));
    }
    for (const r of this.#pending) if (r.nodeId === entry.id && r.via === 'proxy') this.#pending.delete(r);
  };

  /** A directory entry that advertises the mission, reached through the proxy under this node's own key. */
  async #fromDirectory(entry: DirectoryEntry): Promise<void> {
    if (this.#closed || entry.id === this.#host.id || !entry.missions.includes(this.mission)) return;
    if (entry.publicJwk === undefined || this.#members.has(entry.id)) return;
    const known = this.#viaDirectory.get(entry.id);
    if (known !== undefined) return this.#probe(known);
    try {
      // The proxy says whose key it is; the id, a fingerprint of the key, must agree.
      if (shortId((await importPublic(entry.publicJwk)).thumbprint) !== entry.id) return;
      if (this.#viaDirectory.has(entry.id)) return;
      const remote = await this.#host.connect({ nodeKey: entry.publicJwk }, { via: 'proxy' });
      this.#viaDirectory.set(entry.id, remote);
      await this.#weigh(remote);
    } catch (err) {
      this.#host.logger.error(
        `group ${this.mission}: node ${entry.id} of the directory was not weighed: ${String(err)}`,
      );
    }
  }

  /** Probes a candidate once: a member if its grant covers the mission; probed again later if it could not answer. */
  #weigh(remote: RemoteNode): Promise<void> {
    if (this.#closed) return Promise.resolve();
    let weighed = this.#seen.get(remote);
    if (weighed === undefined) {
      const named = remote.missions;
      weighed = named !== undefined && !named.includes(this.mission) ? Promise.resolve() : this.#probe(remote);
      this.#seen.set(remote, weighed);
    }
    return weighed;
  }

  async #probe(remote: RemoteNode): Promise<void> {
    const member = (): Member | undefined => {
      const m = this.#members.get(remote.nodeId);
      return m?.remote === remote ? m : undefined;
    };
    const startedAt = this.#host.wallClock.now();
    try {
      const report = await remote.probe({ timeout: this.#options.probeEveryMs ?? 1000 });
      this.#pending.delete(remote);
      if (this.#closed) return;
      const rtt = this.#host.wallClock.now() - startedAt;
      if (report.missions.includes(this.mission)) this.#admit(remote, report.busy, rtt);
      else if (member() !== undefined) this.#leave(member()!);
    } catch (err) {
      if (this.#closed) return;
      const code = err instanceof WtdError ? err.code : '';
      const known = member();
      if (NOT_A_MEMBER.has(code)) {
        this.#pending.delete(remote);
        if (known !== undefined) this.#leave(known);
      } else if (known === undefined) {
        this.#pending.add(remote); // down, busy or over its rate: asked again at the next tick
      } else if (TRANSPORT.has(code)) {
        this.#sideline(known);
      }
    }
  }

  #admit(remote: RemoteNode, load: number, rtt: number): void {
    const known = this.#members.get(remote.nodeId);
    if (known !== undefined && known.remote !== remote) return; // one member per node: the first verified way stays
    if (known !== undefined) {
      known.load = load;
      if (known.state === 'sidelined') {
        known.state = 'up';
        this.#emit('member_up', known);
      }
      return;
    }
    const member = new Member(remote);
    member.load = load;
    member.latencyMs = Math.max(rtt, 0);
    this.#members.set(remote.nodeId, member);
    this.#emit('member_up', member);
  }

  #leave(member: Member): void {
    if (this.#members.get(member.nodeId) !== member) return;
    this.#members.delete(member.nodeId);
    member.state = 'left';
    this.#emit('member_down', member);
  }

  #sideline(member: Member): void {
    if (member.state !== 'up') return;
    member.state = 'sidelined';
    this.#emit('member_down', member);
  }

  /** Every tick: sidelined members and waiting candidates are probed; members up have their load read again. */
  async #tick(): Promise<void> {
    if (this.#closed) return;
    const probes = [...this.#pending].map((r) => this.#probe(r));
    for (const m of this.#members.values()) probes.push(this.#probe(m.remote));
    await Promise.all(probes);
  }

  #emit(event: 'member_up' | 'member_down', member: Member): void {
    const seen = snapshot(member);
    for (const l of this.#listeners[event]) {
      try {
        l(seen);
      } catch (err) {
        this.#host.logger.error(`group ${this.mission}: a ${event} listener threw: ${String(err)}`);
      }
    }
  }

  // ------------------------------------------------------------ calls

  /** Whether `module.fn` may run twice by its `@WtdExport` in this node's own mission table (the same class loaded here). */
  #idempotent(module: string, fn: string): boolean {
    const found = this.#host.missions.lookupFunction(module, fn);
    const own = found.find((f) => f.mission === this.mission) ?? found[0];
    return own?.idempotent === true;
  }

  /** One attempt on one member: counted in flight; a refusal of its grant or a transport error acts on the member. */
  async #attempt<T>(member: Member, send: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const clock = this.#host.wallClock;
    const startedAt = clock.now();
    const call = new AbortController();
    member.calls.add(call);
    member.inFlight++;
    try {
      const value = await send(signal === undefined ? call.signal : AbortSignal.any([signal, call.signal]));
      member.observe(clock.now() - startedAt);
      return value;
    } catch (err) {
      const code = err instanceof WtdError ? err.code : undefined;
      if (code !== undefined && GRANT_ENDED.has(code)) this.#leave(member);
      else if (code !== undefined && TRANSPORT.has(code)) this.#sideline(member);
      throw err;
    } finally {
      member.inFlight--;
      member.calls.delete(call);
    }
  }

  /** Picks a member not tried yet among those up: by key, else by the group's strategy. */
  #pick(key: string | undefined, tried: Set<Member>): Member | undefined {
    const up = [...this.#members.values()].filter((m) => m.state === 'up' && !tried.has(m));
    if (key !== undefined) return rendezvous(up, key);
    return this.#options.pick === 'round-robin' ? this.#roundRobin.pick(up) : leastBusy(up);
  }

  async #run(
    send: (remote: RemoteNode, options: RemoteCallOptions) => Promise<unknown>,
    options: GroupCallOptions,
    mayRepeat: (remote: RemoteNode) => boolean,
  ): Promise<unknown> {
    const timeout = options.timeout ?? 5000;
    if (!(timeout > 0)) throw new RangeError(`timeout must be a number of ms > 0, got ${String(timeout)}`);
    const clock = this.#host.wallClock;
    const deadline = clock.now() + timeout;
    await this.#ready;
    this.#tokens = Math.min(this.#maxTokens, this.#tokens + this.#ratio);
    const { key: _key, ...callOptions } = options;
    const tried = new Set<Member>();
    let last: unknown;
    for (;;) {
      const member = this.#closed ? undefined : this.#pick(options.key, tried);
      if (member === undefined) throw last ?? this.#noMembers();
      const left = deadline - clock.now();
      if (left <= 0) throw last ?? new CallTimeoutError(`group ${this.mission}`, timeout);
      if (last !== undefined) {
        if (this.#tokens < 1) throw last;
        this.#tokens -= 1;
      }
      tried.add(member);
      try {
        return await this.#attempt(
          member,
          (signal) => send(member.remote, { ...callOptions, timeout: left, signal }),
          options.signal,
        );
      } catch (err) {
        last = err;
        const outcome = outcomeOf(err);
        if (!(err instanceof WtdError) || outcome === 'ran') throw err;
        if (outcome === 'maybe_ran' && !mayRepeat(member.remote)) throw err;
        // Given up by the caller: no other member is tried. Given up by the group (its node went down): moved.
        if (err.code === 'ERR_CALL_CANCELLED' && options.signal?.aborted !== true) continue;
        if (CALLERS_FAULT.has(err.code)) throw err;
      }
    }
  }

  #noMembers(): WtdError {
    const sidelined = [...this.#members.values()].filter((m) => m.state === 'sidelined').length;
    return new WtdError(
      'ERR_NO_MEMBERS',
      this.#closed
        ? `the group of mission ${this.mission} is closed`
        : `no node takes calls for mission ${this.mission} now` +
            (sidelined > 0
              ? ` (${sidelined} cannot be reached and are probed every ${this.#options.probeEveryMs ?? 1000} ms)`
              : ': connect to a node that granted it, or join the proxy it is on'),
    );
  }
}
