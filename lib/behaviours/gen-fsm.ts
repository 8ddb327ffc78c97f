import { HostServer } from './host-server.js';
import { BadReturnValueError, WtdError, describeValue } from '../errors.js';
import { TIMEOUT } from '../runtime/messages.js';
import type { Pid, Ref } from '../runtime/pid.js';
import { noteSelf, type Process } from '../runtime/process.js';
import {
  DEFAULT_CALL_TIMEOUT,
  SELF,
  startBehaviour,
  type ServerRef,
  type StartOptions,
  type StartWhere,
} from './gen.js';
import { GenServer, type CallResult, type From, type InitResult, type NoReplyResult } from './gen-server.js';
import { Ignore, NoReply, Ok, Reply, Stop } from './results.js';
import { checkActions, type StatemAction } from './statem-actions.js';

/**
 * Move to state `name` with `data`. For a GenFsm, `timeout` (ms) delivers
 * `TIMEOUT` to the state if no event comes in time; for a GenStatem,
 * `actions` run with the transition.
 *
 * @example
 * ```ts
 * green(event: unknown, data: Data) {
 *   return nextState('yellow', data, 3000); // a NextState: to 'yellow', which times out in 3 s
 * }
 * ```
 */
export class NextState<D, St = string> {
  constructor(
    readonly name: St,
    readonly data: D,
    readonly timeout?: number,
    readonly actions: readonly StatemAction[] = [],
  ) {}
}

/**
 * Answer a synchronous event with `reply`, then move as {@link NextState}.
 *
 * @example
 * ```ts
 * locked(event: 'status', from: From, data: Data) {
 *   return replyState('locked', 'locked', data); // a ReplyState: answer, stay
 * }
 * ```
 */
export class ReplyState<R, D> {
  constructor(
    readonly reply: R,
    readonly name: string,
    readonly data: D,
    readonly timeout?: number,
  ) {}
}

/**
 * GenFsm and GenStatem result: go to state `name` with `data`. Also what
 * their `init` returns. A GenFsm takes an optional state timeout in ms; a
 * GenStatem takes transition actions (OTP's `{next_state, S, D, Actions}`).
 *
 * @example
 * ```ts
 * yellow(event: unknown, data: Data) {
 *   return nextState('red', data, 5000); // GenFsm: TIMEOUT after 5 s
 * }
 * amber(type: EventType, content: unknown, data: Data) {
 *   return nextState('red', data, [stateTimeout(5000, 'go')]); // GenStatem
 * }
 * ```
 */
export function nextState<D, St = string>(
  name: St,
  data: D,
  timeoutOrActions?: number | StatemAction | readonly StatemAction[],
): NextState<D, St> {
  if (typeof timeoutOrActions === 'number' || timeoutOrActions === undefined) {
    if (timeoutOrActions !== undefined && !(timeoutOrActions >= 0))
      throw new RangeError(`state timeout must be >= 0 ms, got ${timeoutOrActions}`);
    return new NextState(name, data, timeoutOrActions);
  }
  return new NextState(name, data, undefined, checkActions(timeoutOrActions, 'nextState(state, data, actions)'));
}

/**
 * FSM result for a synchronous event: answer `replyValue`, then go to state `name`.
 *
 * @example
 * ```ts
 * locked(code: string, _from: From, data: Data) {
 *   return code === data.code ? replyState('open', 'open', data) : replyState('wrong code', 'locked', data);
 * }
 * ```
 */
export function replyState<R, D>(replyValue: R, name: string, data: D, timeoutMs?: number): ReplyState<R, D> {
  if (timeoutMs !== undefined && !(timeoutMs >= 0))
    throw new RangeError(`state timeout must be >= 0 ms, got ${timeoutMs}`);
  return new ReplyState(replyValue, name, data, timeoutMs);
}

/**
 * The event a state receives when a timer from {@link GenFsm.startTimer} fires (OTP's `{timeout, Ref, Msg}`).
 *
 * @example
 * ```ts
 * open(event: unknown, data: Data) {
 *   if (event instanceof TimerEvent) return nextState('locked', data); // a startTimer fired
 *   return nextState('open', data);
 * }
 * ```
 */
export class TimerEvent {
  readonly tag = 'timeout' as const;
  constructor(
    readonly ref: Ref,
    readonly msg: unknown,
  ) {}
}

/**
 * What a state method or FSM callback may return.
 *
 * @example
 * ```ts
 * red(event: unknown, data: Data): FsmResult<Data> {
 *   return event === 'go' ? nextState('green', data) : stop('confused', data);
 * }
 * ```
 */
export type FsmResult<D> = NextState<D> | ReplyState<unknown, D> | Stop<D>;

class FsmEvent {
  constructor(
    readonly event: unknown,
    readonly allStates: boolean,
  ) {}
}

interface Machine<D> {
  name: string;
  data: D;
}

/** Names on GenFsm itself that can never be state names. */
const RESERVED = new Set([
  'constructor',
  'init',
  'handleEvent',
  'handleSyncEvent',
  'handleInfo',
  'terminate',
  'self',
  'startTimer',
  'cancelTimer',
  'behaviourName',
]);

/**
 * A finite state machine (OTP's `gen_fsm`): the machine is always in a named
 * state, and each state is a method of your class with the same name. An
 * event sent to the machine calls the current state's method, which returns
 * the next state.
 *
 * A state method is `(event, data, from?) => result`; `from` is set for
 * synchronous events ({@link GenFsm.syncSendEvent}) which must be answered with
 * `replyState(...)` (or later with {@link GenFsm.reply}). Results:
 * `nextState(name, data, timeoutMs?)`, `replyState(reply, name, data, timeoutMs?)`,
 * `stop(reason, data)`, `stopAndReply(reason, reply, data)`.
 *
 * Other callbacks: `init(arg)` returns `nextState(first, data)`;
 * `handleEvent` / `handleSyncEvent` receive the "all state" events;
 * `handleInfo(msg, stateName, data)` receives plain messages;
 * `terminate(reason, stateName, data)` runs before it stops.
 *
 * A state timeout (the third argument of `nextState`) delivers `TIMEOUT` to
 * the state if no event arrives in time; {@link GenFsm.startTimer} delivers a
 * {@link TimerEvent} whatever else happens.
 *
 * @example
 * ```ts
 * class Door extends GenFsm<string> {
 *   override init(code: string) { return nextState('locked', code); }
 *   locked(event: unknown, code: string) {
 *     return event === code
 *       ? replyState('open', 'open', code, 3000)   // relocks after 3 s
 *       : replyState('wrong code', 'locked', code);
 *   }
 *   open(_event: unknown, code: string) {
 *     return nextState('locked', code);           // TIMEOUT or anything else
 *   }
 * }
 * const door = await GenFsm.start(node, new Door(), '1234');
 * await GenFsm.syncSendEvent(door, '1234'); // => 'open'
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 */
export abstract class GenFsm<D = unknown> {
  /** @internal */ [SELF]: Process | undefined = undefined;

  /** The machine's own process. Only valid once started. */
  get self(): Process {
    const self = this[SELF];
    if (self === undefined) throw new TypeError(`${this.constructor.name} has not been started; use GenFsm.start`);
    noteSelf(self);
    return self;
  }

  /** Returns `nextState(firstState, data)`, `ignore()` or `stop(reason)`. */
  abstract init(arg: unknown): NextState<D> | Ignore | Stop<D> | Promise<NextState<D> | Ignore | Stop<D>>;

  /** Handles {@link GenFsm.sendAllStateEvent}. No useful default: override it to accept such events. */
  handleEvent(event: unknown, stateName: string, data: D): FsmResult<D> {
    void data;
    throw new Error(
      `attempted to call GenFsm ${this.constructor.name} with the all-state event ${describeValue(event)} in state ` +
        `'${stateName}' but no handleEvent was provided; override handleEvent(event, stateName, data)`,
    );
  }

  /** Handles {@link GenFsm.syncSendAllStateEvent}. No useful default. */
  handleSyncEvent(event: unknown, from: From, stateName: string, data: D): FsmResult<D> {
    void from;
    void data;
    throw new Error(
      `GenFsm ${this.constructor.name} got the all-state sync event ${describeValue(event)} in state '${stateName}' ` +
        'but has no handleSyncEvent; override it',
    );
  }

  /** Handles plain messages. No useful default (gen_fsm's `handle_info` is not optional): override it to accept them. */
  handleInfo(msg: unknown, stateName: string, data: D): FsmResult<D> {
    void data;
    throw new Error(
      `attempted to call GenFsm ${this.constructor.name} with the message ${describeValue(msg)} in state ` +
        `'${stateName}' but no handleInfo was provided; override handleInfo(msg, stateName, data)`,
    );
  }

  /** Cleans up before the machine stops. */
  terminate(reason: unknown, stateName: string, data: D): void | Promise<void> {
    void reason;
    void stateName;
    void data;
  }

  /** Sends this machine a {@link TimerEvent} after `ms` milliseconds. */
  startTimer(ms: number, msg: unknown): Ref {
    const self = this.self;
    const holder: { ref?: Ref } = {};
    const ref = self.node.sendAfter(self.pid, new TimerDelivery(holder, msg), ms);
    holder.ref = ref;
    return ref;
  }

  /**
   * Cancels a timer from {@link startTimer}; returns the ms it had left, or
   * false if it had fired. A fired timer's event still waiting in the
   * mailbox is removed, so it never reaches the state (as OTP's `cancel_timer`).
   */
  cancelTimer(ref: Ref): number | false {
    const self = this.self;
    const left = self.node.cancelTimer(ref);
    if (left === false) self._mailbox?.removeAll((m) => m instanceof TimerDelivery && m.holder.ref === ref);
    return left;
  }

  // ---------------------------------------------------------------- client API

  static start(where: StartWhere, fsm: GenFsm<any>, arg?: unknown, options?: StartOptions): Promise<Pid> {
    return startBehaviour(where, new FsmServer(fsm), arg, options, false);
  }

  static startLink(parent: Process, fsm: GenFsm<any>, arg?: unknown, options?: StartOptions): Promise<Pid> {
    return startBehaviour(parent, new FsmServer(fsm), arg, options, true);
  }

  /** Sends `event` to the current state's method without waiting. */
  static sendEvent(fsm: ServerRef, event: unknown): void {
    GenServer.cast(fsm, new FsmEvent(event, false));
  }

  /** Sends `event` to the current state's method and waits for its reply. */
  static syncSendEvent<R = unknown>(fsm: ServerRef, event: unknown, timeout = DEFAULT_CALL_TIMEOUT): Promise<R> {
    return GenServer.call(fsm, new FsmEvent(event, false), timeout);
  }

  /** Sends `event` to `handleEvent`, whatever the state. */
  static sendAllStateEvent(fsm: ServerRef, event: unknown): void {
    GenServer.cast(fsm, new FsmEvent(event, true));
  }

  /** Sends `event` to `handleSyncEvent` and waits for its reply. */
  static syncSendAllStateEvent<R = unknown>(
    fsm: ServerRef,
    event: unknown,
    timeout = DEFAULT_CALL_TIMEOUT,
  ): Promise<R> {
    return GenServer.call(fsm, new FsmEvent(event, true), timeout);
  }

  /** Answers a synchronous event later. */
  static reply(from: From, value: unknown): void {
    from._reply(value);
  }

  /** Stops the machine, running its `terminate`. */
  static stop(fsm: ServerRef, reason: unknown = 'normal'): Promise<void> {
    return GenServer.stop(fsm, reason);
  }
}

/** Wraps a startTimer message so it reaches the state method as a TimerEvent, not handleInfo. */
class TimerDelivery {
  constructor(
    readonly holder: { ref?: Ref },
    readonly msg: unknown,
  ) {}
}

const EXPECTED =
  'nextState(name, data), replyState(reply, name, data), stop(reason, data) or stopAndReply(reason, reply, data)';

/** The gen_server that runs a {@link GenFsm}. @internal */
class FsmServer extends HostServer<GenFsm<unknown>, Machine<unknown>, FsmEvent> {
  override get behaviourName(): string {
    return 'gen_fsm';
  }

  override async init(arg: unknown): Promise<InitResult<Machine<unknown>>> {
    this.adopt();
    const r = await this.module.init(arg);
    if (r instanceof Ignore || r instanceof Stop) return r as Ignore | Stop<Machine<unknown>>;
    if (!(r instanceof NextState)) {
      throw new BadReturnValueError(
        `${this.module.constructor.name}.init`,
        r,
        'nextState(name, data), ignore() or stop(reason)',
      );
    }
    this.#stateMethod(r.name);
    return new Ok({ name: r.name, data: r.data }, r.timeout);
  }

  override handleCall(req: FsmEvent, from: From, m: Machine<unknown>): CallResult<Machine<unknown>> {
    const fsm = this.module;
    const r = req.allStates
      ? fsm.handleSyncEvent(req.event, from, m.name, m.data)
      : this.#stateMethod(m.name).call(fsm, req.event, m.data, from);
    return this.#map(r, from, m) as CallResult<Machine<unknown>>;
  }

  override handleCast(req: FsmEvent, m: Machine<unknown>): NoReplyResult<Machine<unknown>> {
    const fsm = this.module;
    const r = req.allStates
      ? fsm.handleEvent(req.event, m.name, m.data)
      : this.#stateMethod(m.name).call(fsm, req.event, m.data, undefined);
    return this.#map(r, undefined, m) as NoReplyResult<Machine<unknown>>;
  }

  override handleInfo(msg: unknown, m: Machine<unknown>): NoReplyResult<Machine<unknown>> {
    const fsm = this.module;
    let r: unknown;
    if (msg === TIMEOUT) {
      r = this.#stateMethod(m.name).call(fsm, TIMEOUT, m.data, undefined);
    } else if (msg instanceof TimerDelivery) {
      r = this.#stateMethod(m.name).call(fsm, new TimerEvent(msg.holder.ref!, msg.msg), m.data, undefined);
    } else {
      r = fsm.handleInfo(msg, m.name, m.data);
    }
    return this.#map(r, undefined, m) as NoReplyResult<Machine<unknown>>;
  }

  override terminate(reason: unknown, m: Machine<unknown>): void | Promise<void> {
    return this.module.terminate(reason, m.name, m.data);
  }

  #stateMethod(name: unknown): (event: unknown, data: unknown, from: From | undefined) => unknown {
    const fn =
      typeof name === 'string' && !RESERVED.has(name)
        ? (this.module as unknown as Record<string, unknown>)[name]
        : undefined;
    if (typeof fn !== 'function' || name === '__proto__') {
      throw new WtdError(
        'ERR_UNKNOWN_STATE',
        `${this.module.constructor.name} has no state method ${describeValue(name)}; ` +
          'every state name must be a method of your GenFsm class',
      );
    }
    return fn as (event: unknown, data: unknown, from: From | undefined) => unknown;
  }

  /** Turns an FSM result into the gen_server result that runs it. */
  #map(r: unknown, from: From | undefined, m: Machine<unknown>): unknown {
    if (r instanceof NextState && r.actions.length > 0) {
      throw new BadReturnValueError(
        `${this.module.constructor.name} state '${m.name}'`,
        r,
        'nextState(name, data, timeoutMs): a GenFsm takes a state timeout, not GenStatem actions',
      );
    }
    if (r instanceof NextState) {
      this.#stateMethod(r.name);
      return new NoReply({ name: r.name, data: r.data }, r.timeout);
    }
    if (r instanceof ReplyState) {
      if (from === undefined)
        throw new BadReturnValueError(
          `${this.module.constructor.name} state '${m.name}'`,
          r,
          'nextState(...) for an asynchronous event',
        );
      this.#stateMethod(r.name);
      return new Reply(r.reply, { name: r.name, data: r.data }, r.timeout);
    }
    if (r instanceof Stop) {
      return new Stop(r.reason, { name: m.name, data: r.state }, r.hasReply, r.reply);
    }
    throw new BadReturnValueError(`${this.module.constructor.name} state '${m.name}'`, r, EXPECTED);
  }
}
