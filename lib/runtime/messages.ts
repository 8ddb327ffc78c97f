import type { Pid, Ref } from './pid.js';

/**
 * What `receive` resolves to when its timeout passes with no matching message
 * (Erlang's `after` clause).
 *
 * @example
 * ```ts
 * const msg = await self.receive(undefined, 1000);
 * if (msg === TIMEOUT) console.log('nothing within a second');
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 */
export const TIMEOUT: unique symbol = Symbol('wtd.timeout');

/**
 * The type of {@link TIMEOUT}.
 *
 * @example
 * ```ts
 * const msg = await self.receive(undefined, 1000);
 * if (msg === TIMEOUT) console.log('nothing within a second');
 * ```
 */
export type Timeout = typeof TIMEOUT;

/**
 * The message a process that traps exits receives in place of an exit signal
 * (Erlang's `{'EXIT', From, Reason}`).
 *
 * @example
 * ```ts
 * self.trapExit(true);
 * const msg = await self.receive();
 * if (isExit(msg)) console.log(`${msg.from} exited: ${formatReason(msg.reason)}`);
 * ```
 */
export class ExitMessage {
  /** Always `'EXIT'`, for matching without `instanceof`. */
  readonly tag = 'EXIT' as const;
  /** The process the signal came from. */
  readonly from: Pid;
  /** Why it exited, or the reason given to `exit(pid, reason)`. */
  readonly reason: unknown;
  constructor(from: Pid, reason: unknown) {
    this.from = from;
    this.reason = reason;
  }
}

/**
 * A process named as it was monitored: by its registered name on a node
 * (OTP's `{Name, Node}`). A {@link DownMessage} for a monitor set by name
 * carries this instead of a pid.
 *
 * @example
 * ```ts
 * const ref = self.monitor('db');
 * const down = await self.receive((m) => isDown(m, ref));
 * down.pid; // => { name: 'db', node: 'alice' }
 * ```
 */
export interface RegisteredName {
  name: string;
  node: string;
}

/**
 * The message a monitoring process receives when the monitored process exits
 * (Erlang's `{'DOWN', Ref, process, Pid, Reason}`). The reason is `'noproc'`
 * when the process was already dead when the monitor was set.
 *
 * @example
 * ```ts
 * const ref = self.monitor(worker);
 * const msg = await self.receive((m) => isDown(m, ref));
 * if (isDown(msg)) console.log(formatReason(msg.reason));
 * ```
 */
export class DownMessage {
  /** Always `'DOWN'`, for matching without `instanceof`. */
  readonly tag = 'DOWN' as const;
  /** The reference `monitor` returned. */
  readonly ref: Ref;
  /** The process that exited: its pid, or `{ name, node }` when it was monitored by name. */
  readonly pid: Pid | RegisteredName;
  /** Why it exited. */
  readonly reason: unknown;
  constructor(ref: Ref, pid: Pid | RegisteredName, reason: unknown) {
    this.ref = ref;
    this.pid = pid;
    this.reason = reason;
  }
}

/**
 * True for an {@link ExitMessage}, optionally only one from `from`.
 *
 * @example
 * ```ts
 * const msg = await self.receive();
 * if (isExit(msg, child)) console.log('the child exited');
 * ```
 */
export function isExit(msg: unknown, from?: Pid): msg is ExitMessage {
  return msg instanceof ExitMessage && (from === undefined || msg.from.equals(from));
}

/**
 * True for a {@link DownMessage}, optionally only the one for `ref`.
 *
 * @example
 * ```ts
 * const ref = self.monitor(worker);
 * await self.receive((m) => isDown(m, ref)); // waits for the worker's DOWN
 * ```
 */
export function isDown(msg: unknown, ref?: Ref): msg is DownMessage {
  return msg instanceof DownMessage && (ref === undefined || msg.ref === ref);
}

/**
 * What a process that called `self.monitorNode(nodeId)` (or for which
 * `node.monitorNode(nodeId, pid)` was called) receives when that node goes
 * down: the proxy's directory says so (silent for its `downAfterMs`, or
 * restarted), or this node could not reach it for `peerDownAfterMs`
 * (OTP's `{nodedown, Node}`). Each monitor of a node fires once.
 *
 * @example
 * ```ts
 * self.monitorNode(aliceId);
 * const msg = await self.receive(isNodeDown);
 * console.log(`node ${msg.node} went down`);
 * ```
 */
export class NodeDownMessage {
  /** Always `'nodedown'`, for matching without `instanceof`. */
  readonly tag = 'nodedown' as const;
  /** The id of the node that went down. */
  readonly node: string;
  /** The reference `monitorNode` returned. */
  readonly ref: Ref;
  constructor(node: string, ref: Ref) {
    this.node = node;
    this.ref = ref;
  }
}

/**
 * True for a {@link NodeDownMessage}, optionally only one about node `nodeId`.
 *
 * @example
 * ```ts
 * self.monitorNode(aliceId);
 * await self.receive((m) => isNodeDown(m, aliceId));
 * ```
 */
export function isNodeDown(msg: unknown, nodeId?: string): msg is NodeDownMessage {
  return msg instanceof NodeDownMessage && (nodeId === undefined || msg.node === nodeId);
}
