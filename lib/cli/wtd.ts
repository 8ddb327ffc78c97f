import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CommandError, NodeDownError, WireError, WtdError } from '../errors.js';
import { WtdProxy } from '../proxy/proxy.js';
import { ProxyStore } from '../proxy/store.js';
import type { GrantRecord } from '../security/grant-store.js';
import { isUsable } from '../security/grants.js';
import { parseRate } from '../security/rate-limiter.js';
import { publicKeyOf } from '../transport/contact-card.js';
import { send } from '../transport/http-client.js';
import { WtdNode } from '../transport/wtd-node.js';
import { didYouMean, parseCommandLine } from './args.js';
import { call, checkUrl } from './call.js';
import {
  COMMON,
  EXIT,
  NotFoundError,
  UsageError,
  defaultDataDir,
  describeCatalogue,
  either,
  formatRate,
  openNode,
  output,
  readConfig,
  readJsonFile,
  table,
  when,
  withNode,
  writeConfig,
  type CliIo,
  type Command,
  type Ctx,
  type NodeConfig,
} from './command.js';
import { checkModuleFile, loadModule } from './load-module.js';
import { missions } from './missions.js';
import { cliReference } from './reference.js';
import { Observer } from './observer.js';
import { hinted, humanReport, jsonReport, report } from './report.js';
import { ownVersion, scaffold } from './scaffold.js';

export { EXIT, type CliIo } from './command.js';

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

/** Mission names, as the node's mission table takes them. */
const MISSION = /^[a-z][a-z0-9_]{0,63}$/;

/** `7d`, `12h`, `30m`, `45s` → ms. */
function parseDuration(text: string): number {
  const m = /^(\d+)\s*(s|m|h|d)$/.exec(text.trim());
  if (m === null) throw new UsageError(`--expires takes a duration like 30m, 12h or 7d, got '${text}'`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/** A grant id prefix as a command-line argument (ids may start with '-', which would read as a flag). */
function revokeArg(kid: string): string {
  return `${kid.startsWith('-') ? '-- ' : ''}${kid.slice(0, 12)}`;
}

function grantState(g: GrantRecord): string {
  return g.revokedAt !== null ? 'revoked' : isUsable(g, Date.now()) ? 'active' : 'expired';
}

async function runUntilStopped(ctx: Ctx, close: () => Promise<void>): Promise<number> {
  await ctx.io.stop;
  ctx.io.err('stopping…');
  await close();
  return EXIT.ok;
}

/** Refuses a grant of missions the node did not offer when it last started (`ERR_UNKNOWN_MISSION`). */
function checkOffered(config: NodeConfig, wanted: string[]): void {
  if (config.offer === undefined) {
    throw new CommandError(
      'ERR_UNKNOWN_MISSION',
      `${config.name} has not started yet, so it is not known whether it offers ${either(wanted)}`,
      { hint: "'wtd start <module file>' once records what it offers; --allow-unknown grants anyway" },
    );
  }
  const offered = Object.keys(config.offer);
  const unknown = wanted.filter((m) => !offered.includes(m));
  if (unknown.length === 0) return;
  throw new CommandError(
    'ERR_UNKNOWN_MISSION',
    `${config.name} does not offer ${unknown.length === 1 ? 'the mission' : 'the missions'} ` +
      `${unknown.map((m) => `${m}${didYouMean(m, offered)}`).join(', ')}`,
    {
      hint:
        offered.length === 0
          ? 'it offered no missions when it last started; --allow-unknown grants anyway'
          : `it offers ${either(offered)} ('wtd missions' says what each covers); --allow-unknown grants anyway`,
    },
  );
}

/** What the granted missions covered when the node last started, for the grantee's messages. */
function coveredBy(config: NodeConfig, wanted: string[]): NodeConfig['offer'] {
  if (config.offer === undefined) return undefined;
  return Object.fromEntries(wanted.flatMap((m) => (config.offer![m] === undefined ? [] : [[m, config.offer![m]!]])));
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
    args: { min: 0, max: 0 },
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
          `Next: 'wtd whoami --out ${name}.card' writes the card to send a friend; 'wtd start <module file>' runs the node.`,
      );
      return EXIT.ok;
    },
  },

  whoami: {
    summary: "print this node's contact card: its name, id, public key and where it is reached",
    usage: 'wtd whoami [--out alice.card]',
    help: `Prints the node's contact card: its name, id, public key, and the address and proxy it
was last reached at. Nothing in it is secret. --out writes it to a file to send a friend:
they grant you missions with 'wtd grant --to <your card>', and you call them with
'wtd call --to <their card>'.`,
    options: { out: { type: 'string' } },
    args: { min: 0, max: 0 },
    async run(ctx) {
      const card = await withNode(ctx, (node) => node.card());
      const out = ctx.values.out as string | undefined;
      if (out !== undefined) writeFileSync(out, `${JSON.stringify(card, null, 2)}\n`);
      output(
        ctx,
        { ...card, dataDir: ctx.dataDir, ...(out === undefined ? {} : { file: out }) },
        [
          `${card.name} (${card.id})`,
          `public key: ${JSON.stringify(card.publicJwk)}`,
          `reached at: ${card.address ?? (card.proxy === null ? 'nowhere yet (wtd start records it)' : `the proxy ${card.proxy}`)}`,
          out === undefined
            ? `Write it to a file to send with --out ${card.name}.card.`
            : `Wrote ${out}: send it to whoever grants you missions (nothing in it is secret).`,
        ].join('\n'),
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
can call it. Prints what it offers and runs until Ctrl-C. The module is JavaScript: compile
TypeScript first (npx tsc) and give the .js file it writes.
--observer serves a live page of the node on http://127.0.0.1:14154/ (this machine only).`,
    options: { ...START_OPTIONS, observer: { type: 'boolean' } },
    args: { min: 1, max: 1 },
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
    args: { min: 1, max: 1 },
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
    summary: 'grant missions to a friend: to their card (or key), or as a grant file',
    usage:
      'wtd grant --missions a,b --rate 10/s [--burst N] [--expires 7d] [--label bob] (--to bob.card | --out bob.grant)',
    help: `--to bob.card grants to Bob's own key (the safer way: his private key never moves), read from
the card 'wtd whoami --out' writes on his side; then send him yours, and he calls with 'wtd call --to'.
--out bob.grant makes a new key for Bob and writes it with your node's address into a
grant file: give it to him privately, whoever holds it can use the grant.
The rate is calls per s, min, h or d; --burst defaults to the count.
The missions must be ones the node offered when it last started ('wtd missions' lists them);
--allow-unknown grants others on purpose (a module not loaded yet).`,
    options: {
      missions: { type: 'string' },
      rate: { type: 'string' },
      burst: { type: 'string' },
      expires: { type: 'string' },
      label: { type: 'string' },
      to: { type: 'string' },
      out: { type: 'string' },
      'allow-unknown': { type: 'boolean' },
    },
    args: { min: 0, max: 0 },
    async run(ctx) {
      const v = ctx.values;
      if (typeof v.missions !== 'string') throw new UsageError('--missions is required, e.g. --missions greetings');
      if (typeof v.rate !== 'string') throw new UsageError('--rate is required, e.g. --rate 10/s');
      if ((v.to === undefined) === (v.out === undefined)) {
        throw new UsageError('give either --to <their card> or --out <grant file>');
      }
      const wanted = v.missions
        .split(',')
        .map((m) => m.trim())
        .filter((m) => m !== '');
      const bad = wanted.find((m) => !MISSION.test(m));
      if (wanted.length === 0 || bad !== undefined) {
        throw new UsageError(
          `--missions takes mission names (lowercase letters, digits and '_', starting with a letter), got '${bad ?? v.missions}'`,
        );
      }
      const burst = v.burst === undefined ? undefined : Number(v.burst);
      if (burst !== undefined && !(Number.isInteger(burst) && burst >= 1)) {
        throw new UsageError(`--burst takes a whole number >= 1, got '${String(v.burst)}'`);
      }
      let rate;
      try {
        rate = parseRate(v.rate, burst);
      } catch (err) {
        throw new UsageError(`--rate: ${(err as Error).message}`);
      }
      let to: { name?: string; publicJwk: unknown } | undefined;
      if (typeof v.to === 'string') {
        const given = readJsonFile(v.to, 'the card') as { wtd?: unknown; name?: unknown };
        if (given?.wtd === 'grant') throw new UsageError(`${v.to} is a grant file, not a card: --to takes a card`);
        try {
          to = { name: typeof given?.name === 'string' ? given.name : undefined, publicJwk: publicKeyOf(given) };
        } catch (err) {
          throw hinted(err as Error, "give the card 'wtd whoami --out <file>' writes on their side");
        }
      }
      const label = (v.label as string | undefined) ?? to?.name;
      const options = {
        missions: wanted,
        rate,
        ...(v.expires === undefined ? {} : { expires: parseDuration(v.expires as string) }),
        ...(label === undefined ? {} : { label }),
      };
      await withNode(ctx, async (node, config) => {
        if (to === undefined && !config.address && !config.proxy) {
          throw new UsageError(
            'this node has not run yet, so a grant file could not say where to reach it',
            "run 'wtd start' once (it records its address and proxy), then grant again; or grant to their card with --to",
          );
        }
        if (v['allow-unknown'] !== true) checkOffered(config, wanted);
        if (to !== undefined) {
          const record = await node.grant({ ...options, to: to.publicJwk as never });
          const card = `${config.name}.card`;
          const given = ctx.values['data-dir'] as string | undefined;
          const dir = given === undefined ? '' : ` --data-dir ${given}`;
          const them = record.label || 'your friend';
          output(
            ctx,
            {
              ...record,
              next: [
                `wtd whoami --out ${card}${dir}`,
                `wtd call --to ${card} --key-dir <their data dir> <module> <function> [args]`,
              ],
            },
            [
              `Granted ${record.missions.join(', ')} at ${v.rate} to ${them}'s key ${record.kid.slice(0, 12)}. ` +
                `Revoke it with 'wtd revoke ${revokeArg(record.kid)}'.`,
              `Now send ${them} your card (nothing in it is secret): wtd whoami --out ${card}${dir}`,
              `With it, ${them} calls: wtd call --to ${card} --key-dir <their data dir> <module> <function> [args]`,
            ].join('\n'),
          );
        } else {
          const file = { ...(await node.grant(options)), covers: coveredBy(config, wanted) };
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
    args: { min: 0, max: 0 },
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
    args: { min: 1, max: 1 },
    async run(ctx) {
      const which = ctx.positionals[0]!;
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
    args: { min: 0, max: 0 },
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

  call,
  missions,
  new: scaffold,
};

function portOption(value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`a port is 0-65535, got '${String(value)}'`);
  return port;
}

async function startNode(ctx: Ctx, withObserver: boolean): Promise<number> {
  const file = ctx.positionals[0]!;
  checkModuleFile(file);
  const v = ctx.values;
  const port = portOption(v.port, 14153);
  const observerPort = portOption(v['observer-port'], 14154);
  if (typeof v.proxy === 'string') checkUrl(v.proxy, '--proxy');
  if (typeof v.email === 'string' && !v.email.includes('@')) {
    throw new UsageError(`--email takes an e-mail address, got '${v.email}'`);
  }
  const { node, config } = await openNode(ctx, false);
  let observer: Observer | undefined;
  try {
    const loaded = await loadModule(node, file);
    if (v['no-listen'] !== true) {
      const { address } = await node
        .listen({ port, host: (v.host as string | undefined) ?? '127.0.0.1' })
        .catch((err: unknown) => {
          throw listenHint(err, '--port');
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
    const offer = node.missions.catalogue();
    config.offer = offer;
    config.offeredAt = Date.now();
    writeConfig(ctx.dataDir, config);
    if (withObserver) {
      observer = await Observer.start(node, { port: observerPort }).catch((err: unknown) => {
        throw listenHint(err, '--observer-port');
      });
    }
    const facts = {
      name: node.name,
      id: node.id,
      loaded,
      missions: offer,
      address: node.address ?? null,
      proxy: node.proxyUrl ?? null,
      observer: observer?.url ?? null,
    };
    output(
      ctx,
      facts,
      [
        `node ${node.name} (${node.id}) is running.`,
        `offers:\n${describeCatalogue(offer)}`,
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

/** An `ERR_LISTEN` with the flag that picks another port. */
function listenHint(err: unknown, flag: string): unknown {
  if (err instanceof WtdError && err.code === 'ERR_LISTEN') {
    return hinted(err, `another program has that port: pick another with ${flag} (0 takes any free one)`);
  }
  return err;
}

// ------------------------------------------------------------------ entry point

/** Every command, by name: what `wtd --help` lists and the CLI reference documents. */
export const COMMANDS: Readonly<Record<string, Command>> = commands;

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
    'Every command takes --data-dir DIR (default $WTD_DATA or ~/.wtd), --json for scripts',
    '(errors too: {"error": {"code", "message", "hint", "exit"}} on stdout), and --debug',
    'to show stack traces.',
    'Exit codes: 0 ok, 1 failed or refused, 2 bad command line, 3 not found, 4 unreachable,',
    '130 stopped by Ctrl-C.',
    "'wtd help <command>' is 'wtd <command> --help'; 'wtd help --markdown' prints them all.",
  ].join('\n');
}

/** The help of one command, as `wtd <command> --help` prints it. */
export function commandHelp(name: string): string {
  const command = commands[name]!;
  return `usage: ${command.usage}\n\n${command.help}`;
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
  if (name === undefined || name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    io.out(mainHelp());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version') {
    io.out(ownVersion());
    return EXIT.ok;
  }
  if (name === 'help' && rest[0] === '--markdown') {
    io.out(cliReference(commands, mainHelp()));
    return EXIT.ok;
  }
  if (name === 'help') return runWtd([rest[0]!, '--help'], given);
  const json = rest.includes('--json');
  const debug = rest.includes('--debug');
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (command === undefined) {
    return fail(
      io,
      '',
      new UsageError(
        `there is no command '${name}'${didYouMean(name, Object.keys(commands))}`,
        "'wtd --help' lists them",
      ),
      json,
      debug,
    );
  }
  let ctx: Ctx;
  try {
    const { values, positionals } = parseCommandLine(name, rest, { ...COMMON, ...command.options }, command.args);
    if (values.help === true) {
      io.out(commandHelp(name));
      return EXIT.ok;
    }
    ctx = {
      io,
      name,
      values,
      positionals,
      json: values.json === true,
      dataDir: resolve((values['data-dir'] as string | undefined) ?? defaultDataDir(io.env)),
    };
  } catch (err) {
    return fail(io, name, err, json, debug, true);
  }
  try {
    return await command.run(ctx);
  } catch (err) {
    return fail(io, name, err, json, debug);
  }
}

/**
 * Reports a failure of command `name` ('' for none) and returns its exit
 * code; `usage` adds the command's usage line (for a command line that
 * could not be read).
 */
function fail(io: CliIo, name: string, err: unknown, json: boolean, debug: boolean, usage = false): number {
  const r = report(err);
  if (r.code === 'ERR_LISTEN' && r.hint === undefined && name === 'proxy') {
    r.hint = 'another program has that port: pick another with --port (0 takes any free one)';
  }
  if (json) {
    io.out(jsonReport(r));
  } else {
    for (const line of humanReport(name, r)) io.err(line);
    if (usage && name !== '') io.err(`usage: ${commands[name]!.usage}`);
  }
  if (debug) io.err((err as Error)?.stack ?? String(err));
  return r.exit;
}

/**
 * `text` with every control character but newline and tab shown as `\u{…}`
 * (C0, DEL and C1: escapes that set a terminal's title, colours or cursor).
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
}
