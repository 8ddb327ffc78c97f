/**
 * OTP's `sys` module for WTD behaviours: look at a running server's state,
 * replace it, or read its status, between two of its callbacks. Meant for
 * debugging and tools such as the observer, not for everyday requests.
 * @module
 */
import type { Pid } from '../runtime/pid.js';
import { call, DEFAULT_CALL_TIMEOUT, type CallSlot, type ServerRef } from './gen.js';

/** @internal A system message: handled by every behaviour between callbacks, never by user code. */
export class SystemRequest {
  constructor(
    readonly op: 'getState' | 'replaceState' | 'getStatus',
    readonly from: CallSlot,
    readonly replace?: (state: unknown) => unknown,
  ) {}
}

/** @internal A `replaceState` function that threw: the server keeps its state, the caller gets the error. */
export class SysFailure {
  constructor(readonly error: unknown) {}
}

/**
 * What {@link Sys.getStatus} reports (OTP's `sys:get_status`, as an object).
 *
 * @example
 * ```ts
 * const status: ServerStatus = await Sys.getStatus(counter);
 * status.behaviour; // 'gen_server'
 * status.state; // the server's state
 * ```
 */
export interface ServerStatus {
  pid: Pid;
  /** Its registered name, if any. */
  name: string | undefined;
  /** `'gen_server'`, `'supervisor'`, `'gen_event'`, `'gen_fsm'` or `'gen_statem'`. */
  behaviour: string;
  /** The user's class name. */
  module: string;
  /** Always `'running'`: a server answers only between callbacks (OTP's suspended state does not exist in WTD). */
  status: 'running';
  /** The process it was started linked to, if any. */
  parent: Pid | undefined;
  messageQueueLength: number;
  /** The behaviour's state: a GenServer's state, `{ name, data }` for a GenFsm or GenStatem, the supervisor's or manager's own. */
  state: unknown;
}

/**
 * @internal Answers a system request inside the server: `state` is the
 * behaviour's state, `replace` stores a new one, `status` the rest of what
 * `getStatus` reports.
 */
export function answerSystem(
  req: SystemRequest,
  state: unknown,
  replace: (next: unknown) => void,
  status: Omit<ServerStatus, 'state' | 'status'>,
): void {
  if (req.op === 'getState') {
    req.from._reply(state);
  } else if (req.op === 'replaceState') {
    let next: unknown;
    try {
      next = req.replace!(state);
    } catch (err) {
      req.from._reply(new SysFailure(err));
      return;
    }
    replace(next);
    req.from._reply(next);
  } else {
    req.from._reply({ ...status, status: 'running', state });
  }
}

async function sysCall(ref: ServerRef, make: (from: CallSlot) => SystemRequest, timeout: number): Promise<unknown> {
  const answer = await call(ref, make, timeout);
  if (answer instanceof SysFailure) throw answer.error;
  return answer;
}

/**
 * Introspection for any running behaviour (OTP's `sys:get_state/1`,
 * `sys:replace_state/2`, `sys:get_status/1`). Each is a request the process
 * answers between callbacks, so it waits behind messages already queued.
 *
 * @example
 * ```ts
 * const pid = await GenServer.start(node, new Stack(), ['a']);
 * await Sys.getState(pid); // => ['a']
 * await Sys.replaceState(pid, (s) => [...(s as string[]), 'b']); // => ['a', 'b']
 * (await Sys.getStatus(pid)).module; // => 'Stack'
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 */
export class Sys {
  /** The behaviour's current state. */
  static getState<S = unknown>(ref: ServerRef, timeout: number = DEFAULT_CALL_TIMEOUT): Promise<S> {
    return sysCall(ref, (from) => new SystemRequest('getState', from), timeout) as Promise<S>;
  }

  /**
   * Replaces the state with what `replace(state)` returns, and resolves with
   * it. If `replace` throws, the state stays and this rejects with that error.
   */
  static replaceState<S = unknown>(
    ref: ServerRef,
    replace: (state: S) => S,
    timeout: number = DEFAULT_CALL_TIMEOUT,
  ): Promise<S> {
    if (typeof replace !== 'function') {
      return Promise.reject(new TypeError(`replaceState(ref, replace) expects a function, got ${typeof replace}`));
    }
    return sysCall(
      ref,
      (from) => new SystemRequest('replaceState', from, replace as (s: unknown) => unknown),
      timeout,
    ) as Promise<S>;
  }

  /** The process, its behaviour and module, and its state. */
  static getStatus(ref: ServerRef, timeout: number = DEFAULT_CALL_TIMEOUT): Promise<ServerStatus> {
    return sysCall(ref, (from) => new SystemRequest('getStatus', from), timeout) as Promise<ServerStatus>;
  }
}
