import type { Pid } from '../runtime/pid.js';
import { noteSelf, type Process } from '../runtime/process.js';
import type { ChildSpec, ChildType, StartedChild, SupervisorSpec } from './child-spec.js';
import { SELF, startBehaviour, type ServerRef, type StartOptions, type StartWhere } from './gen.js';
import { callOrThrow } from './host-server.js';
import type { Ignore } from './results.js';
import { checkChildSpecList, SupervisorServer } from './supervisor-server.js';

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
  /** The child's id; null for the children of a `simple_one_for_one` supervisor (OTP's `undefined`). */
  id: string | null;
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
  /** Child specs held (1 under `simple_one_for_one`: the template). */
  specs: number;
  /** Children running. */
  active: number;
  supervisors: number;
  workers: number;
}

/** @internal The requests a supervisor answers. */
export type SupervisorRequest =
  | { op: 'startChild'; arg: unknown }
  | { op: 'terminateChild'; id: string | Pid }
  | { op: 'restartChild'; id: string }
  | { op: 'deleteChild'; id: string }
  | { op: 'getChildSpec'; id: string | Pid }
  | { op: 'whichChildren' }
  | { op: 'countChildren' };

function supCall<T>(sup: ServerRef, req: SupervisorRequest): Promise<T> {
  return callOrThrow(sup, req, Infinity) as Promise<T>;
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
 * - `autoShutdown`: `'any_significant'` or `'all_significant'` stop the
 *   supervisor (reason `'shutdown'`) once significant children end by themselves.
 * - children start in order and stop in reverse order; `simple_one_for_one`
 *   children stop all at once.
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
    noteSelf(self);
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
   * Resolves with what the child's `start` resolved with (its pid, or
   * `{ pid, info }`: say so as `startChild<StartedChild>(...)`), or
   * undefined if its init returned `ignore()`.
   * Rejects with `ERR_ALREADY_PRESENT`, `ERR_ALREADY_STARTED`, `ERR_BAD_CHILD_SPEC`
   * or the child's own `StartError`.
   */
  static startChild<T extends Pid | StartedChild = Pid>(
    sup: ServerRef,
    specOrArgs: ChildSpec | unknown[],
  ): Promise<T | undefined> {
    return supCall(sup, { op: 'startChild', arg: specOrArgs });
  }

  /**
   * Stops a child by id (its spec is kept, unless it is temporary), or, under
   * `simple_one_for_one`, by pid; a pid that has already exited is fine there.
   */
  static terminateChild(sup: ServerRef, id: string | Pid): Promise<void> {
    return supCall(sup, { op: 'terminateChild', id });
  }

  /** Starts again a child that was terminated. `ERR_CHILD_RUNNING` if it runs. */
  static restartChild<T extends Pid | StartedChild = Pid>(sup: ServerRef, id: string): Promise<T | undefined> {
    return supCall(sup, { op: 'restartChild', id });
  }

  /** Removes the spec of a child that is not running. `ERR_CHILD_RUNNING` if it runs. */
  static deleteChild(sup: ServerRef, id: string): Promise<void> {
    return supCall(sup, { op: 'deleteChild', id });
  }

  /**
   * The child spec of child `id` (or, under `simple_one_for_one`, of the
   * child with this pid), with every default filled in (OTP's `get_childspec`).
   *
   * @example
   * ```ts
   * const spec = await Supervisor.getChildSpec(sup, 'counter');
   * spec.restart; // 'permanent'
   * spec.shutdown; // 5000
   * ```
   */
  static getChildSpec(sup: ServerRef, id: string | Pid): Promise<Required<ChildSpec>> {
    return supCall(sup, { op: 'getChildSpec', id });
  }

  /**
   * Checks a list of child specs without starting anything (OTP's
   * `check_childspecs`); throws `SupervisorError` `ERR_BAD_CHILD_SPEC` saying
   * what is wrong.
   *
   * @example
   * ```ts
   * Supervisor.checkChildSpecs([counterSpec]); // fine: returns
   * Supervisor.checkChildSpecs([{ id: 'x' } as ChildSpec]); // throws SupervisorError, 'ERR_BAD_CHILD_SPEC'
   * ```
   */
  static checkChildSpecs(specs: readonly ChildSpec[], autoShutdown: SupervisorSpec['autoShutdown'] = 'never'): void {
    checkChildSpecList(specs, { strategy: 'one_for_one', intensity: 1, period: 5, autoShutdown });
  }

  /** Every child, newest first (as OTP lists them). */
  static whichChildren(sup: ServerRef): Promise<ChildInfo[]> {
    return supCall(sup, { op: 'whichChildren' });
  }

  /** How many children of each kind. */
  static countChildren(sup: ServerRef): Promise<ChildCounts> {
    return supCall(sup, { op: 'countChildren' });
  }
}
