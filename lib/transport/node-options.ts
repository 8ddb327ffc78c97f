import type { WallClock } from '../runtime/clock.js';
import type { NodeOptions } from '../runtime/node.js';
import type { GrantStore } from '../security/grant-store.js';
import type { SessionLimits } from '../security/sessions.js';
import type { OutboxLimits } from './outbox.js';
import type { ServerLimits } from './server.js';

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
   * How much may wait for one grantee's pids (messages this node sends
   * them, until the grantee takes them). Over it messages are dropped and
   * counted (see {@link WtdNode.outboxStats}).
   */
  outbox?: Partial<OutboxLimits>;
  /**
   * Most monitors one peer may hold on this node's processes (more:
   * refused, `ERR_TOO_MANY_MONITORS`), and this node on one peer's (more:
   * `monitor` throws `ERR_TOO_MANY_MONITORS`). Default 1000.
   */
  maxMonitorsPerPeer?: number;
  /**
   * How long a node this one called directly may fail to answer its polls
   * before monitors of it and of its processes fire (`nodedown`,
   * `'noconnection'`), in ms. Default 3000.
   */
  peerDownAfterMs?: number;
  /**
   * Whether requests travel in sessions, encrypted end to end (default
   * true): a grant's first request to a node, signed with the grant's key,
   * agrees on keys with it, and every later request and reply is sealed
   * (AES-256-GCM): a proxy that relays them sees who talks to whom and how
   * much, never what. `false` is for debugging only: every request is then
   * signed and sent in the clear, the node says so in its log, the
   * observer and its proxy's status page, and it refuses nothing for
   * coming outside a session; a node with encryption on takes nothing
   * from it but the first request of a session (`ERR_SESSION_REQUIRED`).
   */
  encryption?: boolean;
  /**
   * How long the event loop keeps turning, instead of sleeping, after this
   * node sent a call or a request, got an answer or a line of its proxy's,
   * or answered a call that passed every check, in ms (as Erlang's
   * schedulers busy-wait): what comes within that time is read as it lands,
   * without a wake-up of the process. Costs up to that much of a core after
   * each burst of such activity, never more than twice the time the loop
   * worked lately; refused requests do not count; an idle node waits only
   * after its keep-alive lines to its proxy. The process waits for the
   * longest of its nodes' and proxies'. Default 0.5; 0 turns it off (a machine on a battery, say); at
   * most 100.
   */
  busyWaitMs?: number;
  /** Lifetime, budget and bounds of the sessions callers make with this node. */
  sessions?: Partial<SessionLimits>;
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
