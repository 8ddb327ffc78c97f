import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError, type Arguments } from './command.js';

/**
 * The command line of one command, read strictly in the command's own
 * words: an unknown flag is named with the valid ones (and the closest, if
 * one is close), a flag missing its value or given one it does not take
 * says so, and too many or too few arguments say how many it takes.
 * @module
 */

type Options = NonNullable<ParseArgsConfig['options']>;

/** The flags of `options` as `--name VALUE` / `--name`, for messages. */
export function describeFlags(options: Options): string[] {
  return Object.entries(options).map(([name, o]) => {
    const short = o.short === undefined ? '' : `/-${o.short}`;
    return o.type === 'string' ? `--${name}${short} <value>` : `--${name}${short}`;
  });
}

export function parseCommandLine(
  command: string,
  argv: string[],
  options: Options,
  args: Arguments | undefined,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const { values, positionals, tokens } = parseArgs({
    args: argv,
    options,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const names = Object.keys(options);
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    if (option === undefined) {
      const close = closest(token.name, names);
      throw new UsageError(
        `there is no flag ${token.rawName.split('=')[0]}${close === undefined ? '' : ` (did you mean --${close}?)`}`,
        `wtd ${command} takes ${describeFlags(options).join(', ')}`,
      );
    }
    if (
      option.type === 'string' &&
      (token.value === undefined || (!token.inlineValue && token.value.startsWith('--')))
    ) {
      throw new UsageError(
        `${token.rawName} needs a value: ${token.rawName} <value>` +
          (token.value === undefined ? '' : ` (it was followed by the flag ${token.value})`),
      );
    }
    if (option.type === 'boolean' && token.inlineValue === true) {
      throw new UsageError(`${token.rawName} takes no value; write ${token.rawName} alone`);
    }
  }
  if (args !== undefined && values.help !== true && (positionals.length < args.min || positionals.length > args.max)) {
    const takes =
      args.max === 0
        ? 'expects no arguments'
        : args.min === args.max
          ? `expects ${args.min} argument${args.min === 1 ? '' : 's'}`
          : `expects ${args.min} to ${args.max} arguments`;
    const extra = positionals.length > args.max ? positionals[args.max] : undefined;
    throw new UsageError(
      `${takes}, got ${positionals.length}${extra === undefined ? '' : ` ('${extra}' is one too many)`}`,
    );
  }
  return { values: values as Record<string, string | boolean | undefined>, positionals };
}

/**
 * The candidate closest to `word`, if one is close enough to be what was
 * meant: at most a third of its letters differ (and at most 3).
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  if (best === undefined) return undefined;
  const allowed = Math.min(3, Math.max(1, Math.floor(Math.max(word.length, best.length) / 3)));
  return bestDistance <= allowed ? best : undefined;
}

/** `' (did you mean x?)'` when one of `candidates` is close to `word`, else `''`. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const close = closest(word, candidates);
  return close === undefined ? '' : ` (did you mean ${close}?)`;
}

/** Optimal string alignment distance: edits, with a swap of two neighbours counting as one. */
function distance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
