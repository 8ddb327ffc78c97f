import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Supervisor } from '../behaviours/supervisor.js';
import { WtdError } from '../errors.js';
import { missionTable } from '../missions/mission-table.js';
import { systemWallClock } from '../runtime/clock.js';
import { LogThrottle } from '../runtime/log-throttle.js';
import type { Node } from '../runtime/node.js';
import type { Pid } from '../runtime/pid.js';
import { ConnectionGuard, type ConnectionLimits } from '../security/connection-guard.js';
import { isUsable } from '../security/grants.js';
import { WtdNode } from '../transport/wtd-node.js';
import { formatRate } from './command.js';
import { observerPage } from './observer-page.js';

/**
 * One process as the observer shows it.
 *
 * @example
 * ```ts
 * for (const p of (await observer.snapshot()).processes) console.log(p.pid, p.name, p.status, p.queue);
 * ```
 */
export interface ObservedProcess {
  pid: string;
  name: string | null;
  status: string;
  /** Messages waiting in its mailbox. */
  queue: number;
  behaviour: string | null;
  module: string | null;
  links: string[];
}

/**
 * A node of the supervision tree.
 *
 * @example
 * ```ts
 * const print = (t: TreeNode, depth = 0): void => {
 *   console.log(`${' '.repeat(depth * 2)}${t.id ?? t.name} ${t.pid}`);
 *   t.children.forEach((c) => print(c, depth + 1));
 * };
 * (await observer.snapshot()).tree.forEach((t) => print(t));
 * ```
 */
export interface TreeNode {
  pid: string;
  id: string | null;
  name: string | null;
  module: string | null;
  /** `'supervisor'`, `'worker'`, or `'restarting'` for a child waiting to be restarted. */
  kind: string;
  children: TreeNode[];
}

/**
 * Everything the observer page shows, as `GET /observer.json` returns it.
 *
 * @example
 * ```ts
 * const snapshot: ObserverSnapshot = await observer.snapshot();
 * snapshot.processes.filter((p) => p.queue > 100); // processes falling behind
 * ```
 */
export interface ObserverSnapshot {
  at: number;
  /** `encryption`: false when the node runs with encryption off (its requests travel in the clear). */
  node: { name: string; id: string | null; address: string | null; proxy: string | null; encryption: boolean };
  tree: TreeNode[];
  processes: ObservedProcess[];
  missions: Record<string, { functions: string[]; behaviours: string[] }>;
  grants: {
    kid: string;
    label: string;
    missions: string[];
    rate: string;
    uses: number;
    lastUsedAt: number | null;
    state: 'active' | 'revoked' | 'expired';
    tokens: number | null;
    /** Messages waiting for the grantee's pids, and dropped because its outbox was full. */
    outbox: { queued: number; dropped: number };
  }[];
  /** The last refusals, newest first: where each came from, and the label of the grant it came under, if one of this node's. */
  refusals: {
    at: number;
    code: string;
    status: number;
    path: string;
    message: string;
    source: string;
    grant: string | null;
  }[];
}

const LOOPBACK_HOST = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/;

/**
 * The observer's connection bounds: it serves one owner's browser tabs on
 * this machine, so few connections, all from loopback.
 */
const OBSERVER_CONNECTIONS: ConnectionLimits = {
  maxConnections: 32,
  maxConnectionsPerSource: 32,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 5_000,
};

/**
 * A live page of one running node, for its owner: the supervision tree,
 * every process with its status and mailbox, the missions offered, the
 * grants with their use and rate, and recent refusals. It listens on
 * 127.0.0.1 only and answers only requests addressed to a loopback name,
 * so no other machine (nor a web page that rebinds a name to 127.0.0.1)
 * can read it.
 *
 * @example
 * ```ts
 * const observer = await Observer.start(alice, { port: 14154 });
 * console.log(`open ${observer.url}`); // http://127.0.0.1:14154/
 * ```
 */
export class Observer {
  readonly #node: Node;
  readonly #server: Server;
  readonly #log: LogThrottle;
  readonly url: string;

  private constructor(node: Node, server: Server, log: LogThrottle, url: string) {
    this.#node = node;
    this.#server = server;
    this.#log = log;
    this.url = url;
  }

  /** Serves the page of `node` on 127.0.0.1 (default port 14154; 0 picks a free one). */
  static async start(node: Node, options: { port?: number } = {}): Promise<Observer> {
    // Loaded when an observer starts: wtd's index exports this class, and a
    // node that is never observed has no use for Koa.
    const [{ default: Koa }, { default: Router }] = await Promise.all([import('koa'), import('@koa/router')]);
    const app = new Koa();
    // Paths match exactly as written: /Nodes/x/PING is not /nodes/x/ping.
    const router = new Router({ sensitive: true, strict: true });
    app.silent = true;
    // The routes answer once the observer exists (it needs the server it serves from).
    const self: { observer?: Observer } = {};
    const log = new LogThrottle(node.logger, node instanceof WtdNode ? node.wallClock : systemWallClock);
    app.use(async (ctx, next) => {
      if (!LOOPBACK_HOST.test(ctx.get('host'))) {
        ctx.status = 403;
        ctx.body = { error: { code: 'ERR_NOT_LOCAL', message: 'the observer answers on this machine only' } };
        return;
      }
      try {
        await next();
      } catch (err) {
        log.error('internal', `observer: ${ctx.path} failed`, err);
        ctx.status = 500;
        ctx.body = { error: { code: 'ERR_INTERNAL', message: 'the observer failed to answer' } };
      }
    });
    router.get('/', (ctx) => {
      ctx.type = 'text/html; charset=utf-8';
      // No other site may frame the page (clickjacking).
      ctx.set(
        'Content-Security-Policy',
        "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'",
      );
      ctx.set('X-Frame-Options', 'DENY');
      ctx.body = observerPage();
    });
    router.get('/observer.json', async (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = await self.observer!.snapshot();
    });
    app.use(router.routes());
    const server = ConnectionGuard.serve(app.callback(), OBSERVER_CONNECTIONS, (r) =>
      log.line('connection', `observer: ${r.message}`),
    ).server;
    const port = options.port ?? 14154;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new WtdError('ERR_LISTEN', `the observer could not listen on 127.0.0.1:${port}: ${err.message}`, {
            cause: err,
          }),
        ),
      );
      server.listen(port, '127.0.0.1', () => resolve());
    });
    self.observer = new Observer(node, server, log, `http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    return self.observer;
  }

  /** What the page shows, now. */
  async snapshot(): Promise<ObserverSnapshot> {
    const node = this.#node;
    const infos = node.processes().flatMap((pid) => {
      const info = node.processInfo(pid);
      return info === undefined ? [] : [info];
    });
    const processes: ObservedProcess[] = infos.map((i) => ({
      pid: String(i.pid),
      name: i.name ?? null,
      status: i.status,
      queue: i.messageQueueLength,
      behaviour: i.behaviour ?? null,
      module: i.module ?? null,
      links: i.links.map(String),
    }));
    const byPid = new Map(infos.map((i) => [String(i.pid), i]));
    const supervised = new Set<string>();
    const childrenOf = new Map<string, TreeNode[]>();
    for (const sup of infos.filter((i) => i.behaviour === 'supervisor')) {
      const children = await Promise.race([
        Supervisor.whichChildren(sup.pid).catch(() => []),
        new Promise<[]>((resolve) => setTimeout(() => resolve([]), 500)),
      ]);
      childrenOf.set(
        String(sup.pid),
        children.map((c) => {
          const pid = typeof c.pid === 'object' ? String(c.pid as Pid) : '';
          if (pid !== '') supervised.add(pid);
          const info = byPid.get(pid);
          return {
            pid,
            id: c.id,
            name: info?.name ?? null,
            module: info?.module ?? null,
            kind: c.pid === 'restarting' ? 'restarting' : c.pid === undefined ? 'stopped' : c.type,
            children: [],
          };
        }),
      );
    }
    const attach = (t: TreeNode): TreeNode => ({ ...t, children: (childrenOf.get(t.pid) ?? []).map(attach) });
    const tree = infos
      .filter((i) => i.behaviour === 'supervisor' && !supervised.has(String(i.pid)))
      .map((i) =>
        attach({
          pid: String(i.pid),
          id: null,
          name: i.name ?? null,
          module: i.module ?? null,
          kind: 'supervisor',
          children: [],
        }),
      );
    const wtd = node instanceof WtdNode ? node : undefined;
    const now = wtd?.wallClock.now() ?? Date.now();
    const outboxes = wtd?.outboxStats() ?? {};
    const grants = wtd?.grants() ?? [];
    return {
      at: now,
      node: {
        name: node.name,
        id: wtd?.id ?? null,
        address: wtd?.address ?? null,
        proxy: wtd?.proxyUrl ?? null,
        encryption: wtd?.sessionStats().encryption ?? true,
      },
      tree,
      processes,
      missions: Object.fromEntries(
        Object.entries(missionTable(node).catalogue()).map(([m, c]) => [
          m,
          {
            functions: c.functions,
            behaviours: c.behaviours.map((b) => `${b.module} (${b.kind}: ${b.ops.join(', ') || 'nothing'})`),
          },
        ]),
      ),
      grants: grants.map((g) => ({
        outbox: { queued: outboxes[g.kid]?.queued ?? 0, dropped: outboxes[g.kid]?.dropped ?? 0 },
        kid: g.kid,
        label: g.label,
        missions: g.missions,
        rate: formatRate(g.rate),
        uses: g.uses,
        lastUsedAt: g.lastUsedAt,
        state: g.revokedAt !== null ? 'revoked' : isUsable(g, now) ? 'active' : 'expired',
        tokens: wtd?.rateState(g.kid)?.tokens ?? null,
      })),
      refusals: (wtd?.recentRefusals().slice(-20).reverse() ?? []).map((r) => {
        const grant = r.kid === null ? undefined : grants.find((g) => g.kid === r.kid);
        return {
          at: r.at,
          code: r.code,
          status: r.status,
          path: r.path,
          message: r.message,
          source: r.source,
          grant: grant === undefined ? null : grant.label || grant.kid.slice(0, 12),
        };
      }),
    };
  }

  /** Stops serving the page. */
  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#log.flush();
  }
}
