import { MissionError, WireError, describeValue } from '../errors.js';

/**
 * How many arguments an exported function takes: from `min` to `max`
 * (`Infinity` with a rest parameter).
 *
 * @example
 * ```ts
 * const fn = missionTable(node).lookupFunction('Greeter', 'hello', 'greetings');
 * fn?.arity; // { min: 1, max: 1 }
 * ```
 */
export interface Arity {
  readonly min: number;
  readonly max: number;
}

/**
 * The arity of `fn`: the one declared in `@WtdExport`, or the function's
 * own, its `length` to the number of parameters it declares (unbounded
 * with a rest parameter). `where` names the decorator in errors.
 */
export function arityOf(fn: (...args: never[]) => unknown, declared: unknown, where: string): Arity {
  if (declared !== undefined) return checkDeclared(declared, where);
  const params = parameters(fn);
  const min = fn.length;
  if (params === undefined) return Object.freeze({ min, max: min });
  return Object.freeze({ min, max: params.rest ? Infinity : Math.max(min, params.count) });
}

function checkDeclared(declared: unknown, where: string): Arity {
  const whole = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
  if (whole(declared)) return Object.freeze({ min: declared, max: declared });
  if (declared !== null && typeof declared === 'object') {
    const { min, max } = declared as { min?: unknown; max?: unknown };
    if (whole(min) && (max === undefined || (whole(max) && max >= min))) {
      return Object.freeze({ min, max: max ?? Infinity });
    }
  }
  throw new MissionError(
    'ERR_BAD_ARITY',
    `${where}: arity is a whole number, or { min, max } with whole numbers and min <= max; got ${describeValue(declared)}`,
  );
}

/** `1`, `1..3`, `0..` (no upper bound). */
export function formatArity(arity: Arity): string {
  if (arity.min === arity.max) return String(arity.min);
  return `${arity.min}..${arity.max === Infinity ? '' : arity.max}`;
}

/**
 * Refuses a call to `target` (`Module/fn`) with `given` arguments when its
 * arity does not allow that many: before it runs, `ERR_BAD_ARITY` (400).
 */
export function checkArity(target: string, arity: Arity, given: number): void {
  if (given >= arity.min && given <= arity.max) return;
  const takes =
    arity.min === arity.max
      ? `${arity.min} argument${arity.min === 1 ? '' : 's'}`
      : arity.max === Infinity
        ? `at least ${arity.min} argument${arity.min === 1 ? '' : 's'}`
        : `${arity.min} to ${arity.max} arguments`;
  throw new WireError('ERR_BAD_ARITY', 400, `${target} takes ${takes}, and was given ${given}; nothing was run`);
}

/**
 * The parameters `fn`'s source declares: how many, and whether the last is
 * a rest parameter. Undefined when the source cannot be read (a native or
 * bound function).
 */
function parameters(fn: (...args: never[]) => unknown): { count: number; rest: boolean } | undefined {
  const source = Function.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) return undefined;
  const open = source.indexOf('(');
  if (open < 0) return undefined;
  const parts: string[] = [];
  let depth = 0;
  let start = open + 1;
  for (let i = open; i < source.length; i++) {
    const c = source[i]!;
    if (c === '"' || c === "'" || c === '`') {
      i = skipString(source, i);
    } else if (c === '/' && source[i + 1] === '*') {
      i = source.indexOf('*/', i + 2) + 1;
      if (i === 0) return undefined;
    } else if (c === '/' && source[i + 1] === '/') {
      i = source.indexOf('\n', i);
      if (i < 0) return undefined;
    } else if (c === '(' || c === '[' || c === '{') {
      depth++;
    } else if (c === ')' || c === ']' || c === '}') {
      depth--;
      if (depth === 0) {
        parts.push(source.slice(start, i));
        const declared = parts.map((p) => p.trim()).filter((p, k, all) => p !== '' || k < all.length - 1);
        return { count: declared.length, rest: declared.at(-1)?.startsWith('...') ?? false };
      }
    } else if (c === ',' && depth === 1) {
      parts.push(source.slice(start, i));
      start = i + 1;
    }
  }
  return undefined;
}

/** The index of the quote that closes the string opened at `i`. */
function skipString(source: string, i: number): number {
  const quote = source[i];
  for (let j = i + 1; j < source.length; j++) {
    if (source[j] === '\\') j++;
    else if (source[j] === quote) return j;
  }
  return source.length;
}
