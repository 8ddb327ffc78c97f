/**
 * What GenStatem callbacks receive and return: event types, the
 * keep/repeat results, and the transition actions, each built by a tiny
 * constructor as OTP's tuples are.
 * @module
 */
import { describe, isTimeoutValue, MAX_TIMEOUT } from '../runtime/process.js';
import type { CallSlot } from './gen.js';

/**
 * The kind of event a GenStatem callback is handling (OTP's `EventType`):
 * `{ call: from }` for {@link GenStatem.call} (answer with `replyTo(from, value)`),
 * `'cast'`, `'info'` (a plain message), `'internal'` (from `nextEvent`),
 * `'timeout'` (an event timeout), `'state_timeout'`, `{ timeout: name }`
 * (a generic timeout), or `'enter'` (a state enter call, whose content is the old state).
 *
 * @example
 * ```ts
 * locked(type: EventType, content: unknown, data: Data) {
 *   if (GenStatem.isCall(type)) return keepState(data, [replyTo(type.call, 'locked')]);
 *   if (type === 'state_timeout') return nextState('idle', data);
 *   return keepStateAndData();
 * }
 * ```
 */
export type EventType =
  { call: CallSlot } | 'cast' | 'info' | 'internal' | 'timeout' | 'state_timeout' | { timeout: unknown } | 'enter';

/**
 * Stay in the current state, with new data (or the same, for the `AndData`
 * forms); `repeat` runs the state enter call again (OTP's `keep_state`,
 * `keep_state_and_data`, `repeat_state`, `repeat_state_and_data`).
 *
 * @example
 * ```ts
 * const same: KeepState<number> = keepState(n + 1); // built by keepState(), keepStateAndData(), repeatState()...
 * ```
 */
export class KeepState<D> {
  constructor(
    readonly hasData: boolean,
    readonly data: D | undefined,
    readonly actions: readonly StatemAction[],
    readonly repeat: boolean,
  ) {}
}

/**
 * Answer a call (OTP's `{reply, From, Reply}` action).
 *
 * @example
 * ```ts
 * return keepState(data, [replyTo(type.call, 'ok')]); // a ReplyAction
 * ```
 */
export class ReplyAction {
  constructor(
    readonly from: CallSlot,
    readonly value: unknown,
  ) {}
}

/**
 * Keep this event until the state changes, then handle it again (OTP's `postpone`).
 *
 * @example
 * ```ts
 * return keepStateAndData([postpone()]); // a Postpone
 * ```
 */
export class Postpone {}

/**
 * Handle `content` as an event of `type` next, before any queued message (OTP's `{next_event, Type, Content}`).
 *
 * @example
 * ```ts
 * return nextState('check', data, [nextEvent('internal', 'validate')]); // a NextEvent
 * ```
 */
export class NextEvent {
  constructor(
    readonly type: 'cast' | 'info' | 'internal',
    readonly content: unknown,
  ) {}
}

/**
 * Starts or cancels one of the three timeouts (OTP's `{timeout, T, Msg}`,
 * `{state_timeout, T, Msg}` and `{{timeout, Name}, T, Msg}`).
 *
 * @example
 * ```ts
 * return nextState('open', data, [stateTimeout(3000, 'lock')]); // a TimeoutAction
 * ```
 */
export class TimeoutAction {
  constructor(
    readonly kind: 'timeout' | 'state_timeout' | 'generic',
    readonly name: unknown,
    /** Milliseconds, `Infinity` (never fires) or `'cancel'`. */
    readonly time: number | 'cancel',
    readonly content: unknown,
  ) {}
}

/**
 * Any transition action.
 *
 * @example
 * ```ts
 * const actions: StatemAction[] = [replyTo(from, 'ok'), stateTimeout(1000, 'tick'), nextEvent('internal', 'go')];
 * ```
 */
export type StatemAction = ReplyAction | Postpone | NextEvent | TimeoutAction;

function checkActions(actions: unknown, where: string): readonly StatemAction[] {
  const list = actions === undefined ? [] : Array.isArray(actions) ? actions : [actions];
  for (const a of list) {
    if (!(a instanceof ReplyAction || a instanceof Postpone || a instanceof NextEvent || a instanceof TimeoutAction)) {
      throw new TypeError(
        `${where} expects actions built by replyTo, postpone, nextEvent, eventTimeout, stateTimeout or genericTimeout, got ${describe(a)}`,
      );
    }
  }
  return list as readonly StatemAction[];
}

/**
 * GenStatem result: stay in this state with `data` (OTP's `{keep_state, Data, Actions}`).
 *
 * @example
 * ```ts
 * return keepState({ ...data, presses: data.presses + 1 });
 * ```
 */
export function keepState<D>(data: D, actions?: StatemAction | readonly StatemAction[]): KeepState<D> {
  return new KeepState(true, data, checkActions(actions, 'keepState(data, actions)'), false);
}

/**
 * GenStatem result: change nothing but run `actions` (OTP's `keep_state_and_data`).
 *
 * @example
 * ```ts
 * return keepStateAndData([postpone()]);
 * ```
 */
export function keepStateAndData(actions?: StatemAction | readonly StatemAction[]): KeepState<never> {
  return new KeepState<never>(false, undefined, checkActions(actions, 'keepStateAndData(actions)'), false);
}

/**
 * GenStatem result: as {@link keepState}, and run the state enter call again (OTP's `repeat_state`).
 *
 * @example
 * ```ts
 * return repeatState({ ...data, retries: data.retries + 1 }); // enter runs again
 * ```
 */
export function repeatState<D>(data: D, actions?: StatemAction | readonly StatemAction[]): KeepState<D> {
  return new KeepState(true, data, checkActions(actions, 'repeatState(data, actions)'), true);
}

/**
 * GenStatem result: as {@link keepStateAndData}, and run the state enter call again (OTP's `repeat_state_and_data`).
 *
 * @example
 * ```ts
 * return repeatStateAndData();
 * ```
 */
export function repeatStateAndData(actions?: StatemAction | readonly StatemAction[]): KeepState<never> {
  return new KeepState<never>(false, undefined, checkActions(actions, 'repeatStateAndData(actions)'), true);
}

/**
 * Action: answer the call `from` with `value`.
 *
 * @example
 * ```ts
 * if (GenStatem.isCall(type)) return keepStateAndData([replyTo(type.call, data.count)]);
 * ```
 */
export function replyTo(from: CallSlot, value: unknown): ReplyAction {
  if (from === null || typeof from !== 'object' || typeof (from as CallSlot)._reply !== 'function') {
    throw new TypeError(`replyTo(from, value) expects the from of a { call: from } event, got ${describe(from)}`);
  }
  return new ReplyAction(from, value);
}

/**
 * Action: keep the current event and handle it again after the next state change.
 *
 * @example
 * ```ts
 * busy(type: EventType, content: unknown, data: Data) {
 *   return keepStateAndData([postpone()]); // retried once we leave 'busy'
 * }
 * ```
 */
export function postpone(): Postpone {
  return new Postpone();
}

/**
 * Action: handle `content` as a `type` event next, before any message in the mailbox.
 *
 * @example
 * ```ts
 * return nextState('loading', data, [nextEvent('internal', 'load')]);
 * ```
 */
export function nextEvent(type: 'cast' | 'info' | 'internal', content: unknown): NextEvent {
  if (type !== 'cast' && type !== 'info' && type !== 'internal') {
    throw new TypeError(`nextEvent(type, content) expects 'cast', 'info' or 'internal', got ${describe(type)}`);
  }
  return new NextEvent(type, content);
}

function checkTime(time: unknown, where: string): number | 'cancel' {
  if (time === 'cancel' || time === Infinity || isTimeoutValue(time)) return time as number | 'cancel';
  throw new TypeError(
    `${where} expects a whole number of ms from 0 to ${MAX_TIMEOUT}, Infinity or 'cancel', got ${describe(time)}`,
  );
}

/**
 * Action: an event timeout. Unless another event comes first, a `'timeout'`
 * event with `content` arrives after `ms`; any event cancels it.
 *
 * @example
 * ```ts
 * return keepState(data, [eventTimeout(5000, 'idle')]); // 'timeout' event if nothing happens for 5 s
 * ```
 */
export function eventTimeout(ms: number | 'cancel', content?: unknown): TimeoutAction {
  return new TimeoutAction('timeout', undefined, checkTime(ms, 'eventTimeout(ms, content)'), content);
}

/**
 * Action: a state timeout. A `'state_timeout'` event with `content` arrives
 * after `ms`, unless the state changes first (or another state timeout replaces it).
 *
 * @example
 * ```ts
 * return nextState('green', data, [stateTimeout(3000, 'amber')]);
 * ```
 */
export function stateTimeout(ms: number | 'cancel', content?: unknown): TimeoutAction {
  return new TimeoutAction('state_timeout', undefined, checkTime(ms, 'stateTimeout(ms, content)'), content);
}

/**
 * Action: a generic timeout named `name`. A `{ timeout: name }` event with
 * `content` arrives after `ms`, whatever the state; only another timeout of
 * the same name (or `'cancel'`) replaces it.
 *
 * @example
 * ```ts
 * return keepState(data, [genericTimeout('heartbeat', 1000, 'beat')]);
 * ```
 */
export function genericTimeout(name: unknown, ms: number | 'cancel', content?: unknown): TimeoutAction {
  return new TimeoutAction('generic', name, checkTime(ms, 'genericTimeout(name, ms, content)'), content);
}

/** @internal */
export { checkActions };
