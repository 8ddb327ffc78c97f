/* eslint-disable @typescript-eslint/no-this-alias -- module state records which process is running or about to wait, so the hot path allocates no closures. */
import { NoProcError, WtdError } from '../errors.js';
import { DEFAULT_MAX_MAILBOX, Mailbox } from './mailbox.js';
import { DownMessage, ExitMessage, TIMEOUT, type RegisteredName, type Timeout } from './messages.js';
import type { Node, SpawnOptions } from './node.js';
import { NODE_ID, Pid, Ref } from './pid.js';
import type { Timed } from './timer-queue.js';
import { scheduler } from './scheduler.js';

/**
 * The body of a process: an async function given its own {@link Process} handle.
 *
 * @example
 * ```ts
 * const body: ProcessBody = async (self) => {
 *   for (;;) console.log(await self.receive());
 * };
 * node.spawn(body);
 * ```
 */
export type ProcessBody = (self: Process) => unknown;

/**
 * A predicate that picks the messages a selective `receive` accepts.
 *
 * @example
 * ```ts
 * const onlyNumbers: Matcher = (msg) => typeof msg === 'number';
 * const n = await self.receive(onlyNumbers, 1000); // a number, or TIMEOUT after a second
 * ```
 */
export type Matcher = (msg: unknown) => boolean;

/** @internal The key of a behaviour's start hook. */
export const BEHAVIOUR_START: unique symbol = Symbol('wtd.behaviour.start');
/** @internal The key of a behaviour's per-message hook. */
export const BEHAVIOUR_HANDLE: unique symbol = Symbol('wtd.behaviour.handle');

/**
 * What the runtime needs from a behaviour (GenServer, Supervisor, GenEvent,
 * GenFsm) to run it as a process: a start hook and a message hook. The
 * runtime drains the mailbox into the message hook without creating a
 * promise per message; a hook that returns a promise holds the mailbox until
 * it settles, so messages are still handled one at a time.
 *
 * @example
 * ```ts
 * // What GenServer, Supervisor, GenEvent and GenFsm provide to the runtime;
 * // user code extends those classes rather than implementing this.
 * class Counter extends GenServer<number> {}
 * ```
 */
export interface ProcessBehaviour {
  /** The behaviour's name for introspection, such as `'gen_server'`. */
  readonly behaviourName: string;
  /** The user's object behind the behaviour, when it is not the behaviour itself (a Supervisor run by its server). */
  readonly behaviourModule?: object;
  /** @internal */
  [BEHAVIOUR_START](self: Process, arg: unknown): unknown;
  /** @internal */
  [BEHAVIOUR_HANDLE](msg: unknown, self: Process): unknown;
}

/** Anything a monitor can report to. @internal */
export interface Watcher {
  _down(ref: Ref, pid: Pid | RegisteredName, reason: unknown): void;
}

/**
 * What a node that talks to other nodes does for monitors that cross to
 * them: the transport layer fills it in (the runtime knows nothing of the
 * wire). `monitor` may throw (a bound); it reports later through
 * {@link fireRemote}.
 * @internal
 */
export interface RemoteMonitorHook {
  monitor(ref: Ref, pid: Pid): void;
  demonitor(ref: Ref): void;
  monitorNode(ref: Ref, nodeId: string, watcher: Process): void;
  demonitorNode(ref: Ref): boolean;
}

/** The target of a monitor on a process of another node (a `Ref`'s owner). @internal */
export class RemoteTarget {
  active = true;
  constructor(
    readonly pid: Pid,
    readonly watcher: Watcher,
    readonly hook: RemoteMonitorHook,
  ) {}
}

/**
 * @internal Fires a monitor on a process of another node, once: its
 * watcher receives a `DOWN` with `reason`. False if it had fired or was
 * taken down already.
 */
export function fireRemote(ref: Ref, reason: unknown): boolean {
  const target = ref._owner;
  if (!(target instanceof RemoteTarget) || !target.active) return false;
  target.active = false;
  target.watcher._down(ref, target.pid, reason);
  return true;
}

/** @internal True for a pid that came from another node over the wire. */
export function isRemotePid(pid: Pid): boolean {
  return pid[NODE_ID] !== undefined;
}

/**
 * What `self.exit(reason)` throws to unwind the process's code. The runtime
 * (or a behaviour, after `terminate`) ends the process with `reason` when it
 * sees it. Like Erlang's `exit/1`, a catch-all in your code can stop it.
 * @internal
 */
export class ProcessExit {
  constructor(readonly reason: unknown) {}
}

const enum State {
  Starting,
  Running,
  Waiting,
  Yielding,
  Dead,
}

const QUEUED = 1;
const BUSY = 2;
const TRAP_EXIT = 4;

/** The state most processes never need, kept off the process until they do. @internal */
export class Relations {
  links: Set<Process> | null = null;
  monitors: Map<Ref, Watcher> | null = null;
  monitoring: Set<Ref> | null = null;
  name: string | undefined = undefined;
  timer: ReceiveTimer | null = null;
  /** Exit signals from linked processes that died, on their way to this one (unlink cancels them). */
  inflight: Set<LinkSignal> | null = null;
  /** `sendAfter` timers aimed at this process by pid; they die with it. */
  timers: Set<Timed> | null = null;
}

/** The largest receive or timer timeout, in ms: OTP's 2^32 - 1. @internal */
export const MAX_TIMEOUT = 0xffffffff;

/** @internal A whole number of milliseconds OTP would take as a timeout. */
export function isTimeoutValue(ms: unknown): ms is number {
  return typeof ms === 'number' && Number.isInteger(ms) && ms >= 0 && ms <= MAX_TIMEOUT;
}

/** @internal How an argument error shows the value it got. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'Object'})`;
  return typeof value;
}

const NOT_FOUND: unique symbol = Symbol('wtd.notFound');
const NEVER: Promise<never> = new Promise<never>(() => {});

// The promise executor is shared: it stores the resolver on the process that
// is about to wait, so a receive allocates the promise and nothing else.
let waitingProcess: Process | null = null;
function captureResolve(resolve: (value: unknown) => void): void {
  waitingProcess!._resolve = resolve;
}

let current: Process | null = null;

/**
 * The process whose code is running synchronously right now, if the
 * scheduler started it (a behaviour callback, or the first stretch of a
 * body). Used to refuse a server calling itself.
 * @internal
 */
export function currentProcess(): Process | null {
  return current;
}

// The behaviour whose code named its own process (`this.self`) in the
// current job, while one of its async callbacks is under way: after an
// await, this is the only sign of which process is running.
let selfHint: Process | null = null;
let hintQueued = false;
function clearHint(): void {
  selfHint = null;
  hintQueued = false;
}

/**
 * Called by a behaviour's `self` getter. Outside a scheduler turn, with an
 * async callback of `proc` pending, the code reading `this.self` is that
 * callback resumed after an await; remember it until the current job ends.
 * @internal
 */
export function noteSelf(proc: Process): void {
  if (current !== null || !proc._busy) return;
  selfHint = proc;
  if (!hintQueued) {
    hintQueued = true;
    queueMicrotask(clearHint);
  }
}

/** @internal The behaviour that named itself in this job (see {@link noteSelf}), if any. */
export function hintedProcess(): Process | null {
  return selfHint;
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return x !== null && typeof x === 'object' && typeof (x as { then?: unknown }).then === 'function';
}

function bodyReturned(this: Process): void {
  this._exit('normal');
}

function bodyThrew(this: Process, err: unknown): void {
  this._crash(err);
}

/**
 * Starts a body and ends the process when it settles. A `.then` with two
 * bound functions is the cheapest way to hear of it: wrapping the body in
 * another async function costs twice the memory, and an idle process is
 * mostly this bookkeeping.
 */
function runBody(proc: Process, body: ProcessBody): void {
  const result = body(proc);
  if (isThenable(result)) result.then(bodyReturned.bind(proc), bodyThrew.bind(proc));
  else proc._exit('normal');
}

/**
 * A running process, as seen from inside: the `self` handed to a body, and
 * `this.self` in a behaviour. It is how a process receives, links, monitors
 * and exits. Other code holds only its {@link Pid}.
 *
 * Messages are passed by reference inside a node: treat every message you
 * send or receive as immutable.
 *
 * @example
 * ```ts
 * const echo = node.spawn(async (self) => {
 *   for (;;) {
 *     const msg = await self.receive();
 *     const { from, text } = msg as { from: Pid; text: string };
 *     self.send(from, text);
 *   }
 * });
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 */
export class Process {
  /** This process's pid. */
  readonly pid: Pid;
  /** The node this process runs on. */
  readonly node: Node;

  // Fields are few on purpose: an idle process should cost well under a
  // kilobyte. Rarely used state lives in `_rel`, made on first use; flags
  // share one number.
  /** @internal */ _state: State = State.Starting;
  /** @internal QUEUED | BUSY | TRAP_EXIT */ _flags = 0;
  /** @internal Created on the first message that has to wait. */ _mailbox: Mailbox | null = null;
  /** @internal How many messages from other nodes its mailbox takes. */ _maxMailbox = DEFAULT_MAX_MAILBOX;
  /** @internal Set only while waiting. */ _match: Matcher | null = null;
  /** @internal Set only while waiting or yielding. */ _resolve: ((value: unknown) => void) | null = null;
  /**
   * @internal Before start: the body, or the behaviour's start argument.
   * While yielding: the value to resume with.
   */
  _arg: unknown;
  /** @internal */ _behaviour: ProcessBehaviour | null;
  /** @internal Links, monitors, name and receive timer, when there are any. */ _rel: Relations | null = null;
  /** @internal This process's index in its node's table. */ _slot = -1;

  /** @internal In the run queue. */
  get _queued(): boolean {
    return (this._flags & QUEUED) !== 0;
  }
  /** @internal */
  set _queued(on: boolean) {
    this._flags = on ? this._flags | QUEUED : this._flags & ~QUEUED;
  }
  /** @internal A behaviour hook's promise is pending; the mailbox waits. */
  get _busy(): boolean {
    return (this._flags & BUSY) !== 0;
  }
  /** @internal */
  set _busy(on: boolean) {
    this._flags = on ? this._flags | BUSY : this._flags & ~BUSY;
  }
  /** @internal */
  get _trapExit(): boolean {
    return (this._flags & TRAP_EXIT) !== 0;
  }
  /** @internal */
  set _trapExit(on: boolean) {
    this._flags = on ? this._flags | TRAP_EXIT : this._flags & ~TRAP_EXIT;
  }
  /** @internal Processes linked to this one. */
  get _links(): Set<Process> | null {
    return this._rel === null ? null : this._rel.links;
  }
  /** @internal */
  set _links(v: Set<Process> | null) {
    (this._rel ??= new Relations()).links = v;
  }
  /** @internal Monitors others hold on this process. */
  get _monitors(): Map<Ref, Watcher> | null {
    return this._rel === null ? null : this._rel.monitors;
  }
  /** @internal */
  set _monitors(v: Map<Ref, Watcher> | null) {
    (this._rel ??= new Relations()).monitors = v;
  }
  /** @internal Monitors this process holds on others. */
  get _monitoring(): Set<Ref> | null {
    return this._rel === null ? null : this._rel.monitoring;
  }
  /** @internal */
  set _monitoring(v: Set<Ref> | null) {
    (this._rel ??= new Relations()).monitoring = v;
  }
  /** @internal The registered name. */
  get _name(): string | undefined {
    return this._rel === null ? undefined : this._rel.name;
  }
  /** @internal */
  set _name(v: string | undefined) {
    (this._rel ??= new Relations()).name = v;
  }
  /** @internal The receive timeout, made on first use and reused. */
  get _timer(): ReceiveTimer | null {
    return this._rel === null ? null : this._rel.timer;
  }
  /** @internal */
  set _timer(v: ReceiveTimer | null) {
    (this._rel ??= new Relations()).timer = v;
  }

  /** @internal */
  constructor(node: Node, id: number, body: ProcessBody | null, behaviour: ProcessBehaviour | null, arg: unknown) {
    this.node = node;
    this.pid = new Pid(node.name, id, node.serial, this);
    this._arg = behaviour === null ? body : arg;
    this._behaviour = behaviour;
  }

  /**
   * @internal A plain body that is neither waiting in a receive nor queued
   * to resume: either its own code is running now, or it awaits something
   * that is not a message (and so cannot be answering a call).
   */
  get _bodyRunning(): boolean {
    return this._behaviour === null && this._state === State.Running;
  }

  /** True until the process exits. */
  get alive(): boolean {
    return this._state !== State.Dead;
  }

  /** The name this process is registered under, if any. */
  get name(): string | undefined {
    return this._name;
  }

  /** How many messages are waiting in the mailbox. */
  get messageCount(): number {
    return this._mailbox === null ? 0 : this._mailbox.length;
  }

  // ---------------------------------------------------------------- receive

  /**
   * Waits for the oldest message `match` accepts (any message if `match` is
   * omitted). Messages it skips stay in the mailbox, in order, for a later
   * receive. With `timeoutMs`, resolves to {@link TIMEOUT} if nothing matching
   * arrives in time; `0` only looks at what is already there.
   *
   * A process may wait in one receive at a time.
   */
  receive(): Promise<unknown>;
  receive<T>(match: (msg: unknown) => msg is T): Promise<T>;
  receive(match: Matcher | undefined): Promise<unknown>;
  receive<T>(match: (msg: unknown) => msg is T, timeoutMs: number): Promise<T | Timeout>;
  receive(match: Matcher | undefined, timeoutMs: number): Promise<unknown>;
  receive(match?: Matcher, timeoutMs?: number): Promise<unknown> {
    if (this._state === State.Dead) return NEVER;
    if (this._state !== State.Running) {
      throw new TypeError(`${this.pid} called receive() while an earlier receive() is still waiting; await it first`);
    }
    if (match !== undefined && typeof match !== 'function') {
      throw new TypeError(`receive(match, timeoutMs) expects match to be a function or undefined, got ${typeof match}`);
    }
    if (timeoutMs !== undefined && timeoutMs !== Infinity && !isTimeoutValue(timeoutMs)) {
      throw new TypeError(
        `receive(match, timeoutMs) expects timeoutMs to be a whole number of ms from 0 to ${MAX_TIMEOUT} or Infinity, got ${describe(timeoutMs)}`,
      );
    }
    const box = this._mailbox;
    if (box !== null && box.length > 0) {
      const msg = match === undefined ? box.shift() : box.take(match, NOT_FOUND);
      if (msg !== NOT_FOUND) {
        if (scheduler.tick()) return Promise.resolve(msg);
        return this._park(msg);
      }
    }
    if (timeoutMs === 0) return Promise.resolve(TIMEOUT);
    this._match = match ?? null;
    this._state = State.Waiting;
    waitingProcess = this;
    const p = new Promise(captureResolve);
    waitingProcess = null;
    if (timeoutMs !== undefined && timeoutMs !== Infinity)
      this.node._timers.add((this._timer ??= new ReceiveTimer(this)), timeoutMs);
    return p;
  }

  /**
   * Lets every other ready process run, and the event loop turn, before
   * this one continues. Call it in long loops that do not otherwise await.
   */
  yield(): Promise<void> {
    if (this._state === State.Dead) return NEVER;
    return this._park(undefined, true) as Promise<void>;
  }

  /** Waits `ms` milliseconds, leaving the mailbox alone. */
  async sleep(ms: number): Promise<void> {
    await this.receive(() => false, ms);
  }

  /** @internal Resolves later, from the run queue, with `value`. */
  _park(value: unknown, later = false): Promise<unknown> {
    this._arg = value;
    this._state = State.Yielding;
    waitingProcess = this;
    const p = new Promise(captureResolve);
    waitingProcess = null;
    if (later) {
      this._queued = true;
      scheduler.enqueueLater(this);
    } else {
      this._schedule();
    }
    return p;
  }

  // ---------------------------------------------------------------- other process operations

  /** Sends `msg` to a pid or registered name. Never throws for a dead pid. */
  send(dest: Pid | string, msg: unknown): void {
    if (this._state === State.Dead) return;
    this.node.send(dest, msg);
  }

  /** Starts a process on this node (see {@link Node.spawn}). */
  spawn(body: ProcessBody | ProcessBehaviour, options?: SpawnOptions): Pid {
    return this.node.spawn(body, options);
  }

  /** Starts a process linked to this one. */
  spawnLink(body: ProcessBody | ProcessBehaviour, options?: SpawnOptions): Pid {
    return this.node.spawn(body, { ...options, link: this.pid });
  }

  /** Starts a process monitored by this one; returns its pid and the monitor's reference. */
  spawnMonitor(body: ProcessBody | ProcessBehaviour, options?: SpawnOptions): { pid: Pid; ref: Ref } {
    const pid = this.node.spawn(body, options);
    return { pid, ref: this.monitor(pid) };
  }

  /**
   * Links this process to `pid`: when either exits abnormally, the other gets
   * an exit signal. Linking to a dead process sends this one a `noproc` signal.
   */
  link(pid: Pid): void {
    if (!(pid instanceof Pid)) throw new TypeError(`link(pid) expects a Pid, got ${describe(pid)}`);
    if (isRemotePid(pid)) throw notLocal(pid);
    this.node._link(this, pid);
  }

  /**
   * Removes a link, if there is one. Once it returns, no exit signal from
   * that link reaches this process, not even one already on its way (as
   * OTP's `unlink/1`); an `ExitMessage` already in the mailbox stays.
   */
  unlink(pid: Pid): void {
    if (!(pid instanceof Pid)) throw new TypeError(`unlink(pid) expects a Pid, got ${describe(pid)}`);
    this.node._unlink(this, pid);
    const inflight = this._rel?.inflight;
    if (inflight) {
      for (const signal of inflight) {
        if (signal.from.equals(pid)) {
          signal.cancelled = true;
          inflight.delete(signal);
        }
      }
    }
  }

  /**
   * Starts watching `target`: when it exits this process receives a
   * {@link DownMessage} carrying the returned reference (at once, with
   * reason `'noproc'`, if it is already dead). `target` may be a pid of
   * another node that came over the wire: its node tells this one when it
   * exits (with its reason, a string if it cannot travel), and the `DOWN`
   * says `'noconnection'` if that node goes down or the grant that carried
   * the pid ends first.
   */
  monitor(target: Pid | string): Ref {
    if (!(target instanceof Pid) && typeof target !== 'string') {
      throw new TypeError(`monitor(target) expects a Pid or a registered name, got ${describe(target)}`);
    }
    return this.node._monitor(this, target);
  }

  /**
   * Watches node `nodeId` (a node id, as in the proxy's directory): when it
   * goes down this process receives a {@link NodeDownMessage} (OTP's
   * `monitor_node(Node, true)`). Only on a node that talks to others
   * (a `WtdNode`); each call sets one monitor, which fires once.
   */
  monitorNode(nodeId: string): Ref {
    if (typeof nodeId !== 'string' || nodeId.length === 0) {
      throw new TypeError(`monitorNode(nodeId) expects a node id, got ${describe(nodeId)}`);
    }
    return this.node._monitorNode(this, nodeId);
  }

  /** Stops a monitor {@link monitorNode} set; false if it had fired already. */
  demonitorNode(ref: Ref): boolean {
    if (!(ref instanceof Ref))
      throw new TypeError(`demonitorNode(ref) expects the Ref monitorNode() returned, got ${describe(ref)}`);
    return this.node._remoteMonitors?.demonitorNode(ref) ?? false;
  }

  /**
   * Stops a monitor. With `flush`, also removes its `DOWN` message if one
   * already arrived. Returns false if the monitor had already fired.
   */
  demonitor(ref: Ref, options?: { flush?: boolean }): boolean {
    if (!(ref instanceof Ref))
      throw new TypeError(`demonitor(ref) expects the Ref monitor() returned, got ${describe(ref)}`);
    const active = this.node._demonitor(ref, this);
    if (options?.flush && this._mailbox !== null) {
      this._mailbox.removeAll((m) => m instanceof DownMessage && m.ref === ref);
    }
    return active;
  }

  /**
   * Turns exit signals into {@link ExitMessage}s in the mailbox (true) or
   * lets them kill this process (false). Returns the previous setting.
   * A `'kill'` signal cannot be trapped.
   */
  trapExit(flag: boolean): boolean {
    if (typeof flag !== 'boolean') throw new TypeError(`trapExit(flag) expects true or false, got ${describe(flag)}`);
    const previous = this._trapExit;
    this._trapExit = flag;
    return previous;
  }

  /**
   * `exit(reason)` ends this process with `reason`, as Erlang's `exit/1`: it
   * throws to unwind your code (so do not swallow it in a catch-all), and a
   * behaviour runs its `terminate` first. `exit(pid, reason)` sends an exit
   * signal to another process, as Erlang's `exit/2`.
   */
  exit(reason: unknown): never;
  exit(pid: Pid, reason: unknown): void;
  exit(pidOrReason: unknown, reason?: unknown): void {
    if (arguments.length >= 2) {
      this.node._exitSignal(pidOrReason as Pid, reason, this.pid);
      return;
    }
    throw new ProcessExit(pidOrReason);
  }

  /** Registers this process under `name` (see {@link Node.register}). */
  register(name: string): void {
    this.node.register(name, this.pid);
  }

  /** Sends `msg` to this process after `ms` milliseconds; cancel with {@link Node.cancelTimer}. */
  sendAfter(msg: unknown, ms: number): Ref {
    return this.node.sendAfter(this.pid, msg, ms);
  }

  toString(): string {
    return this.pid.toString();
  }

  // ---------------------------------------------------------------- runtime internals

  /** @internal Called by `send`: the heart of message passing. */
  _deliver(msg: unknown): void {
    const state = this._state;
    if (state === State.Waiting) {
      const match = this._match;
      let accepted = true;
      if (match !== null) {
        try {
          accepted = match(msg);
        } catch (err) {
          // A throwing matcher is a crash of the receiver, as a bad pattern would be.
          this._crash(err);
          return;
        }
      }
      if (accepted) {
        if (scheduler.tick()) {
          this._wake(msg);
          return;
        }
        (this._mailbox ??= new Mailbox()).push(msg);
        this._schedule();
        return;
      }
    } else if (state === State.Dead) {
      return;
    }
    scheduler.spend();
    (this._mailbox ??= new Mailbox()).push(msg);
    if (state === State.Running && this._behaviour !== null && !this._busy) this._schedule();
  }

  /** @internal */
  _wake(value: unknown): void {
    this._state = State.Running;
    this._match = null;
    const timer = this._timer;
    if (timer !== null && timer._heapIndex >= 0) this.node._timers.remove(timer);
    const resolve = this._resolve!;
    this._resolve = null;
    resolve(value);
  }

  /** @internal A receive timeout. */
  _timeout(): void {
    if (this._state === State.Waiting) this._wake(TIMEOUT);
  }

  /** @internal */
  _schedule(): void {
    if (!this._queued) {
      this._queued = true;
      scheduler.enqueue(this);
    }
  }

  /** @internal One turn on the scheduler. */
  _run(): void {
    this._queued = false;
    switch (this._state) {
      case State.Starting:
        this._start();
        return;
      case State.Yielding: {
        const value = this._arg;
        this._arg = undefined;
        this._state = State.Running;
        const resolve = this._resolve!;
        this._resolve = null;
        resolve(value);
        return;
      }
      case State.Waiting: {
        const box = this._mailbox;
        if (box === null || box.length === 0) return;
        const msg = this._match === null ? box.shift() : box.take(this._match, NOT_FOUND);
        if (msg !== NOT_FOUND) this._wake(msg);
        return;
      }
      case State.Running:
        if (this._behaviour !== null && !this._busy) this._drain();
        return;
      default:
        return;
    }
  }

  /** @internal Runs the body or the behaviour's start hook. */
  _start(): void {
    this._state = State.Running;
    const previous = current;
    current = this;
    try {
      if (this._behaviour !== null) {
        const arg = this._arg;
        this._arg = undefined;
        this._settle(this._behaviour[BEHAVIOUR_START](this, arg));
      } else {
        const body = this._arg as ProcessBody;
        this._arg = undefined;
        runBody(this, body);
      }
    } catch (err) {
      this._crash(err);
    } finally {
      current = previous;
    }
  }

  /** @internal Hands waiting messages to the behaviour, one at a time, within the slice budget. */
  _drain(): void {
    const behaviour = this._behaviour!;
    const box = this._mailbox;
    const previous = current;
    current = this;
    try {
      while (box !== null && box.length > 0 && this._state === State.Running && !this._busy) {
        const result = behaviour[BEHAVIOUR_HANDLE](box.shift(), this);
        if (result !== undefined) this._settle(result);
        if (box.length > 0 && !scheduler.tick()) {
          this._schedule();
          return;
        }
      }
    } catch (err) {
      this._crash(err);
    } finally {
      current = previous;
    }
  }

  /** @internal A hook that returned a promise holds the mailbox until it settles. */
  _settle(result: unknown): void {
    if (!isThenable(result)) return;
    this._busy = true;
    result.then(
      () => {
        this._busy = false;
        if (this._state === State.Running && this._mailbox !== null && this._mailbox.length > 0) this._schedule();
      },
      (err: unknown) => {
        this._busy = false;
        this._crash(err);
      },
    );
  }

  /** @internal An uncaught error: log it, then exit with it as the reason. `self.exit(reason)` exits quietly. */
  _crash(err: unknown): void {
    if (this._state === State.Dead) return;
    if (err instanceof ProcessExit) {
      this._exit(err.reason);
      return;
    }
    this.node._logCrash(this, err);
    this._exit(err);
  }

  /** @internal Receives an exit signal from `from`. */
  _signal(from: Pid, reason: unknown, viaLink: boolean): void {
    if (this._state === State.Dead) return;
    if (reason === 'kill' && !viaLink) {
      this._exit('killed');
    } else if (this._trapExit) {
      this._deliver(new ExitMessage(from, reason));
    } else if (reason !== 'normal') {
      this._exit(reason);
    } else if (from.equals(this.pid)) {
      // exit(self(), normal) does end the caller, as in Erlang.
      this._exit('normal');
    }
  }

  /** @internal Ends the process: every link and monitor hears of it. */
  _exit(reason: unknown): void {
    if (this._state === State.Dead) return;
    this._state = State.Dead;
    const timer = this._timer;
    if (timer !== null && timer._heapIndex >= 0) this.node._timers.remove(timer);
    this._resolve = null;
    this._match = null;
    this._mailbox = null;
    this._arg = undefined;
    this.node._forget(this);
    const rel = this._rel;
    if (rel !== null) {
      if (rel.timers !== null) {
        for (const t of rel.timers) this.node._timers.remove(t);
        rel.timers = null;
      }
      rel.inflight = null;
    }
    const links = this._links;
    if (links !== null) {
      this._links = null;
      for (const other of links) {
        other._links?.delete(this);
        const signal = new LinkSignal(other, this.pid, reason);
        ((other._rel ??= new Relations()).inflight ??= new Set()).add(signal);
        scheduler.enqueue(signal);
      }
    }
    const monitors = this._monitors;
    if (monitors !== null) {
      this._monitors = null;
      for (const [ref, watcher] of monitors) watcher._down(ref, ref instanceof NameRef ? ref.item : this.pid, reason);
    }
    const monitoring = this._monitoring;
    if (monitoring !== null) {
      this._monitoring = null;
      for (const ref of monitoring) {
        const target = ref._owner;
        if (target instanceof RemoteTarget) {
          if (target.active) {
            target.active = false;
            target.hook.demonitor(ref);
          }
        } else (target as Process | undefined)?._monitors?.delete(ref);
      }
    }
  }

  /** @internal A monitor this process holds fired. */
  _down(ref: Ref, pid: Pid | RegisteredName, reason: unknown): void {
    this._monitoring?.delete(ref);
    this._deliver(new DownMessage(ref, pid, reason));
  }

  /** @internal For introspection. */
  _status(): 'running' | 'waiting' | 'runnable' | 'exited' {
    switch (this._state) {
      case State.Dead:
        return 'exited';
      case State.Waiting:
        return 'waiting';
      case State.Running:
        if (this._busy || this._queued) return 'running';
        return this._behaviour !== null ? 'waiting' : 'running';
      default:
        return 'runnable';
    }
  }
}

/** A process's receive timeout, kept apart so processes that never time out do not carry its fields. */
class ReceiveTimer {
  _at = 0;
  _seq = 0;
  _heapIndex = -1;
  constructor(readonly proc: Process) {}
  _timeout(): void {
    this.proc._timeout();
  }
}

/** An exit signal travelling along a link; delivered from the run queue so deaths do not recurse. */
class LinkSignal {
  /** Set when the target unlinked before the signal arrived. */
  cancelled = false;
  constructor(
    readonly target: Process,
    readonly from: Pid,
    readonly reason: unknown,
  ) {}
  _run(): void {
    if (this.cancelled) return;
    this.target._rel?.inflight?.delete(this);
    this.target._signal(this.from, this.reason, true);
  }
}

/**
 * The reference of a monitor set by name: its `DOWN` names the process as
 * it was monitored, `{ name, node }`, as OTP's does.
 * @internal
 */
export class NameRef extends Ref {
  constructor(
    owner: unknown,
    readonly item: RegisteredName,
  ) {
    super(owner);
  }
}

/** @internal Links stay local: a stranger's crash must not kill a process here. */
export function notLocal(pid: Pid): WtdError {
  return new WtdError(
    'ERR_NOT_LOCAL',
    `${pid} is a process of another node: links stay local (monitor it instead, with monitor(pid))`,
  );
}

/** @internal Fails with `NoProcError` when `pid` does not name a live local process. */
export function expectLocal(node: Node, pid: Pid | string): Process {
  const proc = node._lookup(pid);
  if (proc === undefined) throw new NoProcError(pid);
  return proc;
}
