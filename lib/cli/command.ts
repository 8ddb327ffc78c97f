import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { CommandError } from '../errors.js';
import type { Catalogued } from '../missions/mission-table.js';
import type { GrantRecord } from '../security/grant-store.js';
import type { GrantFile } from '../transport/grant-issuer.js';
import { WtdNode } from '../transport/wtd-node.js';

/**
 * What every `wtd` command shares: where it writes, its context, the
 * node's configuration file, and the errors of a command line.
 * @module
 */

/** Where the command writes, and what ends a long-running command (a node, a proxy) or a call. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Resolves when the command should stop (Ctrl-C). */
  stop: Promise<void>;
  /** The environment (`WTD_DATA`). */
  env: Record<string, string | undefined>;
}

/** What the exit codes mean. */
export const EXIT = Object.freeze({
  ok: 0,
  /** The operation failed or was refused (a remote error, a revoked grant...). */
  failed: 1,
  /** The command line is wrong: unknown flag, missing argument. */
  usage: 2,
  /** Something named does not exist: a file, a grant, a node not initialised. */
  notFound: 3,
  /** A node or proxy cannot be reached. */
  unreachable: 4,
  /** Stopped by Ctrl-C (128 + SIGINT, as shells report it). */
  interrupted: 130,
});

/** A mistake on the command line (`ERR_USAGE`, exit 2). */
export class UsageError extends CommandError {
  constructor(message: string, hint?: string) {
    super('ERR_USAGE', message, hint === undefined ? {} : { hint });
  }
}

/** Something named on the command line that does not exist (`ERR_MISSING`, exit 3). */
export class NotFoundError extends CommandError {
  constructor(message: string, hint?: string) {
    super('ERR_MISSING', message, hint === undefined ? {} : { hint });
  }
}

/** What `wtd start` records of the node in `<data dir>/node.json`, for the commands that run beside it. */
export interface NodeConfig {
  name: string;
  /** Where the node last listened, and the proxy it last joined: put in the grant files it makes. */
  address?: string | null;
  proxy?: string | null;
  email?: string | null;
  /** What the node offered when it last started, and when (epoch ms). */
  offer?: Record<string, Catalogued>;
  offeredAt?: number;
}

/** How many positional arguments a command takes. */
export interface Arguments {
  min: number;
  max: number;
}

/** One `wtd` command. */
export interface Command {
  summary: string;
  usage: string;
  help: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** How many arguments it takes; unchecked when absent. */
  args?: Arguments;
  run(ctx: Ctx): Promise<number>;
}

/** What a command runs with. */
export interface Ctx {
  io: CliIo;
  /** The command's name, as typed. */
  name: string;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  json: boolean;
  dataDir: string;
}

/** The flags every command takes. */
export const COMMON = {
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'data-dir': { type: 'string' },
} as const;

export function defaultDataDir(env: CliIo['env']): string {
  return env.WTD_DATA ?? join(homedir(), '.wtd');
}

export function readConfig(dataDir: string): NodeConfig {
  const file = join(dataDir, 'node.json');
  if (!existsSync(file)) {
    throw new NotFoundError(`there is no node in ${dataDir}`, "run 'wtd init --name <name>' first, or pass --data-dir");
  }
  return JSON.parse(readFileSync(file, 'utf8')) as NodeConfig;
}

export function writeConfig(dataDir: string, config: NodeConfig): void {
  writeFileSync(join(dataDir, 'node.json'), `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}

/**
 * Opens the node of the data directory. `shared` for commands that only
 * read or write grants: they run beside a node started in another program
 * (which holds the directory's lock).
 */
export async function openNode(ctx: Ctx, shared: boolean): Promise<{ node: WtdNode; config: NodeConfig }> {
  return openNodeIn(ctx.dataDir, shared);
}

/** {@link openNode} for another data directory than the command's. */
export async function openNodeIn(dataDir: string, shared: boolean): Promise<{ node: WtdNode; config: NodeConfig }> {
  const config = readConfig(dataDir);
  const node = await WtdNode.start({
    name: config.name,
    dataDir,
    shared,
    advertise: { address: config.address ?? null, proxy: config.proxy ?? null },
  });
  return { node, config };
}

/** Opens the node of the data directory, runs `fn` with it, and closes it whatever happens. */
export async function withNode<T>(ctx: Ctx, fn: (node: WtdNode, config: NodeConfig) => Promise<T> | T): Promise<T> {
  const { node, config } = await openNode(ctx, true);
  try {
    return await fn(node, config);
  } finally {
    await node.close();
  }
}

export function readJsonFile(path: string, what: string): unknown {
  if (!existsSync(path)) throw new NotFoundError(`${what} ${path} does not exist`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new UsageError(`${what} ${path} is not JSON`);
  }
}

/** A grant file as `wtd grant --out` writes it: with what its missions covered when it was made. */
export type CliGrantFile = GrantFile & { covers?: Record<string, Catalogued> };

export function readGrantFile(path: string): CliGrantFile {
  const grant = readJsonFile(path, 'the grant file') as CliGrantFile;
  if (grant?.wtd !== 'grant') throw new UsageError(`${path} is not a WTD grant file`);
  return grant;
}

/** Writes `json` for scripts (`--json`), or `human`. */
export function output(ctx: Ctx, json: unknown, human: string): void {
  ctx.io.out(ctx.json ? JSON.stringify(json, null, 2) : human);
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A rate as people write it: `10/s`, `100/min`, `5/h (burst 10)`. */
export function formatRate(rate: GrantRecord['rate']): string {
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1000, 's'],
  ];
  const unit = units.find(([ms]) => rate.intervalMs === ms);
  const base = unit === undefined ? `${rate.count}/${rate.intervalMs}ms` : `${rate.count}/${unit[1]}`;
  return rate.burst === rate.count ? base : `${base} (burst ${rate.burst})`;
}

/** A time of day as every command prints it: `2026-05-01 12:00:00` (UTC), or `never`. */
export function when(ms: number | null): string {
  return ms === null ? 'never' : `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

/** One line per mission of a catalogue: `  greetings: Greeter/hello/1, Visitors (gen_server: call/1)`. */
export function describeCatalogue(offer: Record<string, Catalogued>): string {
  const lines = Object.entries(offer).map(
    ([m, d]) =>
      `  ${m}: ${
        [...d.functions, ...d.behaviours.map((b) => `${b.module} (${b.kind}: ${b.ops.join(', ') || 'nothing'})`)].join(
          ', ',
        ) || '(nothing yet)'
      }`,
  );
  return lines.length === 0 ? '  (no missions: mark methods with @WtdExport)' : lines.join('\n');
}

/** `'a'`, `'a or b'`, `'a, b or c'`. */
export function either(words: string[]): string {
  return words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} or ${words.at(-1)}`;
}
