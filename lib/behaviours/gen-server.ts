import { BadReturnValueError, formatReason, describeValue } from '../errors.js';
import { ExitMessage, TIMEOUT } from '../runtime/messages.js';
import type { Pid } from '../runtime/pid.js';
import {
  BEHAVIOUR_HANDLE,
  BEHAVIOUR_START,
  type Process,
  type ProcessBehaviour,
  noteSelf,
} from '../runtime/process.js';
import {
  ackInit,
  call,
  callUntilExit,
  CallSlot,
  DEFAULT_CALL_TIMEOUT,
  isQuietReason,
  resolveRef,
  SELF,
  START_ACK,
  startBehaviour,
  type ServerRef,
  type StartAck,
  type StartOptions,
  type StartWhere,
} from './gen.js';
import { checkResponse, receiveResponse, sendRequest, waitResponse } from './requests.js';
import { multiCall, startMonitor } from './server-client.js';
import { Ignore, NoReply, Ok, Reply, Stop, type After } from './results.js';
import { answerSystem, SystemRequest } from './sys.js';
import {
  CallRequest,
  CastRequest,
  describeMessage,
  EXPECTED,
  exitReason,
  IdleTimer,
  isThenable,
  StopRequest,
  type Kind,
} from './server-messages.js';

/**
 * Who is waiting for the reply to a `handleCall`; pass it to {@link GenServer.reply}.
 *
 * @example
 * ```ts
 * override handleCall(req: 'later', from: From, s: State) {
 *   setTimeout(() => GenServer.reply(from, 'done'), 100);
 *   return noreply(s);
 * }
 * ```
 */
export type From = CallSlot;

/**
 * What `init` may return.
 *
 * @example
 * ```ts
 * override init(args: Config): InitResult<State> {
 *   return args.valid ? ok(newState(args)) : stop('bad config');
 * }
 * ```
 */
export type InitResult<S> = Ok<S> | Ignore | Stop<S>;
/**
 * What `handleCall` may return.
 *
 * @example
 * ```ts
 * override handleCall(req: Request, _from: From, s: State): CallResult<State> {
 *   return req === 'get' ? reply(s.value, s) : stop('unknown request', s);
 * }
 * ```
 */
export type CallResult<S, R = unknown> = Reply<R, S> | NoReply<S> | Stop<S, R>;
/**
 * What `handleCast` and `handleInfo` may return.
 *
 * @example
 * ```ts
 * override handleCast(req: Request, s: State): NoReplyResult<State> {
 *   return noreply({ ...s, seen: s.seen + 1 });
 * }
 * ```
 */
export type NoReplyResult<S> = NoReply<S> | Stop<S>;

/**
 * A generic server: a process that holds state and answers requests one at
 * a time. You write the callbacks; `GenServer` runs the receive loop, the
 * call/reply protocol, timeouts and error reports.
 *
 * **Client API** (any code): {@link GenServer.start}, {@link GenServer.startLink},
 * {@link GenServer.call}, {@link GenServer.cast}, {@link GenServer.stop}.
 *
 * **Server callbacks** (run inside the process, one message at a time):
 * - `init(arg)` returns `ok(state)`, `ok(state, timeoutMs)`, `ignore()` or `stop(reason)`.
 *   Default: `ok(arg)`, so the start argument is the first state.
 * - `handleCall(request, from, state)` returns `reply(value, state)`,
 *   `noreply(state)` (answer later with {@link GenServer.reply}),
 *   `stop(reason, state)` or `stopAndReply(reason, value, state)`.
 * - `handleCast(request, state)` and `handleInfo(msg, state)` return
 *   `noreply(state)` or `stop(reason, state)`. `handleInfo` receives every
 *   plain message, and `TIMEOUT` when a callback's timeout passed.
 * - `terminate(reason, state)` runs before the process stops on its own or
 *   by its parent; not when it is killed.
 *
 * A callback may be `async`; the server handles no other message until its
 * promise settles. Any other return value is a `BadReturnValueError` and the
 * server stops with it.
 *
 * Supervise a server by giving a supervisor a child spec whose `start` is
 * `(parent) => GenServer.startLink(parent, new Stack(), [])`.
 *
 * Do not use a GenServer just to organise code: a plain module of functions
 * is simpler. Use one when state must be shared by many callers, or work
 * must be serialised.
 *
 * @example
 * ```ts
 * class Stack extends GenServer<string[]> {
 *   override handleCall(_request: 'pop', _from: From, [top, ...rest]: string[]) {
 *     return reply(top, rest);
 *   }
 *   override handleCast(request: { push: string }, state: string[]) {
 *     return noreply([request.push, ...state]);
 *   }
 * }
 *
 * const node = new Node({ name: 'demo' });
 * const pid = await GenServer.start(node, new Stack(), ['hello']);
 * GenServer.cast(pid, { push: 'world' });
 * await GenServer.call(pid, 'pop'); // => 'world'
 * await GenServer.call(pid, 'pop'); // => 'hello'
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 */
export abstract class GenServer<
  S = unknown,
  Req = unknown,
  Rep = unknown,
  CastReq = unknown,
> implements ProcessBehaviour {
  /** @internal */ [SELF]: Process | undefined = undefined;
  /** @internal */ [START_ACK]: StartAck | undefined = undefined;
  #state: S | undefined = undefined;
  #parent: Pid | undefined = undefined;
  #idle: IdleTimer | null = null;
  #last: unknown = undefined;

  /** The behaviour this class implements, for introspection. */
  get behaviourName(): string {
    return 'gen_server';
  }

  /** This server's own process. Only valid once started. */
  get self(): Process {
    const self = this[SELF];
    if (self === undefined) {
      throw new TypeError(
        `${this.constructor.name} has not been started; start it with GenServer.start(node, instance)`,
      );
    }
    noteSelf(self);
    return self;
  }

  // ---------------------------------------------------------------- callbacks

  /** Builds the first state from the start argument. Default: `ok(arg)`. */
  init(arg: unknown): InitResult<S> | Promise<InitResult<S>> {
    return new Ok(arg as S);
  }

  /** Answers a {@link GenServer.call}. There is no useful default: override it to accept calls. */
  handleCall(request: Req, from: From, state: S): CallResult<S, Rep> | Promise<CallResult<S, Rep>> {
    void from;
    void state;
    throw new Error(
      `attempted to call GenServer ${this.constructor.name} with ${describeValue(request)} but no handleCall was provided; ` +
        'override handleCall(request, from, state) in your class',
    );
  }

  /** Handles a {@link GenServer.cast}. There is no useful default: override it to accept casts. */
  handleCast(request: CastReq, state: S): NoReplyResult<S> | Promise<NoReplyResult<S>> {
    void state;
    throw new Error(
      `attempted to cast to GenServer ${this.constructor.name} with ${describeValue(request)} but no handleCast was provided; ` +
        'override handleCast(request, state) in your class',
    );
  }

  /**
   * Runs right after a callback that returned `{ continue: arg }` (in
   * `ok`, `reply` or `noreply`), before any other message: OTP's
   * `handle_continue`. Use it to finish work after `init` has answered
   * `start`. There is no useful default: override it if you continue.
   *
   * @example
   * ```ts
   * override init(id: string) {
   *   return ok({ id, rows: [] as string[] }, { continue: 'load' });
   * }
   * override handleContinue(_arg: 'load', s: { id: string; rows: string[] }) {
   *   return noreply({ ...s, rows: ['loaded'] }); // runs before the first call is answered
   * }
   * ```
   */
  handleContinue(arg: unknown, state: S): NoReplyResult<S> | Promise<NoReplyResult<S>> {
    void state;
    throw new Error(
      `attempted to continue GenServer ${this.constructor.name} with ${describeValue(arg)} but no handleContinue was provided; ` +
        'override handleContinue(arg, state) in your class',
    );
  }

  /** Handles any other message. Default: log it and carry on. */
  handleInfo(msg: unknown, state: S): NoReplyResult<S> | Promise<NoReplyResult<S>> {
    this.self.node.logger.error(
      `GenServer ${this.self.pid} (${this.constructor.name}) received an unexpected message: ${describeValue(msg)}; ` +
        'override handleInfo(msg, state) to handle it',
    );
    return new NoReply(state);
  }

  /** Cleans up before the server stops. Default: nothing. */
  terminate(reason: unknown, state: S): void | Promise<void> {
    void reason;
    void state;
  }

  // ---------------------------------------------------------------- client API

  /** Starts `impl` in a new process that is not linked to anything. Resolves once `init` returned `ok`. */
  static start(
    where: StartWhere,
    impl: GenServer<any, any, any, any>,
    arg?: unknown,
    options?: StartOptions,
  ): Promise<Pid> {
    return startBehaviour(where, impl, arg, options, false);
  }

  /**
   * Starts `impl` linked to `parent` (the calling process, as a supervisor's
   * child spec does). If `init` fails the link is removed first, so the
   * parent sees only the rejected promise (`StartError`).
   */
  static startLink(
    parent: Process,
    impl: GenServer<any, any, any, any>,
    arg?: unknown,
    options?: StartOptions,
  ): Promise<Pid> {
    return startBehaviour(parent, impl, arg, options, true);
  }

  /**
   * Sends `request` to the server and waits for its reply.
   * Rejects with `NoProcError` (not running), `ServerExitError` (exited
   * before replying), `CallTimeoutError` (no reply in `timeout` ms; default
   * 5000) or `CallingSelfError` (a server calling itself).
   */
  static call<R = unknown>(ref: ServerRef, request: unknown, timeout: number = DEFAULT_CALL_TIMEOUT): Promise<R> {
    return call(ref, (from) => new CallRequest(request, from), timeout) as Promise<R>;
  }

  /** Starts a server unlinked and monitored by `watcher`, resolving with `{ pid, ref }` (OTP's `start_monitor`). */
  static readonly startMonitor: typeof startMonitor = startMonitor;
  /** Sends a call without waiting for its answer, returning a `RequestId` (OTP's `send_request`). */
  static readonly sendRequest: typeof sendRequest = sendRequest;
  /** Waits for the answer to a request, or the first of a `RequestIds` collection (OTP's `wait_response`). */
  static readonly waitResponse: typeof waitResponse = waitResponse;
  /** Waits, abandoning the request on timeout; as OTP's `receive_response`. */
  static readonly receiveResponse: typeof receiveResponse = receiveResponse;
  /** Looks for an answer without waiting; as OTP's `check_response`. */
  static readonly checkResponse: typeof checkResponse = checkResponse;
  /** Calls a named server on several nodes at once; as OTP's `multi_call`. */
  static readonly multiCall: typeof multiCall = multiCall;

  /** Sends `request` to the server without waiting. Never fails, even if the server is not running. */
  static cast(ref: ServerRef, request: unknown): void {
    resolveRef(ref)?._deliver(new CastRequest(request));
  }

  /** Answers a call that `handleCall` left with `noreply`. A reply to a caller that gave up is dropped. */
  static reply(from: From, value: unknown): void {
    from._reply(value);
  }

  /**
   * Stops the server with `reason` (default `'normal'`), running its
   * `terminate`, and resolves once it has exited.
   */
  static async stop(ref: ServerRef, reason: unknown = 'normal', timeout = Infinity): Promise<void> {
    await callUntilExit(ref, (from) => new StopRequest(reason, from), reason, timeout);
  }

  // ---------------------------------------------------------------- the loop

  /** @internal */
  [BEHAVIOUR_START](self: Process, arg: unknown): unknown {
    this[SELF] = self;
    this.#parent = this[START_ACK]?.parent;
    let result: unknown;
    try {
      result = this.init(arg);
    } catch (err) {
      ackInit(this, self, { ok: false, ignore: false, reason: exitReason(err) });
      return undefined;
    }
    if (isThenable(result)) {
      return result.then(
        (r) => this.#afterInit(self, r),
        (err: unknown) => ackInit(this, self, { ok: false, ignore: false, reason: exitReason(err) }),
      );
    }
    return this.#afterInit(self, result);
  }

  #afterInit(self: Process, r: unknown): unknown {
    if (r instanceof Ok) {
      this.#state = r.state as S;
      ackInit(this, self, { ok: true });
      return this.#after(r.timeout);
    } else if (r instanceof Ignore) {
      ackInit(this, self, { ok: false, ignore: true, reason: 'normal' });
    } else if (r instanceof Stop) {
      ackInit(this, self, { ok: false, ignore: false, reason: r.reason });
    } else {
      const err = new BadReturnValueError(`${this.constructor.name}.init`, r, 'ok(state), ignore() or stop(reason)');
      ackInit(this, self, { ok: false, ignore: false, reason: err });
    }
    return undefined;
  }

  /** @internal */
  [BEHAVIOUR_HANDLE](msg: unknown): unknown {
    const idle = this.#idle;
    if (idle !== null && idle._heapIndex >= 0) this.self.node._timers.remove(idle);
    this.#last = msg;
    if (msg instanceof CallRequest) return this.#invoke('handleCall', msg.request, msg.from);
    if (msg instanceof CastRequest) return this.#invoke('handleCast', msg.request, undefined);
    if (msg instanceof StopRequest) return this.#terminate(msg.reason);
    if (msg instanceof SystemRequest) return this.#system(msg);
    if (msg instanceof ExitMessage && this.#parent !== undefined && msg.from.equals(this.#parent)) {
      // Our parent (say, a supervisor shutting us down) exited: stop with its reason.
      return this.#terminate(msg.reason);
    }
    return this.#invoke('handleInfo', msg, undefined);
  }

  #invoke(kind: Kind, request: unknown, from: CallSlot | undefined): unknown {
    let result: unknown;
    try {
      if (kind === 'handleCall') result = this.handleCall(request as Req, from!, this.#state as S);
      else if (kind === 'handleCast') result = this.handleCast(request as CastReq, this.#state as S);
      else if (kind === 'handleInfo') result = this.handleInfo(request, this.#state as S);
      else result = this.handleContinue(request, this.#state as S);
    } catch (err) {
      return this.#terminate(exitReason(err));
    }
    if (isThenable(result)) {
      return result.then(
        (r) => this.#result(kind, r, from),
        (err: unknown) => this.#terminate(exitReason(err)),
      );
    }
    return this.#result(kind, result, from);
  }

  #result(kind: Kind, r: unknown, from: CallSlot | undefined): unknown {
    if (!this.self.alive) return undefined; // killed while an async callback ran
    if (r instanceof Reply) {
      if (kind !== 'handleCall') return this.#badReturn(kind, r);
      this.#state = r.state as S;
      from!._reply(r.reply);
      return this.#after(r.timeout);
    }
    if (r instanceof NoReply) {
      this.#state = r.state as S;
      return this.#after(r.timeout);
    }
    if (r instanceof Stop) {
      if (r.hasReply) {
        if (kind !== 'handleCall') return this.#badReturn(kind, r);
        from!._reply(r.reply);
      }
      this.#state = r.state as S;
      return this.#terminate(r.reason);
    }
    return this.#badReturn(kind, r);
  }

  #badReturn(kind: Kind, r: unknown): unknown {
    return this.#terminate(new BadReturnValueError(`${this.constructor.name}.${kind}`, r, EXPECTED[kind]));
  }

  /** What follows a new state: nothing, an idle timeout (with its message), or handleContinue now. */
  #after(after: After | undefined): unknown {
    if (after === undefined || after === Infinity) return undefined;
    let ms: number;
    let msg: unknown = TIMEOUT;
    if (typeof after === 'number') {
      ms = after;
    } else if ('continue' in after) {
      this.#last = after;
      return this.#invoke('handleContinue', after.continue, undefined);
    } else {
      ms = after.timeout;
      msg = after.message;
      if (ms === Infinity) return undefined;
    }
    const idle = (this.#idle ??= new IdleTimer(this.self));
    idle.msg = msg;
    this.self.node._timers.add(idle, ms);
    return undefined;
  }

  /** Answers `Sys.getState`, `Sys.replaceState` and `Sys.getStatus` between two callbacks. */
  #system(req: SystemRequest): undefined {
    const self = this.self;
    answerSystem(req, this.#state, (next) => (this.#state = next as S), {
      pid: self.pid,
      name: self.name,
      behaviour: this.behaviourName,
      module: ((this as ProcessBehaviour).behaviourModule ?? this).constructor.name,
      parent: this.#parent,
      messageQueueLength: self.messageCount,
    });
    return undefined;
  }

  /** Runs `terminate`, reports an abnormal stop, and ends the process. */
  #terminate(reason: unknown): unknown {
    const self = this.self;
    if (!self.alive) return undefined; // killed: no terminate, as in OTP
    let t: unknown;
    try {
      t = this.terminate(reason, this.#state as S);
    } catch (err) {
      reason = err;
    }
    const finish = (finalReason: unknown): void => {
      if (!isQuietReason(finalReason)) this.#report(finalReason);
      self._exit(finalReason);
    };
    if (isThenable(t)) {
      return t.then(
        () => finish(reason),
        (err: unknown) => finish(err),
      );
    }
    finish(reason);
    return undefined;
  }

  #report(reason: unknown): void {
    const self = this.self;
    const who = self.name !== undefined ? `${self.pid} (${self.name})` : String(self.pid);
    self.node.logger.error(
      `${this.behaviourName} ${who} ${this.constructor.name} terminating: ${formatReason(reason)}; ` +
        `last message: ${describeMessage(this.#last)}`,
      reason,
    );
  }
}
