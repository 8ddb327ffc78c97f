import { NameError, NoProcError, WtdError, formatReason } from '../errors.js';
import { systemClock, type Clock } from './clock.js';
import { Pid, PROCESS, Ref } from './pid.js';
import {
  describe,
  isTimeoutValue,
  MAX_TIMEOUT,
  NameRef,
  notLocal,
  Relations,
  Process,
  RemoteTarget,
  isRemotePid,
  type RemoteMonitorHook,
  type ProcessBehaviour,
  type ProcessBody,
  type Watcher,
} from './process.js';
import type { RegisteredName } from './messages.js';
import { TimerQueue, type Timed } from './timer-queue.js';

/**
 * Where a node writes crash reports. `console` fits; so does any logger with `error`.
 *
 * @example
 * ```ts
 * const logger: Logger = { error: (message, ...details) => console.error(message, ...details) };
 * const node = new Node({ name: 'alice', logger });
 * ```
 */
export interface Logger {
  error(message: string, ...details: unknown[]): void;
}

/**
 * Options for {@link Node}.
 *
 * @example
 * ```ts
 * const node = new Node({ name: 'alice', logger: { error: (m) => myLog.write(m) } });
 * ```
 */
export interface NodeOptions {
  /** The node's name, shown in its pids (`<alice.1.0>`). Letters, digits, `_` and `-`. Default `'nonode'`. */
  name?: string;
  /** The node's incarnation, the third number of its pids. Default 0. */
  serial?: number;
  /** Where time comes from; inject a `ManualClock` in tests. Default: the system clock. */
  clock?: Clock;
  /** Where crash reports go. Default: `console`. */
  logger?: Logger;
}

/**
 * Options for {@link Node.spawn}.
 *
 * @example
 * ```ts
 * const worker = node.spawn(async (self) => { await self.receive(); }, { name: 'worker', link: parentPid });
 * ```
 */
export interface SpawnOptions {
  /** Register the new process under this name before it runs. */
  name?: string;
  /** Link the new process to this one before it runs. */
  link?: Pid;
  /** Start the process trapping exits. */
  trapExit?: boolean;
  /** For a behaviour: the argument its start hook receives. */
  arg?: unknown;
  /**
   * Most messages its mailbox holds before a message from another node is
   * refused (`ERR_MAILBOX_FULL`); local sends are never refused, as in
   * Erlang. Default 1000.
   */
  maxMailbox?: number;
}

export { DEFAULT_MAX_MAILBOX } from './mailbox.js';

/**
 * A snapshot of one process, for tools such as the observer.
 *
 * @example
 * ```ts
 * const info = node.processInfo(pid);
 * console.log(info?.status, info?.messageQueueLength); // 'waiting' 0
 * ```
 */
export interface ProcessInfo {
  pid: Pid;
  /** Its registered name, if any. */
  name: string | undefined;
  /** `running` (has work or is mid-callback), `waiting` (in a receive), `runnable` (queued to start or resume). */
  status: 'running' | 'waiting' | 'runnable' | 'exited';
  /** Messages waiting in its mailbox. */
  messageQueueLength: number;
  /** Processes it is linked to. */
  links: Pid[];
  /** Processes it monitors. */
  monitors: Pid[];
  /** Processes monitoring it. */
  monitoredBy: Pid[];
  trapExit: boolean;
  /** `'gen_server'`, `'supervisor'`, `'gen_event'`, `'gen_fsm'`, or undefined for a plain body. */
  behaviour: string | undefined;
  /** The behaviour's class name, if it is one. */
  module: string | undefined;
}

const NODE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Anything a pid can point at on this node: a process, or a call's reply slot. @internal */
interface Mailable {
  _deliver(msg: unknown): void;
}

class SendAfter implements Timed {
  _at = 0;
  _seq = 0;
  _heapIndex = -1;
  constructor(
    readonly node: Node,
    readonly dest: Pid | string,
    readonly msg: unknown,
    /** The process a timer aimed at a pid belongs to: it is cancelled when that process exits. */
    readonly owner: Process | undefined,
  ) {}
  _timeout(): void {
    this.owner?._rel?.timers?.delete(this);
    // A timer to a name that has gone is dropped, as Erlang drops it.
    const target = this.node._lookup(this.dest);
    target?._deliver(this.msg);
  }
}

class ExitWaiter implements Watcher {
  constructor(readonly resolve: (reason: unknown) => void) {}
  _down(_ref: Ref, _pid: Pid, reason: unknown): void {
    this.resolve(reason);
  }
}

/**
 * One runtime instance: a table of processes, their names and timers. A
 * program may run several nodes (tests do); each pid says which node it
 * belongs to.
 *
 * @example
 * ```ts
 * const node = new Node({ name: 'alice' });
 * const pid = node.spawn(async (self) => {
 *   const msg = await self.receive();
 *   console.log('got', msg);
 * });
 * node.send(pid, 'hello');            // prints: got hello
 * console.log(await node.exited(pid)); // prints: normal
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 */
export class Node {
  /** The node's name. */
  readonly name: string;
  /** The node's incarnation. */
  readonly serial: number;
  /** The node's clock. */
  readonly clock: Clock;
  /** Where crash reports go. */
  readonly logger: Logger;

  /** @internal */ readonly _timers: TimerQueue;
  /** @internal Monitors that cross to other nodes; set by the transport layer (a `WtdNode`). */
  _remoteMonitors: RemoteMonitorHook | undefined = undefined;
  // Invariant: a process is in #procs from spawn until its exit, and in
  // #names (under its _name) from register until unregister or exit.
  // #live holds every live process, each at its own _slot; removal swaps the
  // last one into the hole, so both ends are O(1) with no hashing.
  readonly #live: Process[] = [];
  readonly #names = new Map<string, Process>();
  #nextId = 0;
  /** The sender of exit signals that come from outside any process. */
  readonly #nodePid: Pid;

  constructor(options: NodeOptions = {}) {
    const name = options.name ?? 'nonode';
    if (typeof name !== 'string' || !NODE_NAME.test(name)) {
      throw new TypeError(`Node name must be 1-64 letters, digits, '_' or '-', got ${JSON.stringify(name)}`);
    }
    this.name = name;
    this.serial = options.serial ?? 0;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? console;
    this._timers = new TimerQueue(this.clock);
    this.#nodePid = new Pid(this.name, 0, this.serial);
  }

  /**
   * Starts a process running `body` (an async function given its own
   * {@link Process}) or a behaviour instance, and returns its pid at once;
   * the process starts on the scheduler's next turn.
   */
  spawn(body: ProcessBody | ProcessBehaviour, options?: SpawnOptions): Pid {
    if (options?.link instanceof Pid && isRemotePid(options.link)) throw notLocal(options.link);
    let proc: Process;
    if (typeof body === 'function') {
      proc = new Process(this, ++this.#nextId, body as ProcessBody, null, undefined);
    } else if (
      body !== null &&
      typeof body === 'object' &&
      typeof (body as ProcessBehaviour).behaviourName === 'string'
    ) {
      proc = new Process(this, ++this.#nextId, null, body, options?.arg);
    } else {
      throw new TypeError(`spawn(body) expects an async function or a behaviour instance, got ${typeof body}`);
    }
    if (options !== undefined) {
      if (options.name !== undefined) this.register(options.name, proc.pid, proc);
      if (options.trapExit) proc._trapExit = true;
      if (options.maxMailbox !== undefined) {
        if (!(Number.isSafeInteger(options.maxMailbox) && options.maxMailbox >= 1)) {
          throw new RangeError(`spawn({ maxMailbox }) expects a whole number >= 1, got ${String(options.maxMailbox)}`);
        }
        proc._maxMailbox = options.maxMailbox;
      }
    }
    proc._slot = this.#live.length;
    this.#live.push(proc);
    if (options?.link !== undefined) this._link(proc, options.link);
    proc._schedule();
    return proc.pid;
  }

  /**
   * @internal Delivers a message that came from another node: false, and
   * not queued, when the process's mailbox holds its `maxMailbox` already.
   * A dead pid takes it (and drops it), as in Erlang.
   */
  _sendRemote(dest: Pid, msg: unknown): boolean {
    const target = dest[PROCESS] as Mailable | undefined;
    if (target instanceof Process && target.messageCount >= target._maxMailbox) return false;
    target?._deliver(msg);
    return true;
  }

  /**
   * Sends `msg` to a pid or a registered name. Sending to a dead pid is not
   * an error (the message is dropped, as in Erlang); sending to a name
   * nobody holds throws `NoProcError`.
   */
  send(dest: Pid | string, msg: unknown): void {
    if (dest instanceof Pid) {
      const target = dest[PROCESS] as Mailable | undefined;
      if (target !== undefined) target._deliver(msg);
      return;
    }
    if (typeof dest === 'string') {
      const proc = this.#names.get(dest);
      if (proc === undefined) throw new NoProcError(dest, `no process is registered as '${dest}' on node ${this.name}`);
      proc._deliver(msg);
      return;
    }
    throw new TypeError(`send(dest, msg) expects a Pid or a registered name, got ${typeof dest}`);
  }

  /**
   * Sends an exit signal to `pid` (Erlang's `exit/2` from outside any
   * process). `'kill'` ends it whatever it does; `'normal'` is ignored unless
   * it traps exits; any other reason ends it unless it traps exits.
   */
  exit(pid: Pid, reason: unknown): void {
    this._exitSignal(pid, reason, undefined);
  }

  /** Registers `pid` under `name` on this node. */
  register(name: string, pid: Pid): void;
  /** @internal */
  register(name: string, pid: Pid, starting: Process): void;
  register(name: string, pid: Pid, starting?: Process): void {
    if (typeof name !== 'string' || name.length === 0) {
      throw new TypeError(`register(name, pid) expects a non-empty string name, got ${JSON.stringify(name)}`);
    }
    const proc = starting ?? this._lookup(pid);
    if (proc === undefined) throw new NoProcError(pid);
    const holder = this.#names.get(name);
    if (holder !== undefined) {
      throw new NameError(
        'ERR_NAME_TAKEN',
        name,
        `the name '${name}' is already registered to ${holder.pid}; pick another name or stop that process first`,
      );
    }
    if (proc._name !== undefined) {
      throw new NameError(
        'ERR_ALREADY_NAMED',
        name,
        `${pid} is already registered as '${proc._name}'; a process has at most one name`,
      );
    }
    proc._name = name;
    this.#names.set(name, proc);
  }

  /** Frees `name`. Returns false if nobody held it. */
  unregister(name: string): boolean {
    const proc = this.#names.get(name);
    if (proc === undefined) return false;
    this.#names.delete(name);
    proc._name = undefined;
    return true;
  }

  /** The pid registered under `name`, or undefined. */
  whereis(name: string): Pid | undefined {
    return this.#names.get(name)?.pid;
  }

  /** The names registered on this node. */
  registered(): string[] {
    return [...this.#names.keys()];
  }

  /** True while `pid` names a live process on this node. */
  isAlive(pid: Pid): boolean {
    return this._lookup(pid) !== undefined;
  }

  /**
   * Sends `msg` to `dest` after `ms` milliseconds (a whole number up to
   * 2^32 - 1). Returns a reference for {@link cancelTimer}. A timer aimed
   * at a pid is cancelled when that process exits, as in Erlang.
   */
  sendAfter(dest: Pid | string, msg: unknown, ms: number): Ref {
    if (!isTimeoutValue(ms)) {
      throw new TypeError(
        `sendAfter(dest, msg, ms) expects ms to be a whole number from 0 to ${MAX_TIMEOUT}, got ${describe(ms)}`,
      );
    }
    let owner: Process | undefined;
    if (dest instanceof Pid) {
      owner = this._lookup(dest);
      // A timer for a process that is already dead has nothing to do.
      if (owner === undefined && dest[PROCESS] instanceof Process) return new Ref(undefined);
    } else if (typeof dest !== 'string') {
      throw new TypeError(`sendAfter(dest, msg, ms) expects a Pid or a registered name, got ${describe(dest)}`);
    }
    const entry = new SendAfter(this, dest, msg, owner);
    this._timers.add(entry, ms);
    if (owner !== undefined) ((owner._rel ??= new Relations()).timers ??= new Set()).add(entry);
    return new Ref(entry);
  }

  /** Cancels a {@link sendAfter} timer. Returns the milliseconds it had left, or false if it already fired (or its process exited). */
  cancelTimer(ref: Ref): number | false {
    if (!(ref instanceof Ref))
      throw new TypeError(`cancelTimer(ref) expects the Ref sendAfter returned, got ${describe(ref)}`);
    const entry = ref._owner;
    if (!(entry instanceof SendAfter)) return false;
    const left = this._timers.remaining(entry);
    this._timers.remove(entry);
    entry.owner?._rel?.timers?.delete(entry);
    return left;
  }

  /** Resolves with `pid`'s exit reason once it exits (`'noproc'` if it is not alive now). */
  exited(pid: Pid): Promise<unknown> {
    return new Promise((resolve) => {
      this._monitor(new ExitWaiter(resolve), pid);
    });
  }

  /** The pids of every live process on this node. */
  processes(): Pid[] {
    return this.#live.map((p) => p.pid);
  }

  /** A snapshot of one process, or undefined if it is not alive. */
  processInfo(pid: Pid | string): ProcessInfo | undefined {
    if (!(pid instanceof Pid) && typeof pid !== 'string') {
      throw new TypeError(`processInfo(pid) expects a Pid or a registered name, got ${describe(pid)}`);
    }
    const proc = this._lookup(pid);
    if (proc === undefined) return undefined;
    const monitors: Pid[] = [];
    for (const ref of proc._monitoring ?? []) {
      const target = ref._owner as Process | undefined;
      if (target !== undefined) monitors.push(target.pid);
    }
    const monitoredBy: Pid[] = [];
    for (const watcher of proc._monitors?.values() ?? []) {
      if (watcher instanceof Process) monitoredBy.push(watcher.pid);
    }
    const behaviour = proc._behaviour;
    return {
      pid: proc.pid,
      name: proc._name,
      status: proc._status(),
      messageQueueLength: proc.messageCount,
      links: [...(proc._links ?? [])].map((p) => p.pid),
      monitors,
      monitoredBy,
      trapExit: proc._trapExit,
      behaviour: behaviour?.behaviourName,
      module: behaviour === null ? undefined : (behaviour.behaviourModule ?? behaviour).constructor.name,
    };
  }

  /**
   * Ends every process on this node at once with reason `'shutdown'` and
   * disarms its timers. Behaviours' `terminate` callbacks do not run; stop
   * your top supervisor first for an orderly shutdown.
   */
  stop(): void {
    for (const proc of [...this.#live]) proc._exit('shutdown');
    this._timers.clear();
  }

  // ---------------------------------------------------------------- internals used by Process and behaviours

  /** @internal The live local process `dest` names, if any. */
  _lookup(dest: Pid | string): Process | undefined {
    if (dest instanceof Pid) {
      const proc = dest[PROCESS];
      return proc instanceof Process && proc.node === this && proc.alive ? proc : undefined;
    }
    if (typeof dest === 'string') return this.#names.get(dest);
    return undefined;
  }

  /** @internal */
  _forget(proc: Process): void {
    const live = this.#live;
    const last = live.pop()!;
    if (last !== proc) {
      live[proc._slot] = last;
      last._slot = proc._slot;
    }
    proc._slot = -1;
    if (proc._name !== undefined) {
      this.#names.delete(proc._name);
    }
  }

  /** @internal */
  _link(proc: Process, pid: Pid): void {
    const other = this._lookup(pid);
    if (other === undefined) {
      proc._signal(pid, 'noproc', true);
      return;
    }
    if (other === proc) return;
    (proc._links ??= new Set()).add(other);
    (other._links ??= new Set()).add(proc);
  }

  /** @internal */
  _unlink(proc: Process, pid: Pid): void {
    const other = this._lookup(pid);
    if (other === undefined) return;
    proc._links?.delete(other);
    other._links?.delete(proc);
  }

  /** @internal Sets a monitor for `watcher` on `target`; a dead target reports `noproc` at once. */
  _monitor(watcher: Watcher, target: Pid | string): Ref {
    const hook = this._remoteMonitors;
    if (hook !== undefined && target instanceof Pid && isRemotePid(target)) {
      const ref = new Ref(new RemoteTarget(target, watcher, hook));
      hook.monitor(ref, target);
      if (watcher instanceof Process && (ref._owner as RemoteTarget).active)
        (watcher._monitoring ??= new Set()).add(ref);
      return ref;
    }
    const proc = this._lookup(target);
    const item: RegisteredName | undefined = typeof target === 'string' ? { name: target, node: this.name } : undefined;
    const ref = item === undefined ? new Ref(proc) : new NameRef(proc, item);
    if (proc === undefined) {
      watcher._down(ref, item ?? (target as Pid), 'noproc');
      return ref;
    }
    (proc._monitors ??= new Map()).set(ref, watcher);
    if (watcher instanceof Process) (watcher._monitoring ??= new Set()).add(ref);
    return ref;
  }

  /** @internal Removes a monitor; true if it was still active. */
  _demonitor(ref: Ref, watcher: Watcher): boolean {
    const remote = ref._owner;
    if (remote instanceof RemoteTarget) {
      if (!remote.active || remote.watcher !== watcher) return false;
      remote.active = false;
      if (watcher instanceof Process) watcher._monitoring?.delete(ref);
      remote.hook.demonitor(ref);
      return true;
    }
    const target = ref._owner as Process | undefined;
    const monitors = target?._monitors;
    // Only the watcher may take its monitor down; the monitored side cannot.
    if (monitors === undefined || monitors === null || monitors.get(ref) !== watcher) return false;
    if (watcher instanceof Process) watcher._monitoring?.delete(ref);
    return monitors.delete(ref);
  }

  /** @internal A monitor of node `nodeId` for `proc`; only a node that talks to others has any. */
  _monitorNode(proc: Process, nodeId: string): Ref {
    const hook = this._remoteMonitors;
    if (hook === undefined) {
      throw new WtdError('ERR_NOT_SUPPORTED', `node ${this.name} talks to no other node: make it a WtdNode`);
    }
    const ref = new Ref(undefined);
    hook.monitorNode(ref, nodeId, proc);
    return ref;
  }

  /** @internal */
  _exitSignal(pid: Pid, reason: unknown, from: Pid | undefined): void {
    if (!(pid instanceof Pid)) throw new TypeError(`exit(pid, reason) expects a Pid, got ${typeof pid}`);
    const proc = this._lookup(pid);
    proc?._signal(from ?? this.#nodePid, reason, false);
  }

  /** @internal */
  _logCrash(proc: Process, reason: unknown): void {
    const who = proc._name !== undefined ? `${proc.pid} (${proc._name})` : String(proc.pid);
    const kind =
      proc._behaviour !== null ? ` ${proc._behaviour.behaviourName} ${proc._behaviour.constructor.name}` : '';
    this.logger.error(`process ${who}${kind} crashed: ${formatReason(reason)}`, reason);
  }
}
