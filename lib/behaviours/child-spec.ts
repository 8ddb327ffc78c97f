import { SupervisorError, describeValue } from '../errors.js';
import type { Pid } from '../runtime/pid.js';
import type { Process } from '../runtime/process.js';

/**
 * When a child is restarted: always, only after an abnormal exit, or never.
 *
 * @example
 * ```ts
 * const child: ChildSpec = { id: 'job', restart: 'transient', start: (p) => GenServer.startLink(p, new Job(), 0) };
 * ```
 */
export type RestartType = 'permanent' | 'transient' | 'temporary';
/**
 * How a child is stopped: killed at once, asked then killed after N ms, or asked and waited for.
 *
 * @example
 * ```ts
 * const child: ChildSpec = { id: 'db', shutdown: 2000, start: (p) => GenServer.startLink(p, new Db(), cfg) };
 * ```
 */
export type Shutdown = number | 'brutal_kill' | 'infinity';
/**
 * A worker, or a supervisor (whose default shutdown is `'infinity'`).
 *
 * @example
 * ```ts
 * const child: ChildSpec = { id: 'pool', type: 'supervisor', start: (p) => Supervisor.startLink(p, new Pool()) };
 * ```
 */
export type ChildType = 'worker' | 'supervisor';
/**
 * How a supervisor reacts when a child exits.
 *
 * @example
 * ```ts
 * override init(): SupervisorSpec {
 *   return { strategy: 'rest_for_one', children: [db, cache, web] };
 * }
 * ```
 */
export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one' | 'simple_one_for_one';

/**
 * When a supervisor stops by itself because its significant children ended
 * (OTP's `auto_shutdown`): never (the default), when any one of them exits,
 * or once all of them have.
 *
 * @example
 * ```ts
 * override init(): SupervisorSpec {
 *   return { autoShutdown: 'any_significant', children: [{ ...job, restart: 'transient', significant: true }] };
 * }
 * ```
 */
export type AutoShutdown = 'never' | 'any_significant' | 'all_significant';

/**
 * What a child's `start` may resolve with besides its pid: the pid and an
 * extra value, which `startChild` and `restartChild` hand back as they are
 * (OTP's `{ok, Pid, Info}`).
 *
 * @example
 * ```ts
 * const spec: ChildSpec = {
 *   id: 'port',
 *   start: async (parent) => ({ pid: await GenServer.startLink(parent, new Listener(), 0), info: { port: 8080 } }),
 * };
 * await Supervisor.startChild(sup, spec); // => { pid: <demo.3.0>, info: { port: 8080 } }
 * ```
 */
export interface StartedChild {
  pid: Pid;
  info: unknown;
}

/**
 * How to start and look after one child (OTP's child specification).
 *
 * @example
 * ```ts
 * const spec: ChildSpec = {
 *   id: 'counter',
 *   start: (parent) => GenServer.startLink(parent, new Counter(), 0),
 *   restart: 'permanent',
 *   shutdown: 5000,
 * };
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 */
export interface ChildSpec {
  /** Names the child within its supervisor. */
  id: string;
  /**
   * Starts the child linked to `parent` (the supervisor) and resolves with
   * its pid. Under `simple_one_for_one`, `extra` holds the arguments given to
   * `startChild`.
   */
  start: (parent: Process, ...extra: any[]) => Promise<Pid | StartedChild>;
  /** Default `'permanent'`. */
  restart?: RestartType;
  /** Default 5000 ms for a worker, `'infinity'` for a supervisor. */
  shutdown?: Shutdown;
  /** Default `'worker'`. */
  type?: ChildType;
  /**
   * Whether this child's own exit may stop the supervisor (see
   * {@link SupervisorFlags.autoShutdown}). Only for transient and temporary
   * children of a supervisor whose `autoShutdown` is not `'never'`. Default false.
   */
  significant?: boolean;
}

/**
 * How a supervisor restarts, and how many restarts it tolerates.
 *
 * @example
 * ```ts
 * override init(): SupervisorSpec {
 *   return { strategy: 'one_for_all', intensity: 3, period: 10, children };
 * }
 * ```
 */
export interface SupervisorFlags {
  /** Default `'one_for_one'`. */
  strategy?: Strategy;
  /** At most this many restarts... Default 1. */
  intensity?: number;
  /** ...within this many seconds; one more and the supervisor gives up. Default 5. */
  period?: number;
  /** Stop the supervisor when significant children end by themselves. Default `'never'`. */
  autoShutdown?: AutoShutdown;
}

/**
 * What a supervisor's `init` returns: its flags and its children, started in order.
 *
 * @example
 * ```ts
 * class App extends Supervisor {
 *   override init(): SupervisorSpec {
 *     return { children: [{ id: 'counter', start: (p) => GenServer.startLink(p, new Counter(), 0) }] };
 *   }
 * }
 * ```
 */
export interface SupervisorSpec extends SupervisorFlags {
  children: ChildSpec[];
}

/** @internal A child spec with every default filled in. */
export interface FullChildSpec {
  id: string;
  start: (parent: Process, ...extra: unknown[]) => Promise<Pid | StartedChild>;
  restart: RestartType;
  shutdown: Shutdown;
  type: ChildType;
  significant: boolean;
}

/** @internal */
export interface FullFlags {
  strategy: Strategy;
  intensity: number;
  period: number;
  autoShutdown: AutoShutdown;
}

/**
 * OTP's defaults, kept in one place.
 *
 * @example
 * ```ts
 * SUPERVISOR_DEFAULTS.intensity; // 1 restart...
 * SUPERVISOR_DEFAULTS.period; // ...in 5 seconds, as OTP
 * ```
 */
export const SUPERVISOR_DEFAULTS: Readonly<Required<SupervisorFlags>> = Object.freeze({
  strategy: 'one_for_one',
  intensity: 1,
  period: 5,
  autoShutdown: 'never',
});
const DEFAULT_WORKER_SHUTDOWN = 5000;

const STRATEGIES: readonly string[] = ['one_for_one', 'one_for_all', 'rest_for_one', 'simple_one_for_one'];
const RESTARTS: readonly string[] = ['permanent', 'transient', 'temporary'];
const TYPES: readonly string[] = ['worker', 'supervisor'];
const AUTO_SHUTDOWNS: readonly string[] = ['never', 'any_significant', 'all_significant'];

function bad(code: 'ERR_BAD_CHILD_SPEC' | 'ERR_BAD_SUPERVISOR_FLAGS', message: string): SupervisorError {
  return new SupervisorError(code, message);
}

/** @internal Checks supervisor flags; throws `ERR_BAD_SUPERVISOR_FLAGS` saying what was wrong. */
export function checkFlags(spec: unknown): FullFlags {
  if (spec === null || typeof spec !== 'object') {
    throw bad(
      'ERR_BAD_SUPERVISOR_FLAGS',
      `a supervisor's init must return { strategy, intensity, period, children }, got ${describeValue(spec)}`,
    );
  }
  const s = spec as SupervisorFlags;
  const strategy = s.strategy ?? SUPERVISOR_DEFAULTS.strategy;
  if (!STRATEGIES.includes(strategy)) {
    throw bad(
      'ERR_BAD_SUPERVISOR_FLAGS',
      `strategy must be one of ${STRATEGIES.join(', ')}, got ${describeValue(strategy)}`,
    );
  }
  const intensity = s.intensity ?? SUPERVISOR_DEFAULTS.intensity;
  if (!Number.isInteger(intensity) || intensity < 0) {
    throw bad('ERR_BAD_SUPERVISOR_FLAGS', `intensity must be a whole number >= 0, got ${describeValue(intensity)}`);
  }
  const period = s.period ?? SUPERVISOR_DEFAULTS.period;
  if (!(typeof period === 'number' && period > 0 && Number.isFinite(period))) {
    throw bad(
      'ERR_BAD_SUPERVISOR_FLAGS',
      `period must be a finite number of seconds > 0, got ${describeValue(period === Infinity ? 'Infinity' : period)}`,
    );
  }
  const autoShutdown = s.autoShutdown ?? SUPERVISOR_DEFAULTS.autoShutdown;
  if (!AUTO_SHUTDOWNS.includes(autoShutdown)) {
    throw bad(
      'ERR_BAD_SUPERVISOR_FLAGS',
      `autoShutdown must be one of ${AUTO_SHUTDOWNS.join(', ')}, got ${describeValue(autoShutdown)}`,
    );
  }
  return { strategy, intensity, period, autoShutdown };
}

/**
 * @internal Checks one child spec and fills in its defaults; throws
 * `ERR_BAD_CHILD_SPEC`. A significant child needs a supervisor whose
 * `autoShutdown` is not `'never'` (pass it; undefined skips that check).
 */
export function checkChildSpec(spec: unknown, autoShutdown?: AutoShutdown): FullChildSpec {
  if (spec === null || typeof spec !== 'object') {
    throw bad('ERR_BAD_CHILD_SPEC', `a child spec must be an object { id, start, ... }, got ${describeValue(spec)}`);
  }
  const c = spec as ChildSpec;
  if (typeof c.id !== 'string' || c.id.length === 0) {
    throw bad('ERR_BAD_CHILD_SPEC', `a child spec needs a non-empty string id, got ${describeValue(c.id)}`);
  }
  if (typeof c.start !== 'function') {
    throw bad(
      'ERR_BAD_CHILD_SPEC',
      `child '${c.id}' needs start: (parent) => Promise<Pid>, got ${describeValue(c.start)}`,
    );
  }
  const restart = c.restart ?? 'permanent';
  if (!RESTARTS.includes(restart)) {
    throw bad(
      'ERR_BAD_CHILD_SPEC',
      `child '${c.id}': restart must be one of ${RESTARTS.join(', ')}, got ${describeValue(restart)}`,
    );
  }
  const type = c.type ?? 'worker';
  if (!TYPES.includes(type)) {
    throw bad(
      'ERR_BAD_CHILD_SPEC',
      `child '${c.id}': type must be 'worker' or 'supervisor', got ${describeValue(type)}`,
    );
  }
  const shutdown = c.shutdown ?? (type === 'supervisor' ? 'infinity' : DEFAULT_WORKER_SHUTDOWN);
  if (!(shutdown === 'brutal_kill' || shutdown === 'infinity' || (typeof shutdown === 'number' && shutdown >= 0))) {
    throw bad(
      'ERR_BAD_CHILD_SPEC',
      `child '${c.id}': shutdown must be a number of ms >= 0, 'brutal_kill' or 'infinity', got ${describeValue(shutdown)}`,
    );
  }
  const significant = c.significant ?? false;
  if (typeof significant !== 'boolean') {
    throw bad(
      'ERR_BAD_CHILD_SPEC',
      `child '${c.id}': significant must be a boolean, got ${describeValue(significant)}`,
    );
  }
  if (significant && restart === 'permanent') {
    throw bad(
      'ERR_BAD_CHILD_SPEC',
      `child '${c.id}': a permanent child cannot be significant (it is always restarted); make it transient or temporary`,
    );
  }
  if (significant && autoShutdown === 'never') {
    throw bad(
      'ERR_BAD_CHILD_SPEC',
      `child '${c.id}' is significant, but the supervisor's autoShutdown is 'never'; set autoShutdown or drop significant`,
    );
  }
  return { id: c.id, start: c.start, restart, shutdown, type, significant };
}
