import { HostServer } from './host-server.js';
import { StartError, SupervisorError, describeValue, formatReason } from '../errors.js';
import type { ErrorCode } from '../error-codes.js';
import { ExitMessage } from '../runtime/messages.js';
import { Pid } from '../runtime/pid.js';
import { checkChildSpec, checkFlags, type FullChildSpec, type FullFlags, type StartedChild } from './child-spec.js';
import { shutdownChildren, type Victim } from './child-shutdown.js';
import { isQuietReason } from './gen.js';
import type { CallResult, From, InitResult, NoReplyResult } from './gen-server.js';
import { Ignore, NoReply, Ok, stop } from './results.js';
import type { ChildCounts, ChildInfo, Supervisor, SupervisorRequest } from './supervisor.js';

interface Child {
  spec: FullChildSpec;
  pid: Pid | 'restarting' | undefined;
  /** simple_one_for_one: the arguments this child was started with. */
  extra: unknown[];
}

/** @internal */
export interface SupervisorState {
  flags: FullFlags;
  /** In start order. For simple_one_for_one: the running children; the template is `template`. */
  children: Child[];
  template: FullChildSpec | undefined;
  /** Clock times of recent restarts, oldest first. */
  restarts: number[];
}
type State = SupervisorState;

function isPid(x: Pid | 'restarting' | undefined): x is Pid {
  return x !== undefined && x !== 'restarting';
}

class RetryRestart {
  constructor(readonly child: Child) {}
}

function refuse(code: ErrorCode, message: string): SupervisorError {
  return new SupervisorError(code, message);
}

/** What a child's start gave: its pid (undefined for ignore) and, if it said so, the extra info. */
interface Started {
  pid: Pid | undefined;
  answer: Pid | StartedChild | undefined;
}

/** The gen_server that runs a {@link Supervisor}. @internal */
export class SupervisorServer extends HostServer<Supervisor, State, SupervisorRequest> {
  override get behaviourName(): string {
    return 'supervisor';
  }

  override async init(arg: unknown): Promise<InitResult<State>> {
    this.adopt();
    this.self.trapExit(true);
    const spec = await this.module.init(arg);
    if (spec instanceof Ignore) return spec;
    const flags = checkFlags(spec);
    const children = checkChildSpecList(spec.children ?? [], flags);
    const state: State = { flags, children: [], template: undefined, restarts: [] };
    if (flags.strategy === 'simple_one_for_one') {
      state.template = children[0];
      return new Ok(state);
    }
    for (const spec of children) {
      const child: Child = { spec, pid: undefined, extra: [] };
      try {
        child.pid = (await this.#startOne(child)).pid;
      } catch (err) {
        await this.#terminateAll(state);
        const reason = err instanceof StartError ? err.reason : err;
        return stop({ shutdown: { failedToStartChild: spec.id, reason } }, state);
      }
      // A temporary child that ignored its start is not kept (OTP).
      if (child.pid !== undefined || spec.restart !== 'temporary') state.children.push(child);
    }
    return new Ok(state);
  }

  override handleCall(req: SupervisorRequest, _from: From, state: State): Promise<CallResult<State>> {
    return this.answer(() => this.#answer(req, state), state);
  }

  async #answer(req: SupervisorRequest, state: State): Promise<unknown> {
    switch (req.op) {
      case 'whichChildren':
        return this.#whichChildren(state);
      case 'countChildren':
        return this.#countChildren(state);
      case 'startChild':
        return this.#startChild(req.arg, state);
      case 'terminateChild':
        return this.#terminateChild(req.id, state);
      case 'restartChild':
        return this.#restartChild(req.id, state);
      case 'deleteChild':
        return this.#deleteChild(req.id, state);
      case 'getChildSpec':
        return publicSpec(this.#find(req.id, state).spec);
      default:
        throw new TypeError(`a supervisor does not understand ${describeValue(req)}`);
    }
  }

  override async handleInfo(msg: unknown, state: State): Promise<NoReplyResult<State>> {
    if (msg instanceof RetryRestart) {
      // A child terminated or deleted since the retry was queued stays as it is.
      if (!state.children.includes(msg.child) || msg.child.pid !== 'restarting') return new NoReply(state);
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

  // ---------------------------------------------------------------- requests

  /** Newest first, as OTP lists them; dynamic children have no id. */
  #whichChildren(state: State): ChildInfo[] {
    const rows: ChildInfo[] = [];
    for (let i = state.children.length - 1; i >= 0; i--) {
      const c = state.children[i]!;
      rows.push({ id: state.template !== undefined ? null : c.spec.id, pid: c.pid, type: c.spec.type });
    }
    return rows;
  }

  /** Under simple_one_for_one the template is the one spec, and every child counts by its type. */
  #countChildren(state: State): ChildCounts {
    const all = state.children;
    const active = all.filter((c) => isPid(c.pid)).length;
    const supervisors = all.filter((c) => c.spec.type === 'supervisor').length;
    const specs = state.template !== undefined ? 1 : all.length;
    return { specs, active, supervisors, workers: all.length - supervisors };
  }

  async #startChild(arg: unknown, state: State): Promise<Pid | StartedChild | undefined> {
    if (state.template !== undefined) {
      const extra = Array.isArray(arg) ? arg : [arg];
      const child: Child = { spec: state.template, pid: undefined, extra };
      const started = await this.#startOne(child);
      if (started.pid !== undefined) {
        child.pid = started.pid;
        state.children.push(child);
      }
      return started.answer;
    }
    const spec = checkChildSpec(arg, state.flags.autoShutdown);
    const existing = state.children.find((c) => c.spec.id === spec.id);
    if (existing !== undefined) {
      if (isPid(existing.pid)) {
        throw refuse('ERR_ALREADY_STARTED', `child '${spec.id}' is already running as ${String(existing.pid)}`);
      }
      throw refuse(
        'ERR_ALREADY_PRESENT',
        `a child spec with id '${spec.id}' is already present; restartChild or deleteChild it first`,
      );
    }
    const child: Child = { spec, pid: undefined, extra: [] };
    const started = await this.#startOne(child);
    child.pid = started.pid;
    if (child.pid !== undefined || spec.restart !== 'temporary') state.children.push(child);
    return started.answer;
  }

  #find(id: string | Pid, state: State): Child {
    let child: Child | undefined;
    if (typeof id === 'string') {
      if (state.template !== undefined) {
        throw refuse('ERR_SIMPLE_ONE_FOR_ONE', 'a simple_one_for_one supervisor names its children by pid, not by id');
      }
      child = state.children.find((c) => c.spec.id === id);
    } else if (id instanceof Pid) {
      // Only dynamic children are found by pid, as in OTP.
      if (state.template !== undefined) child = state.children.find((c) => isPid(c.pid) && c.pid.equals(id));
    } else {
      throw new TypeError(`expected a child id (string) or a Pid, got ${describeValue(id)}`);
    }
    if (child === undefined) throw refuse('ERR_CHILD_NOT_FOUND', `this supervisor has no child ${String(id)}`);
    return child;
  }

  async #terminateChild(id: string | Pid, state: State): Promise<void> {
    // A pid that is no longer alive has nothing left to stop (OTP answers ok).
    if (state.template !== undefined && id instanceof Pid && !this.self.node.isAlive(id)) {
      if (!state.children.some((c) => isPid(c.pid) && c.pid.equals(id))) return;
    }
    const child = this.#find(id, state);
    await this.#stop(child);
    if (state.template !== undefined || child.spec.restart === 'temporary') {
      state.children.splice(state.children.indexOf(child), 1);
    }
  }

  async #restartChild(id: string, state: State): Promise<Pid | StartedChild | undefined> {
    const child = this.#find(id, state);
    if (child.pid === 'restarting') throw refuse('ERR_CHILD_RESTARTING', `child '${id}' is being restarted`);
    if (child.pid !== undefined) throw refuse('ERR_CHILD_RUNNING', `child '${id}' is running as ${child.pid}`);
    const started = await this.#startOne(child);
    child.pid = started.pid;
    return started.answer;
  }

  #deleteChild(id: string, state: State): void {
    const child = this.#find(id, state);
    if (child.pid === 'restarting') throw refuse('ERR_CHILD_RESTARTING', `child '${id}' is being restarted`);
    if (child.pid !== undefined) throw refuse('ERR_CHILD_RUNNING', `child '${id}' is running; terminateChild it first`);
    state.children.splice(state.children.indexOf(child), 1);
  }

  // ---------------------------------------------------------------- starting and stopping

  async #startOne(child: Child): Promise<Started> {
    let answer: unknown;
    try {
      answer = await child.spec.start(this.self, ...child.extra);
    } catch (err) {
      if (err instanceof StartError && err.code === 'ERR_START_IGNORED') return { pid: undefined, answer: undefined };
      throw err;
    }
    const pid = answer instanceof Pid ? answer : isStartedChild(answer) ? answer.pid : undefined;
    if (pid === undefined) {
      throw new StartError(
        'ERR_START_FAILED',
        'bad_start_result',
        `child '${child.spec.id}': start must resolve with the child's Pid or { pid, info }, got ${describeValue(answer)}`,
      );
    }
    // A child started without a link would go unwatched; link it ourselves.
    this.self.link(pid);
    return { pid, answer: answer as Pid | StartedChild };
  }

  #victim(child: Child, pid: Pid): Victim {
    return { pid, spec: child.spec, label: `'${child.spec.id}'` };
  }

  async #stop(child: Child): Promise<void> {
    const pid = child.pid;
    child.pid = undefined;
    if (!isPid(pid)) return;
    await shutdownChildren(this.self, [this.#victim(child, pid)]);
  }

  /** Stops every child, last started first (all at once under simple_one_for_one). */
  async #terminateAll(state: State): Promise<void> {
    if (state.template !== undefined) {
      const victims: Victim[] = [];
      for (const c of state.children) {
        if (isPid(c.pid)) victims.push(this.#victim(c, c.pid));
        c.pid = undefined;
      }
      await shutdownChildren(this.self, victims);
      return;
    }
    for (let i = state.children.length - 1; i >= 0; i--) await this.#stop(state.children[i]!);
  }

  /** A child exited by itself. Returns false when the supervisor must shut down. */
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
      return !(spec.significant && this.#autoShutdown(state));
    }
    if (!allowed) return this.#giveUp(state);
    await this.#restart(child, state);
    return true;
  }

  /** A significant child ended for good: whether the supervisor stops by itself now (OTP's auto_shutdown). */
  #autoShutdown(state: State): boolean {
    const { autoShutdown } = state.flags;
    if (autoShutdown === 'never') return false;
    if (autoShutdown === 'all_significant') {
      if (state.children.some((c) => c.spec.significant && c.pid !== undefined)) return false;
    }
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
        c.pid = (await this.#startOne(c)).pid;
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

function isStartedChild(x: unknown): x is StartedChild {
  return x !== null && typeof x === 'object' && (x as StartedChild).pid instanceof Pid && 'info' in x;
}

/** @internal A child spec as a user wrote it, with the defaults filled in. */
export function publicSpec(spec: FullChildSpec): FullChildSpec {
  return { ...spec };
}

/**
 * @internal Checks a supervisor's children: each spec, unique ids, and one
 * template for simple_one_for_one. Throws `ERR_BAD_CHILD_SPEC`.
 */
export function checkChildSpecList(specs: unknown, flags: FullFlags | undefined): FullChildSpec[] {
  if (!Array.isArray(specs)) {
    throw refuse('ERR_BAD_CHILD_SPEC', `children must be an array of child specs, got ${describeValue(specs)}`);
  }
  const children = specs.map((s) => checkChildSpec(s, flags?.autoShutdown));
  const ids = new Set<string>();
  for (const c of children) {
    if (ids.has(c.id)) throw refuse('ERR_BAD_CHILD_SPEC', `two children share the id '${c.id}'; ids must be unique`);
    ids.add(c.id);
  }
  if (flags?.strategy === 'simple_one_for_one' && children.length !== 1) {
    throw refuse(
      'ERR_BAD_CHILD_SPEC',
      `simple_one_for_one takes exactly one child spec (the template), got ${children.length}`,
    );
  }
  return children;
}
