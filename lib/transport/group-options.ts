import type { BehaviourKind, BehaviourOp, BEHAVIOUR_OP_TABLE, CamelCase } from '../missions/behaviour-ops.js';
import type { MissionTable } from '../missions/mission-table.js';
import type { WallClock } from '../runtime/clock.js';
import type { Logger } from '../runtime/node.js';
import type { DirectoryEntry } from '../wire/relay.js';
import type { ConnectOptions, ConnectTarget } from './connect.js';
import type { ContactCard } from './contact-card.js';
import type { GrantFile } from './grant-issuer.js';
import type { PickStrategy } from './group-pick.js';
import type { RemoteCallOptions, RemoteNode } from './remote-node.js';

/**
 * Options of {@link WtdNode.group}.
 *
 * @example
 * ```ts
 * const maths = bob.group('maths', { members: [aliceGrant, carolGrant], pick: 'round-robin' });
 * ```
 */
export interface GroupOptions {
  /** How a call with no `key` picks its member. Default `'least-busy'`. */
  pick?: PickStrategy;
  /**
   * More candidates, connected to when the group is made: grant files, or
   * nodes that granted this node's key. Every node this node connected to
   * (with {@link WtdNode.connect}) is a candidate too.
   */
  members?: (GrantFile | ConnectTarget | ContactCard)[];
  /** Take candidates from the directory of the proxy this node joined (reached with this node's key). Default true. */
  directory?: boolean;
  /** How often a sidelined member or a candidate not yet verified is probed, in ms. Default 1000. */
  probeEveryMs?: number;
  /**
   * The retry budget, a token bucket: each call adds `ratio` of a token,
   * each retry on another member spends one, at most `max` are kept (and
   * the bucket starts full). Default `{ ratio: 0.1, max: 20 }`.
   */
  retryBudget?: { ratio?: number; max?: number };
}

/**
 * Options of a group's call: those of {@link RemoteCallOptions} (`timeout`
 * is the one deadline every attempt shares), and `key`, which sends calls
 * with the same key to the same member (rendezvous hashing).
 *
 * @example
 * ```ts
 * await group.call('Cache', 'get', ['user:42'], { key: 'user:42', timeout: 2000 });
 * ```
 */
export interface GroupCallOptions extends RemoteCallOptions {
  /** Calls with the same key go to the same member while it stays a member. */
  key?: string;
}

/**
 * The client of a behaviour on a group's members: each operation of
 * `BEHAVIOUR_OP_TABLE[K]`, in camelCase, taking its arguments and optional
 * {@link GroupCallOptions}; each picks a member and fails over like a call.
 *
 * @example
 * ```ts
 * const desk: GroupBehaviourClient<'gen_server'> = group.genServer('desk');
 * await desk.call('next', { key: 'user:42' });
 * ```
 */
export type GroupBehaviourClient<K extends BehaviourKind> = {
  [
    Op in keyof (typeof BEHAVIOUR_OP_TABLE)[K] & string as CamelCase<Op>
  ]: (typeof BEHAVIOUR_OP_TABLE)[K][Op] extends BehaviourOp<infer A, infer R>
    ? (...args: [...A, options?: GroupCallOptions]) => Promise<R>
    : never;
};

/**
 * A member of a {@link MissionGroup} as the group sees it now.
 *
 * @example
 * ```ts
 * group.on('member_down', (m: GroupMember) => console.log(m.nodeId, m.state)); // 'sidelined' or 'left'
 * ```
 */
export interface GroupMember {
  /** The member's node id. */
  readonly nodeId: string;
  /** How its calls go: straight to its address, or through the proxy. */
  readonly via: 'direct' | 'proxy';
  /** This node's calls to it in flight now. */
  readonly inFlight: number;
  /** The requests it reported running or waiting at its last probe. */
  readonly load: number;
  /**
   * Its answers' recent round trip, in ms (what least-busy picking weighs
   * calls in flight by): a slower answer counts at once, faster ones bring
   * it down by a fifth of the difference each.
   */
  readonly latencyMs: number;
  /**
   * `'up'` (takes calls), `'sidelined'` (a transport error: no new calls
   * until a probe passes), `'left'` (its grant ended or was refused).
   */
  readonly state: 'up' | 'sidelined' | 'left';
}

/**
 * The answer of {@link MissionGroup.multicall}: each member's result or
 * error (OTP `rpc:multicall`'s good and bad replies).
 *
 * @example
 * ```ts
 * const { good, bad }: GroupMulticallResult<number> = await group.multicall('Stats', 'count', []);
 * ```
 */
export interface GroupMulticallResult<R = unknown> {
  good: { nodeId: string; value: R }[];
  bad: { nodeId: string; error: unknown }[];
}

/** @internal What a group needs of its node. */
export interface GroupHost {
  readonly id: string;
  readonly wallClock: WallClock;
  readonly missions: MissionTable;
  readonly logger: Logger;
  /** The remotes the node made so far. */
  remotes(): Iterable<RemoteNode>;
  connect(target: GrantFile | ConnectTarget | ContactCard, options?: ConnectOptions): Promise<RemoteNode>;
  /** The proxy directory, or undefined when the node joined none. */
  directory(): DirectoryEntry[] | undefined;
  onDirectory(event: 'nodeup' | 'nodedown', listener: (e: DirectoryEntry) => void): void;
  offDirectory(event: 'nodeup' | 'nodedown', listener: (e: DirectoryEntry) => void): void;
}
