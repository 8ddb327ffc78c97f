import type { Pid } from '../runtime/pid.js';
import { noteSelf, type Process } from '../runtime/process.js';
import {
  DEFAULT_CALL_TIMEOUT,
  SELF,
  startBehaviour,
  type ServerRef,
  type StartOptions,
  type StartWhere,
} from './gen.js';
import type { NextState } from './gen-fsm.js';
import { GenServer, type From } from './gen-server.js';
import type { Ignore, Stop } from './results.js';
import type { EventType, KeepState } from './statem-actions.js';
import { StatemServer } from './statem-server.js';

/**
 * How a GenStatem's events reach your code (OTP's `callback_mode()`): a
 * method per state, named after it (`'state_functions'`, states are
 * strings), or one `handleEvent(type, content, state, data)` for every
 * state (`'handle_event_function'`, states may be any value).
 *
 * @example
 * ```ts
 * class Light extends GenStatem<Data> {
 *   override readonly callbackMode: CallbackMode = 'handle_event_function';
 * }
 * ```
 */
export type CallbackMode = 'state_functions' | 'handle_event_function';

/**
 * What a GenStatem callback may return: `nextState(state, data, actions?)`,
 * `keepState(data, actions?)`, `keepStateAndData(actions?)`,
 * `repeatState(...)`, `repeatStateAndData(...)`, `stop(reason, data?)` or
 * `stopAndReply(reason, reply, data)` (which answers the call being handled).
 *
 * @example
 * ```ts
 * idle(type: EventType, content: unknown, data: number): StatemResult<number> {
 *   return content === 'go' ? nextState('busy', data) : keepStateAndData();
 * }
 * ```
 */
export type StatemResult<D, St = string> = NextState<D, St> | KeepState<D> | Stop<D>;

/**
 * A state machine (OTP's `gen_statem`, the successor of `gen_fsm`): the
 * machine is in a state, holds data, and each event (a call, a cast, a
 * plain message, a timeout, or one it inserted itself) runs a callback that
 * returns the next state and *actions*: replies, postponing the event,
 * inserting events, and three kinds of timeouts.
 *
 * - `callbackMode` `'state_functions'` (default): each state is a method
 *   `(type, content, data)` of your class, named after the state.
 *   `'handle_event_function'`: one `handleEvent(type, content, state, data)`.
 * - `stateEnter = true`: on every state change (and once after `init`) the
 *   new state's callback runs first with type `'enter'` and the old state as
 *   content; it may keep or repeat the state, set timeouts and reply, but
 *   not change state, postpone or insert events.
 * - `type` is an {@link EventType}: `{ call: from }` (answer with
 *   `replyTo(from, value)` or {@link GenStatem.reply}), `'cast'`, `'info'`,
 *   `'internal'`, `'timeout'`, `'state_timeout'`, `{ timeout: name }`, `'enter'`.
 * - Actions: `replyTo`, `postpone()` (the event is handled again after the
 *   next state change), `nextEvent(type, content)` (handled before any queued
 *   message), `eventTimeout(ms, content)` (cancelled by any event),
 *   `stateTimeout(ms, content)` (cancelled by a state change),
 *   `genericTimeout(name, ms, content)` (runs until it fires or is replaced).
 *
 * `init(arg)` returns `nextState(first, data, actions?)`, `ignore()` or
 * `stop(reason)`. `terminate(reason, state, data)` runs before it stops.
 *
 * **GenFsm or GenStatem?** New code: GenStatem. OTP deprecated gen_fsm in
 * OTP 20; WTD keeps {@link GenFsm} for programs written against it.
 *
 * @example
 * ```ts
 * class Switch extends GenStatem<number> {
 *   override init() {
 *     return nextState('off', 0);
 *   }
 *   off(type: EventType, content: unknown, flips: number) {
 *     if (content === 'flip') return nextState('on', flips + 1);
 *     if (GenStatem.isCall(type)) return keepStateAndData([replyTo(type.call, { state: 'off', flips })]);
 *     return keepStateAndData();
 *   }
 *   on(type: EventType, content: unknown, flips: number) {
 *     if (content === 'flip') return nextState('off', flips + 1);
 *     if (GenStatem.isCall(type)) return keepStateAndData([replyTo(type.call, { state: 'on', flips })]);
 *     return keepStateAndData();
 *   }
 * }
 * const sw = await GenStatem.start(node, new Switch());
 * GenStatem.cast(sw, 'flip');
 * await GenStatem.call(sw, 'status'); // => { state: 'on', flips: 1 }
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 */
export abstract class GenStatem<D = unknown, St = string> {
  /** @internal */ [SELF]: Process | undefined = undefined;

  /** How events reach your code; see {@link CallbackMode}. */
  readonly callbackMode: CallbackMode = 'state_functions';
  /** Run state enter calls (OTP's `state_enter`). Default false. */
  readonly stateEnter: boolean = false;

  /** The machine's own process. Only valid once started. */
  get self(): Process {
    const self = this[SELF];
    if (self === undefined) throw new TypeError(`${this.constructor.name} has not been started; use GenStatem.start`);
    noteSelf(self);
    return self;
  }

  /** Returns `nextState(first, data, actions?)`, `ignore()` or `stop(reason)`. */
  abstract init(arg: unknown): NextState<D, St> | Ignore | Stop<D> | Promise<NextState<D, St> | Ignore | Stop<D>>;

  /**
   * Every event, under `callbackMode` `'handle_event_function'`. There is
   * no useful default: override it in that mode.
   */
  handleEvent(
    type: EventType,
    content: unknown,
    state: St,
    data: D,
  ): StatemResult<D, St> | Promise<StatemResult<D, St>> {
    void type;
    void data;
    throw new Error(
      `attempted to call GenStatem ${this.constructor.name} with ${String(content)} in state ${String(state)} ` +
        "but no handleEvent was provided; override handleEvent(type, content, state, data) or use callbackMode 'state_functions'",
    );
  }

  /** Cleans up before the machine stops. Default: nothing. */
  terminate(reason: unknown, state: St, data: D): void | Promise<void> {
    void reason;
    void state;
    void data;
  }

  // ---------------------------------------------------------------- client API

  /** Starts `machine` with no parent; resolves once `init` returned `nextState`. */
  static start(where: StartWhere, machine: GenStatem<any, any>, arg?: unknown, options?: StartOptions): Promise<Pid> {
    return startBehaviour(where, new StatemServer(machine), arg, options, false);
  }

  /** Starts `machine` linked to `parent`, as a supervisor's child spec does. */
  static startLink(parent: Process, machine: GenStatem<any, any>, arg?: unknown, options?: StartOptions): Promise<Pid> {
    return startBehaviour(parent, new StatemServer(machine), arg, options, true);
  }

  /**
   * Sends `request` as a `{ call: from }` event and waits for the reply;
   * fails as {@link GenServer.call} does.
   */
  static call<R = unknown>(ref: ServerRef, request: unknown, timeout: number = DEFAULT_CALL_TIMEOUT): Promise<R> {
    return GenServer.call<R>(ref, request, timeout);
  }

  /** Sends `msg` as a `'cast'` event without waiting. Never fails. */
  static cast(ref: ServerRef, msg: unknown): void {
    GenServer.cast(ref, msg);
  }

  /** Answers a call later (OTP's `gen_statem:reply/2`). */
  static reply(from: From, value: unknown): void {
    from._reply(value);
  }

  /** Stops the machine with `reason` (default `'normal'`), running its `terminate`. */
  static stop(ref: ServerRef, reason: unknown = 'normal', timeout = Infinity): Promise<void> {
    return GenServer.stop(ref, reason, timeout);
  }

  /**
   * True for a `{ call: from }` event type.
   *
   * @example
   * ```ts
   * if (GenStatem.isCall(type)) return keepStateAndData([replyTo(type.call, 'pong')]);
   * ```
   */
  static isCall(type: EventType): type is { call: From } {
    return type !== null && typeof type === 'object' && 'call' in type;
  }
}
