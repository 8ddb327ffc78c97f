import type { ConnectionLimits } from '../security/connection-guard.js';
import { MESSAGE_TTL_S } from '../wire/claims.js';
import type { Logger } from '../runtime/node.js';
import type { WallClock } from '../runtime/clock.js';

const MiB = 1024 * 1024;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Options for {@link WtdProxy.start}. Every bound of what a registration
 * can make the proxy hold is one of them; the defaults suit a small machine
 * (a Raspberry Pi: a few hundred MB of memory, an SD card).
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
  /** Most messages waiting for one node (`ERR_PROXY_QUEUE_FULL`). Default 1000. */
  maxQueue?: number;
  /** Most bytes waiting for one node (`ERR_PROXY_QUEUE_FULL`). Default 16 MiB. */
  maxQueueBytes?: number;
  /**
   * The part of one node's queue (of `maxQueue` and of `maxQueueBytes`)
   * that the requests signed under one key id may hold
   * (`ERR_PROXY_SENDER_LIMIT`), so that one grantee cannot fill it for the
   * others. Default 0.1.
   */
  senderShare?: number;
  /**
   * Most bytes one node's messages may hold at the proxy, delivered or not,
   * until they expire (`ERR_PROXY_SENDER_LIMIT`). Default 16 MiB.
   */
  maxSenderBytes?: number;
  /** Most bytes of messages the proxy holds in all (`ERR_PROXY_FULL`). Default 256 MiB. */
  maxQueuedBytes?: number;
  /** Largest relayed message, in bytes (`ERR_PROXY_TOO_LARGE`). Default 64 KiB. */
  maxMessageBytes?: number;
  /** Largest request body, in bytes. Default 1 MiB. */
  maxBodyBytes?: number;
  /** How long a message waits for an offline node, in ms. Default 60 s. */
  messageTtlMs?: number;
  /** Most polls held at once, for all nodes. Default 1000. */
  maxPolls?: number;
  /** How long a poll is held when there is nothing to deliver, in ms. Default 20 s. */
  pollHoldMs?: number;
  /**
   * A node silent (no ping) for longer than this is listed as suspect
   * (`status: 'suspect'`, still online: calls may still reach it), in ms.
   * Default 2 s.
   */
  suspectAfterMs?: number;
  /** A node silent for longer than this is down (offline: `nodedown` for every node that reads the directory), in ms. Default 3 s. */
  downAfterMs?: number;
  /** @deprecated The name `downAfterMs` had before; read when `downAfterMs` is not given. */
  offlineAfterMs?: number;
  /** Most registered nodes (`ERR_PROXY_FULL` for a new key). Default 10,000. */
  maxNodes?: number;
  /** Most nodes registered from one IPv4 address or IPv6 /64 (`ERR_PROXY_FULL` for a new key). Default 32. */
  maxNodesPerSource?: number;
  /** A registration not seen (no ping) for this long is removed, with its queue, in ms. Default 30 days. */
  forgetAfterMs?: number;
  /** Most missions one ping may offer (`ERR_PROXY_TOO_LARGE`). Default 64. */
  maxMissions?: number;
  /** Most key ids one ping may say its node accepts (`ERR_PROXY_TOO_LARGE`). Default 256. */
  maxAccepts?: number;
  /** Most bytes of one ping's body (`ERR_PROXY_TOO_LARGE`). Default 32 KiB. */
  maxPingBytes?: number;
  /** Most directory entries in one ping's answer (more follow on the next). Default 100. */
  directoryPage?: number;
  /** Most expired messages dropped in one commit of the sweep. Default 1000. */
  sweepBatch?: number;
  /**
   * Connection bounds ({@link ConnectionLimits}). Defaults: `maxPolls` + 512
   * connections in all, 32 per source (which bounds the polls one address
   * can hold), headers in 5 s, a whole request in 10 s (a held poll's
   * waiting does not count: its request is in), 5 s idle between requests.
   */
  connections?: Partial<ConnectionLimits>;
  /**
   * How long the event loop keeps turning, instead of sleeping, after the
   * proxy relayed a message on a stream, in ms (as Erlang's schedulers
   * busy-wait): the answer, which usually follows within that time, is read
   * as it lands. Costs up to that much of a core after each burst of
   * relaying, never more than twice the time the loop worked lately,
   * nothing while idle; lines that relay nothing (refused, or keeping a
   * stream) do not count. Default 0.5; 0 turns it off; at most
   * 100.
   */
  busyWaitMs?: number;
  /** Where the proxy reports what went wrong (throttled: at most 10 lines of a kind a minute). Default: the console. */
  logger?: Logger;
  /** The time of day for signatures, holds, TTLs and who is online. Default: the system's. */
  wallClock?: WallClock;
}

/** Every bound and time of a proxy, defaults filled in. */
export type ResolvedOptions = Required<
  Omit<
    ProxyOptions,
    'logger' | 'dataDir' | 'port' | 'host' | 'wallClock' | 'connections' | 'offlineAfterMs' | 'busyWaitMs'
  >
>;

/** The defaults, in one place: sized for a small machine (a few hundred MB of memory, an SD card). */
export const PROXY_DEFAULTS: Readonly<ResolvedOptions> = Object.freeze({
  maxQueue: 1000,
  maxQueueBytes: 16 * MiB,
  senderShare: 0.1,
  maxSenderBytes: 16 * MiB,
  maxQueuedBytes: 256 * MiB,
  maxMessageBytes: 64 * 1024,
  maxBodyBytes: MiB,
  messageTtlMs: MESSAGE_TTL_S * 1000,
  maxPolls: 1000,
  pollHoldMs: 20_000,
  suspectAfterMs: 2000,
  downAfterMs: 3000,
  maxNodes: 10_000,
  maxNodesPerSource: 32,
  forgetAfterMs: 30 * DAY_MS,
  maxMissions: 64,
  maxAccepts: 256,
  maxPingBytes: 32 * 1024,
  directoryPage: 100,
  sweepBatch: 1000,
});

/** `options` with the defaults filled in; a bound that is not a positive number is a RangeError. */
export function resolveOptions(options: ProxyOptions): ResolvedOptions {
  const resolved = { ...PROXY_DEFAULTS };
  for (const name of Object.keys(PROXY_DEFAULTS) as (keyof ResolvedOptions)[]) {
    const value = name === 'downAfterMs' ? (options.downAfterMs ?? options.offlineAfterMs) : options[name];
    if (value === undefined) continue;
    if (!(typeof value === 'number' && value > 0) || (name === 'senderShare' && value > 1)) {
      throw new RangeError(
        `WtdProxy.start: ${name} must be a positive number${name === 'senderShare' ? ' up to 1' : ''}, got ${String(value)}`,
      );
    }
    resolved[name] = value;
  }
  return resolved;
}
