/**
 * The tagged results behaviour callbacks return, built by tiny constructors
 * as OTP's tuples are: `return reply(count, count + 1)` is
 * `{reply, Count, Count + 1}`. Any other return value is a
 * `BadReturnValueError`.
 * @module
 */

/**
 * What may follow a callback's new state (the third element of OTP's
 * `{noreply, State, Action}`):
 *
 * - a number: `handleInfo(TIMEOUT)` runs if no message comes within that many ms;
 * - `{ timeout, message }`: the same, with `message` in place of `TIMEOUT`;
 * - `{ continue: arg }`: `handleContinue(arg, state)` runs next, before any message.
 *
 * @example
 * ```ts
 * override init(id: string) {
 *   return ok({ id, rows: [] }, { continue: 'load' }); // start fast; handleContinue('load') fills the rows
 * }
 * override handleCast(_req: 'poke', s: State) {
 *   return noreply(s, { timeout: 1000, message: 'idle' }); // handleInfo('idle') after a quiet second
 * }
 * ```
 */
export type After = number | { continue: unknown } | { timeout: number; message: unknown };

/**
 * `init` accepted: start with `state`; `timeout` as in {@link noreply}.
 *
 * @example
 * ```ts
 * override init(args: number) {
 *   return ok(args); // an Ok: start with this state
 * }
 * ```
 */
export class Ok<S> {
  constructor(
    readonly state: S,
    readonly timeout?: After,
  ) {}
}

/**
 * `init` declined to start, without an error.
 *
 * @example
 * ```ts
 * override init() {
 *   return ignore(); // start() rejects with ERR_START_IGNORED; a supervisor skips the child
 * }
 * ```
 */
export class Ignore {}

/**
 * Answer the caller with `reply` and carry on with `state`.
 *
 * @example
 * ```ts
 * override handleCall(_req: 'get', _from: From, n: number) {
 *   return reply(n, n); // a Reply: answer n, keep the state
 * }
 * ```
 */
export class Reply<R, S> {
  constructor(
    readonly reply: R,
    readonly state: S,
    readonly timeout?: After,
  ) {}
}

/**
 * Carry on with `state` without answering (yet).
 *
 * @example
 * ```ts
 * override handleCast(_req: 'inc', n: number) {
 *   return noreply(n + 1); // a NoReply: new state, nothing to answer
 * }
 * ```
 */
export class NoReply<S> {
  constructor(
    readonly state: S,
    readonly timeout?: After,
  ) {}
}

/**
 * Stop with `reason`, after `terminate(reason, state)`; with `hasReply`, answer the caller first.
 *
 * @example
 * ```ts
 * override handleCast(req: 'quit', n: number) {
 *   return stop('normal', n); // a Stop: terminate runs, then the server exits normally
 * }
 * ```
 */
export class Stop<S, R = unknown> {
  constructor(
    readonly reason: unknown,
    readonly state: S,
    readonly hasReply: boolean,
    readonly reply?: R,
  ) {}
}

function checkTimeout(after: After | undefined): void {
  if (after === undefined) return;
  if (typeof after === 'number') {
    if (!(after >= 0)) {
      throw new RangeError(`a callback timeout must be a number of milliseconds >= 0, got ${String(after)}`);
    }
    return;
  }
  if (after !== null && typeof after === 'object') {
    if ('continue' in after) return;
    if ('timeout' in after && 'message' in after) return checkTimeout(after.timeout);
  }
  throw new TypeError(
    `a callback's last argument must be a timeout in ms, { timeout, message } or { continue }, got ${typeof after}`,
  );
}

/**
 * `init` result: start with `state`. With `timeoutMs`, `handleInfo(TIMEOUT)`
 * runs if no message arrives within that time; see {@link After} for
 * `{ timeout, message }` and `{ continue }`.
 *
 * @example
 * ```ts
 * override init(start: number) {
 *   return ok(start, 1000); // state `start`; handleInfo(TIMEOUT) if nothing comes within 1 s
 * }
 * ```
 */
export function ok<S>(state: S, timeoutMs?: After): Ok<S> {
  checkTimeout(timeoutMs);
  return new Ok(state, timeoutMs);
}

/**
 * `init` result: do not start; `start` rejects with `ERR_START_IGNORED` and a supervisor keeps the child spec.
 *
 * @example
 * ```ts
 * override init() {
 *   return process.env.DISABLED ? ignore() : ok(0);
 * }
 * ```
 */
export function ignore(): Ignore {
  return new Ignore();
}

/**
 * `handleCall` result: send `replyValue` to the caller, carry on with `state`.
 *
 * @example
 * ```ts
 * override handleCall(req: 'get', _from: From, n: number) {
 *   return reply(n, n);
 * }
 * ```
 */
export function reply<R, S>(replyValue: R, state: S, timeoutMs?: After): Reply<R, S> {
  checkTimeout(timeoutMs);
  return new Reply(replyValue, state, timeoutMs);
}

/**
 * Result of any handler: carry on with `state`. From `handleCall` it means
 * "I will answer later with `GenServer.reply(from, value)`".
 *
 * @example
 * ```ts
 * override handleCast(req: 'inc', n: number) {
 *   return noreply(n + 1);
 * }
 * ```
 */
export function noreply<S>(state: S, timeoutMs?: After): NoReply<S> {
  checkTimeout(timeoutMs);
  return new NoReply(state, timeoutMs);
}

/**
 * Result of any callback: stop the process with `reason` after
 * `terminate(reason, state)`. `'normal'` and `'shutdown'` stop quietly; any
 * other reason is logged as a crash and restarts a transient child.
 *
 * @example
 * ```ts
 * override handleInfo(msg: unknown, n: number) {
 *   return msg === 'shutdown' ? stop('shutdown', n) : noreply(n);
 * }
 * ```
 */
export function stop<S>(reason: unknown, state?: S): Stop<S> {
  return new Stop(reason, state as S, false);
}

/**
 * `handleCall` result: answer the caller with `replyValue`, then stop as {@link stop}.
 *
 * @example
 * ```ts
 * override handleCall(req: 'quit', _from: From, n: number) {
 *   return stopAndReply('normal', 'bye', n); // the caller gets 'bye', then the server exits
 * }
 * ```
 */
export function stopAndReply<R, S>(reason: unknown, replyValue: R, state: S): Stop<S, R> {
  return new Stop(reason, state, true, replyValue);
}
