/**
 * Remote calls over loopback: signed WTD calls against the same work through
 * an unsigned plain Koa JSON endpoint (the floor), and the raw Ed25519 rate.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import Koa from 'koa';
import { WtdExport, WtdNode, systemWallClock } from '../lib/index.js';
import { newKeyPair } from '../lib/security/keys.js';
import { put } from '../lib/transport/http-client.js';
import { newClaims } from '../lib/wire/claims.js';
import { sign, verify } from '../lib/wire/envelope.js';
import type { Row } from './figures.js';

class BenchEcho {
  @WtdExport('bench')
  static echo(x: unknown): unknown {
    return x;
  }
}

interface Figures {
  c1: number;
  c64: number;
  p50: number;
  p99: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `call` n times at concurrency 1 (latencies) and at 64 (rate). */
async function measure(call: () => Promise<unknown>, n: number): Promise<Figures> {
  for (let i = 0; i < 200; i++) await call(); // warm-up
  const latencies: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await call();
    latencies.push(performance.now() - s);
  }
  const c1 = n / ((performance.now() - t0) / 1000);
  latencies.sort((a, b) => a - b);
  let next = 0;
  const t1 = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next++ < n) await call();
    }),
  );
  const c64 = n / ((performance.now() - t1) / 1000);
  return { c1, c64, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/** Alice exports the echo and grants it to Bob; `join` connects them (listen, or a proxy). */
async function echoPair(n: number, join: (alice: WtdNode, bob: WtdNode) => Promise<void>): Promise<Figures> {
  const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:' });
  const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
  try {
    alice.load(BenchEcho);
    await join(alice, bob);
    const grant = await alice.grant({ missions: ['bench'], rate: { count: 1e9, intervalMs: 1000, burst: 1e9 } });
    const remote = await bob.connect(grant);
    const payload = { n: 42, text: 'hello' };
    return await measure(() => remote.call('BenchEcho', 'echo', [payload]), n);
  } finally {
    await bob.close();
    await alice.close();
  }
}

/** Signed calls straight to Alice's address. */
function signed(n: number): Promise<Figures> {
  return echoPair(n, async (alice) => {
    await alice.listen({ port: 0 });
  });
}

/**
 * The same calls relayed through a proxy, which runs in its own process (on
 * a real network it is another machine), against direct calls in this run.
 */
async function relayed(n: number): Promise<Figures> {
  const child = spawn(process.execPath, [new URL('./proxy-process.js', import.meta.url).pathname], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.once('error', reject);
      child.stdout.once('data', (d: Buffer) => resolve(String(d).trim()));
    });
    return await echoPair(n, async (alice, bob) => {
      await alice.joinProxy({ url, email: 'alice@example.org' });
      await bob.joinProxy({ url, email: 'bob@example.org' });
    });
  } finally {
    child.kill('SIGTERM');
  }
}

/** The floor: the same echo as a plain, unsigned Koa JSON endpoint. */
async function unsigned(n: number): Promise<Figures> {
  const app = new Koa();
  app.use(async (ctx) => {
    const chunks: Buffer[] = [];
    for await (const c of ctx.req) chunks.push(c as Buffer);
    const args = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown[];
    ctx.type = 'application/json';
    ctx.body = JSON.stringify({ ok: BenchEcho.echo(args[0]) });
  });
  const server: Server = createServer(app.callback());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/apply/BenchEcho/echo`;
  const payload = { n: 42, text: 'hello' };
  try {
    // The same HTTP client as WTD's, so the difference is the signing and the checks.
    return await measure(async () => {
      const res = await put(url, JSON.stringify([payload]), 5000, 'application/json');
      return (JSON.parse(res.text) as { ok: unknown }).ok;
    }, n);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/** Sign + verify of a call-sized message: through WTD's envelope (libsodium when it loads) and raw node:crypto. */
async function ed25519(n: number): Promise<{ wtd: number; raw: number }> {
  const pair = await newKeyPair();
  const claims = newClaims<'call'>(systemWallClock, {
    aud: 'a',
    iss: 'b',
    method: 'PUT',
    path: '/apply/M/f',
    body: { json: [1] },
  });
  let t0 = performance.now();
  for (let i = 0; i < n; i++) await verify(await sign('call', claims, pair.privateKey, 'k'), pair.publicKey);
  const wtd = n / ((performance.now() - t0) / 1000);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const data = Buffer.from(JSON.stringify(claims));
  t0 = performance.now();
  for (let i = 0; i < n; i++) cryptoVerify(null, data, publicKey, cryptoSign(null, data, privateKey));
  const raw = n / ((performance.now() - t0) / 1000);
  return { wtd, raw };
}

/** The best of each figure over `runs` (rates highest, latencies lowest), as the local rows are. */
function best(all: Figures[]): Figures {
  return {
    c1: Math.max(...all.map((f) => f.c1)),
    c64: Math.max(...all.map((f) => f.c64)),
    p50: Math.min(...all.map((f) => f.p50)),
    p99: Math.min(...all.map((f) => f.p99)),
  };
}

export async function runRemote(calls: number, runs = 3): Promise<Row[]> {
  // Interleaved, so that a noisy moment of the machine does not fall on one side only.
  const floors: Figures[] = [];
  const direct: Figures[] = [];
  const relays: Figures[] = [];
  for (let i = 0; i < runs; i++) {
    floors.push(await unsigned(calls));
    direct.push(await signed(calls));
    relays.push(await relayed(calls));
  }
  const floor = best(floors);
  const wtd = best(direct);
  const relay = best(relays);
  const ed = await ed25519(calls);
  const row = (
    name: string,
    unit: string,
    value: number,
    peer: string,
    peerValue: number,
    higherIsBetter: boolean,
  ): Row => ({
    name,
    unit,
    value,
    peer,
    peerValue,
    ratio: higherIsBetter ? value / peerValue : peerValue / value,
  });
  return [
    row('remote_call_c1', 'calls/s', wtd.c1, 'unsigned-koa-json', floor.c1, true),
    row('remote_call_c64', 'calls/s', wtd.c64, 'unsigned-koa-json', floor.c64, true),
    row('remote_call_p50', 'ms', wtd.p50, 'unsigned-koa-json', floor.p50, false),
    row('remote_call_p99', 'ms', wtd.p99, 'unsigned-koa-json', floor.p99, false),
    row('ed25519', 'sign+verify/s', ed.wtd, 'node-crypto-raw', ed.raw, true),
    row('relay_call_c64', 'calls/s', relay.c64, 'direct-call', wtd.c64, true),
    row('relay_call_p50', 'ms', relay.p50, 'direct-call', wtd.p50, false),
    row('relay_call_p99', 'ms', relay.p99, 'direct-call', wtd.p99, false),
  ];
}
