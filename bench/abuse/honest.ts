/**
 * The honest side of every scenario, in the runner's process, on 127.0.0.1:
 * Bob, a real node joined to the proxy with his own grant from Alice,
 * calling her directly and through the proxy on kept-alive connections; a
 * newcomer calling her on a fresh connection each time; and Dave, a node
 * at the proxy, pinging on a fresh connection each time. Each path is tried
 * five times a second, open loop, each try with a 5 s timeout.
 */
import { WtdNode, type GrantFile, type RemoteNode } from '../../lib/index.js';
import {
  HONEST,
  RawHttp,
  RawProxyClient,
  encodeArgs,
  grantKey,
  RawSession,
  type RawKey,
  type RawResponse,
} from './wire.js';

/** How long an honest call may take before it counts as failed. */
const TIMEOUT_MS = 5000;
/** One try of one of the four paths every this many ms: five a second each. */
const TICK_MS = 50;

export const PATHS = ['direct', 'relayed', 'fresh-node', 'fresh-proxy'] as const;
export type PathName = (typeof PATHS)[number];

interface Try {
  path: PathName;
  ok: boolean;
  ms: number;
  why?: string;
}

/** Honest calls during an attack: how many went through, and how long the slowest took. */
export interface HonestStats {
  ok: number;
  total: number;
  p99Ms: number;
  paths: Record<string, { ok: number; total: number; p99Ms: number }>;
  /** Why the failed ones failed, by code. */
  failures: Record<string, number>;
  /** Lines Bob's node logged meanwhile (pings that timed out, ...): counted, not printed over the table. */
  bobLogLines: number;
}

export function p99(ms: number[]): number {
  if (ms.length === 0) return 0;
  const sorted = [...ms].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]! * 10) / 10;
}

export class Honest {
  readonly bob: WtdNode;
  readonly direct: RemoteNode;
  readonly relayed: RemoteNode;
  readonly #http = new RawHttp(HONEST);
  readonly #dave: RawProxyClient;
  readonly #key: RawKey;
  #session: Promise<RawSession> | undefined;
  readonly #node: { url: string; id: string };
  readonly #log: { lines: number };
  #logAtBegin = 0;
  #tries: Try[] = [];
  #inFlight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;

  private constructor(
    bob: WtdNode,
    direct: RemoteNode,
    relayed: RemoteNode,
    dave: RawProxyClient,
    grant: GrantFile,
    node: { url: string; id: string },
    log: { lines: number },
  ) {
    this.#log = log;
    this.bob = bob;
    this.direct = direct;
    this.relayed = relayed;
    this.#dave = dave;
    this.#key = grantKey(grant);
    this.#node = node;
  }

  /** Bob joins the proxy and connects to Alice both ways; Dave registers; one try of each path must work. */
  static async start(
    node: { url: string; id: string },
    proxy: { url: string; id: string },
    grant: GrantFile,
  ): Promise<Honest> {
    const log = { lines: 0 };
    const logger = { error: () => void log.lines++ };
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger });
    try {
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org' });
      const direct = await bob.connect(grant, { via: 'direct' });
      const relayed = await bob.connect(grant, { via: 'proxy' });
      const http = new RawHttp(HONEST);
      const { client: dave, res } = await RawProxyClient.register(http, proxy, 'dave@example.org', 'dave');
      http.close();
      if (res.status !== 200) throw new Error(`Dave could not register: ${res.status} ${res.text}`);
      const honest = new Honest(bob, direct, relayed, dave, grant, node, log);
      for (const path of PATHS) {
        const t = await honest.#try(path);
        if (!t.ok) throw new Error(`the honest ${path} path does not work before any attack: ${t.why}`);
      }
      return honest;
    } catch (err) {
      await bob.close();
      throw err;
    }
  }

  /** Starts trying every path, five times a second each, until {@link stop}. */
  begin(): void {
    this.#tries = [];
    this.#logAtBegin = this.#log.lines;
    let i = 0;
    this.#timer = setInterval(() => {
      const path = PATHS[i++ % PATHS.length]!;
      const p: Promise<void> = this.#try(path).then((t) => {
        this.#tries.push(t);
        this.#inFlight.delete(p);
      });
      this.#inFlight.add(p);
    }, TICK_MS);
  }

  /** Stops trying; resolves once the tries in flight have ended, with what they found. */
  async stop(): Promise<HonestStats> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all([...this.#inFlight]);
    const tries = this.#tries;
    const failures: Record<string, number> = {};
    for (const t of tries) if (!t.ok) failures[t.why ?? '?'] = (failures[t.why ?? '?'] ?? 0) + 1;
    const paths: HonestStats['paths'] = {};
    for (const path of PATHS) {
      const mine = tries.filter((t) => t.path === path);
      paths[path] = { ok: mine.filter((t) => t.ok).length, total: mine.length, p99Ms: p99(mine.map((t) => t.ms)) };
    }
    return {
      ok: tries.filter((t) => t.ok).length,
      total: tries.length,
      p99Ms: p99(tries.map((t) => t.ms)),
      paths,
      failures,
      bobLogLines: this.#log.lines - this.#logAtBegin,
    };
  }

  /**
   * `n` relayed calls, 32 at a time: brings a fresh proxy's write-ahead log
   * to its working size, so that its disk before an attack is that of a
   * proxy that has been running, not of an empty file.
   */
  async warm(n: number): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next++ < n) await this.relayed.call('Greeter', 'hello', ['bob'], { timeout: TIMEOUT_MS });
      }),
    );
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#http.close();
    await this.bob.close();
  }

  async #try(path: PathName): Promise<Try> {
    const started = performance.now();
    const done = (ok: boolean, why?: string): Try => ({ path, ok, ms: performance.now() - started, why });
    try {
      switch (path) {
        case 'direct':
        case 'relayed': {
          const remote = path === 'direct' ? this.direct : this.relayed;
          const r = await remote.call('Greeter', 'hello', ['bob'], { timeout: TIMEOUT_MS });
          return done(typeof r === 'string');
        }
        case 'fresh-node': {
          // A newcomer's session is made once; each call then goes on a fresh connection.
          this.#session ??= RawSession.open(this.#http, this.#node, this.#key, this.bob.id, {
            fresh: true,
            timeoutMs: TIMEOUT_MS,
          });
          const session = await this.#session.catch((err: unknown) => {
            this.#session = undefined;
            throw err;
          });
          const { res, reply } = await session.call(this.#http, '/apply/Greeter/hello', encodeArgs(['newcomer']), {
            fresh: true,
            timeoutMs: TIMEOUT_MS,
          });
          return typeof reply?.ok === 'string' ? done(true) : done(false, reply?.error ?? why(res));
        }
        case 'fresh-proxy': {
          const res = await this.#dave.ping(
            { name: 'dave' },
            { fresh: true, timeoutMs: TIMEOUT_MS, discardBody: true },
          );
          return res.status === 200 ? done(true) : done(false, why(res));
        }
      }
    } catch (err) {
      return done(false, (err as { code?: string }).code ?? (err as Error).message);
    }
  }
}

function why(res: RawResponse): string {
  return res.failure ?? res.code ?? `HTTP ${res.status}`;
}
