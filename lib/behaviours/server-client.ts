import type { Node } from '../runtime/node.js';
import type { Pid, Ref } from '../runtime/pid.js';
import { Process } from '../runtime/process.js';
import { call, DEFAULT_CALL_TIMEOUT, startBehaviour, type StartOptions } from './gen.js';
import type { GenServer } from './gen-server.js';
import { CallRequest } from './server-messages.js';

/**
 * Starts a GenServer unlinked, monitored by `watcher` (OTP's
 * `gen_server:start_monitor`; also `GenServer.startMonitor`): resolves with
 * its pid and the monitor's reference, so `watcher` gets a `DownMessage`
 * when it exits. A failed `init` rejects, as `start` does.
 *
 * @example
 * ```ts
 * const { pid, ref } = await GenServer.startMonitor(self, new Counter(), 0);
 * await GenServer.stop(pid);
 * await self.receive((m) => isDown(m, ref)); // its DOWN, reason 'normal'
 * ```
 */
export async function startMonitor(
  watcher: Process,
  impl: GenServer<any, any, any, any>,
  arg?: unknown,
  options?: StartOptions,
): Promise<{ pid: Pid; ref: Ref }> {
  if (!(watcher instanceof Process)) {
    throw new TypeError(
      `startMonitor(watcher, ...) expects the watching Process (self), got ${typeof watcher}; a monitor reports to a process`,
    );
  }
  const pid = await startBehaviour(watcher.node, impl, arg, options, false);
  return { pid, ref: watcher.monitor(pid) };
}

/**
 * The answer of `GenServer.multiCall`: the replies by node name, and
 * the nodes where the server did not answer (OTP's `{Replies, BadNodes}`).
 *
 * @example
 * ```ts
 * const { replies, badNodes } = await GenServer.multiCall([alice, bob], 'counter', 'get');
 * // replies: [['alice', 3]], badNodes: ['bob']
 * ```
 */
export interface MultiCallResult<R = unknown> {
  replies: [string, R][];
  badNodes: string[];
}

/**
 * Calls the server registered as `name` on each of `nodes` at once (OTP's
 * `gen_server:multi_call`; also `GenServer.multiCall`) and resolves when all
 * have answered or `timeout` passed: the replies by node name, and the
 * nodes that gave none (not running there, crashed, or too slow).
 *
 * @example
 * ```ts
 * const { replies, badNodes } = await GenServer.multiCall([alice, bob], 'counter', 'get');
 * ```
 */
export async function multiCall<R = unknown>(
  nodes: readonly Node[],
  name: string,
  request: unknown,
  timeout: number = DEFAULT_CALL_TIMEOUT,
): Promise<MultiCallResult<R>> {
  if (!Array.isArray(nodes))
    throw new TypeError(`multiCall(nodes, ...) expects an array of Nodes, got ${typeof nodes}`);
  if (typeof name !== 'string') throw new TypeError(`multiCall(nodes, name, ...) expects a name, got ${typeof name}`);
  const settled = await Promise.allSettled(
    nodes.map((node) => call({ node, name }, (from) => new CallRequest(request, from), timeout)),
  );
  const result: MultiCallResult<R> = { replies: [], badNodes: [] };
  settled.forEach((s, i) => {
    if (s.status === 'fulfilled') result.replies.push([nodes[i]!.name, s.value as R]);
    else result.badNodes.push(nodes[i]!.name);
  });
  return result;
}
