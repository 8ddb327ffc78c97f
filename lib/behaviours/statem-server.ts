import { isDeepStrictEqual } from 'node:util';
import { BadReturnValueError, WtdError, describeValue } from '../errors.js';
import type { Ref } from '../runtime/pid.js';
import { NextState } from './gen-fsm.js';
import type { CallResult, From, InitResult, NoReplyResult } from './gen-server.js';
import type { GenStatem } from './gen-statem.js';
import { HostServer } from './host-server.js';
import { Ignore, NoReply, Ok, Stop } from './results.js';
import {
  KeepState,
  NextEvent,
  Postpone,
  ReplyAction,
  TimeoutAction,
  type EventType,
  type StatemAction,
} from './statem-actions.js';

/** The machine's state and data: what `Sys.getState` shows. @internal */
export interface StatemMachine {
  name: unknown;
  data: unknown;
}
type M = StatemMachine;

interface Event {
  type: EventType;
  content: unknown;
}

/** A running timeout; its message is itself, and a cancelled one is ignored when it arrives. */
class StatemTimer {
  active = true;
  ref: Ref | undefined = undefined;
  constructor(
    readonly type: EventType,
    readonly content: unknown,
  ) {}
}

const START: unique symbol = Symbol('wtd.statem.start');

const RESERVED = new Set(['constructor', 'init', 'handleEvent', 'terminate', 'self', 'callbackMode', 'stateEnter']);

const EXPECTED =
  'nextState(state, data, actions), keepState(data, actions), keepStateAndData(actions), repeatState(...), ' +
  'repeatStateAndData(...), stop(reason, data) or stopAndReply(reason, reply, data)';

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return x !== null && typeof x === 'object' && typeof (x as { then?: unknown }).then === 'function';
}

/** `f(x)` now, or once `x` settles. */
function then(x: unknown, f: (v: unknown) => unknown): unknown {
  return isThenable(x) ? Promise.resolve(x).then(f) : f(x);
}

/**
 * The gen_server that runs a {@link GenStatem}: OTP's gen_statem loop on
 * top of the GenServer one. Every event, from the mailbox or inserted,
 * goes through one queue; postponed events wait beside it until the state
 * changes.
 * @internal
 */
export class StatemServer extends HostServer<GenStatem<unknown, unknown>, M> {
  // Invariant: #queue holds the inserted and released postponed events,
  // handled before the next mailbox message; it is empty between messages.
  #queue: Event[] = [];
  #postponed: Event[] = [];
  #eventTimer: StatemTimer | undefined = undefined;
  #stateTimer: StatemTimer | undefined = undefined;
  readonly #generic = new Map<unknown, StatemTimer>();

  override get behaviourName(): string {
    return 'gen_statem';
  }

  override async init(arg: unknown): Promise<InitResult<M>> {
    this.adopt();
    const mode = this.module.callbackMode;
    if (mode !== 'state_functions' && mode !== 'handle_event_function') {
      throw new TypeError(
        `${this.module.constructor.name}.callbackMode must be 'state_functions' or 'handle_event_function', got ${describeValue(mode)}`,
      );
    }
    const r = await this.module.init(arg);
    if (r instanceof Ignore || r instanceof Stop) return r as Ignore | Stop<M>;
    if (!(r instanceof NextState) || r.timeout !== undefined) {
      throw new BadReturnValueError(
        `${this.module.constructor.name}.init`,
        r,
        'nextState(state, data, actions), ignore() or stop(reason)',
      );
    }
    if (r.actions.some((a) => a instanceof Postpone)) {
      throw new BadReturnValueError(`${this.module.constructor.name}.init`, r, 'actions without postpone()');
    }
    if (mode === 'state_functions') this.#stateFunction(r.name);
    // The first enter call and the inserted events run before any message.
    return new Ok({ name: r.name, data: r.data }, { continue: { [START]: r.actions } });
  }

  override handleContinue(arg: unknown, m: M): NoReplyResult<M> {
    const actions = (arg as { [START]: readonly StatemAction[] })[START];
    const events = this.#actions(actions, 'init');
    this.#queue.unshift(...events.inserted);
    const entered = this.module.stateEnter ? this.#enter(m.name, m, events.timeouts) : this.#timeouts(events.timeouts);
    return then(entered, (stopped) => (stopped instanceof Stop ? stopped : this.#run(m))) as NoReplyResult<M>;
  }

  override handleCall(request: unknown, from: From, m: M): CallResult<M> {
    return this.#take({ call: from }, request, m) as CallResult<M>;
  }

  override handleCast(msg: unknown, m: M): NoReplyResult<M> {
    return this.#take('cast', msg, m) as NoReplyResult<M>;
  }

  override handleInfo(msg: unknown, m: M): NoReplyResult<M> {
    if (msg instanceof StatemTimer) {
      if (!msg.active) return new NoReply(m); // cancelled after it fired
      this.#forget(msg);
      return this.#take(msg.type, msg.content, m) as NoReplyResult<M>;
    }
    return this.#take('info', msg, m) as NoReplyResult<M>;
  }

  override terminate(reason: unknown, m: M): void | Promise<void> {
    for (const t of [this.#eventTimer, this.#stateTimer, ...this.#generic.values()]) this.#cancel(t);
    return this.module.terminate(reason, m.name, m.data);
  }

  // ---------------------------------------------------------------- the loop

  #take(type: EventType, content: unknown, m: M): unknown {
    this.#queue.push({ type, content });
    return this.#run(m);
  }

  /** Handles queued events until none is left; resolves with the GenServer result. */
  #run(m: M): unknown {
    while (this.#queue.length > 0) {
      const event = this.#queue.shift()!;
      // Any event cancels the event timeout.
      this.#cancel(this.#eventTimer);
      this.#eventTimer = undefined;
      const r = this.#callback(event.type, event.content, m);
      const out = isThenable(r)
        ? Promise.resolve(r).then((res) => this.#transition(event, res, m))
        : this.#transition(event, r, m);
      if (isThenable(out)) return out.then((o) => (o instanceof Stop ? o : this.#run(m)));
      if (out instanceof Stop) return out;
    }
    return new NoReply(m);
  }

  #callback(type: EventType, content: unknown, m: M): unknown {
    if (this.module.callbackMode === 'handle_event_function') {
      return this.module.handleEvent(type, content, m.name, m.data);
    }
    return this.#stateFunction(m.name).call(this.module, type, content, m.data);
  }

  #stateFunction(name: unknown): (type: EventType, content: unknown, data: unknown) => unknown {
    const module = this.module as unknown as Record<string, unknown>;
    const fn = typeof name === 'string' && !RESERVED.has(name) ? module[name] : undefined;
    if (typeof fn !== 'function' || fn === (Object.prototype as Record<string, unknown>)[name as string]) {
      throw new WtdError(
        'ERR_UNKNOWN_STATE',
        `${this.module.constructor.name} has no state method ${describeValue(name)}; under callbackMode ` +
          "'state_functions' every state is a method of your class (or use 'handle_event_function')",
      );
    }
    return fn as (type: EventType, content: unknown, data: unknown) => unknown;
  }

  /** Applies one callback result. Returns a Stop to end the server, else undefined (maybe later). */
  #transition(event: Event, r: unknown, m: M): unknown {
    const where = `${this.module.constructor.name} in state ${describeValue(m.name)}`;
    if (r instanceof Stop) {
      if (r.hasReply && GenStatemIsCall(event.type)) event.type.call._reply(r.reply);
      if (r.state !== undefined) m.data = r.state;
      return new Stop(r.reason, m, false);
    }
    let name = m.name;
    let repeat = false;
    let actions: readonly StatemAction[];
    if (r instanceof NextState) {
      if (r.timeout !== undefined) throw new BadReturnValueError(where, r, `${EXPECTED}; a timeout is an action here`);
      if (this.module.callbackMode === 'state_functions') this.#stateFunction(r.name);
      name = r.name;
      m.data = r.data;
      actions = r.actions;
    } else if (r instanceof KeepState) {
      if (r.hasData) m.data = r.data;
      repeat = r.repeat;
      actions = r.actions;
    } else {
      throw new BadReturnValueError(where, r, EXPECTED);
    }
    const { inserted, timeouts, postponed } = this.#actions(actions, 'event');
    if (postponed) this.#postponed.push(event);
    const changed = !isDeepStrictEqual(name, m.name);
    const old = m.name;
    m.name = name;
    if (changed) {
      // Leaving the state: its timeout goes, and the postponed events are tried again, oldest first.
      this.#cancel(this.#stateTimer);
      this.#stateTimer = undefined;
      this.#queue.unshift(...this.#postponed);
      this.#postponed = [];
    }
    this.#queue.unshift(...inserted);
    if (this.module.stateEnter && (changed || repeat)) return this.#enter(old, m, timeouts);
    return this.#timeouts(timeouts);
  }

  /** The state enter call: it may keep or repeat the state, reply and set timeouts, nothing else. */
  #enter(old: unknown, m: M, pending: TimeoutAction[]): unknown {
    const where = `${this.module.constructor.name} state enter call in ${describeValue(m.name)}`;
    const r = this.#callback('enter', old, m);
    return then(r, (res) => {
      if (res instanceof Stop) {
        if (res.state !== undefined) m.data = res.state;
        return new Stop(res.reason, m, false);
      }
      let actions: readonly StatemAction[];
      if (res instanceof KeepState) {
        if (res.hasData) m.data = res.data;
        actions = res.actions;
      } else if (res instanceof NextState && isDeepStrictEqual(res.name, m.name) && res.timeout === undefined) {
        m.data = res.data;
        actions = res.actions;
      } else {
        throw new BadReturnValueError(
          where,
          res,
          'keepState, keepStateAndData, repeatState, or stop: an enter call cannot change state',
        );
      }
      const more = this.#actions(actions, 'enter');
      return this.#timeouts([...pending, ...more.timeouts]);
    });
  }

  /** Sorts a result's actions: replies are sent now; the rest are returned in order. */
  #actions(
    actions: readonly StatemAction[],
    from: 'init' | 'enter' | 'event',
  ): { inserted: Event[]; timeouts: TimeoutAction[]; postponed: boolean } {
    const inserted: Event[] = [];
    const timeouts: TimeoutAction[] = [];
    let postponed = false;
    for (const a of actions) {
      if (a instanceof ReplyAction) {
        a.from._reply(a.value);
      } else if (a instanceof TimeoutAction) {
        timeouts.push(a);
      } else if (from === 'enter' || (from === 'init' && a instanceof Postpone)) {
        throw new BadReturnValueError(
          `${this.module.constructor.name} ${from === 'enter' ? 'state enter call' : 'init'}`,
          a,
          'no postpone() there, and no nextEvent() in a state enter call',
        );
      } else if (a instanceof Postpone) {
        postponed = true;
      } else if (a instanceof NextEvent) {
        inserted.push({ type: a.type, content: a.content });
      }
    }
    return { inserted, timeouts, postponed };
  }

  /** Starts or cancels the timeouts a transition asked for. An event timeout waits only while nothing is queued. */
  #timeouts(timeouts: readonly TimeoutAction[]): undefined {
    for (const t of timeouts) {
      if (t.kind === 'timeout') {
        this.#cancel(this.#eventTimer);
        this.#eventTimer = this.#queue.length > 0 ? undefined : this.#arm(t, 'timeout');
      } else if (t.kind === 'state_timeout') {
        this.#cancel(this.#stateTimer);
        this.#stateTimer = this.#arm(t, 'state_timeout');
      } else {
        this.#cancel(this.#generic.get(t.name));
        this.#generic.delete(t.name);
        const timer = this.#arm(t, { timeout: t.name });
        if (timer !== undefined) this.#generic.set(t.name, timer);
      }
    }
    return undefined;
  }

  #arm(t: TimeoutAction, type: EventType): StatemTimer | undefined {
    if (t.time === 'cancel' || t.time === Infinity) return undefined;
    const timer = new StatemTimer(type, t.content);
    timer.ref = this.self.node.sendAfter(this.self.pid, timer, t.time);
    return timer;
  }

  #cancel(timer: StatemTimer | undefined): void {
    if (timer === undefined || !timer.active) return;
    timer.active = false;
    if (timer.ref !== undefined) this.self.node.cancelTimer(timer.ref);
  }

  /** A timer fired: it is no longer the current one of its kind. */
  #forget(timer: StatemTimer): void {
    timer.active = false;
    if (this.#eventTimer === timer) this.#eventTimer = undefined;
    else if (this.#stateTimer === timer) this.#stateTimer = undefined;
    else {
      const name = (timer.type as { timeout: unknown }).timeout;
      if (this.#generic.get(name) === timer) this.#generic.delete(name);
    }
  }
}

function GenStatemIsCall(type: EventType): type is { call: From } {
  return type !== null && typeof type === 'object' && 'call' in type;
}
