import { HostServer } from './host-server.js';
import { StartError, SupervisorError, describeValue, formatReason } from '../errors.js';
import type { ErrorCode } from '../error-codes.js';
import { ExitMessage, isDown, TIMEOUT } from '../runtime/messages.js';
import { Pid } from '../runtime/pid.js';
import type { Process } from '../runtime/process.js';
import {
  checkChildSpec,
  checkFlags,
  type ChildSpec,
  type ChildType,
  type FullChildSpec,
  type FullFlags,
  type SupervisorSpec,
} from './child-spec.js';
import { isQuietReason, SELF, startBehaviour, type ServerRef, type StartOptions, type StartWhere } from './gen.js';
import { callOrThrow, type CallResult, type From, type InitResult, type NoReplyResult } from './gen-server.js';
import { Ignore, NoReply, Ok, stop } from './results.js';

/**
 * One row of {@link Supervisor.whichChildren}.
 *
 * @example
 * ```ts
 * for (const child of await Supervisor.whichChildren(sup)) {
 *   console.log(child.id, String(child.pid), child.type); // 'counter' '<alice.2.0>' 'worker'
 * }
 * ```
 */
export interface ChildInfo {
  id: string;
  /** The running child's pid, `'restarting'` while a failed restart waits to be retried, or undefined if not running. */
  pid: Pid | 'restarting' | undefined;
  type: ChildType;
}

/**
 * The answer of {@link Supervisor.countChildren}.
 *
 * @example
 * ```ts
 * const { specs, active, supervisors, workers } = await Supervisor.countChildren(sup);
 * ```
 */
export interface ChildCounts {
  /** Child specs held. */
  specs: number;
  /** Children running. */
  active: number;
  supervisors: number;
  workers: number;
}

interface Child {
  spec: FullChildSpec;
  pid: Pid | 'restarting' | undefined;
  /** simple_one_for_one: the arguments this child was started with. */
  extra: unknown[];
}

type Request =
  | { op: 'startChild'; arg: unknown }
  | { op: 'terminateChild'; id: string | Pid }
  | { op: 'restartChild'; id: string }
  | { op: 'deleteChild'; id: string }
  | { op: 'whichChildren' }
  | { op: 'countChildren' };

function supCall<T>(sup: ServerRef, req: Request): Promise<T> {
  return callOrThrow(sup, req, Infinity) as Promise<T>;
}

function isPid(x: Pid | 'restarting' | undefined): x is Pid {
  return x !== undefined && x !== 'restarting';
}

class RetryRestart {
  constructor(readonly child: Child) {}
}

interface State {
  flags: FullFlags;
  /** In start order. For simple_one_for_one: the running children; the template is `template`. */
  children: Child[];
  template: FullChildSpec | undefined;
  /** Clock times of recent restarts, oldest first. */
  restarts: number[];
}

function refuse(code: ErrorCode, message: string): SupervisorError {
  return new SupervisorError(code, message);
}

/**
 * A supervisor: a process that starts children, watches them, and restarts
 * them by a strategy when they exit, within a restart intensity. Supervisors
 * nest into supervision trees; a tree is how a WTD program stays up.
 *
 * Subclass it and return your children from `init`:
 *
 * - `strategy`: `one_for_one` (restart just the child that exited),
 *   `one_for_all` (restart them all), `rest_for_one` (restart it and those
 *   started after it), `simple_one_for_one` (one template, children added at
 *   run time with {@link Supervisor.startChild}).
 * - `intensity` / `period`: more than `intensity` restarts within `period`
 *   seconds (default 1 in 5) and the supervisor stops all its children and
 *   exits with reason `'shutdown'`, handing the problem to its own supervisor.
 * - children start in order and stop in reverse order.
 *
 * A supervisor is itself a {@link GenServer}; its API calls are `GenServer.call`s.
 *
 * @example
 * ```ts
 * class App extends Supervisor {
 *   override init(): SupervisorSpec {
 *     return {
 *       strategy: 'one_for_one',
 *       intensity: 3,
 *       period: 5,
 *       children: [
 *         { id: 'counter', start: (parent) => GenServer.startLink(parent, new Counter(), 0) },
 *       ],
 *     };
 *   }
 * }
 * const sup = await Supervisor.start(node, new App());
 * await Supervisor.whichChildren(sup); // => [{ id: 'counter', pid: <demo.2.0>, type: 'worker' }]
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 */
export abstract class Supervisor {
  /** @internal */ [SELF]: Process | undefined = undefined;

  /** The supervisor's own process. Only valid once started. */
  get self(): Process {
    const self = this[SELF];
    if (self === undefined) throw new TypeError(`${this.constructor.name} has not been started; use Supervisor.start`);
    return self;
  }

  /** Returns the flags and children, or `ignore()` to start nothing. */
  abstract init(arg: unknown): SupervisorSpec | Ignore | Promise<SupervisorSpec | Ignore>;

  /** Starts `sup` with no parent (the top of a tree). */
  static start(where: StartWhere, sup: Supervisor, arg?: unknown, options?: StartOptions): Promise<Pid> {
    return startBehaviour(where, new SupervisorServer(sup), arg, options, false);
  }

  /** Starts `sup` linked to `parent`, as a child of another supervisor. */
  static startLink(parent: Process, sup: Supervisor, arg?: unknown, options?: StartOptions): Promise<Pid> {
    return startBehaviour(parent, new SupervisorServer(sup), arg, options, true);
  }

  /**
   * Adds and starts a child. Pass a child spec, or, under
   * `simple_one_for_one`, the extra arguments for the template's `start`.
   * Resolves with the pid (undefined if the child's init returned `ignore()`).
   * Rejects with `ERR_ALREADY_PRESENT`, `ERR_ALREADY_STARTED`, `ERR_BAD_CHILD_SPEC`
   * or the child's own `StartError`.
   */
  static startChild(sup: ServerRef, specOrArgs: ChildSpec | unknown[]): Promise<Pid | undefined> {
    return supCall(sup, { op: 'startChild', arg: specOrArgs });
  }

  /** Stops a child by id (its spec is kept), or by pid under `simple_one_for_one`. */
  static terminateChild(sup: ServerRef, id: string | Pid): Promise<void> {
    return supCall(sup, { op: 'terminateChild', id });
  }

  /** Starts again a child that was terminated. `ERR_CHILD_RUNNING` if it runs. */
  static restartChild(sup: ServerRef, id: string): Promise<Pid | undefined> {
    return supCall(sup, { op: 'restartChild', id });
  }

  /** Removes the spec of a child that is not running. `ERR_CHILD_RUNNING` if it runs. */
  static deleteChild(sup: ServerRef, id: string): Promise<void> {
    return supCall(sup, { op: 'deleteChild', id });
  }

  /** Every child, in start order. */
  static whichChildren(sup: ServerRef): Promise<ChildInfo[]> {
    return supCall(sup, { op: 'whichChildren' });
  }

  /** How many children of each kind. */
  static countChildren(sup: ServerRef): Promise<ChildCounts> {
    return supCall(sup, { op: 'countChildren' });
  }
}

/** Stops one child: asks, waits up to its shutdown time, then kills. Resolves with its exit reason. */
async function shutdownChild(self: Process, pid: Pid, spec: FullChildSpec): Promise<void> {
  const ref = self.monitor(pid);
  self.unlink(pid);
  let reason: unknown;
  if (spec.shutdown === 'brutal_kill') {
    self.exit(pid, 'kill');
    reason = ((await self.receive((m) => isDown(m, ref))) as { reason: unknown }).reason;
  } else {
    self.exit(pid, 'shutdown');
    const timeout = spec.shutdown === 'infinity' ? Infinity : spec.shutdown;
    const down = await self.receive((m) => isDown(m, ref), timeout);
    if (down === TIMEOUT) {
      self.exit(pid, 'kill');
      reason = ((await self.receive((m) => isDown(m, ref))) as { reason: unknown }).reason;
    } else {
      reason = (down as { reason: unknown }).reason;
    }
  }
  // An EXIT that arrived before the unlink is stale now.
  self.demonitor(ref, { flush: true });
  const expected = spec.shutdown === 'brutal_kill' ? 'killed' : 'shutdown';
  if (reason !== expected && reason !== 'noproc' && !(reason === 'killed' && spec.shutdown !== 'infinity')) {
    self.node.logger.error(
      `supervisor ${self.pid}: child '${spec.id}' ${pid} shut down with reason ${formatReason(reason)}`,
    );
  }
}

/** The gen_server that runs a {@link Supervisor}. @internal */
class SupervisorServer extends HostServer<Supervisor, State, Request> {
  override get behaviourName(): string {
    return 'supervisor';
  }

  override async init(arg: unknown): Promise<InitResult<State>> {
    this.adopt();
    this.self.trapExit(true);
    const spec = await this.module.init(arg);
    if (spec instanceof Ignore) return spec;
    const flags = checkFlags(spec);
    const children = (spec.children ?? []).map(checkChildSpec);
    const ids = new Set<string>();
    for (const c of children) {
      if (ids.has(c.id)) throw refuse('ERR_BAD_CHILD_SPEC', `two children share the id '${c.id}'; ids must be unique`);
      ids.add(c.id);
    }
    const state: State = { flags, children: [], template: undefined, restarts: [] };
    if (flags.strategy === 'simple_one_for_one') {
      if (children.length !== 1) {
        throw refuse(
          'ERR_BAD_CHILD_SPEC',
          `simple_one_for_one takes exactly one child spec (the template), got ${children.length}`,
        );
      }
      state.template = children[0];
      return new Ok(state);
    }
    for (const spec of children) {
      const child: Child = { spec, pid: undefined, extra: [] };
      try {
        child.pid = await this.#startOne(child);
      } catch (err) {
        await this.#terminateAll(state);
        const reason = err instanceof StartError ? err.reason : err;
        return stop({ shutdown: { failedToStartChild: spec.id, reason } }, state);
      }
      state.children.push(child);
    }
    return new Ok(state);
  }

  override handleCall(req: Request, _from: From, state: State): Promise<CallResult<State>> {
    return this.answer(() => this.#answer(req, state), state);
  }

  async #answer(req: Request, state: State): Promise<unknown> {
    switch (req.op) {
      case 'whichChildren':
        return state.children.map((c) => ({ id: c.spec.id, pid: c.pid, type: c.spec.type }));
      case 'countChildren': {
        const active = state.children.filter((c) => isPid(c.pid)).length;
        const supervisors = state.children.filter((c) => c.spec.type === 'supervisor').length;
        return { specs: state.children.length, active, supervisors, workers: state.children.length - supervisors };
      }
      case 'startChild':
        return this.#startChild(req.arg, state);
      case 'terminateChild':
        return this.#terminateChild(req.id, state);
      case 'restartChild':
        return this.#restartChild(req.id, state);
      case 'deleteChild':
        return this.#deleteChild(req.id, state);
      default:
        throw new TypeError(`a supervisor does not understand ${JSON.stringify(req)}`);
    }
  }

  override async handleInfo(msg: unknown, state: State): Promise<NoReplyResult<State>> {
    if (msg instanceof RetryRestart) {
      if (!state.children.includes(msg.child)) return new NoReply(state);
      if (!this.#withinIntensity(state)) return this.#giveUp(state) || stop('shutdown', state);
      await this.#restart(msg.child, state);
      return new NoReply(state);
    }
    if (!(msg instanceof ExitMessage)) return new NoReply(state);
    const child = state.children.find((c) => isPid(c.pid) && c.pid.equals(msg.from));
    if (child === undefined) return new NoReply(state);
    return (await this.#childExited(child, msg.reason, state)) ? new NoReply(state) : stop('shutdown', state);
  }

  override async terminate(_reason: unknown, state: State): Promise<void> {
    await this.#terminateAll(state);
  }

  // ---------------------------------------------------------------- helpers

  async #startOne(child: Child): Promise<Pid | undefined> {
    try {
      const pid = await child.spec.start(this.self, ...child.extra);
      if (!(pid instanceof Pid)) {
        throw new StartError(
          'ERR_START_FAILED',
          'bad_start_result',
          `child '${child.spec.id}': start must resolve with the child's Pid, got ${describeValue(pid)}`,
        );
      }
      // A child started without a link would go unwatched; link it ourselves.
      this.self.link(pid);
      return pid;
    } catch (err) {
      if (err instanceof StartError && err.code === 'ERR_START_IGNORED') return undefined;
      throw err;
    }
  }

  async #startChild(arg: unknown, state: State): Promise<Pid | undefined> {
    if (state.template !== undefined) {
      const extra = Array.isArray(arg) ? arg : [arg];
      const child: Child = { spec: state.template!, pid: undefined, extra };
      const pid = await this.#startOne(child);
      if (pid !== undefined) {
        child.pid = pid;
        state.children.push(child);
      }
      return pid;
    }
    const spec = checkChildSpec(arg);
    const existing = state.children.find((c) => c.spec.id === spec.id);
    if (existing !== undefined) {
      if (existing.pid !== undefined) {
        throw refuse('ERR_ALREADY_STARTED', `child '${spec.id}' is already running as ${String(existing.pid)}`);
      }
      throw refuse(
        'ERR_ALREADY_PRESENT',
        `a child spec with id '${spec.id}' is already present; restartChild or deleteChild it first`,
      );
    }
    const child: Child = { spec, pid: undefined, extra: [] };
    child.pid = await this.#startOne(child);
    state.children.push(child);
    return child.pid as Pid | undefined;
  }

  #find(id: string | Pid, state: State): Child {
    const child =
      typeof id === 'string'
        ? state.children.find((c) => c.spec.id === id)
        : state.children.find((c) => isPid(c.pid) && c.pid.equals(id));
    if (child === undefined) throw refuse('ERR_CHILD_NOT_FOUND', `this supervisor has no child ${String(id)}`);
    return child;
  }

  async #terminateChild(id: string | Pid, state: State): Promise<void> {
    if (state.template !== undefined && typeof id === 'string') {
      throw refuse('ERR_SIMPLE_ONE_FOR_ONE', 'a simple_one_for_one supervisor terminates children by pid, not by id');
    }
    const child = this.#find(id, state);
    await this.#stop(child);
    if (state.template !== undefined || child.spec.restart === 'temporary') {
      state.children.splice(state.children.indexOf(child), 1);
    }
  }

  async #restartChild(id: string, state: State): Promise<Pid | undefined> {
    if (state.template !== undefined) {
      throw refuse('ERR_SIMPLE_ONE_FOR_ONE', 'restartChild is not available under simple_one_for_one');
    }
    const child = this.#find(id, state);
    if (child.pid === 'restarting') throw refuse('ERR_CHILD_RESTARTING', `child '${id}' is being restarted`);
    if (child.pid !== undefined) throw refuse('ERR_CHILD_RUNNING', `child '${id}' is running as ${child.pid}`);
    child.pid = await this.#startOne(child);
    return child.pid as Pid | undefined;
  }

  #deleteChild(id: string, state: State): void {
    if (state.template !== undefined) {
      throw refuse('ERR_SIMPLE_ONE_FOR_ONE', 'deleteChild is not available under simple_one_for_one');
    }
    const child = this.#find(id, state);
    if (child.pid === 'restarting') throw refuse('ERR_CHILD_RESTARTING', `child '${id}' is being restarted`);
    if (child.pid !== undefined) throw refuse('ERR_CHILD_RUNNING', `child '${id}' is running; terminateChild it first`);
    state.children.splice(state.children.indexOf(child), 1);
  }

  async #stop(child: Child): Promise<void> {
    const pid = child.pid;
    child.pid = undefined;
    if (pid === undefined || pid === 'restarting') return;
    await shutdownChild(this.self, pid, child.spec);
  }

  /** Stops every child, last started first (all at once under simple_one_for_one). */
  async #terminateAll(state: State): Promise<void> {
    if (state.template !== undefined) {
      await Promise.all(state.children.map((c) => this.#stop(c)));
      return;
    }
    for (let i = state.children.length - 1; i >= 0; i--) await this.#stop(state.children[i]!);
  }

  /** A child exited. Returns false when the restart intensity is exceeded. */
  async #childExited(child: Child, reason: unknown, state: State): Promise<boolean> {
    const { spec } = child;
    child.pid = undefined;
    const restart = spec.restart === 'permanent' || (spec.restart === 'transient' && !isQuietReason(reason));
    const allowed = restart && this.#withinIntensity(state);
    if (!isQuietReason(reason)) {
      this.self.node.logger.error(
        `supervisor ${this.self.pid} (${this.module.constructor.name}): child '${spec.id}' exited with reason ` +
          `${formatReason(reason)}${allowed ? '; restarting it' : ''}`,
      );
    }
    if (!restart) {
      if (state.template !== undefined || spec.restart === 'temporary') {
        state.children.splice(state.children.indexOf(child), 1);
      }
      return true;
    }
    if (!allowed) return this.#giveUp(state);
    await this.#restart(child, state);
    return true;
  }

  #giveUp(state: State): false {
    this.self.node.logger.error(
      `supervisor ${this.self.pid} (${this.module.constructor.name}) reached its restart intensity ` +
        `(${state.flags.intensity} in ${state.flags.period} s) and is shutting down`,
    );
    return false;
  }

  /** Restarts `child` by the strategy; a failed start is retried through the mailbox. */
  async #restart(child: Child, state: State): Promise<void> {
    const { strategy } = state.flags;
    let group: Child[];
    if (strategy === 'one_for_all') group = [...state.children];
    else if (strategy === 'rest_for_one') group = state.children.slice(state.children.indexOf(child));
    else group = [child];
    // Stop the others in the group, newest first; temporary ones go for good.
    for (let i = group.length - 1; i >= 0; i--) {
      const c = group[i]!;
      if (c === child) continue;
      await this.#stop(c);
      if (c.spec.restart === 'temporary') {
        state.children.splice(state.children.indexOf(c), 1);
        group.splice(i, 1);
      }
    }
    for (const c of group) {
      try {
        c.pid = await this.#startOne(c);
        if (c.pid === undefined && state.template !== undefined) state.children.splice(state.children.indexOf(c), 1);
      } catch (err) {
        this.self.node.logger.error(
          `supervisor ${this.self.pid}: restarting child '${c.spec.id}' failed: ${formatReason(err)}; trying again`,
        );
        c.pid = 'restarting';
        this.self.send(this.self.pid, new RetryRestart(c));
        return;
      }
    }
  }

  #withinIntensity(state: State): boolean {
    const now = this.self.node.clock.now();
    const horizon = now - state.flags.period * 1000;
    state.restarts = state.restarts.filter((t) => t > horizon);
    state.restarts.push(now);
    return state.restarts.length <= state.flags.intensity;
  }
}
