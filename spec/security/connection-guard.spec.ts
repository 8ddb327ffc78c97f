import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import {
  checkConnectionLimits,
  ConnectionGuard,
  DEFAULT_CONNECTION_LIMITS,
  sourceOf,
  type ConnectionLimits,
  type GuardReport,
} from '../../lib/security/connection-guard.js';
import { thrown } from '../fixtures/helpers.js';
import { closeConns, connect, connectMany, headers, statusLine, type Conn } from '../fixtures/sockets.js';

/**
 * A guarded server for these specs: `GET /` answers at once; a request to
 * `/hold/<name>` is announced (`request`, then `body` once its body is in)
 * and answered when the spec calls `release()`.
 */
async function guarded(limits: Partial<ConnectionLimits> = {}, host = '127.0.0.1') {
  const events = new EventEmitter();
  const held: ServerResponse[] = [];
  const reports: GuardReport[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    events.emit('request', req.url);
    req.on('error', () => {});
    req.resume();
    req.on('end', () => {
      if (req.url?.startsWith('/hold/')) {
        held.push(res);
        events.emit('body', req.url);
      } else if (req.url === '/big') {
        res.end(Buffer.alloc(32 * 1024 * 1024, 120));
        events.emit('written', req.url);
      } else res.end('ok');
    });
  };
  const guard = ConnectionGuard.serve(handler, { ...DEFAULT_CONNECTION_LIMITS, ...limits }, (r) => reports.push(r));
  await new Promise<void>((resolve) => guard.server.listen(0, host, resolve));
  const port = (guard.server.address() as AddressInfo).port;
  return {
    guard,
    port,
    reports,
    /** Resolves when the server has seen `event` ('request' or 'body') for `url`. */
    seen: (event: 'request' | 'body' | 'written', url: string) =>
      new Promise<void>((resolve) => {
        const look = (u: string): void => {
          if (u !== url) return;
          events.off(event, look);
          resolve();
        };
        events.on(event, look);
      }),
    release: () => held.splice(0).forEach((res) => res.end('released')),
    close: async () => {
      guard.server.closeAllConnections();
      await new Promise<void>((resolve) => guard.server.close(() => resolve()));
    },
  };
}

type Served = Awaited<ReturnType<typeof guarded>>;

/** Sends a whole held request on `conn` and waits until the server has its body: a request being answered. */
async function working(s: Served, conn: Conn, name: string): Promise<void> {
  const bodyIn = s.seen('body', `/hold/${name}`);
  conn.socket.write(`${headers(`/hold/${name}`, 2)}ok`);
  await bodyIn;
}

/** A GET from `localAddress`; resolves with the status line. */
async function get(port: number, localAddress: string): Promise<string> {
  const conn = await connect(port, localAddress);
  conn.socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  const line = await statusLine(conn);
  await closeConns([conn]);
  return line;
}

describe('sourceOf(address)', () => {
  it('names IPv4 as it is, IPv4-mapped IPv6 as its IPv4 address, IPv6 by its /64', () => {
    expect(sourceOf('127.0.0.2')).to.equal('127.0.0.2');
    expect(sourceOf('::ffff:127.0.0.2')).to.equal('127.0.0.2');
    expect(sourceOf('::FFFF:10.1.2.3')).to.equal('10.1.2.3');
    expect(sourceOf('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).to.equal('2001:db8:1:2::/64');
    expect(sourceOf('2001:0db8:0001:0002::1')).to.equal('2001:db8:1:2::/64');
    expect(sourceOf('2001:db8::1')).to.equal('2001:db8:0:0::/64');
    expect(sourceOf('::1')).to.equal('0:0:0:0::/64');
    expect(sourceOf('fe80::1%eth0')).to.equal('fe80:0:0:0::/64');
    expect(sourceOf('::a:b:c:1.2.3.4')).to.equal('0:0:0:a::/64');
    expect(sourceOf(undefined)).to.equal(undefined);
  });
});

describe('checkConnectionLimits(limits)', () => {
  it('throws a TypeError for a limit that is not a positive integer, or headers allowed longer than the request', () => {
    const limits = DEFAULT_CONNECTION_LIMITS;
    expect(thrown(() => checkConnectionLimits({ ...limits, maxConnections: 0 }))).to.be.instanceOf(TypeError);
    expect(thrown(() => checkConnectionLimits({ ...limits, idleTimeoutMs: 1.5 }))).to.be.instanceOf(TypeError);
    expect(thrown(() => checkConnectionLimits({ ...limits, maxConnectionsPerSource: undefined! }))).to.be.instanceOf(
      TypeError,
    );
    expect(thrown(() => checkConnectionLimits({ ...limits, headersTimeoutMs: 20_000 }))).to.be.instanceOf(TypeError);
    checkConnectionLimits(limits);
  });
});

describe('ConnectionGuard.serve(handler, limits, report)', function () {
  this.timeout(20_000);
  let s: Served;
  let conns: Conn[];
  beforeEach(() => {
    conns = [];
  });
  afterEach(async () => {
    await closeConns(conns);
    await s?.close();
  });

  it('refuses the 33rd connection from one address while another address still connects', async () => {
    s = await guarded();
    conns.push(...(await connectMany(s.port, 32, '127.0.0.2')));
    const extra = await connect(s.port, '127.0.0.2');
    conns.push(extra);
    expect(await extra.closed).to.equal(''); // closed with no answer
    expect(s.guard.open('127.0.0.2')).to.equal(32);
    expect(s.reports.map((r) => [r.action, r.reason, r.source])).to.deep.equal([['refused', 'source', '127.0.0.2']]);
    expect(await get(s.port, '127.0.0.3')).to.equal('HTTP/1.1 200 OK');
    expect(await get(s.port, '127.0.0.1')).to.equal('HTTP/1.1 200 OK');
  });

  it('counts an IPv4-mapped IPv6 connection against its IPv4 address', async () => {
    s = await guarded({ maxConnectionsPerSource: 2 }, '::');
    conns.push(...(await connectMany(s.port, 2, '127.0.0.2')));
    expect(s.guard.open('127.0.0.2')).to.equal(2);
    const extra = await connect(s.port, '127.0.0.2');
    conns.push(extra);
    await extra.closed;
    expect(s.reports.map((r) => r.source)).to.deep.equal(['127.0.0.2']);
  });

  it('when all connections are taken, closes the oldest idle one first, then one still sending its body, and only then refuses', async () => {
    s = await guarded({ maxConnections: 3 });
    const a = await connect(s.port, '127.0.0.1');
    await working(s, a, 'a');
    const b = await connect(s.port, '127.0.0.2');
    const bRequest = s.seen('request', '/hold/b');
    b.socket.write(`${headers('/hold/b', 10)}ok`); // 2 of 10 bytes: still sending
    await bRequest;
    const c = await connect(s.port, '127.0.0.3'); // sends nothing: idle
    conns.push(a, b, c);

    const d = await connect(s.port, '127.0.0.4');
    conns.push(d);
    await c.closed; // the idle one went, though b is older
    expect(s.guard.open()).to.equal(3);
    await working(s, d, 'd');

    const e = await connect(s.port, '127.0.0.5');
    conns.push(e);
    await b.closed; // no idle one left: the one still sending its body went
    await working(s, e, 'e');

    const f = await connect(s.port, '127.0.0.6');
    conns.push(f);
    expect(await f.closed).to.equal(''); // every connection is being answered: refused
    expect(s.reports.map((r) => [r.action, r.reason, r.source])).to.deep.equal([
      ['evicted', 'full', '127.0.0.2'],
      ['refused', 'full', '127.0.0.6'],
    ]);

    const answers = [a, d, e].map((x) => statusLine(x));
    s.release();
    expect(await Promise.all(answers)).to.deep.equal(Array(3).fill('HTTP/1.1 200 OK'));
  });

  it('when all connections are taken, a connection that does not read the answer written to it makes room', async () => {
    s = await guarded({ maxConnections: 1 });
    const reader = await connect(s.port, '127.0.0.2');
    conns.push(reader);
    reader.socket.pause(); // it never reads: the answer stays in the buffers, written but not taken
    const written = s.seen('written', '/big');
    reader.socket.write('GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await written;
    const newcomer = await connect(s.port, '127.0.0.3');
    conns.push(newcomer);
    await working(s, newcomer, 'n');
    expect(s.reports.map((r) => [r.action, r.reason, r.source])).to.deep.equal([['evicted', 'full', '127.0.0.2']]);
    expect(s.guard.open()).to.equal(1);
    reader.socket.resume(); // it reads what was left, then sees the close
    await reader.closed;
    s.release();
  });

  it('closes a connection that sends nothing, or only part of its headers, after the headers timeout', async () => {
    s = await guarded({ headersTimeoutMs: 200, requestTimeoutMs: 400 });
    const silent = await connect(s.port);
    const partial = await connect(s.port);
    partial.socket.write('PUT /hold/x HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    conns.push(silent, partial);
    expect(await silent.closed).to.match(/^HTTP\/1\.1 408 /);
    expect(await partial.closed).to.match(/^HTTP\/1\.1 408 /);
  });

  it('closes a connection that sends headers but not the body after the request timeout, and never cuts a request being answered', async () => {
    s = await guarded({ headersTimeoutMs: 100, requestTimeoutMs: 200 });
    const poll = await connect(s.port, '127.0.0.1');
    await working(s, poll, 'poll'); // its body is in: it waits for an answer, like a held poll
    const stalled = await connect(s.port);
    const stalledRequest = s.seen('request', '/hold/stalled');
    stalled.socket.write(headers('/hold/stalled', 10));
    conns.push(poll, stalled);
    await stalledRequest;
    expect(await stalled.closed).to.match(/^HTTP\/1\.1 408 /);
    // The held request outlived the request timeout, and is still answered.
    const answer = statusLine(poll);
    s.release();
    expect(await answer).to.equal('HTTP/1.1 200 OK');
  });

  it('closes a kept-alive connection idle for longer than the idle timeout', async () => {
    s = await guarded({ idleTimeoutMs: 100 });
    const conn = await connect(s.port, '127.0.0.1');
    conns.push(conn);
    conn.socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(await statusLine(conn)).to.equal('HTTP/1.1 200 OK');
    await conn.closed; // by the server: the spec never closes it
  });

  it('counts a connection again as idle once its answer is sent', async () => {
    s = await guarded({ maxConnections: 1 });
    const first = await connect(s.port, '127.0.0.1');
    conns.push(first);
    first.socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(await statusLine(first)).to.equal('HTTP/1.1 200 OK');
    const second = await connect(s.port, '127.0.0.2');
    conns.push(second);
    await first.closed; // kept alive but idle: it made room
    expect(s.guard.open()).to.equal(1);
    expect(s.reports).to.deep.equal([]);
  });
});
