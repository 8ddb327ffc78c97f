import { SuperJSON } from 'superjson';
import { NotSerializableError, WireError, describeValue } from '../errors.js';
import { Pid } from '../runtime/pid.js';

/**
 * What a pid becomes on the wire (the seed's "billet-doux"): the node it
 * lives on (its id, and its name for people to read), its number, and an
 * unguessable token that the origin node checks before it accepts a
 * message for it.
 *
 * @example
 * ```ts
 * const billet: BilletDoux = { node: 'kZ89hI4Jyivk0BXo', name: 'alice', id: 3, token: 'zQ...' }; // a pid as it travels
 * ```
 */
export type BilletDoux = {
  node: string;
  /** The node's name, as its pids print (`<alice.3.0>`); absent or not a node name: the id prints. */
  name?: string;
  id: number;
  token: string;
};

const NODE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Turns pids into billets-doux on the way out and back into (proxy) pids on the way in.
 *
 * @example
 * ```ts
 * const codec = new WireCodec<Ctx>({
 *   out: (pid, ctx) => handOut(pid, ctx), // a local pid leaving: a billet-doux
 *   in: (billet, ctx) => proxyPid(billet, ctx), // a billet-doux arriving: a pid to send to
 * });
 * ```
 */
export interface PidHooks<C> {
  out(pid: Pid, context: C): BilletDoux;
  in(billet: BilletDoux, context: C): Pid;
}

/**
 * The encoded form of a value: superjson's JSON and its type annotations.
 *
 * @example
 * ```ts
 * const encoded: Encoded = new WireCodec().encode(new Map([['a', 1]]));
 * encoded.json; // [['a', 1]]; encoded.meta says it was a Map
 * ```
 */
export interface Encoded {
  json: unknown;
  meta?: unknown;
}

/**
 * Limits on what the codec accepts.
 *
 * @example
 * ```ts
 * const codec = new WireCodec(undefined, { maxDepth: 32, maxBigIntDigits: 100 });
 * ```
 */
export interface CodecLimits {
  /** Deepest nesting of arrays, objects, maps and sets. Default 32. */
  maxDepth: number;
  /** Most digits in a BigInt. Default 1000. */
  maxBigIntDigits: number;
}

const DEFAULT_LIMITS: CodecLimits = { maxDepth: 32, maxBigIntDigits: 1000 };

/** The only type annotations a decoder accepts: plain data, as the issue allows. */
const SIMPLE_ANNOTATIONS = new Set(['undefined', 'Date', 'map', 'set', 'number']);
const CUSTOM_ANNOTATIONS = new Set(['wtd.bigint', 'wtd.pid']);
/** Keys that could reach an object's prototype when a decoder sets a path. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** What {@link WireCodec}'s plain copy returns for a value that needs superjson. */
const NOT_PLAIN: unique symbol = Symbol('not plain JSON');

function refuse(message: string): WireError {
  return new WireError('ERR_BAD_ARGUMENTS', 400, message);
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * The wire codec: superjson through a dedicated instance that carries only
 * plain data — JSON values, `undefined`, `Date`, `BigInt` (capped), `Map`,
 * `Set`, `NaN`, `±Infinity`, `-0` — and pids, as billets-doux.
 *
 * Encoding checks the value first and refuses functions, symbols, class
 * instances, errors, regexps, typed arrays and cycles with
 * `NotSerializableError` (`ERR_NOT_SERIALIZABLE`), before anything is sent.
 * Decoding checks the annotations first and refuses everything else
 * (classes, errors, regexps, typed arrays, custom tags, shared references,
 * prototype paths, over-deep nesting) with `WireError` `ERR_BAD_ARGUMENTS` (400).
 *
 * @example
 * ```ts
 * const codec = new WireCodec();
 * const encoded = codec.encode({ at: new Date(0), big: 10n }); // JSON plus superjson's meta
 * codec.decode(encoded); // { at: Date(0), big: 10n }
 * ```
 */
export class WireCodec<C = undefined> {
  readonly #superjson: SuperJSON;
  readonly #limits: CodecLimits;
  readonly #hooks: PidHooks<C> | undefined;
  // The context of the encode/decode in progress; superjson's hooks cannot take one.
  #context: C | undefined;

  constructor(hooks?: PidHooks<C>, limits: Partial<CodecLimits> = {}) {
    this.#hooks = hooks;
    this.#limits = { ...DEFAULT_LIMITS, ...limits };
    const sj = new SuperJSON({ dedupe: false });
    const maxDigits = this.#limits.maxBigIntDigits;
    sj.registerCustom<bigint, string>(
      {
        isApplicable: (v): v is bigint => typeof v === 'bigint',
        serialize: (v) => v.toString(),
        deserialize: (v) => {
          if (typeof v !== 'string' || !/^-?\d+$/.test(v) || v.replace('-', '').length > maxDigits) {
            throw refuse(`a BigInt must be a string of at most ${maxDigits} digits`);
          }
          return BigInt(v);
        },
      },
      'wtd.bigint',
    );
    sj.registerCustom<Pid, BilletDoux>(
      {
        isApplicable: (v): v is Pid => v instanceof Pid,
        serialize: (pid) => {
          if (this.#hooks === undefined) throw new NotSerializableError(pid, 'this codec cannot carry pids');
          return this.#hooks.out(pid, this.#context as C);
        },
        deserialize: (billet) => {
          if (this.#hooks === undefined) throw refuse('this codec does not accept pids');
          const b = billet as unknown as BilletDoux;
          if (
            b === null ||
            typeof b !== 'object' ||
            typeof b.node !== 'string' ||
            !Number.isSafeInteger(b.id) ||
            typeof b.token !== 'string'
          ) {
            throw refuse('a pid must be { node, id, token }');
          }
          const billetIn: BilletDoux = { node: b.node, id: b.id, token: b.token };
          if (typeof b.name === 'string' && NODE_NAME.test(b.name)) billetIn.name = b.name;
          return this.#hooks.in(billetIn, this.#context as C);
        },
      },
      'wtd.pid',
    );
    this.#superjson = sj;
  }

  /** Encodes `value`, or throws `NotSerializableError` naming what cannot travel. */
  encode(value: unknown, context?: C): Encoded {
    // Plain JSON (most calls' arguments) needs no annotations: copied as it is checked, without superjson.
    const plain = this.#plainCopy(value, 0);
    if (plain !== NOT_PLAIN) return { json: plain };
    this.#check(value, 0, new Set(), 'value');
    this.#context = context;
    try {
      const { json, meta } = this.#superjson.serialize(value);
      return meta === undefined ? { json } : { json, meta };
    } finally {
      this.#context = undefined;
    }
  }

  /**
   * Decodes what {@link encode} produced, or throws `WireError`
   * `ERR_BAD_ARGUMENTS`. The result may share objects with `encoded.json`
   * (what a message parsed off the wire holds), so `encoded` is not to be
   * used again.
   */
  decode(encoded: Encoded, context?: C): unknown {
    if (encoded === null || typeof encoded !== 'object') throw refuse('expected { json, meta }');
    this.#checkJson(encoded.json, 0);
    // Without annotations the JSON is the value: it came parsed off the wire, so it is ours to hand on.
    if (encoded.meta === undefined) return encoded.json;
    this.#checkMeta(encoded.meta);
    this.#context = context;
    try {
      return this.#superjson.deserialize({ json: encoded.json as never, meta: encoded.meta as never });
    } catch (err) {
      if (err instanceof WireError) throw err;
      throw new WireError('ERR_BAD_ARGUMENTS', 400, `the arguments could not be decoded: ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      this.#context = undefined;
    }
  }

  #check(v: unknown, depth: number, seen: Set<object>, where: string): void {
    switch (typeof v) {
      case 'string':
      case 'number':
      case 'boolean':
      case 'undefined':
        return;
      case 'bigint':
        if (v.toString().replace('-', '').length > this.#limits.maxBigIntDigits) {
          throw new NotSerializableError(v, `${where} is a BigInt of more than ${this.#limits.maxBigIntDigits} digits`);
        }
        return;
      case 'function':
      case 'symbol':
        throw new NotSerializableError(v, `${where} is ${describeValue(v)}, which cannot be sent to another node`);
      default:
        break;
    }
    if (v === null || v instanceof Date || v instanceof Pid) return;
    const obj = v as object;
    if (depth >= this.#limits.maxDepth) {
      throw new NotSerializableError(v, `${where} is nested deeper than ${this.#limits.maxDepth} levels`);
    }
    if (seen.has(obj)) throw new NotSerializableError(v, `${where} refers back to itself; only trees can be sent`);
    seen.add(obj);
    if (Array.isArray(obj)) {
      obj.forEach((item, i) => this.#check(item, depth + 1, seen, `${where}[${i}]`));
    } else if (obj instanceof Map) {
      for (const [k, item] of obj) {
        this.#check(k, depth + 1, seen, `a key of ${where}`);
        this.#check(item, depth + 1, seen, `${where}.get(${describeValue(k)})`);
      }
    } else if (obj instanceof Set) {
      for (const item of obj) this.#check(item, depth + 1, seen, `an item of ${where}`);
    } else if (isPlainObject(obj)) {
      for (const key of Object.keys(obj)) {
        if (FORBIDDEN_KEYS.has(key)) throw new NotSerializableError(v, `${where} has a key named ${key}`);
        this.#check((obj as Record<string, unknown>)[key], depth + 1, seen, `${where}.${key}`);
      }
    } else {
      const kind = obj.constructor?.name ?? 'object';
      throw new NotSerializableError(
        v,
        `${where} is a ${kind}; only plain data (objects, arrays, strings, numbers, booleans, null, undefined, ` +
          'Date, BigInt, Map, Set) and pids can be sent to another node',
      );
    }
    seen.delete(obj);
  }

  /**
   * A copy of `v` when it is plain JSON that superjson would pass through
   * unannotated (strings, finite numbers but -0, booleans, null, arrays,
   * plain objects without `undefined` or prototype keys, within the depth
   * limit); {@link NOT_PLAIN} for anything else, which takes the checked
   * path with its precise errors.
   */
  #plainCopy(v: unknown, depth: number): unknown {
    switch (typeof v) {
      case 'string':
      case 'boolean':
        return v;
      case 'number':
        return Number.isFinite(v) && !Object.is(v, -0) ? v : NOT_PLAIN;
      case 'object':
        break;
      default:
        return NOT_PLAIN;
    }
    if (v === null) return null;
    if (depth >= this.#limits.maxDepth) return NOT_PLAIN;
    if (Array.isArray(v)) {
      const out: unknown[] = new Array<unknown>(v.length);
      for (let i = 0; i < v.length; i++) {
        // A hole takes the checked path, which has always sent it as null.
        if (!(i in v)) return NOT_PLAIN;
        const item = this.#plainCopy(v[i], depth + 1);
        if (item === NOT_PLAIN) return NOT_PLAIN;
        out[i] = item;
      }
      return out;
    }
    if (Object.getPrototypeOf(v) !== Object.prototype) return NOT_PLAIN;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(v)) {
      if (FORBIDDEN_KEYS.has(key)) return NOT_PLAIN;
      const item = this.#plainCopy((v as Record<string, unknown>)[key], depth + 1);
      if (item === NOT_PLAIN) return NOT_PLAIN;
      out[key] = item;
    }
    return out;
  }

  #checkJson(v: unknown, depth: number): void {
    if (v === null || typeof v !== 'object') return;
    if (depth >= this.#limits.maxDepth)
      throw refuse(`the arguments are nested deeper than ${this.#limits.maxDepth} levels`);
    if (Array.isArray(v)) {
      for (const item of v) this.#checkJson(item, depth + 1);
      return;
    }
    for (const key of Object.keys(v)) {
      if (FORBIDDEN_KEYS.has(key)) throw refuse(`the arguments contain a key named ${key}`);
      this.#checkJson((v as Record<string, unknown>)[key], depth + 1);
    }
  }

  #checkMeta(meta: unknown): void {
    if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw refuse('meta must be an object');
    for (const key of Object.keys(meta)) {
      if (key === 'values') this.#checkTree((meta as { values: unknown }).values, 0);
      else if (key === 'v') {
        if ((meta as { v: unknown }).v !== 1) throw refuse('unsupported superjson meta version');
      } else {
        // referentialEqualities would make shared (or cyclic) structures; nothing else is defined.
        throw refuse(`meta.${key} is not accepted`);
      }
    }
  }

  #checkTree(tree: unknown, depth: number): void {
    if (depth > this.#limits.maxDepth) throw refuse('the type annotations are nested too deeply');
    if (Array.isArray(tree)) {
      if (tree.length < 1 || tree.length > 2) throw refuse('malformed type annotation');
      this.#checkAnnotation(tree[0]);
      if (tree.length === 2 && tree[1] !== undefined) this.#checkChildren(tree[1], depth);
      return;
    }
    this.#checkChildren(tree, depth);
  }

  #checkChildren(children: unknown, depth: number): void {
    if (children === null || typeof children !== 'object' || Array.isArray(children)) {
      throw refuse('malformed type annotation');
    }
    for (const key of Object.keys(children)) {
      for (const segment of key.split('.')) {
        if (FORBIDDEN_KEYS.has(segment)) throw refuse(`a type annotation names the path segment ${segment}`);
      }
      this.#checkTree((children as Record<string, unknown>)[key], depth + 1);
    }
  }

  #checkAnnotation(a: unknown): void {
    if (typeof a === 'string' && SIMPLE_ANNOTATIONS.has(a)) return;
    if (Array.isArray(a) && a.length === 2 && a[0] === 'custom' && CUSTOM_ANNOTATIONS.has(a[1])) return;
    throw refuse(`the type annotation ${describeValue(a)} is not accepted; only plain data travels between nodes`);
  }
}
