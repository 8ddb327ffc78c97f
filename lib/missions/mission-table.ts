import './reflect-metadata.js';
import type { ErrorCode } from '../error-codes.js';
import { MissionError, describeValue } from '../errors.js';
import { GenEvent } from '../behaviours/gen-event.js';
import { GenFsm } from '../behaviours/gen-fsm.js';
import { GenStatem } from '../behaviours/gen-statem.js';
import { GenServer } from '../behaviours/gen-server.js';
import { Supervisor } from '../behaviours/supervisor.js';
import { arityOf, formatArity, type Arity } from './arity.js';
import { BEHAVIOUR_OPS, behaviourOp, implementsOp, type BehaviourKind } from './behaviour-ops.js';
import type { Node } from '../runtime/node.js';
import { BEHAVIOUR_KEY, EXPORTS_KEY, type ExportRecord } from './decorators.js';

/**
 * One function another node may call, once a grant covers its mission.
 *
 * @example
 * ```ts
 * const fn = missionTable(node).lookupFunction('Maths', 'add', 'maths');
 * fn?.invoke(2, 3); // 5
 * ```
 */
export interface ExportedFunction {
  readonly mission: string;
  readonly module: string;
  readonly name: string;
  /** `module/name`, as in the URL `PUT /apply/<module>/<name>`. */
  readonly path: string;
  /** How many arguments a call must pass; another number is refused before it runs (`ERR_BAD_ARITY`). */
  readonly arity: Arity;
  /** Marked `{ idempotent: true }`: running it twice is harmless, so a group may retry a call that may have run. */
  readonly idempotent: boolean;
  /** Calls the function with `this` bound as it was loaded. */
  readonly invoke: (...args: unknown[]) => unknown;
}

/**
 * One behaviour class exposed under a mission.
 *
 * @example
 * ```ts
 * const exposed = missionTable(node).behaviourOf(new Counter(), 'dev_mission');
 * exposed?.ops; // ['call', 'cast']
 * ```
 */
export interface ExposedBehaviour {
  readonly mission: string;
  readonly module: string;
  readonly kind: BehaviourKind;
  readonly cls: abstract new (...args: never[]) => unknown;
  readonly ops: readonly string[];
}

/**
 * Everything one mission offers.
 *
 * @example
 * ```ts
 * const entry: MissionEntry | undefined = missionTable(node).mission('dev_mission');
 * entry?.functions.map((f) => f.path); // ['Development/test']
 * ```
 */
export interface MissionEntry {
  readonly name: string;
  readonly functions: ExportedFunction[];
  readonly behaviours: ExposedBehaviour[];
}

/**
 * Options for {@link MissionTable.load}.
 *
 * @example
 * ```ts
 * missionTable(node).load(new Greeter('hi'), { module: 'Greeter' });
 * ```
 */
export interface LoadOptions {
  /** The module name in URLs. Default: the class name. */
  module?: string;
}

/**
 * One mission in {@link MissionTable.catalogue}: its functions as
 * `Module/name/arity`, its behaviours with their kind and operations.
 *
 * @example
 * ```ts
 * const greetings: Catalogued = missionTable(node).catalogue().greetings!;
 * greetings.functions; // ['Greeter/hello/1', 'Greeter/countdown/2']
 * greetings.behaviours; // [{ module: 'Visitors', kind: 'gen_server', ops: ['call/1'] }]: what it implements
 * ```
 */
export interface Catalogued {
  functions: string[];
  behaviours: { module: string; kind: BehaviourKind; ops: string[] }[];
}

const MISSION_NAME = /^[a-z][a-z0-9_]{0,63}$/;
const IDENTIFIER = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const RESERVED = new Set(['constructor', 'prototype', '__proto__', 'toString', 'valueOf', 'hasOwnProperty']);

/**
 * Any class, abstract or not.
 *
 * @example
 * ```ts
 * const classes: AnyClass[] = [Greeter, Counter];
 * for (const c of classes) node.load(c);
 * ```
 */
export type AnyClass = abstract new (...args: never[]) => unknown;

function fail(code: ErrorCode, message: string): MissionError {
  return new MissionError(code, message);
}

function checkMission(mission: unknown, where: string): string {
  if (typeof mission !== 'string' || !MISSION_NAME.test(mission)) {
    throw fail(
      'ERR_INVALID_MISSION',
      `${where}: mission names are 1-64 lowercase letters, digits and '_', starting with a letter; got ${describeValue(mission)}`,
    );
  }
  return mission;
}

function behaviourKind(cls: AnyClass): BehaviourKind | undefined {
  const proto = cls.prototype as object;
  if (proto instanceof Supervisor) return 'supervisor';
  if (proto instanceof GenEvent || cls === GenEvent) return 'gen_event';
  if (proto instanceof GenFsm) return 'gen_fsm';
  if (proto instanceof GenStatem) return 'gen_statem';
  if (proto instanceof GenServer) return 'gen_server';
  return undefined;
}

/** Every class from `cls` up its prototype chain, most derived first. */
function lineage(cls: AnyClass): AnyClass[] {
  const out: AnyClass[] = [];
  for (let c: unknown = cls; typeof c === 'function' && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    out.push(c as AnyClass);
  }
  return out;
}

/**
 * What a node offers other nodes: missions, each a set of exported
 * functions and behaviour classes drawn from any number of classes.
 * Build it with {@link MissionTable.load}; every mistake in the decorators
 * is reported there, before anything is offered.
 *
 * @example
 * ```ts
 * const table = missionTable(node);
 * table.load(Development);
 * table.missions();                         // => ['dev_mission']
 * table.lookupFunction('Development', 'test', 'dev_mission')!.invoke(); // => 'test/0 called'
 * ```
 * (This example runs in `samples/api-examples.ts` or `samples/readme.ts`.)
 */
export class MissionTable {
  readonly #missions = new Map<string, MissionEntry>();
  readonly #functions = new Map<string, ExportedFunction>();
  readonly #behaviours = new Map<AnyClass, ExposedBehaviour[]>();
  readonly #modules = new Set<string>();

  /**
   * Reads the `@WtdExport` and `@WtdBehaviour` marks of a class (or of an
   * instance's class, whose instance methods are then bound to it) and adds
   * them. Throws a `MissionError` and adds nothing if any mark is wrong:
   * `ERR_INVALID_MISSION`, `ERR_NOT_A_METHOD`, `ERR_NOT_A_BEHAVIOUR`,
   * `ERR_DUPLICATE_MODULE`, `ERR_INVALID_NAME`, `ERR_NEEDS_INSTANCE`, `ERR_BAD_ARITY`
   * (an arity in `@WtdExport` that is not one) or `ERR_NOTHING_EXPORTED`.
   */
  load(target: AnyClass | object, options: LoadOptions = {}): void {
    const isClass = typeof target === 'function';
    if (!isClass && (target === null || typeof target !== 'object')) {
      throw new TypeError(`load(target) expects a class or an instance of one, got ${describeValue(target)}`);
    }
    const cls = (isClass ? target : (target as object).constructor) as AnyClass;
    const instance = isClass ? undefined : target;
    const module = options.module ?? cls.name;
    if (typeof module !== 'string' || !IDENTIFIER.test(module)) {
      throw fail(
        'ERR_INVALID_NAME',
        `module names are 1-64 letters, digits and '_', starting with a letter; got ${describeValue(module)}`,
      );
    }
    if (this.#modules.has(module)) {
      throw fail(
        'ERR_DUPLICATE_MODULE',
        `a module named '${module}' is already loaded; load it once, or pass { module: 'OtherName' }`,
      );
    }

    const functions: ExportedFunction[] = [];
    const seen = new Set<string>();
    for (const c of lineage(cls)) {
      const records: ExportRecord[] = Reflect.getOwnMetadata(EXPORTS_KEY, c) ?? [];
      for (const r of records) {
        const where = `@WtdExport on ${cls.name}.${String(r.key)}`;
        const mission = checkMission(r.mission, where);
        if (typeof r.key !== 'string' || !IDENTIFIER.test(r.key) || RESERVED.has(r.key)) {
          throw fail(
            'ERR_NOT_A_METHOD',
            `${where}: only public methods with plain names can be exported (not _private, #private or symbol-named ones)`,
          );
        }
        const holder = r.isStatic ? c : (instance ?? c.prototype);
        const fn = (holder as Record<string, unknown>)[r.key];
        if (!r.isMethod || typeof fn !== 'function') {
          throw fail('ERR_NOT_A_METHOD', `${where}: only methods can be exported, and ${r.key} is not a method`);
        }
        const dedupe = `${mission}/${r.key}`;
        if (seen.has(dedupe)) continue; // an override already exported it
        seen.add(dedupe);
        let self: object | undefined = r.isStatic ? cls : instance;
        if (self === undefined) {
          if (cls.length > 0) {
            throw fail(
              'ERR_NEEDS_INSTANCE',
              `${where} is an instance method and ${cls.name}'s constructor takes arguments; load an instance: load(new ${cls.name}(...))`,
            );
          }
          self = Reflect.construct(cls, []) as object;
        }
        const bound = self;
        functions.push({
          mission,
          module,
          name: r.key,
          path: `${module}/${r.key}`,
          arity: arityOf(fn as (...args: never[]) => unknown, r.arity, where),
          idempotent: r.idempotent === true,
          invoke: (...args: unknown[]) => (fn as (...a: unknown[]) => unknown).apply(bound, args),
        });
      }
    }

    const behaviours: ExposedBehaviour[] = [];
    const missions: unknown[] = Reflect.getOwnMetadata(BEHAVIOUR_KEY, cls) ?? [];
    if (missions.length > 0) {
      const kind = behaviourKind(cls);
      if (kind === undefined) {
        throw fail(
          'ERR_NOT_A_BEHAVIOUR',
          `@WtdBehaviour on ${cls.name}: the class must extend GenServer, Supervisor, GenEvent, GenFsm or GenStatem`,
        );
      }
      for (const m of missions) {
        const mission = checkMission(m, `@WtdBehaviour on ${cls.name}`);
        if (!behaviours.some((b) => b.mission === mission)) {
          behaviours.push({ mission, module, kind, cls, ops: BEHAVIOUR_OPS[kind] });
        }
      }
    }

    if (functions.length === 0 && behaviours.length === 0) {
      throw fail(
        'ERR_NOTHING_EXPORTED',
        `${cls.name} has no @WtdExport methods and no @WtdBehaviour; there is nothing to load`,
      );
    }

    // Every check passed: commit.
    this.#modules.add(module);
    for (const f of functions) {
      this.#functions.set(`${f.module}/${f.name}/${f.mission}`, f);
      this.#entry(f.mission).functions.push(f);
    }
    if (behaviours.length > 0) this.#behaviours.set(cls, behaviours);
    for (const b of behaviours) this.#entry(b.mission).behaviours.push(b);
  }

  /** The mission names on offer, sorted. */
  missions(): string[] {
    return [...this.#missions.keys()].sort();
  }

  /** Everything one mission offers, or undefined. */
  mission(name: string): MissionEntry | undefined {
    return this.#missions.get(name);
  }

  /** The modules loaded. */
  modules(): string[] {
    return [...this.#modules];
  }

  /**
   * The exported function at `module/name` under `mission`, or, without a
   * mission, every mission that exports it.
   */
  lookupFunction(module: string, name: string, mission: string): ExportedFunction | undefined;
  lookupFunction(module: string, name: string): ExportedFunction[];
  lookupFunction(module: string, name: string, mission?: string): ExportedFunction | ExportedFunction[] | undefined {
    if (mission !== undefined) return this.#functions.get(`${module}/${name}/${mission}`);
    return [...this.#functions.values()].filter((f) => f.module === module && f.name === name);
  }

  /** How `instance`'s class (or an ancestor) is exposed under `mission`, if it is. */
  behaviourOf(instance: object, mission: string): ExposedBehaviour | undefined {
    for (const c of lineage(instance.constructor as AnyClass)) {
      const found = this.#behaviours.get(c)?.find((b) => b.mission === mission);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** A plain summary for directories and status pages: mission → functions and behaviour modules. */
  describe(): Record<string, { functions: string[]; behaviours: string[] }> {
    const out: Record<string, { functions: string[]; behaviours: string[] }> = {};
    for (const name of this.missions()) {
      const m = this.#missions.get(name)!;
      out[name] = { functions: m.functions.map((f) => f.path), behaviours: m.behaviours.map((b) => b.module) };
    }
    return out;
  }

  /**
   * What each mission offers, with the arity of each function (Erlang's
   * `name/arity`: `Greeter/hello/1`, `Maths/sum/1..3`, `Dev/test/0..`) and
   * the kind and the operations each behaviour implements (`call/1`): what
   * `wtd missions` prints.
   */
  catalogue(): Record<string, Catalogued> {
    const out: Record<string, Catalogued> = {};
    for (const name of this.missions()) {
      const m = this.#missions.get(name)!;
      out[name] = {
        functions: m.functions.map((f) => `${f.path}/${formatArity(f.arity)}`),
        behaviours: m.behaviours.map((b) => ({
          module: b.module,
          kind: b.kind,
          ops: b.ops.flatMap((name) => {
            const op = behaviourOp(b.kind, name)!;
            return implementsOp(b.cls, op) ? [`${name}/${op.arity}`] : [];
          }),
        })),
      };
    }
    return out;
  }

  #entry(mission: string): MissionEntry {
    let entry = this.#missions.get(mission);
    if (entry === undefined) {
      entry = { name: mission, functions: [], behaviours: [] };
      this.#missions.set(mission, entry);
    }
    return entry;
  }
}

const tables = new WeakMap<Node, MissionTable>();

/**
 * The mission table of `node`, created empty on first use.
 *
 * @example
 * ```ts
 * missionTable(node).load(Development);
 * missionTable(node).describe(); // { dev_mission: { functions: ['Development/test'], behaviours: [...] } }
 * ```
 */
export function missionTable(node: Node): MissionTable {
  let table = tables.get(node);
  if (table === undefined) {
    table = new MissionTable();
    tables.set(node, table);
  }
  return table;
}
