/**
 * Remote calls over loopback: signed WTD calls against the same work through
 * an unsigned plain Koa JSON endpoint (the floor) and, where `erl` is on the
 * PATH, Erlang distribution (`rpc:call` between two local nodes); relayed
 * calls against direct ones; calls in sessions (encrypted, the default)
 * against calls each signed in the clear (encryption off), direct and
 * relayed; the raw Ed25519 rate. Each kind runs once per
 * pair, in turns (the order flips from one pair to the next), and every row
 * is a paired median (bench/paired.ts). Besides rates and latencies, the CPU
 * time per call: what a call costs, whatever else the machine is doing.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import Koa from 'koa';
import { WtdExport, WtdNode, systemWallClock } from '../lib/index.js';
import { newKeyPair } from '../lib/security/keys.js';
import { put } from '../lib/transport/http-client.js';
import { newClaims } from '../lib/wire/claims.js';
import { sign, verify } from '../lib/wire/envelope.js';
import type { ErlangDist } from './erlang-dist.js';
import { pairedRow, type Row } from './paired.js';
import { cpuMicrosOf, Lines, ownCpuMicros, start, stop } from './processes.js';

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
  /** CPU time per call, in µs, of every process the call runs through (undefined if one cannot be read). */
  cpu: number | undefined;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Runs `call` n times at concurrency 1 (latencies) and at 64 (rate); `cpu`
 * reads the CPU time (µs) of the processes involved, before and after.
 */
async function measure(call: () => Promise<unknown>, n: number, cpu: () => number | undefined): Promise<Figures> {
  for (let i = 0; i < 200; i++) await call(); // warm-up
  const cpu0 = cpu();
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
  const cpu1 = cpu();
  return {
    c1,
    c64,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    cpu: cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / (2 * n),
  };
}

/**
 * Alice exports the echo and grants it to Bob; `join` connects them (listen,
 * or a proxy). Both are in this process, so its CPU time is caller's and
 * callee's together; `extraCpu` adds what other processes the call crosses.
 */
async function echoPair(
  n: number,
  join: (alice: WtdNode, bob: WtdNode) => Promise<void>,
  extraCpu: () => number | undefined = () => 0,
  encryption = true,
  stream = true,
  busyWaitMs?: number,
): Promise<Figures> {
  // With encryption off, every request is signed (Ed25519) and in the clear: the way before sessions.
  const logger = { error: () => undefined };
  const wait = busyWaitMs === undefined ? {} : { busyWaitMs };
  const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', encryption, logger, ...wait });
  const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', encryption, logger, ...wait });
  try {
    alice.load(BenchEcho);
    await join(alice, bob);
    const grant = await alice.grant({ missions: ['bench'], rate: { count: 1e9, intervalMs: 1000, burst: 1e9 } });
    const remote = await bob.connect(grant, { stream });
    const payload = { n: 42, text: 'hello' };
    return await measure(
      () => remote.call('BenchEcho', 'echo', [payload]),
      n,
      () => {
        const extra = extraCpu();
        return extra === undefined ? undefined : ownCpuMicros() + extra;
      },
    );
  } finally {
    await bob.close();
    await alice.close();
  }
}

/**
 * Calls straight to Alice's address: in a session (the default), or each
 * signed (encryption off); lone calls on a stream (the default), or each
 * an HTTP request of its own (`stream` false).
 */
function signed(n: number, encryption = true, stream = true): Promise<Figures> {
  return echoPair(
    n,
    async (alice) => {
      await alice.listen({ port: 0 });
    },
    () => 0,
    encryption,
    stream,
  );
}

/**
 * The same calls relayed through a proxy, which runs in its own process (on
 * a real network it is another machine), against direct calls in this run.
 * Its CPU time counts in the calls'. With `busyWaitMs`, the nodes' and the
 * proxy's (0: none of them busy-waits; by default they do, 0.5 ms).
 */
async function relayed(n: number, encryption = true, busyWaitMs?: number): Promise<Figures> {
  const args = [new URL('./proxy-process.js', import.meta.url).pathname];
  if (busyWaitMs !== undefined) args.push(String(busyWaitMs));
  const child: ChildProcess = start(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const url = await new Lines('proxy', child).next(30_000);
    return await echoPair(
      n,
      async (alice, bob) => {
        await alice.joinProxy({ url, email: 'alice@example.org' });
        await bob.joinProxy({ url, email: 'bob@example.org' });
      },
      () => cpuMicrosOf(child.pid!),
      encryption,
      true,
      busyWaitMs,
    );
  } finally {
    await stop(child);
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
    return await measure(
      async () => {
        const res = await put(url, JSON.stringify([payload]), 5000, 'application/json');
        return (JSON.parse(res.text) as { ok: unknown }).ok;
      },
      n,
      ownCpuMicros,
    );
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

/** What one pair measured, by kind. */
interface Round {
  floor: Figures;
  direct: Figures;
  relay: Figures;
  /** Encryption off: every request signed, in the clear, directly and relayed. */
  plainDirect: Figures;
  plainRelay: Figures;
  /** Relayed with no busy wait, in the nodes or the proxy. */
  restingRelay: Figures;
  /** In the session, each lone call an HTTP request of its own (no stream). */
  httpDirect: Figures;
  ed: { wtd: number; raw: number };
  erlang?: Figures;
}

/** `pairs` rounds of `calls` calls of each kind; with `erlang`, its rows too. */
export async function runRemote(calls: number, pairs: number, erlang?: ErlangDist): Promise<Row[]> {
  const rounds: Round[] = [];
  for (let i = 0; i < pairs; i++) {
    const r: Partial<Round> = {};
    const kinds: (() => Promise<void>)[] = [
      async () => void (r.floor = await unsigned(calls)),
      async () => void (r.direct = await signed(calls)),
      async () => void (r.relay = await relayed(calls)),
      async () => void (r.plainDirect = await signed(calls, false)),
      async () => void (r.httpDirect = await signed(calls, true, false)),
      async () => void (r.plainRelay = await relayed(calls, false)),
      async () => void (r.restingRelay = await relayed(calls, true, 0)),
      async () => void (r.ed = await ed25519(calls)),
    ];
    if (erlang !== undefined) kinds.push(async () => void (r.erlang = await erlang.rpc(calls)));
    // Every other round the other way round, so that no kind always follows the same one.
    for (const kind of i % 2 === 0 ? kinds : [...kinds].reverse()) await kind();
    rounds.push(r as Round);
  }
  const rows: Row[] = [];
  const add = (
    name: string,
    unit: string,
    peer: string,
    higherIsBetter: boolean,
    pick: (r: Round) => { value: number | undefined; peerValue: number | undefined },
  ): void => {
    const samples = rounds.map(pick);
    if (samples.some((s) => s.value === undefined || s.peerValue === undefined)) {
      console.log(`  ${name} vs ${peer}: skipped (CPU time of another process cannot be read here)`);
      return;
    }
    rows.push(pairedRow(name, unit, peer, higherIsBetter, samples as { value: number; peerValue: number }[]));
  };
  const versus = (peer: string, of: (r: Round) => Figures): void => {
    add('remote_call_c1', 'calls/s', peer, true, (r) => ({ value: r.direct.c1, peerValue: of(r).c1 }));
    add('remote_call_c64', 'calls/s', peer, true, (r) => ({ value: r.direct.c64, peerValue: of(r).c64 }));
    add('remote_call_p50', 'ms', peer, false, (r) => ({ value: r.direct.p50, peerValue: of(r).p50 }));
    add('remote_call_p99', 'ms', peer, false, (r) => ({ value: r.direct.p99, peerValue: of(r).p99 }));
    add('remote_call_cpu', 'µs CPU/call', peer, false, (r) => ({ value: r.direct.cpu, peerValue: of(r).cpu }));
  };
  versus('unsigned-koa-json', (r) => r.floor);
  if (erlang !== undefined) versus(erlang.name, (r) => r.erlang!);
  // Lone calls on a stream against each an HTTP request of its own (in the session both).
  add('remote_call_p50', 'ms', 'http-each-call', false, (r) => ({ value: r.direct.p50, peerValue: r.httpDirect.p50 }));
  add('remote_call_c64', 'calls/s', 'http-each-call', true, (r) => ({
    value: r.direct.c64,
    peerValue: r.httpDirect.c64,
  }));
  add('remote_call_cpu', 'µs CPU/call', 'http-each-call', false, (r) => ({
    value: r.direct.cpu,
    peerValue: r.httpDirect.cpu,
  }));
  // Sessions against every request signed (Ed25519 both ways, encryption off).
  add('remote_call_c64', 'calls/s', 'signed-each-request', true, (r) => ({
    value: r.direct.c64,
    peerValue: r.plainDirect.c64,
  }));
  add('remote_call_cpu', 'µs CPU/call', 'signed-each-request', false, (r) => ({
    value: r.direct.cpu,
    peerValue: r.plainDirect.cpu,
  }));
  add('ed25519', 'sign+verify/s', 'node-crypto-raw', true, (r) => ({ value: r.ed.wtd, peerValue: r.ed.raw }));
  add('relay_call_c64', 'calls/s', 'direct-call', true, (r) => ({ value: r.relay.c64, peerValue: r.direct.c64 }));
  add('relay_call_p50', 'ms', 'direct-call', false, (r) => ({ value: r.relay.p50, peerValue: r.direct.p50 }));
  add('relay_call_p99', 'ms', 'direct-call', false, (r) => ({ value: r.relay.p99, peerValue: r.direct.p99 }));
  add('relay_call_cpu', 'µs CPU/call', 'direct-call', false, (r) => ({
    value: r.relay.cpu,
    peerValue: r.direct.cpu,
  }));
  // Relayed, encrypted end to end against relayed in the clear (encryption off).
  add('relay_call_c64', 'calls/s', 'relay-in-the-clear', true, (r) => ({
    value: r.relay.c64,
    peerValue: r.plainRelay.c64,
  }));
  add('relay_call_p50', 'ms', 'relay-in-the-clear', false, (r) => ({
    value: r.relay.p50,
    peerValue: r.plainRelay.p50,
  }));
  // Busy waiting (the default) against none: what it saves of a relayed call's time, and what it costs of the CPU.
  add('relay_call_p50', 'ms', 'relay-no-busy-wait', false, (r) => ({
    value: r.relay.p50,
    peerValue: r.restingRelay.p50,
  }));
  add('relay_call_cpu', 'µs CPU/call', 'relay-no-busy-wait', false, (r) => ({
    value: r.relay.cpu,
    peerValue: r.restingRelay.cpu,
  }));
  return rows;
}
