import { HostServer } from './host-server.js';
import { BadReturnValueError, GenEventError, describeValue, formatReason } from '../errors.js';
import { ExitMessage } from '../runtime/messages.js';
import type { Pid } from '../runtime/pid.js';
import type { Process } from '../runtime/process.js';
import {
  DEFAULT_CALL_TIMEOUT,
  SELF,
  startBehaviour,
  type ServerRef,
  type StartOptions,
  type StartWhere,
} from './gen.js';
import { GenServer, type CallResult, type From, type NoReplyResult } from './gen-server.js';
import { callOrThrow } from './host-server.js';
import { NoReply, Ok, Reply } from './results.js';

/**
 * A handler asks to be removed (from `handleEvent`, `handleInfo`, or `handleCall` with a reply).
 *
 * @example
 * ```ts
 * override handleEvent(event: unknown, n: number) {
 *   return event === 'enough' ? removeHandler() : ok(n + 1); // a RemoveHandler
 * }
 * ```
 */
export class RemoveHandler {
  constructor(readonly reply?: unknown) {}
}

/**
 * Handler result: remove this handler (answering `reply` if it came from a call).
 *
 * @example
 * ```ts
 * override handleCall(req: 'leave', n: number) {
 *   return removeHandler('bye'); // the caller gets 'bye', the handler is removed
 * }
 * ```
 */
export function removeHandler(replyValue?: unknown): RemoveHandler {
  return new RemoveHandler(replyValue);
}

/**
 * The message a supervised handler's owner receives when the handler is
 * removed (OTP's `{gen_event_EXIT, Handler, Reason}`). `reason` is
 * `'normal'` after `deleteHandler` or `removeHandler()`, `'shutdown'` when
 * the manager stopped, or `{ error }` when the handler crashed.
 *
 * @example
 * ```ts
 * await GenEvent.addSupHandler(manager, new Printer(), undefined, self.pid);
 * const msg = await self.receive((m) => m instanceof GenEventExit);
 * ```
 */
export class GenEventExit {
  readonly tag = 'gen_event_EXIT' as const;
  constructor(
    readonly handler: string,
    readonly reason: unknown,
  ) {}
}

/**
 * One event handler: an object a {@link GenEvent} manager feeds events to.
 * Callbacks run inside the manager's process, one event at a time.
 *
 * - `init(args)` returns `ok(state)`. Default: `ok(args)`.
 * - `handleEvent(event, state)` returns `ok(state)` or `removeHandler()`.
 * - `handleCall(request, state)` returns `reply(value, state)` or `removeHandler(value)`.
 * - `handleInfo(msg, state)` returns `ok(state)` or `removeHandler()`.
 * - `terminate(arg, state)` runs when the handler is removed; what it
 *   returns is handed to the next handler's `init` on a swap.
 *
 * A handler that throws is removed (its `terminate` gets `{ error }`); the
 * manager and the other handlers carry on.
 *
 * @example
 * ```ts
 * class Printer extends GenEventHandler<number> {
 *   override init() {
 *     return ok(0);
 *   }
 *   override handleEvent(event: unknown, n: number) {
 *     console.log(`#${n + 1}: ${String(event)}`);
 *     return ok(n + 1);
 *   }
 * }
 * await GenEvent.addHandler(manager, new Printer());
 * ```
 */
export abstract class GenEventHandler<S = unknown, E = unknown> {
  /** Names the handler within its manager. Default: the class name. */
  readonly id: string;

  constructor(id?: string) {
    this.id = id ?? new.target.name;
  }

  init(args: unknown): Ok<S> | Promise<Ok<S>> {
    return new Ok(args as S);
  }

  /** Handles one event. There is no useful default: override it (a handler without it is removed on its first event). */
  handleEvent(event: E, state: S): Ok<S> | RemoveHandler {
    void state;
    throw new Error(
      `attempted to call handler ${this.id} with the event ${describeValue(event)} but no handleEvent was provided; ` +
        'override handleEvent(event, state) in your class',
    );
  }

  handleCall(request: unknown, state: S): Reply<unknown, S> | RemoveHandler {
    void state;
    throw new Error(`handler ${this.id} got the call ${JSON.stringify(request)} but has no handleCall; override it`);
  }

  /** Handles a plain message sent to the manager. Default: the manager logs it and keeps the handler (as OTP's optional `handle_info`). */
  handleInfo(msg: unknown, state: S): Ok<S> | RemoveHandler {
    void msg;
    return new Ok(state);
  }

  terminate(arg: unknown, state: S): unknown {
    void arg;
    void state;
    return undefined;
  }
}

/** What `terminate` gave when it threw (OTP's `{'EXIT', Reason}`). */
class TerminateCrash {
  constructor(readonly error: unknown) {}
}

interface Entry {
  handler: GenEventHandler<any, any>;
  state: unknown;
  /** The process supervising this handler (addSupHandler), if any. */
  owner: Pid | undefined;
}

type Request =
  | { op: 'add'; handler: GenEventHandler<any, any>; args: unknown; owner: Pid | undefined }
  | { op: 'delete'; id: string; args: unknown }
  | { op: 'swap'; oldId: string; args1: unknown; handler: GenEventHandler<any, any>; args2: unknown }
  | { op: 'syncNotify'; event: unknown }
  | { op: 'call'; id: string; request: unknown }
  | { op: 'answers'; id: string }
  | { op: 'which' };

interface State {
  handlers: Entry[];
}

function notFound(id: string): GenEventError {
  return new GenEventError('ERR_HANDLER_NOT_FOUND', `no handler '${id}' is installed in this event manager`);
}

/**
 * An event manager: a process that hands every event it receives to each
 * of its installed handlers. Use it for logging, notifications, chat rooms:
 * anywhere several independent parties want the same stream of events.
 *
 * Subclass it (with no body) when you want a named class to expose under a
 * mission with `@WtdBehaviour`.
 *
 * @example
 * ```ts
 * class Printer extends GenEventHandler<number, string> {
 *   override handleEvent(event: string, count: number) {
 *     console.log(`#${count}: ${event}`);
 *     return ok(count + 1);
 *   }
 * }
 * const room = await GenEvent.start(node);
 * await GenEvent.addHandler(room, new Printer(), 1);
 * GenEvent.notify(room, 'hello');        // prints: #1: hello
 * await GenEvent.whichHandlers(room);    // => ['Printer']
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 */
export class GenEvent {
  /** @internal */ [SELF]: Process | undefined = undefined;

  /** Starts an event manager (`manager` defaults to a plain `GenEvent`). */
  static start(where: StartWhere, manager: GenEvent = new GenEvent(), options?: StartOptions): Promise<Pid> {
    return startBehaviour(where, new EventManagerServer(manager), undefined, options, false);
  }

  /** Starts an event manager linked to `parent`. */
  static startLink(parent: Process, manager: GenEvent = new GenEvent(), options?: StartOptions): Promise<Pid> {
    return startBehaviour(parent, new EventManagerServer(manager), undefined, options, true);
  }

  /** Installs `handler`; its `init(args)` runs in the manager. `ERR_HANDLER_EXISTS` if its id is taken. */
  static async addHandler(mgr: ServerRef, handler: GenEventHandler<any, any>, args?: unknown): Promise<void> {
    await callOrThrow(mgr, { op: 'add', handler, args, owner: undefined }, DEFAULT_CALL_TIMEOUT);
  }

  /**
   * Installs `handler` supervised by `owner`: when the handler is removed
   * for any reason but a swap, `owner` receives a {@link GenEventExit};
   * when `owner` exits, the handler is removed.
   */
  static async addSupHandler(
    mgr: ServerRef,
    handler: GenEventHandler<any, any>,
    args: unknown,
    owner: Pid,
  ): Promise<void> {
    await callOrThrow(mgr, { op: 'add', handler, args, owner }, DEFAULT_CALL_TIMEOUT);
  }

  /**
   * Removes a handler; resolves with what its `terminate(args, state)`
   * returned. A supervised handler's owner gets a {@link GenEventExit} with
   * reason `'normal'`. If `terminate` throws, the handler is gone all the
   * same and this rejects with `ERR_HANDLER_CRASHED` (its `cause` is the error).
   */
  static deleteHandler(mgr: ServerRef, id: string, args?: unknown): Promise<unknown> {
    return callOrThrow(mgr, { op: 'delete', id, args }, DEFAULT_CALL_TIMEOUT);
  }

  /**
   * Replaces handler `oldId` with `handler`: the old one's
   * `terminate(args1, state)` result and `args2` go to the new one's
   * `init({ args: args2, previous })`. If there is no `oldId`, the new
   * handler is installed all the same with `previous` `'error'`, as in OTP.
   */
  static async swapHandler(
    mgr: ServerRef,
    oldId: string,
    args1: unknown,
    handler: GenEventHandler<any, any>,
    args2: unknown,
  ): Promise<void> {
    await callOrThrow(mgr, { op: 'swap', oldId, args1, handler, args2 }, DEFAULT_CALL_TIMEOUT);
  }

  /** Sends `event` to every handler without waiting. */
  static notify(mgr: ServerRef, event: unknown): void {
    GenServer.cast(mgr, event);
  }

  /** Sends `event` to every handler and resolves once all have handled it. */
  static async syncNotify(mgr: ServerRef, event: unknown, timeout = DEFAULT_CALL_TIMEOUT): Promise<void> {
    await callOrThrow(mgr, { op: 'syncNotify', event }, timeout);
  }

  /** Calls one handler's `handleCall(request, state)` and resolves with its reply. */
  static call<R = unknown>(mgr: ServerRef, id: string, request: unknown, timeout = DEFAULT_CALL_TIMEOUT): Promise<R> {
    return callOrThrow(mgr, { op: 'call', id, request }, timeout) as Promise<R>;
  }

  /**
   * @internal True when handler `id` defines its own `handleCall` (a call to
   * one that does not would crash it and remove it): how a remote call is
   * refused before it reaches the handler.
   */
  static _answersCalls(mgr: ServerRef, id: string): Promise<boolean> {
    return callOrThrow(mgr, { op: 'answers', id }, DEFAULT_CALL_TIMEOUT) as Promise<boolean>;
  }

  /** The ids of the installed handlers, newest first (the order events reach them in, as in OTP). */
  static whichHandlers(mgr: ServerRef): Promise<string[]> {
    return callOrThrow(mgr, { op: 'which' }, DEFAULT_CALL_TIMEOUT) as Promise<string[]>;
  }

  /** Stops the manager; every handler's `terminate('stop', state)` runs. */
  static stop(mgr: ServerRef, reason: unknown = 'normal'): Promise<void> {
    return GenServer.stop(mgr, reason);
  }
}

/** The gen_server that runs a {@link GenEvent} manager. @internal */
class EventManagerServer extends HostServer<GenEvent, State, Request> {
  override get behaviourName(): string {
    return 'gen_event';
  }

  override init(): Ok<State> {
    this.adopt();
    this.self.trapExit(true);
    return new Ok({ handlers: [] });
  }

  override handleCall(req: Request, _from: From, state: State): Promise<CallResult<State>> {
    return this.answer(() => this.#answer(req, state), state);
  }

  override handleCast(event: unknown, state: State): NoReplyResult<State> {
    this.#broadcast('handleEvent', event, state);
    return new NoReply(state);
  }

  override handleInfo(msg: unknown, state: State): NoReplyResult<State> {
    if (msg instanceof ExitMessage) {
      const owned = state.handlers.filter((e) => e.owner !== undefined && e.owner.equals(msg.from));
      if (owned.length > 0) {
        for (const e of owned) this.#remove(e, { stop: msg.reason }, state, undefined);
        return new NoReply(state);
      }
    }
    this.#broadcast('handleInfo', msg, state);
    return new NoReply(state);
  }

  override terminate(reason: unknown, state: State): void {
    for (const e of [...state.handlers]) this.#remove(e, 'stop', state, reason === 'normal' ? 'shutdown' : reason);
  }

  async #answer(req: Request, state: State): Promise<unknown> {
    switch (req.op) {
      case 'add':
        return this.#add(req.handler, req.args, req.owner, state);
      case 'delete': {
        const entry = this.#find(req.id, state);
        const result = this.#remove(entry, req.args, state, 'normal');
        if (result instanceof TerminateCrash) {
          throw new GenEventError(
            'ERR_HANDLER_CRASHED',
            `handler '${req.id}' was removed, but its terminate crashed: ${formatReason(result.error)}`,
            { cause: result.error },
          );
        }
        return result;
      }
      case 'swap': {
        // As OTP: with the old handler missing, the new one still starts, and its init gets previous 'error'.
        const entry = state.handlers.find((e) => e.handler.id === req.oldId);
        let previous: unknown = 'error';
        if (entry !== undefined) {
          const result = this.#remove(entry, req.args1, state, undefined);
          previous = result instanceof TerminateCrash ? { EXIT: result.error } : result;
        }
        return this.#add(req.handler, { args: req.args2, previous }, entry?.owner, state);
      }
      case 'syncNotify':
        this.#broadcast('handleEvent', req.event, state);
        return undefined;
      case 'call': {
        const entry = this.#find(req.id, state);
        let r: unknown;
        try {
          r = entry.handler.handleCall(req.request, entry.state);
        } catch (err) {
          this.#crashed(entry, err, state);
          throw new GenEventError(
            'ERR_HANDLER_CRASHED',
            `handler '${req.id}' crashed on the call: ${formatReason(err)}`,
            { cause: err },
          );
        }
        if (r instanceof Reply) {
          entry.state = r.state;
          return r.reply;
        }
        if (r instanceof RemoveHandler) {
          this.#remove(entry, 'remove_handler', state, 'normal');
          return r.reply;
        }
        const bad = new BadReturnValueError(
          `${entry.handler.constructor.name}.handleCall`,
          r,
          'reply(value, state) or removeHandler(value)',
        );
        this.#crashed(entry, bad, state);
        throw bad;
      }
      case 'answers':
        return this.#find(req.id, state).handler.handleCall !== GenEventHandler.prototype.handleCall;
      case 'which':
        return state.handlers.map((e) => e.handler.id);
      default:
        throw new TypeError(`an event manager does not understand ${JSON.stringify(req)}`);
    }
  }

  async #add(handler: GenEventHandler<any, any>, args: unknown, owner: Pid | undefined, state: State): Promise<void> {
    if (!(handler instanceof GenEventHandler)) {
      throw new TypeError(`addHandler expects a GenEventHandler instance, got ${typeof handler}`);
    }
    if (state.handlers.some((e) => e.handler.id === handler.id)) {
      throw new GenEventError(
        'ERR_HANDLER_EXISTS',
        `a handler with id '${handler.id}' is already installed; give the new one another id`,
      );
    }
    let r: unknown;
    try {
      r = await handler.init(args);
    } catch (err) {
      throw new GenEventError('ERR_HANDLER_INIT', `handler '${handler.id}' failed in init: ${formatReason(err)}`, {
        cause: err,
      });
    }
    if (!(r instanceof Ok)) {
      throw new BadReturnValueError(`${handler.constructor.name}.init`, r, 'ok(state)');
    }
    if (owner !== undefined) this.self.link(owner);
    // Newest first, as OTP keeps them: it is the order events reach them in, and whichHandlers lists.
    state.handlers.unshift({ handler, state: r.state, owner });
  }

  #find(id: string, state: State): Entry {
    const entry = state.handlers.find((e) => e.handler.id === id);
    if (entry === undefined) throw notFound(id);
    return entry;
  }

  /** Removes `entry`, runs its terminate, tells its owner (with `ownerReason`) if any. */
  #remove(entry: Entry, arg: unknown, state: State, ownerReason: unknown): unknown {
    const i = state.handlers.indexOf(entry);
    if (i >= 0) state.handlers.splice(i, 1);
    let result: unknown;
    try {
      result = entry.handler.terminate(arg, entry.state);
    } catch (err) {
      this.self.node.logger.error(`handler '${entry.handler.id}' crashed in terminate: ${formatReason(err)}`, err);
      result = new TerminateCrash(err);
    }
    if (entry.owner !== undefined) {
      if (ownerReason !== undefined) this.self.send(entry.owner, new GenEventExit(entry.handler.id, ownerReason));
      if (!state.handlers.some((e) => e.owner !== undefined && e.owner.equals(entry.owner!)))
        this.self.unlink(entry.owner);
    }
    return result;
  }

  #crashed(entry: Entry, err: unknown, state: State): void {
    this.self.node.logger.error(
      `gen_event ${this.self.pid}: handler '${entry.handler.id}' crashed and was removed: ${formatReason(err)}`,
      err,
    );
    this.#remove(entry, { error: err }, state, { error: err });
  }

  #broadcast(kind: 'handleEvent' | 'handleInfo', event: unknown, state: State): void {
    for (const entry of [...state.handlers]) {
      if (kind === 'handleInfo' && entry.handler.handleInfo === GenEventHandler.prototype.handleInfo) {
        this.self.node.logger.error(
          `gen_event ${this.self.pid}: handler '${entry.handler.id}' has no handleInfo and was sent ${describeValue(event)}; ` +
            'override handleInfo(msg, state) to handle it',
        );
        continue;
      }
      let r: unknown;
      try {
        r = entry.handler[kind](event, entry.state);
      } catch (err) {
        this.#crashed(entry, err, state);
        continue;
      }
      if (r instanceof Ok) entry.state = r.state;
      else if (r instanceof RemoveHandler) this.#remove(entry, 'remove_handler', state, 'normal');
      else
        this.#crashed(
          entry,
          new BadReturnValueError(`${entry.handler.constructor.name}.${kind}`, r, 'ok(state) or removeHandler()'),
          state,
        );
    }
  }
}
