/**
 * What every behaviour shares (OTP's `gen` and `proc_lib`): synchronous
 * calls with timeouts, replies, and starting a behaviour process with an
 * acknowledgement from its `init`.
 * @module
 */
import {
  CallingSelfError,
  CallTimeoutError,
  NameError,
  NoProcError,
  ServerExitError,
  StartError,
  formatReason,
} from '../errors.js';
import type { Node } from '../runtime/node.js';
import { Pid, PROCESS, Ref } from '../runtime/pid.js';
import { currentProcess, hintedProcess, Process, type ProcessBehaviour } from '../runtime/process.js';
import type { Timed } from '../runtime/timer-queue.js';

/**
 * How a behaviour is addressed: its pid, or a registered name on a given
 * node (OTP's `{Name, Node}`).
 *
 * @example
 * ```ts
 * const byPid: ServerRef = pid;
 * const byName: ServerRef = { node, name: 'counter' };
 * await GenServer.call(byName, 'get');
 * ```
 */
export type ServerRef = Pid | { node: Node; name: string };

/**
 * The default timeout of every synchronous call, in milliseconds (OTP's 5000).
 *
 * @example
 * ```ts
 * await GenServer.call(ref, 'get'); // waits DEFAULT_CALL_TIMEOUT (5000 ms) at most
 * await GenServer.call(ref, 'get', 200); // or as long as you say
 * ```
 */
export const DEFAULT_CALL_TIMEOUT = 5000;

/** @internal The live local process `ref` names, or undefined. */
export function resolveRef(ref: ServerRef): Process | undefined {
  if (ref instanceof Pid) {
    const proc = ref[PROCESS];
    return proc instanceof Process && proc.alive ? proc : undefined;
  }
  if (ref !== null && typeof ref === 'object' && typeof ref.name === 'string' && ref.node !== undefined) {
    return ref.node._lookup(ref.name);
  }
  throw new TypeError(`expected a Pid or { node, name }, got ${ref === null ? 'null' : typeof ref}`);
}

/** @internal */
export function refLabel(ref: ServerRef): string {
  return ref instanceof Pid ? ref.toString() : `'${ref.name}' on ${ref.node.name}`;
}

let pendingSlot: CallSlot | null = null;
function captureSlot(resolve: (v: unknown) => void, reject: (e: unknown) => void): void {
  pendingSlot!._resolve = resolve;
  pendingSlot!._reject = reject;
}

/**
 * Who is waiting for a reply: the `from` a `handleCall` receives. Reply with
 * `GenServer.reply(from, value)` (or the behaviour's own `reply`), now or
 * later; a reply after the caller gave up is dropped.
 *
 * It doubles as the monitor on the server and as the call's timeout, so a
 * call allocates this one object besides its request and promise.
 *
 * @example
 * ```ts
 * class Deferred extends GenServer<From[]> {
 *   override handleCall(_req: 'wait', from: From, waiting: From[]) {
 *     return noreply([...waiting, from]); // answer later with GenServer.reply(from, value)
 *   }
 * }
 * ```
 */
export class CallSlot extends Ref {
  /** @internal */ _resolve: ((v: unknown) => void) | null = null;
  /** @internal */ _reject: ((e: unknown) => void) | null = null;
  /** @internal */ _at = 0;
  /** @internal */ _seq = 0;
  /** @internal */ _heapIndex = -1;
  /** @internal */ readonly _target: ServerRef;
  /** @internal */ readonly _timeoutMs: number;
  /** @internal What the slot resolves with when the server exits instead of replying (stop waits for this). */
  _expectExit: unknown = NO_EXIT;

  /** @internal */
  constructor(target: ServerRef, timeoutMs: number) {
    super();
    this._target = target;
    this._timeoutMs = timeoutMs;
  }

  /** True until a reply, an exit or the timeout settled the call. */
  get pending(): boolean {
    return this._resolve !== null;
  }

  /** @internal */
  _reply(value: unknown): void {
    const resolve = this._resolve;
    if (resolve === null) return;
    this.#finish();
    resolve(value);
  }

  /** @internal */
  _fail(err: unknown): void {
    const reject = this._reject;
    if (reject === null) return;
    this.#finish();
    reject(err);
  }

  /** @internal The server exited. */
  _down(_ref: Ref, _pid: Pid, reason: unknown): void {
    // The monitor is gone with the server; the timeout must go too, or it
    // keeps the host process alive until it would have fired.
    const proc = this._owner as Process | undefined;
    this._owner = undefined;
    if (proc !== undefined && this._heapIndex >= 0) proc.node._timers.remove(this);
    if (this._expectExit !== NO_EXIT && (reason === this._expectExit || this._expectExit === ANY_EXIT)) {
      this._reply(reason);
    } else if (reason === 'noproc') {
      this._fail(new NoProcError(refLabel(this._target)));
    } else {
      this._fail(new ServerExitError(refLabel(this._target), reason));
    }
  }

  /** @internal */
  _timeout(): void {
    this._fail(new CallTimeoutError(refLabel(this._target), this._timeoutMs));
  }

  #finish(): void {
    this._resolve = null;
    this._reject = null;
    const proc = this._owner as Process | undefined;
    if (proc !== undefined) {
      proc._monitors?.delete(this);
      this._owner = undefined;
      if (this._heapIndex >= 0) proc.node._timers.remove(this);
    }
  }
}

const NO_EXIT: unique symbol = Symbol('wtd.noExit');
/** @internal Makes a stop slot accept any exit reason. */
export const ANY_EXIT: unique symbol = Symbol('wtd.anyExit');

function checkTimeout(timeout: number): void {
  if (!(timeout >= 0)) {
    throw new RangeError(`timeout must be a number of milliseconds >= 0 or Infinity, got ${String(timeout)}`);
  }
}

/**
 * True when a method of `proc`'s behaviour class is running now: the only
 * evidence JavaScript gives, after an await, of whose code this is. Costs
 * a stack trace, so it is asked only when {@link hintedProcess} already
 * points at `proc`.
 */
function onStack(proc: Process): boolean {
  const behaviour = proc._behaviour;
  if (behaviour === null) return false;
  const name = (behaviour.behaviourModule ?? behaviour).constructor.name;
  if (!name) return false;
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 64;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  return new RegExp(`\\bat (?:async )?${name.replace(/[$]/g, '\\$&')}\\.`).test(stack);
}

/**
 * Sends `makeRequest(slot)` to the process `ref` names and waits for the
 * reply. Rejects with `NoProcError` if it is not alive, `ServerExitError`
 * if it exits first, `CallTimeoutError` after `timeout` ms, and
 * `CallingSelfError` if a behaviour calls itself.
 * @internal
 */
export function call(ref: ServerRef, makeRequest: (from: CallSlot) => unknown, timeout: number): Promise<unknown> {
  try {
    checkTimeout(timeout);
    const proc = resolveRef(ref);
    if (proc === undefined) throw new NoProcError(refLabel(ref));
    const caller = currentProcess();
    // From outside any scheduler turn, a plain body that is not in a receive
    // is the caller itself: its code is what runs (JavaScript runs one thing
    // at a time), and it could not take the request from its mailbox anyway.
    // So is a behaviour whose async callback has just named itself, when its
    // own code is on the stack.
    if (proc === caller || (caller === null && (proc._bodyRunning || (proc === hintedProcess() && onStack(proc))))) {
      throw new CallingSelfError(refLabel(ref));
    }
    const slot = new CallSlot(ref, timeout);
    pendingSlot = slot;
    const promise = new Promise(captureSlot);
    pendingSlot = null;
    slot._owner = proc;
    (proc._monitors ??= new Map()).set(slot, slot);
    if (timeout !== Infinity && timeout > 0) proc.node._timers.add(slot, timeout);
    proc._deliver(makeRequest(slot));
    // OTP's `receive ... after 0`: the request is sent, and the caller does not wait.
    if (timeout === 0) slot._timeout();
    return promise;
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Sends `request` and waits for the process to exit (used by `stop`):
 * resolves when it exits with `reason`, rejects if it exits otherwise or
 * does not exit within `timeout`.
 * @internal
 */
export function callUntilExit(
  ref: ServerRef,
  makeRequest: (from: CallSlot) => unknown,
  reason: unknown,
  timeout: number,
): Promise<unknown> {
  return call(
    ref,
    (slot) => {
      slot._expectExit = reason;
      return makeRequest(slot);
    },
    timeout,
  );
}

/** @internal Tells whether an exit reason means "stopped on purpose" (no error report). */
export function isQuietReason(reason: unknown): boolean {
  return (
    reason === 'normal' ||
    reason === 'shutdown' ||
    (reason !== null && typeof reason === 'object' && !(reason instanceof Error) && 'shutdown' in reason)
  );
}

/**
 * Where a behaviour starts: on a node with no parent, or linked to a parent process.
 *
 * @example
 * ```ts
 * await GenServer.start(node, new Counter(), 0); // from plain code: on a node
 * await GenServer.startLink(self, new Counter(), 0); // from a process: linked to it
 * ```
 */
export type StartWhere = Node | Process;

/**
 * Options every behaviour's `start` and `startLink` take.
 *
 * @example
 * ```ts
 * await GenServer.start(node, new Counter(), 0, { name: 'counter', timeout: 2000 });
 * ```
 */
export interface StartOptions {
  /** Register the process under this name; fails with `ERR_ALREADY_STARTED` if taken. */
  name?: string;
  /** How long `init` may take, in ms; then the process is killed and start fails with `ERR_START_TIMEOUT`. Default: no limit. */
  timeout?: number;
  /** Most messages its mailbox holds before messages from other nodes are refused (`ERR_MAILBOX_FULL`). Default 1000. */
  maxMailbox?: number;
}

/** @internal What a behaviour's start hook reports back to `start`. */
export interface StartAck {
  parent: Pid | undefined;
  ok(pid: Pid): void;
  fail(err: StartError): void;
}

/** @internal Where a behaviour instance keeps its pending start acknowledgement. */
export const START_ACK: unique symbol = Symbol('wtd.startAck');

/** @internal Where a behaviour instance keeps its process once started. */
export const SELF: unique symbol = Symbol('wtd.self');

/** @internal The instance state a started behaviour needs. */
export interface Startable extends ProcessBehaviour {
  [START_ACK]?: StartAck | undefined;
  [SELF]?: Process | undefined;
}

/**
 * Spawns `impl` as a process and waits for its init to acknowledge.
 * `linkTo` links it to the parent first (start_link).
 * @internal
 */
export function startBehaviour(
  where: StartWhere,
  impl: Startable,
  arg: unknown,
  options: StartOptions | undefined,
  link: boolean,
): Promise<Pid> {
  const node = where instanceof Process ? where.node : where;
  if (node === undefined || typeof (node as Node).spawn !== 'function') {
    return Promise.reject(new TypeError(`start(where, ...) expects a Node or a Process, got ${typeof where}`));
  }
  if (link && !(where instanceof Process)) {
    return Promise.reject(
      new TypeError('startLink(parent, ...) expects the parent Process (self); use start(node, ...) at top level'),
    );
  }
  if (impl === null || typeof impl !== 'object' || typeof impl.behaviourName !== 'string') {
    return Promise.reject(new TypeError(`expected a behaviour instance (new MyServer()), got ${typeof impl}`));
  }
  if (impl[START_ACK] !== undefined || impl[SELF] !== undefined) {
    return Promise.reject(
      new TypeError(
        `this ${impl.constructor.name} instance was already started; create a new instance for each process`,
      ),
    );
  }
  const timeout = options?.timeout ?? Infinity;
  checkTimeout(timeout);
  const parent = link ? (where as Process).pid : undefined;
  return new Promise<Pid>((resolve, reject) => {
    // Fires if init runs past `timeout`: kill the half-started process.
    const deadline: Timed = {
      _at: 0,
      _seq: 0,
      _heapIndex: -1,
      _timeout: () => {
        const ack = impl[START_ACK];
        if (ack === undefined) return;
        impl[START_ACK] = undefined;
        const proc = pid === undefined ? undefined : node._lookup(pid);
        if (proc !== undefined) {
          if (parent !== undefined) node._unlink(proc, parent);
          proc._exit('killed');
        }
        reject(
          new StartError(
            'ERR_START_TIMEOUT',
            'timeout',
            `init of ${impl.constructor.name} did not finish within ${timeout} ms`,
          ),
        );
      },
    };
    const settle = (): void => {
      impl[START_ACK] = undefined;
      if (deadline._heapIndex >= 0) node._timers.remove(deadline);
    };
    impl[START_ACK] = {
      parent,
      ok: (p) => {
        settle();
        resolve(p);
      },
      fail: (err) => {
        settle();
        reject(err);
      },
    };
    let pid: Pid | undefined;
    try {
      pid = node.spawn(impl, { arg, name: options?.name, link: parent, maxMailbox: options?.maxMailbox });
    } catch (err) {
      impl[START_ACK] = undefined;
      if (err instanceof NameError && err.code === 'ERR_NAME_TAKEN') {
        const holder = node.whereis(err.nameTaken);
        reject(
          new NameError(
            'ERR_ALREADY_STARTED',
            err.nameTaken,
            `a process named '${err.nameTaken}' is already running (${String(holder)}); stop it first or use another name`,
          ),
        );
      } else {
        reject(err);
      }
      return;
    }
    if (timeout !== Infinity) node._timers.add(deadline, timeout);
  });
}

/**
 * Runs in the new process once `init` has answered: acknowledges `start`,
 * or unlinks and exits so the starter sees only the rejected promise.
 * @internal
 */
export function ackInit(
  impl: Startable,
  self: Process,
  outcome: { ok: true } | { ok: false; ignore: boolean; reason: unknown },
): void {
  const ack = impl[START_ACK];
  impl[START_ACK] = undefined;
  if (outcome.ok) {
    ack?.ok(self.pid);
    return;
  }
  if (ack?.parent !== undefined) self.unlink(ack.parent);
  const name = impl.constructor.name;
  if (outcome.ignore) {
    ack?.fail(new StartError('ERR_START_IGNORED', 'ignore', `${name} init returned ignore(); no process was started`));
    self._exit('normal');
  } else {
    ack?.fail(
      new StartError('ERR_START_FAILED', outcome.reason, `${name} failed to start: ${formatReason(outcome.reason)}`),
    );
    self._exit(outcome.reason);
  }
}
