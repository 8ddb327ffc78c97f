import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CommandError, WtdError } from '../errors.js';
import type { AnyClass, MissionTable } from '../missions/mission-table.js';
import type { WtdNode } from '../transport/wtd-node.js';
import { NotFoundError, UsageError } from './command.js';

/**
 * How `wtd start` loads a module file: the classes it exports are loaded
 * into the node (their `@WtdExport` and `@WtdBehaviour` marks), then its
 * `start(node)` runs. A module that fails is reported with its file and
 * line (`ERR_MODULE_LOAD`); TypeScript is compiled first, and the command
 * says so in one line.
 * @module
 */

/** Where WTD's own code lives: frames in it are not where a user's module failed. */
const OWN = dirname(dirname(fileURLToPath(import.meta.url)));

/** Loads what `file` exports into `node`, then runs its `start(node)` if it has one; returns the classes loaded. */
export async function loadModule(node: WtdNode, file: string): Promise<string[]> {
  const mod = await importModule(file);
  const loaded = loadClasses(node.missions, mod);
  const start = mod.start ?? mod.main;
  if (typeof start === 'function') {
    try {
      await (start as (n: WtdNode) => unknown)(node);
    } catch (err) {
      if (err instanceof WtdError) throw err;
      throw new CommandError('ERR_MODULE_LOAD', `the start function of ${file} failed${at(err)}: ${describe(err)}`, {
        cause: err,
      });
    }
  }
  return loaded;
}

/** Refuses a module file that is TypeScript (saying what to give instead) or that does not exist; returns its path. */
export function checkModuleFile(file: string): string {
  const path = isAbsolute(file) ? file : resolve(file);
  if (/\.(c|m)?tsx?$/.test(path)) throw typeScriptGiven(file, path);
  if (!existsSync(path)) throw new NotFoundError(`the module file ${file} does not exist`);
  return path;
}

/** Imports the module file `file`: refused for TypeScript, reported with its file and line if it fails. */
export async function importModule(file: string): Promise<Record<string, unknown>> {
  const path = checkModuleFile(file);
  try {
    return (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    throw loadFailure(file, path, err);
  }
}

/** Loads every class `mod` exports that has marks into `table`; returns their names. */
export function loadClasses(table: MissionTable, mod: Record<string, unknown>): string[] {
  const loaded: string[] = [];
  for (const [name, value] of Object.entries(mod)) {
    if (typeof value !== 'function' || !/^class[\s{]/.test(Function.prototype.toString.call(value))) continue;
    try {
      table.load(value as AnyClass);
      loaded.push(name);
    } catch (err) {
      if ((err as WtdError).code !== 'ERR_NOTHING_EXPORTED') throw err;
    }
  }
  return loaded;
}

/** `wtd start src/app.ts`: one line that says to compile first, and which file to give then. */
function typeScriptGiven(file: string, path: string): UsageError {
  const js = compiledPath(path);
  return new UsageError(
    `${file} is TypeScript, and wtd start runs JavaScript: compile it first (npx tsc), ` +
      `then give the file it writes: wtd start ${js === undefined ? '<the .js file>' : shown(js)}`,
  );
}

/** Where tsc writes `path`, read from the nearest tsconfig.json's outDir and rootDir, if it can be told. */
function compiledPath(path: string): string | undefined {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const config = join(dir, 'tsconfig.json');
    if (existsSync(config)) {
      let options: { outDir?: string; rootDir?: string } = {};
      try {
        const text = jsonWithoutComments(readFileSync(config, 'utf8'));
        options = (JSON.parse(text) as { compilerOptions?: typeof options }).compilerOptions ?? {};
      } catch {
        return undefined;
      }
      const out = options.outDir === undefined ? dir : resolve(dir, options.outDir);
      const root = options.rootDir === undefined ? dir : resolve(dir, options.rootDir);
      const inside = relative(root, path);
      if (inside.startsWith('..')) return undefined;
      const ext = extname(inside);
      return join(out, inside.slice(0, -ext.length) + ext.replace('ts', 'js').replace('x', ''));
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** tsconfig.json's JSON with comments: without its comments and trailing commas. */
function jsonWithoutComments(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      const end = skipString(text, i);
      out += text.slice(i, end + 1);
      i = end;
    } else if (c === '/' && text[i + 1] === '/') {
      i = text.indexOf('\n', i) - 1;
      if (i < 0) break;
    } else if (c === '/' && text[i + 1] === '*') {
      i = text.indexOf('*/', i + 2) + 1;
      if (i === 0) break;
    } else {
      out += c;
    }
  }
  return out.replace(/,(\s*[}\]])/g, '$1');
}

function skipString(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === '"') return j;
  }
  return text.length;
}

/** The error for a module that could not be imported: what failed, and where. */
function loadFailure(file: string, path: string, err: unknown): CommandError {
  let where = at(err);
  if (where === '' && err instanceof SyntaxError) where = syntaxErrorAt(path);
  const hint = missingHint(err);
  return new CommandError('ERR_MODULE_LOAD', `${file} failed to load${where}: ${describe(err)}`, {
    cause: err,
    ...(hint === undefined ? {} : { hint }),
  });
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // Node puts the code in the name part of the message of its own errors: keep the message alone.
  return `${err.name === 'Error' ? '' : `${err.name}: `}${err.message.split('\n')[0]}`;
}

/**
 * ` at src/app.js:12:5`: the first place in the stack that is the user's
 * (not Node's, not WTD's), relative to the working directory; or ''.
 */
function at(err: unknown): string {
  const stack = (err as Error)?.stack;
  if (typeof stack !== 'string') return '';
  for (const line of stack.split('\n')) {
    const m = /(?:\(|at )((?:file:\/\/)?\/[^\s()]+):(\d+):(\d+)\)?\s*$/.exec(line);
    if (m === null) continue;
    const file = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!;
    if (file.startsWith(OWN + sep) || file.includes(`${sep}node_modules${sep}`)) continue;
    return ` at ${shown(file)}:${m[2]}:${m[3]}`;
  }
  return '';
}

/**
 * Where a module that does not parse fails to (dynamic `import()` does not
 * say): the file, or one it imports by a relative path, checked with
 * `node --check`, which parses without running anything.
 */
function syntaxErrorAt(entry: string): string {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0 && seen.size < 200) {
    const file = queue.shift()!;
    if (seen.has(file) || !existsSync(file)) continue;
    seen.add(file);
    const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 });
    if (check.status !== 0) {
      const m = /^(.+):(\d+)$/m.exec(check.stderr ?? '');
      if (m !== null) return ` at ${shown(m[1]!)}:${m[2]}`;
      return '';
    }
    const text = readFileSync(file, 'utf8');
    for (const s of text.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"`]*?['"](\.{1,2}\/[^'"]+)['"]/g)) {
      queue.push(resolve(dirname(file), s[1]!));
    }
  }
  return '';
}

/** `path` relative to the working directory when it is below it, else as it is. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

function missingHint(err: unknown): string | undefined {
  const m = /^Cannot find (package|module) '([^']+)'/.exec((err as Error)?.message ?? '');
  if (m === null) return undefined;
  if (m[1] === 'package')
    return `install it in the project: npm install ${m[2]!
      .split('/')
      .slice(0, m[2]!.startsWith('@') ? 2 : 1)
      .join('/')}`;
  return "check the path; compiled imports name the .js file (import './x.js')";
}
