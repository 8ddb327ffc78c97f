import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { expect } from 'chai';
import {
  CallTimeoutError,
  ManualClock,
  MaybeRanError,
  RemoteError,
  WireError,
  type RemoteNode,
} from '../../lib/index.js';
import { ConnectionGuard, DEFAULT_CONNECTION_LIMITS } from '../../lib/security/connection-guard.js';
import { STREAM_IN_FLIGHT, StreamLink, StreamServer } from '../../lib/transport/call-stream.js';
import type { HttpResponse } from '../../lib/transport/http-client.js';
import { WireCodec } from '../../lib/wire/codec.js';
import { newClaims } from '../../lib/wire/claims.js';
import { readSessionHeader, SESSION_TYP } from '../../lib/wire/session.js';
import { flush, rejection } from '../fixtures/helpers.js';
import { Probe, probeRuns, signRaw, withTwoNodes } from '../fixtures/remote.js';
import { handMade, type HandMade } from '../fixtures/sessions.js';
import { connect, type Conn } from '../fixtures/sockets.js';

const codec = new WireCodec();

/** Resolves once what `conn` received satisfies `done` (checked as each chunk arrives), or once it closed. */
function until(conn: Conn, done: (text: string) => boolean): Promise<string> {
  if (done(conn.received())) return Promise.resolve(conn.received());
  return new Promise((resolve) => {
    const check = (): void => {
      if (!done(conn.received())) return;
      conn.socket.off('data', check);
      resolve(conn.received());
    };
    conn.socket.on('data', check);
    void conn.closed.then(() => resolve(conn.received()));
  });
}

/** The lines received after the 101 answer. */
function linesOf(text: string): string[] {
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  return body.split('\n').filter((l) => l.length > 0);
}

/** A raw connection from `from` upgraded to a call stream at `port`, once the node said 101. */
async function rawStream(port: number, from = '127.0.0.2', head = ''): Promise<Conn> {
  const conn = await connect(port, from);
  conn.socket.write(
    `PUT /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: wtd-calls\r\nContent-Length: 0\r\n\r\n${head}`,
  );
  await until(conn, (t) => t.includes('\r\n\r\n'));
  expect(conn.received()).to.match(/^HTTP\/1\.1 101 /);
  return conn;
}

/** A line's answer: status, type and body. */
function answerOf(line: string): { tag: string; status: number; type: string; body: string } {
  const [tag, status, , type] = line.split(' ', 4) as [string, string, string, string];
  const body = line.split(' ').slice(4).join(' ');
  return { tag, status: Number(status), type, body };
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

describe('Call streams: the node runs each line as the same request over HTTP', () => {
  const nodes = withTwoNodes();
  let s: HandMade;
  beforeEach(async () => {
    s = await handMade(nodes.alice.address!, nodes.alice.id, nodes.grant, nodes.bob.id, nodes.clock);
  });
  const sealed = (path: string, args: unknown[]) => s.seal(path, codec.encode(args));

  it('a call sealed in a session, sent as a line, is answered with its status and a reply sealed in the session', async () => {
    const conn = await rawStream(portOf(nodes.alice.address!));
    const { text, seq } = sealed('/apply/Probe/touch', ['on a stream']);
    conn.socket.write(`7 /apply/Probe/touch ${text}\n`);
    const [line] = linesOf(await until(conn, (t) => linesOf(t).length === 1));
    const answer = answerOf(line!);
    expect([answer.tag, answer.status, answer.type]).to.deep.equal(['7', 200, 'application/jose']);
    const reply = s.session.openReply(seq, readSessionHeader(answer.body, SESSION_TYP.reply), answer.body);
    expect(codec.decode((reply.body as { ok: never }).ok)).to.equal('on a stream');
    expect(probeRuns.count).to.equal(1);
    expect(nodes.alice.sessionStats().streams).to.equal(1);
    conn.socket.destroy();
  });

  it('each line passes every check of its request before any user code: refused with the same codes, line by line', async () => {
    const conn = await rawStream(portOf(nodes.alice.address!));
    const claims = newClaims<'call'>(nodes.clock, {
      aud: nodes.alice.id,
      iss: nodes.bob.id,
      method: 'PUT',
      path: '/apply/Probe/touch',
      body: codec.encode([1]),
    });
    const signedText = await signRaw(
      nodes.grant.privateJwk,
      { typ: 'wtd-call+jws', kid: nodes.grant.kid },
      claims as never,
    );
    const other = sealed('/apply/Probe/touch', [2]);
    const secret = sealed('/apply/Probe/secret', []);
    const once = sealed('/apply/Probe/touch', [3]);
    conn.socket.write(
      [
        `1 /apply/Probe/touch ${signedText}`, // signed, not sealed: no downgrade on a stream either
        `2 /pid/1 ${other.text}`, // not a call
        `3 /apply/Probe/fail ${other.text}`, // sealed for another path
        `4 /apply/Probe/secret ${secret.text}`, // a mission the grant does not name
        `5 /apply/Probe/touch ${once.text}`,
        `6 /apply/Probe/touch ${once.text}`, // the same sealed request again: answered, not run again
        '',
      ].join('\n'),
    );
    const lines = linesOf(await until(conn, (t) => linesOf(t).length === 6));
    const byTag = new Map(lines.map((l) => [answerOf(l).tag, answerOf(l)]));
    const codeOf = (tag: string): string | undefined =>
      (JSON.parse(byTag.get(tag)!.body) as { error?: { code: string } }).error?.code;
    expect([codeOf('1'), codeOf('2'), codeOf('3'), codeOf('4')]).to.deep.equal([
      'ERR_SESSION_REQUIRED',
      'ERR_BAD_REQUEST',
      'ERR_WRONG_PATH',
      'ERR_MISSION_NOT_GRANTED',
    ]);
    expect([byTag.get('5')!.status, byTag.get('6')!.status]).to.deep.equal([200, 200]);
    expect(byTag.get('6')!.body).to.equal(byTag.get('5')!.body);
    expect(probeRuns.count).to.equal(1);
    conn.socket.destroy();
  });

  it('a line that is not <tag> <path> <message>, or longer than the body limit, ends the stream; nothing runs', async () => {
    const port = portOf(nodes.alice.address!);
    const { text } = sealed('/apply/Probe/touch', [1]);
    const bad = await rawStream(port);
    bad.socket.write(`x7 /apply/Probe/touch ${text}\n`);
    expect(linesOf(await bad.closed)).to.deep.equal([]);
    const long = await rawStream(port);
    long.socket.write(`8 /apply/Probe/touch ${'a'.repeat(70 * 1024)}`);
    expect(linesOf(await long.closed)).to.deep.equal([]);
    expect(probeRuns.count).to.equal(0);
  });

  it('an upgrade to another path or protocol is refused with a code, and closed', async () => {
    const port = portOf(nodes.alice.address!);
    const refusal = async (request: string): Promise<string> => {
      const conn = await connect(port);
      conn.socket.write(request);
      const text = await conn.closed;
      return (JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { error: { code: string } }).error.code;
    };
    const upgrade = (path: string, protocol: string) =>
      `PUT ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${protocol}\r\nContent-Length: 0\r\n\r\n`;
    expect(await refusal(upgrade('/apply/Probe/touch', 'wtd-calls'))).to.equal('ERR_NOT_FOUND');
    expect(await refusal(upgrade('/stream', 'websocket'))).to.equal('ERR_BAD_REQUEST');
  });

  it('a stream with no call running says bye after the idle time, on the node’s clock; a call running holds it open', async () => {
    const conn = await rawStream(portOf(nodes.alice.address!));
    let open!: () => void;
    Probe.gate = new Promise<void>((resolve) => (open = resolve));
    conn.socket.write(`1 /apply/Probe/slow ${sealed('/apply/Probe/slow', []).text}\n`);
    await Probe.atGate(1);
    nodes.clock.advance(DEFAULT_CONNECTION_LIMITS.idleTimeoutMs + 1);
    await flush();
    expect(conn.socket.destroyed).to.equal(false);
    open();
    expect(answerOf(linesOf(await until(conn, (t) => linesOf(t).length === 1))[0]!).status).to.equal(200);
    nodes.clock.advance(DEFAULT_CONNECTION_LIMITS.idleTimeoutMs + 1);
    expect(linesOf(await conn.closed)).to.include('bye');
  });

  it(`runs at most ${STREAM_IN_FLIGHT} calls of a stream at once: the rest wait unread, and none is refused for room`, async () => {
    const conn = await rawStream(portOf(nodes.alice.address!));
    let open!: () => void;
    Probe.gate = new Promise<void>((resolve) => (open = resolve));
    const n = STREAM_IN_FLIGHT + 8;
    const lines: string[] = [];
    for (let i = 1; i <= n; i++) lines.push(`${i} /apply/Probe/slow ${sealed('/apply/Probe/slow', []).text}\n`);
    conn.socket.write(lines.join(''));
    // The grant runs 8 at once and holds the rest of the 64 in its queue, which is full then: more read would be refused.
    await Probe.atGate(8);
    await flush(20);
    open();
    const answers = linesOf(await until(conn, (t) => linesOf(t).length === n)).map(answerOf);
    expect(answers.map((a) => a.status)).to.deep.equal(answers.map(() => 200));
    expect(probeRuns.count).to.equal(n);
    conn.socket.destroy();
  });
});

describe('Call streams: a caller’s lone calls travel on one stream per node', () => {
  const nodes = withTwoNodes();

  it('after the first call, calls go on a stream that every connection of the caller to that node shares', async () => {
    const a = await nodes.bob.connect(nodes.grant);
    const b = await nodes.bob.connect(nodes.grant);
    expect(await a.call('Probe', 'touch', ['first'])).to.equal('first');
    for (let i = 0; i < 5; i++) expect(await a.call('Probe', 'touch', [i])).to.equal(i);
    for (let i = 0; i < 5; i++) expect(await b.call('Probe', 'touch', [i])).to.equal(i);
    expect(nodes.alice.sessionStats().streams).to.equal(1);
    expect(nodes.alice.grants()[0]!.uses).to.equal(11);
  });

  it('refusals and failures read the same on a stream as over HTTP: class and code', async () => {
    const outcomes = async (remote: RemoteNode): Promise<string[]> => {
      await remote.call('Probe', 'touch', [0]);
      const errs = [
        await rejection(remote.call('Probe', 'fail')),
        await rejection(remote.call('Probe', 'secret')),
        await rejection(remote.call('Probe', 'nothing')),
      ];
      return errs.map((e: WireError) => `${e.constructor.name} ${e.code}`);
    };
    const streamed = await nodes.bob.connect(nodes.grant);
    const overHttp = await nodes.bob.connect(nodes.grant, { stream: false });
    const http = await outcomes(overHttp);
    const stream = await outcomes(streamed);
    expect(nodes.alice.sessionStats().streams).to.equal(1);
    expect(stream).to.deep.equal(http);
    expect(stream[0]).to.equal(`${RemoteError.name} ERR_REMOTE_EXCEPTION`);
  });

  it('with stream: false, no stream is opened', async () => {
    const remote = await nodes.bob.connect(nodes.grant, { stream: false });
    for (let i = 0; i < 3; i++) await remote.call('Probe', 'touch', [i]);
    expect(nodes.alice.sessionStats().streams).to.equal(0);
  });
});

/** What a fake node does with the first line of a stream. */
type Mode = 'bye' | 'drop' | 'garbage' | 'silent' | 'refuse';

/** A fake node: answers HTTP with `{ via: 'http' }`, and streams as `mode` says. */
async function fakeNode(
  mode: Mode,
): Promise<{ url: string; upgrades: number; http: string[]; ended: Promise<void>; close(): void }> {
  const state = { upgrades: 0, http: [] as string[] };
  let ended!: () => void;
  const streamEnded = new Promise<void>((r) => (ended = r));
  const server: Server = createServer((req, res) => {
    if (req.headers.upgrade !== undefined) {
      res.writeHead(404).end();
      return;
    }
    state.http.push(req.url!);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ via: 'http' }));
    });
  });
  if (mode !== 'refuse') {
    server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
      state.upgrades++;
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: wtd-calls\r\n\r\n');
      socket.on('error', () => {});
      socket.on('end', () => ended());
      socket.on('data', () => {
        if (mode === 'bye') socket.end('bye\n');
        else if (mode === 'drop') socket.destroy();
        else if (mode === 'garbage') socket.write('this is no answer\n');
      });
    });
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get upgrades() {
      return state.upgrades;
    },
    http: state.http,
    ended: streamEnded,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe('Call streams: what the caller makes of a stream that fails', () => {
  const text = 'h..i.c.t'; // a session message's shape: the fake node does not open it
  let clock: ManualClock;
  let fake: Awaited<ReturnType<typeof fakeNode>> | undefined;
  let link: StreamLink | undefined;
  beforeEach(() => {
    clock = new ManualClock(Date.now());
  });
  afterEach(() => {
    link?.close();
    fake?.close();
  });

  /** A link to a fake node in `mode`, its stream open. */
  async function streaming(mode: Mode): Promise<StreamLink> {
    fake = await fakeNode(mode);
    link = new StreamLink(fake.url, { clock });
    const first = await link.request('/apply/M/f', text, 5000);
    expect(JSON.parse(first.text)).to.deep.equal({ via: 'http' }); // the first goes over HTTP while the stream opens
    expect(await link.opened()).to.equal(true);
    return link;
  }

  it('bye before an answer: the call did not run there, and goes again over HTTP, the same bytes', async () => {
    const l = await streaming('bye');
    const res: HttpResponse = await l.request('/apply/M/f', text, 5000);
    expect(JSON.parse(res.text)).to.deep.equal({ via: 'http' });
    expect(fake!.http).to.deep.equal(['/apply/M/f', '/apply/M/f']);
  });

  it('a stream that breaks with a call on its way: ERR_MAYBE_RAN', async () => {
    const l = await streaming('drop');
    const err = await rejection(l.request('/apply/M/f', text, 5000));
    expect(err).to.be.instanceOf(MaybeRanError);
    expect(err.code).to.equal('ERR_MAYBE_RAN');
  });

  it('an answer line that is no answer: ERR_BAD_REPLY, and the stream is dropped', async () => {
    const l = await streaming('garbage');
    const err = await rejection(l.request('/apply/M/f', text, 5000));
    expect(err).to.be.instanceOf(WireError);
    expect(err.code).to.equal('ERR_BAD_REPLY');
    expect(l.streaming).to.equal(false);
  });

  it('no answer by the deadline, on the caller’s clock: ERR_MAYBE_RAN', async () => {
    const l = await streaming('silent');
    const call = rejection(l.request('/apply/M/f', text, 300));
    await flush();
    clock.advance(301);
    const err = await call;
    expect(err).to.be.instanceOf(MaybeRanError);
    expect(err.code).to.equal('ERR_MAYBE_RAN');
    expect(err).not.to.be.instanceOf(CallTimeoutError);
  });

  it('closed with nothing on its way, the link ends its side of the stream; nothing new goes on it', async () => {
    const l = await streaming('silent');
    l.close();
    await fake!.ended;
    expect(JSON.parse((await l.request('/apply/M/f', text, 5000)).text)).to.deep.equal({ via: 'http' });
    expect(fake!.upgrades).to.equal(1);
  });

  it('a node that does not stream is called over HTTP, and asked again only after a while', async () => {
    fake = await fakeNode('refuse');
    link = new StreamLink(fake.url, { clock, retryMs: 60_000 });
    await link.request('/apply/M/f', text, 5000);
    expect(await link.opened()).to.equal(false);
    await link.request('/apply/M/f', text, 5000);
    expect(await link.opened()).to.equal(false);
    expect(fake.http).to.deep.equal(['/apply/M/f', '/apply/M/f']);
    expect(link.streaming).to.equal(false);
  });
});

describe('Call streams: one connection of the guard’s', () => {
  it('a stream with a call running is not closed to make room; an idle one says bye and goes', async () => {
    const clock = new ManualClock(Date.now());
    const guard = ConnectionGuard.serve((_req, res) => res.end(), {
      ...DEFAULT_CONNECTION_LIMITS,
      maxConnections: 2,
      maxConnectionsPerSource: 10,
    });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    new StreamServer(guard.server, {
      dispatch: async () => {
        await held;
        return { status: 200, contentType: 'application/jose', text: 'done', retryAfter: undefined };
      },
      clock,
      maxBodyBytes: 1024,
      idleMs: 5000,
      hold: (socket) => guard.hold(socket),
      onEvict: (socket, evict) => guard.onEvict(socket, evict),
      log: () => {},
    });
    await new Promise<void>((r) => guard.server.listen(0, '127.0.0.1', () => r()));
    const port = (guard.server.address() as AddressInfo).port;
    try {
      const busy = await rawStream(port);
      const idle = await rawStream(port);
      busy.socket.write('1 /apply/M/f a.b.c.d.e\n');
      await flush();
      const newcomer = await connect(port);
      expect(linesOf(await idle.closed)).to.deep.equal(['bye']);
      expect(busy.socket.destroyed).to.equal(false);
      release();
      expect(linesOf(await until(busy, (t) => linesOf(t).length === 1))).to.deep.equal([
        '1 200 - application/jose done',
      ]);
      newcomer.socket.destroy();
      busy.socket.destroy();
    } finally {
      guard.server.closeAllConnections();
      guard.server.close();
    }
  });
});
