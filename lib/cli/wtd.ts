import { existsSync, readFileSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { JWK } from 'jose';
import { NodeDownError, WireError, WtdError } from '../errors.js';
import { WtdProxy } from '../proxy/proxy.js';
import { ProxyStore } from '../proxy/store.js';
import type { GrantRecord } from '../security/grant-store.js';
import { isUsable } from '../security/grants.js';
import { parseRate } from '../security/rate-limiter.js';
import { send } from '../transport/http-client.js';
import type { GrantFile } from '../transport/grant-issuer.js';
import { WtdNode } from '../transport/wtd-node.js';
import { Observer } from './observer.js';

/** Where the command writes, and what ends a long-running command (a node, a proxy). */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Resolves when a long-running command should stop (Ctrl-C). */
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
});

/** Opens the store of the proxy in the data directory (beside a running proxy: SQLite lets both in). */
function openProxyStore(ctx: Ctx): ProxyStore {
  const dir = join(ctx.dataDir, 'proxy');
  if (!existsSync(join(dir, 'proxy.db'))) {
    throw new NotFoundError(`no proxy in ${ctx.dataDir}: run 'wtd proxy' there first (or pass --data-dir)`);
  }
  return new ProxyStore(dir);
}

async function proxyNodes(ctx: Ctx): Promise<number> {
  const store = openProxyStore(ctx);
  try {
    const waiting = new Map<string, number>();
    for (const w of store.counts().waiting) waiting.set(w.to, (waiting.get(w.to) ?? 0) + w.n);
    const nodes = store.nodes().map((n) => ({
      id: n.id,
      name: n.name,
      email: n.email,
      source: n.source,
      registeredAt: n.registeredAt,
      lastSeen: n.lastSeen,
      queued: waiting.get(n.id) ?? 0,
    }));
    if (ctx.json) {
      ctx.io.out(JSON.stringify(nodes, null, 2));
      return EXIT.ok;
    }
    if (nodes.length === 0) {
      ctx.io.out('No node is registered at this proxy.');
      return EXIT.ok;
    }
    const when = (ms: number): string => (ms > 0 ? new Date(ms).toISOString().slice(0, 16).replace('T', ' ') : 'never');
    ctx.io.out(
      table([
        ['NAME', 'ID', 'E-MAIL', 'FROM', 'REGISTERED', 'LAST SEEN', 'QUEUED'],
        ...nodes.map((n) =>
          [n.name, n.id, n.email, n.source || '?', when(n.registeredAt), when(n.lastSeen), String(n.queued)].map(
            printable,
          ),
        ),
      ]),
    );
    return EXIT.ok;
  } finally {
    store.close();
  }
}

async function proxyRemove(ctx: Ctx, args: string[]): Promise<number> {
  const [which, ...extra] = args;
  if (which === undefined || extra.length > 0) throw new UsageError('wtd proxy remove takes one node id or e-mail');
  const store = openProxyStore(ctx);
  try {
    const node = store.find(which);
    if (node === undefined) throw new NotFoundError(`no node ${which} is registered at this proxy`);
    store.removeMarked(node.id);
    output(
      ctx,
      { removed: { id: node.id, name: node.name, email: node.email } },
      `Removed ${node.name} (${node.id}, ${node.email}) and its queue. If it still runs, it registers again at its next ping.`,
    );
    return EXIT.ok;
  } finally {
    store.close();
  }
}

/** A mistake on the command line. */
class UsageError extends Error {}

/** Something named that does not exist. */
class NotFoundError extends Error {}

interface NodeConfig {
  name: string;
  /** Where the node last listened, and the proxy it last joined: put in the grant files it makes. */
  address?: string | null;
  proxy?: string | null;
  email?: string | null;
}

interface Command {
  summary: string;
  usage: string;
  help: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(ctx: Ctx): Promise<number>;
}

interface Ctx {
  io: CliIo;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  json: boolean;
  dataDir: string;
}

const COMMON = {
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'data-dir': { type: 'string' },
} as const;

function defaultDataDir(env: CliIo['env']): string {
  return env.WTD_DATA ?? join(homedir(), '.wtd');
}

function readConfig(dataDir: string): NodeConfig {
  const file = join(dataDir, 'node.json');
  if (!existsSync(file)) {
    throw new NotFoundError(`no node in ${dataDir}: run 'wtd init --name <name>' first (or pass --data-dir)`);
  }
  return JSON.parse(readFileSync(file, 'utf8')) as NodeConfig;
}

function writeConfig(dataDir: string, config: NodeConfig): void {
  writeFileSync(join(dataDir, 'node.json'), `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}

/**
 * Opens the node of the data directory. `shared` for commands that only
 * read or write grants: they run beside a node started in another program
 * (which holds the directory's lock).
 */
async function openNode(ctx: Ctx, shared: boolean): Promise<{ node: WtdNode; config: NodeConfig }> {
  const config = readConfig(ctx.dataDir);
  const node = await WtdNode.start({
    name: config.name,
    dataDir: ctx.dataDir,
    shared,
    advertise: { address: config.address ?? null, proxy: config.proxy ?? null },
  });
  return { node, config };
}

/** Opens the node of the data directory, runs `fn` with it, and closes it whatever happens. */
async function withNode<T>(ctx: Ctx, fn: (node: WtdNode, config: NodeConfig) => Promise<T> | T): Promise<T> {
  const { node, config } = await openNode(ctx, true);
  try {
    return await fn(node, config);
  } finally {
    await node.close();
  }
}

function readJsonFile(path: string, what: string): unknown {
  if (!existsSync(path)) throw new NotFoundError(`${what} ${path} does not exist`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new UsageError(`${what} ${path} is not JSON`);
  }
}

function readGrantFile(path: string): GrantFile {
  const grant = readJsonFile(path, 'the grant file') as GrantFile;
  if (grant?.wtd !== 'grant') throw new UsageError(`${path} is not a WTD grant file`);
  return grant;
}

/** `7d`, `12h`, `30m`, `45s` → ms. */
function parseDuration(text: string): number {
  const m = /^(\d+)\s*(s|m|h|d)$/.exec(text.trim());
  if (m === null) throw new UsageError(`--expires takes a duration like 30m, 12h or 7d, got '${text}'`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

function table(rows: string[][]): string {
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

/** A grant id prefix as a command-line argument (ids may start with '-', which would read as a flag). */
function revokeArg(kid: string): string {
  return `${kid.startsWith('-') ? '-- ' : ''}${kid.slice(0, 12)}`;
}

function formatRate(rate: GrantRecord['rate']): string {
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

function when(ms: number | null): string {
  return ms === null ? 'never' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

function grantState(g: GrantRecord): string {
  return g.revokedAt !== null ? 'revoked' : isUsable(g, Date.now()) ? 'active' : 'expired';
}

function output(ctx: Ctx, json: unknown, human: string): void {
  ctx.io.out(ctx.json ? JSON.stringify(json, null, 2) : human);
}

/** Loads what a module file exports into `node`, then runs its `start(node)` if it has one. */
async function loadModule(node: WtdNode, file: string): Promise<string[]> {
  const path = isAbsolute(file) ? file : resolve(file);
  if (!existsSync(path)) throw new NotFoundError(`the module file ${file} does not exist`);
  const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  const loaded: string[] = [];
  for (const [name, value] of Object.entries(mod)) {
    if (typeof value !== 'function' || !/^class[\s{]/.test(Function.prototype.toString.call(value))) continue;
    try {
      node.load(value as abstract new (...args: never[]) => unknown);
      loaded.push(name);
    } catch (err) {
      if ((err as WtdError).code !== 'ERR_NOTHING_EXPORTED') throw err;
    }
  }
  const start = mod.start ?? mod.main;
  if (typeof start === 'function') await (start as (n: WtdNode) => unknown)(node);
  return loaded;
}

function describeOffer(node: WtdNode): string {
  const missions = node.missions.describe();
  const lines = Object.entries(missions).map(
    ([m, d]) =>
      `  ${m}: ${[...d.functions, ...d.behaviours.map((b) => `${b} (behaviour)`)].join(', ') || '(nothing yet)'}`,
  );
  return lines.length === 0 ? '  (no missions: mark methods with @WtdExport)' : lines.join('\n');
}

async function runUntilStopped(ctx: Ctx, close: () => Promise<void>): Promise<number> {
  await ctx.io.stop;
  ctx.io.err('stopping…');
  await close();
  return EXIT.ok;
}

// ------------------------------------------------------------------ commands

/** Most pages of a proxy's status `wtd directory` reads (a thousand nodes each). */
const DIRECTORY_PAGES = 100;

/** The options `start` and `observer` share. */
const START_OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  'no-listen': { type: 'boolean' },
  proxy: { type: 'string' },
  email: { type: 'string' },
  'observer-port': { type: 'string' },
} as const;

const commands: Record<string, Command> = {
  init: {
    summary: "create this machine's node: its identity and data directory",
    usage: 'wtd init [--name alice] [--data-dir DIR]',
    help: `Creates the node's Ed25519 identity in its data directory (default ~/.wtd, or $WTD_DATA).
Running it again changes nothing and says who the node is.`,
    options: { name: { type: 'string' } },
    async run(ctx) {
      const file = join(ctx.dataDir, 'node.json');
      if (existsSync(file)) {
        const { id, config } = await withNode(ctx, (node, config) => ({ id: node.id, config }));
        output(
          ctx,
          { name: config.name, id, dataDir: ctx.dataDir, created: false },
          `A node is already here: ${config.name} (${id}) in ${ctx.dataDir}. Nothing changed.`,
        );
        return EXIT.ok;
      }
      const name = (ctx.values.name as string | undefined) ?? 'node';
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
        throw new UsageError(`--name takes letters, digits, '_' and '-', got '${name}'`);
      }
      mkdirSync(ctx.dataDir, { recursive: true, mode: 0o700 });
      const node = await WtdNode.start({ name, dataDir: ctx.dataDir, shared: true });
      const id = node.id;
      await node.close();
      writeConfig(ctx.dataDir, { name });
      output(
        ctx,
        { name, id, dataDir: ctx.dataDir, created: true },
        `Created node ${name} (${id}) in ${ctx.dataDir}.\n` +
          `Next: 'wtd whoami' prints the public key to send to a friend; 'wtd start <module file>' runs the node.`,
      );
      return EXIT.ok;
    },
  },

  whoami: {
    summary: "print this node's id and the public key to send to a friend",
    usage: 'wtd whoami [--out key.pub]',
    help: `Prints the node's name, id and public key. The public key is safe to share: a friend
grants you missions with 'wtd grant --to <your key file>'. --out writes it to a file.`,
    options: { out: { type: 'string' } },
    async run(ctx) {
      const { key, config } = await withNode(ctx, (node, config) => ({
        key: { wtd: 'key', name: config.name, id: node.id, publicJwk: node.publicJwk },
        config,
      }));
      const out = ctx.values.out as string | undefined;
      if (out !== undefined) writeFileSync(out, `${JSON.stringify(key, null, 2)}\n`);
      output(
        ctx,
        { ...key, dataDir: ctx.dataDir },
        `${config.name} (${key.id})\npublic key: ${JSON.stringify(key.publicJwk)}` +
          (out === undefined ? `\nSave it with --out ${config.name}.pub and send that file.` : `\nwrote ${out}`),
      );
      return EXIT.ok;
    },
  },

  start: {
    summary: 'run the node: load a module file, listen and/or join a proxy',
    usage:
      'wtd start <module file> [--port 14153] [--host 127.0.0.1] [--no-listen] [--proxy URL --email E] [--observer]',
    help: `Loads the classes the module file exports (their @WtdExport and @WtdBehaviour marks),
calls its exported start(node) if there is one (to start servers and supervisors),
listens for direct calls and, with --proxy, joins a proxy so that nodes behind routers
can call it. Prints what it offers and runs until Ctrl-C.
--observer serves a live page of the node on http://127.0.0.1:14154/ (this machine only).`,
    options: { ...START_OPTIONS, observer: { type: 'boolean' } },
    async run(ctx) {
      return startNode(ctx, ctx.values.observer === true);
    },
  },

  observer: {
    summary: 'run the node like start, with its live observer page on localhost',
    usage: 'wtd observer <module file> [start options] [--observer-port 14154]',
    help: `The same as 'wtd start <module file> --observer': the page shows the supervision tree,
every process with its mailbox and status, the missions offered, the grants with their use
and rate, and recent refusals, updating live. It answers on 127.0.0.1 only.`,
    options: START_OPTIONS,
    async run(ctx) {
      return startNode(ctx, true);
    },
  },

  proxy: {
    summary: 'run a proxy, where nodes behind home routers meet; list or remove its nodes',
    usage: 'wtd proxy [--port 14152] [--host 127.0.0.1] | wtd proxy nodes | wtd proxy remove <id|email>',
    help: `Starts a proxy: nodes register, ping it with what they offer, and it relays their signed
calls. Its registrations and queues are kept in <data dir>/proxy. Use --host 0.0.0.0 to
serve other machines. The status page is at its URL. Runs until Ctrl-C.
'wtd proxy nodes' lists the registered nodes (e-mail, where they registered from, last seen,
messages waiting); 'wtd proxy remove <id|email>' removes one with its queue, which frees its
e-mail for another key (an id that starts with '-' goes after '--': wtd proxy remove -- -x1y2). Both work while the proxy runs (it drops a removed node within a second).`,
    options: { port: { type: 'string' }, host: { type: 'string' } },
    async run(ctx) {
      const [sub, ...args] = ctx.positionals;
      if (sub === 'nodes') return proxyNodes(ctx);
      if (sub === 'remove') return proxyRemove(ctx, args);
      if (sub !== undefined) throw new UsageError(`wtd proxy takes 'nodes' or 'remove <id|email>', not '${sub}'`);
      const port = portOption(ctx.values.port, 14152);
      ctx.io.err('starting the proxy…');
      const proxy = await WtdProxy.start({
        dataDir: join(ctx.dataDir, 'proxy'),
        port,
        host: (ctx.values.host as string | undefined) ?? '127.0.0.1',
      });
      output(
        ctx,
        { url: proxy.url, id: proxy.id },
        `proxy ${proxy.id} listening at ${proxy.url} (status page: ${proxy.url}/). Ctrl-C stops it.`,
      );
      return runUntilStopped(ctx, () => proxy.close());
    },
  },

  grant: {
    summary: 'grant missions to a friend: to their public key, or as a grant file',
    usage:
      'wtd grant --missions a,b --rate 10/s [--burst N] [--expires 7d] [--label bob] (--to bob.pub | --out bob.grant)',
    help: `--to bob.pub grants to Bob's own key (the safer way: his private key never moves).
--out bob.grant makes a new key for Bob and writes it with your node's address into a
grant file: give it to him privately, whoever holds it can use the grant.
The rate is calls per s, min, h or d; --burst defaults to the count.`,
    options: {
      missions: { type: 'string' },
      rate: { type: 'string' },
      burst: { type: 'string' },
      expires: { type: 'string' },
      label: { type: 'string' },
      to: { type: 'string' },
      out: { type: 'string' },
    },
    async run(ctx) {
      const v = ctx.values;
      if (typeof v.missions !== 'string') throw new UsageError('--missions is required, e.g. --missions greetings');
      if (typeof v.rate !== 'string') throw new UsageError('--rate is required, e.g. --rate 10/s');
      if ((v.to === undefined) === (v.out === undefined)) {
        throw new UsageError('give either --to <their key file> or --out <grant file>');
      }
      const burst = v.burst === undefined ? undefined : Number(v.burst);
      if (burst !== undefined && !(Number.isInteger(burst) && burst >= 1)) {
        throw new UsageError(`--burst takes a whole number >= 1, got '${String(v.burst)}'`);
      }
      let rate;
      try {
        rate = parseRate(v.rate, burst);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const options = {
        missions: v.missions.split(',').map((m) => m.trim()),
        rate,
        ...(v.expires === undefined ? {} : { expires: parseDuration(v.expires as string) }),
        ...(v.label === undefined ? {} : { label: v.label as string }),
      };
      let to: JWK | undefined;
      if (typeof v.to === 'string') {
        const key = readJsonFile(v.to, 'the key file') as { publicJwk?: JWK } & JWK;
        to = key.publicJwk ?? key;
      }
      await withNode(ctx, async (node, config) => {
        if (to === undefined && !config.address && !config.proxy) {
          throw new UsageError(
            "this node has not run yet, so a grant file could not say where to reach it: run 'wtd start' once " +
              '(it records its address and proxy), then grant again; or grant to their key with --to',
          );
        }
        if (to !== undefined) {
          const record = await node.grant({ ...options, to });
          output(
            ctx,
            record,
            `Granted ${record.missions.join(', ')} at ${v.rate} to key ${record.kid.slice(0, 12)}` +
              `${record.label ? ` (${record.label})` : ''}. Revoke it with 'wtd revoke ${revokeArg(record.kid)}'.`,
          );
        } else {
          const file = await node.grant(options);
          writeFileSync(v.out as string, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
          chmodSync(v.out as string, 0o600);
          const where = file.node.address ?? file.node.proxy;
          output(
            ctx,
            { kid: file.kid, missions: file.missions, file: v.out, address: file.node.address, proxy: file.node.proxy },
            `Wrote ${String(v.out)}: ${file.missions.join(', ')} at ${v.rate}. Give it to your friend privately; ` +
              `whoever holds it can use the grant. It reaches this node ${file.node.address !== null ? `at ${file.node.address}` : `through the proxy at ${String(where)}`}.`,
          );
        }
      });
      return EXIT.ok;
    },
  },

  grants: {
    summary: 'list the grants this node made, with use counts and state',
    usage: 'wtd grants [--json]',
    help: 'Lists every grant: its id, label, missions, rate, uses, last use and state (active, revoked, expired).',
    options: {},
    async run(ctx) {
      const grants = await withNode(ctx, (node) => node.grants());
      if (ctx.json) {
        ctx.io.out(
          JSON.stringify(
            grants.map((g) => ({ ...g, state: grantState(g) })),
            null,
            2,
          ),
        );
        return EXIT.ok;
      }
      if (grants.length === 0) {
        ctx.io.out("No grants yet. Make one with 'wtd grant --missions ... --rate ... --out friend.grant'.");
        return EXIT.ok;
      }
      ctx.io.out(
        table([
          ['GRANT', 'LABEL', 'MISSIONS', 'RATE', 'USES', 'LAST USE', 'STATE'],
          ...grants.map((g) => [
            g.kid.slice(0, 12),
            g.label,
            g.missions.join(','),
            formatRate(g.rate),
            String(g.uses),
            when(g.lastUsedAt),
            grantState(g),
          ]),
        ]),
      );
      return EXIT.ok;
    },
  },

  revoke: {
    summary: 'revoke a grant at once (by id, id prefix or label)',
    usage: 'wtd revoke <grant>',
    help: 'Revokes the grant whose id starts with <grant>, or whose label is <grant>. The next request under it is refused, also on a running node.',
    options: {},
    async run(ctx) {
      const which = ctx.positionals[0];
      if (which === undefined) throw new UsageError('which grant? give its id (or the start of it) or its label');
      await withNode(ctx, (node) => {
        const grants = node.grants();
        const exact = grants.filter((g) => g.kid === which || g.label === which);
        const matches = exact.length > 0 ? exact : grants.filter((g) => which.length >= 4 && g.kid.startsWith(which));
        if (matches.length === 0) throw new NotFoundError(`no grant matches '${which}'; 'wtd grants' lists them`);
        if (matches.length > 1) {
          throw new UsageError(`'${which}' matches ${matches.length} grants; give more of the id`);
        }
        const g = matches[0]!;
        const already = g.revokedAt !== null;
        node.revoke(g.kid);
        output(
          ctx,
          { kid: g.kid, label: g.label, revoked: true, already },
          already
            ? `Grant ${g.kid.slice(0, 12)} was already revoked.`
            : `Revoked grant ${g.kid.slice(0, 12)}${g.label ? ` (${g.label})` : ''}.`,
        );
      });
      return EXIT.ok;
    },
  },

  directory: {
    summary: 'who is online at the proxy, and what they offer',
    usage: 'wtd directory [--proxy URL]',
    help: 'Lists the nodes online at the proxy (default: the one this node last joined) with their missions.',
    options: { proxy: { type: 'string' } },
    async run(ctx) {
      let url = ctx.values.proxy as string | undefined;
      if (url === undefined) {
        url = readConfig(ctx.dataDir).proxy ?? undefined;
        if (url === undefined || url === null) throw new UsageError('which proxy? give --proxy URL');
      }
      type Listed = { id: string; name: string; online: boolean; missions: string[]; address: string | null };
      // The proxy lists its nodes a page at a time: read the pages of those online.
      const online: Listed[] = [];
      for (let page = 1, pages = 1; page <= pages && page <= DIRECTORY_PAGES; page++) {
        const where = `${url.replace(/\/+$/, '')}/status.json?online=1&limit=1000&page=${page}`;
        const res = await send(where, '', 5000, { method: 'GET' }).catch((err) => {
          throw new NodeDownError(String(url), { cause: err }, 'proxy');
        });
        if (res.status !== 200)
          throw new WireError('ERR_BAD_PROXY', res.status, `the proxy at ${url} answered ${res.status}`);
        const status = JSON.parse(res.text) as { nodes: Listed[]; pages?: number };
        online.push(...status.nodes.filter((n) => n.online));
        pages = typeof status.pages === 'number' ? status.pages : 1;
      }
      if (ctx.json) {
        ctx.io.out(JSON.stringify(online, null, 2));
        return EXIT.ok;
      }
      if (online.length === 0) {
        ctx.io.out(`Nobody is online at ${url}.`);
        return EXIT.ok;
      }
      ctx.io.out(
        table([
          ['NAME', 'ID', 'MISSIONS', 'REACHABLE AT'],
          ...online.map((n) => [n.name, n.id, n.missions.join(',') || '-', n.address ?? 'through the proxy']),
        ]),
      );
      return EXIT.ok;
    },
  },

  call: {
    summary: 'try a call with a grant file',
    usage: `wtd call <grant file> <module> <function> [args as a JSON array] [--timeout ms] [--email E]`,
    help: `Calls <module>.<function>(...args) on the node that made the grant file, directly or through
its proxy, and prints the result as JSON. Example: wtd call bob.grant Greeter hello '["bob"]'`,
    options: { timeout: { type: 'string' }, email: { type: 'string' }, proxy: { type: 'string' } },
    async run(ctx) {
      const [file, module, fn, argsText] = ctx.positionals;
      if (file === undefined || module === undefined || fn === undefined) {
        throw new UsageError('give a grant file, a module and a function');
      }
      let args: unknown = [];
      if (argsText !== undefined) {
        try {
          args = JSON.parse(argsText);
        } catch {
          throw new UsageError(`the arguments must be a JSON array, e.g. '["bob", 2]'; got ${argsText}`);
        }
        if (!Array.isArray(args)) throw new UsageError(`the arguments must be a JSON array, e.g. '[${argsText}]'`);
      }
      const timeout = ctx.values.timeout === undefined ? 5000 : Number(ctx.values.timeout);
      if (!(timeout > 0)) throw new UsageError(`--timeout takes milliseconds, got '${String(ctx.values.timeout)}'`);
      const grant = readGrantFile(file);
      // The caller's identity is kept in the data directory: a grant is bound to the node that used it first.
      const callerDir = join(ctx.dataDir, 'caller');
      mkdirSync(callerDir, { recursive: true, mode: 0o700 });
      const node = await WtdNode.start({ name: 'wtd-call', dataDir: callerDir });
      try {
        const proxy = (ctx.values.proxy as string | undefined) ?? grant.node.proxy ?? null;
        if (grant.node.address === null && proxy !== null) {
          ctx.io.err(`joining the proxy at ${proxy}…`);
          await node.joinProxy({ url: proxy, email: (ctx.values.email as string | undefined) ?? 'wtd-call@localhost' });
        }
        const remote = await node.connect(grant);
        const result = await remote.call(module, fn, args as unknown[], { timeout });
        ctx.io.out(JSON.stringify(result, null, ctx.json ? 2 : undefined) ?? 'undefined');
      } finally {
        await node.close();
      }
      return EXIT.ok;
    },
  },
};

function portOption(value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`a port is 0-65535, got '${String(value)}'`);
  return port;
}

async function startNode(ctx: Ctx, withObserver: boolean): Promise<number> {
  const file = ctx.positionals[0];
  if (file === undefined) throw new UsageError('which module file? e.g. wtd start dist/samples/greeter.js');
  const v = ctx.values;
  const { node, config } = await openNode(ctx, false);
  let observer: Observer | undefined;
  try {
    const loaded = await loadModule(node, file);
    if (v['no-listen'] !== true) {
      const { address } = await node.listen({
        port: portOption(v.port, 14153),
        host: (v.host as string | undefined) ?? '127.0.0.1',
      });
      config.address = address;
    } else {
      config.address = null;
    }
    if (typeof v.proxy === 'string') {
      const email = (v.email as string | undefined) ?? config.email ?? undefined;
      if (email === undefined) throw new UsageError('joining a proxy needs --email (it is kept for next time)');
      ctx.io.err(`joining the proxy at ${v.proxy}…`);
      await node.joinProxy({ url: v.proxy, email });
      config.proxy = v.proxy;
      config.email = email;
    }
    writeConfig(ctx.dataDir, config);
    if (withObserver) observer = await Observer.start(node, { port: portOption(v['observer-port'], 14154) });
    const facts = {
      name: node.name,
      id: node.id,
      loaded,
      missions: node.missions.describe(),
      address: node.address ?? null,
      proxy: node.proxyUrl ?? null,
      observer: observer?.url ?? null,
    };
    output(
      ctx,
      facts,
      [
        `node ${node.name} (${node.id}) is running.`,
        `offers:\n${describeOffer(node)}`,
        node.address !== undefined ? `listening at ${node.address}` : 'not listening (no open port)',
        node.proxyUrl !== undefined ? `on the proxy at ${node.proxyUrl}` : undefined,
        observer !== undefined ? `observer: ${observer.url}` : undefined,
        "Grant missions from another terminal with 'wtd grant'. Ctrl-C stops the node.",
      ]
        .filter((l) => l !== undefined)
        .join('\n'),
    );
  } catch (err) {
    await observer?.close();
    await node.close();
    throw err;
  }
  return runUntilStopped(ctx, async () => {
    await observer?.close();
    await node.close();
  });
}

// ------------------------------------------------------------------ entry point

const VERSION = '0.1.0';

function mainHelp(): string {
  const names = Object.keys(commands);
  const width = Math.max(...names.map((n) => n.length));
  return [
    'wtd: run WTD nodes, grant missions to friends, call theirs.',
    '',
    'Usage: wtd <command> [options]     (wtd <command> --help for more)',
    '',
    ...names.map((n) => `  ${n.padEnd(width)}  ${commands[n]!.summary}`),
    '',
    'Every command takes --data-dir DIR (default $WTD_DATA or ~/.wtd), --json for scripts,',
    'and --debug to show stack traces.',
    'Exit codes: 0 ok, 1 failed or refused, 2 bad command line, 3 not found, 4 unreachable.',
  ].join('\n');
}

/** What to tell a person about an error: one line, and what to do next. */
function advice(err: unknown): { line: string; code: number } {
  if (err instanceof UsageError) return { line: err.message, code: EXIT.usage };
  if (err instanceof NotFoundError) return { line: err.message, code: EXIT.notFound };
  const e = err as WtdError & { retryAfterS?: number };
  const hints: Record<string, string> = {
    ERR_CALL_TIMEOUT: 'no answer in time: is the node running and online? try a longer --timeout',
    ERR_UNKNOWN_KEY: 'the node does not know this grant: check you have the right file and node',
    ERR_MISSION_NOT_GRANTED: 'the grant does not cover that: check the module and function names',
    ERR_RATE_LIMITED: `over the grant's rate: retry in ${e.retryAfterS ?? 1} s`,
    ERR_NO_ADDRESS: 'the grant file has no address: ask for one made after the node listened or joined a proxy',
    ERR_BAD_KEY: 'the key file is not a WTD public key: use the file `wtd whoami --out` writes',
    ERR_LISTEN: 'is another program using that port? pick another with --port',
    ERR_PROXY_NOT_REGISTERED: 'the proxy does not know this node: join it again',
    ERR_PROXY_QUEUE_FULL: 'the other node is not collecting its messages: try again later',
    ERR_PROXY_EXPIRED: 'the other node was offline for too long',
    ERR_PROXY_NOT_ACCEPTED: 'the other node does not accept this key: ask its owner for a grant',
    ERR_PROXY_SENDER_LIMIT: 'too much of yours waits at the proxy: try again once it has been collected',
    ERR_PROXY_FULL: "the proxy is full: try again later, or ask its operator ('wtd proxy nodes', 'wtd proxy remove')",
    ERR_PROXY_EMAIL_TAKEN:
      "another key has this e-mail at the proxy: use another --email, or ask its operator to 'wtd proxy remove' it",
    ERR_DATA_DIR_LOCKED: 'one data directory runs one node: stop the other, or use another --data-dir',
  };
  if (e instanceof WtdError) {
    const code = e.code === 'ERR_NODE_DOWN' || e.code === 'ERR_CALL_TIMEOUT' ? EXIT.unreachable : EXIT.failed;
    const hint = hints[e.code];
    return { line: `${e.message} [${e.code}]${hint === undefined ? '' : `: ${hint}`}`, code };
  }
  if (err instanceof SyntaxError || err instanceof TypeError || err instanceof RangeError) {
    return { line: err.message, code: EXIT.usage };
  }
  return { line: (err as Error)?.message ?? String(err), code: EXIT.failed };
}

/**
 * Runs the `wtd` command with `argv` (without `node` and the script) and
 * returns its exit code. Long-running commands return once `io.stop` resolves.
 */
export async function runWtd(argv: string[], given: CliIo): Promise<number> {
  // Names, missions, addresses and messages can come from other people's
  // nodes: no control character of theirs reaches the terminal.
  const io: CliIo = { ...given, out: (t) => given.out(printable(t)), err: (t) => given.err(printable(t)) };
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(mainHelp());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version') {
    io.out(VERSION);
    return EXIT.ok;
  }
  const command = commands[name];
  if (command === undefined) {
    io.err(`wtd: there is no command '${name}'. Run 'wtd --help' for the list.`);
    return EXIT.usage;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...COMMON, ...command.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    io.err(`wtd ${name}: ${(err as Error).message.split('\n')[0]}\nusage: ${command.usage}`);
    return EXIT.usage;
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help === true) {
    io.out(`usage: ${command.usage}\n\n${command.help}`);
    return EXIT.ok;
  }
  const ctx: Ctx = {
    io,
    values,
    positionals: parsed.positionals,
    json: values.json === true,
    dataDir: resolve((values['data-dir'] as string | undefined) ?? defaultDataDir(io.env)),
  };
  try {
    return await command.run(ctx);
  } catch (err) {
    const { line, code } = advice(err);
    io.err(`wtd ${name}: ${line}`);
    if (code === EXIT.usage && err instanceof UsageError) io.err(`usage: ${command.usage}`);
    if (values.debug === true) io.err((err as Error)?.stack ?? String(err));
    return code;
  }
}

/**
 * `text` with every control character but newline and tab shown as `\u{…}`
 * (C0, DEL and C1: escapes that set a terminal's title, colours or cursor).
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
}
