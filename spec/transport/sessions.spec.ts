import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { compactDecrypt } from 'jose';
import { Observer } from '../../lib/cli/observer.js';
import { ManualClock, WireError, WtdNode, WtdProxy, outcomeOf } from '../../lib/index.js';
import { WireCodec } from '../../lib/wire/codec.js';
import { newClaims } from '../../lib/wire/claims.js';
import { NONCE, SEQ_WINDOW, SeqWindow, seal, SESSION_TYP } from '../../lib/wire/session.js';
import { MemoryLogger, rejection } from '../fixtures/helpers.js';
import { Probe, probeRuns, put, signRaw, withTwoNodes } from '../fixtures/remote.js';
import { handMade } from '../fixtures/sessions.js';
import { Session, Sessions } from '../../lib/security/sessions.js';

const codec = new WireCodec();

describe('Sessions: the wire', () => {
  it('a session message is a compact JWE (dir, A256GCM) that jose opens with the session key', async () => {
    const key = Buffer.alloc(32, 7);
    const header = {
      alg: 'dir' as const,
      enc: 'A256GCM' as const,
      typ: SESSION_TYP.request,
      kid: 'k',
      sid: 'A'.repeat(22),
      seq: 5,
      iat: 1,
      exp: 61,
    };
    const text = seal(key, NONCE.clientRequest, header, { path: '/apply/M/f', body: { json: ['secret'] } });
    expect(text.split('.')).to.have.length(5);
    expect(text).to.not.include(Buffer.from('secret').toString('base64url'));
    const { plaintext, protectedHeader } = await compactDecrypt(text, key);
    expect(JSON.parse(Buffer.from(plaintext).toString())).to.deep.equal({
      path: '/apply/M/f',
      body: { json: ['secret'] },
    });
    expect(protectedHeader).to.include({ alg: 'dir', enc: 'A256GCM', seq: 5 });
  });

  it('the replay window takes each sequence number once, in any order within it, and refuses older ones', () => {
    const w = new SeqWindow();
    expect([w.accept(3), w.accept(1), w.accept(2), w.accept(2), w.accept(3)]).to.deep.equal([
      'new',
      'new',
      'new',
      'seen',
      'seen',
    ]);
    expect(w.accept(3 + SEQ_WINDOW)).to.equal('new');
    expect(w.accept(3)).to.equal('old');
    expect(w.accept(4)).to.equal('new'); // still inside: top − 4 < the window
    expect(w.accept(10 * SEQ_WINDOW)).to.equal('new');
    expect([w.accept(10 * SEQ_WINDOW - 1), w.accept(10 * SEQ_WINDOW - SEQ_WINDOW)]).to.deep.equal(['new', 'old']);
  });
});

describe('Sessions: calls go sealed, and every check still runs before user code', () => {
  const nodes = withTwoNodes();

  it('one session per grant: a first signed request, then every call and reply sealed', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    for (let i = 0; i < 5; i++) expect(await remote.call('Probe', 'touch', [i])).to.equal(i);
    expect(nodes.alice.sessionStats()).to.include({ encryption: true, server: 1, client: 0 });
    expect(nodes.bob.sessionStats()).to.deep.equal({
      encryption: true,
      server: 0,
      client: 1,
      streams: 0,
      proxyStream: false,
    });
    expect(nodes.alice.grants()[0]!.uses).to.equal(5);
  });

  /** A hand-made session of Bob's grant with Alice, as node `iss`. */
  const session = (iss = nodes.bob.id) => handMade(nodes.alice.address!, nodes.alice.id, nodes.grant, iss, nodes.clock);

  it('a sealed call runs; the same bytes again get the first answer, and it runs once', async () => {
    const s = await session();
    const path = '/apply/Probe/touch';
    const { text } = s.seal(path, codec.encode(['once']));
    const first = await s.send(path, text);
    const again = await s.send(path, text);
    expect(first.status, first.text).to.equal(200);
    expect([again.status, again.text]).to.deep.equal([200, first.text]);
    expect(probeRuns.count).to.equal(1);
  });

  it('a sequence number is taken once: a replayed probe is ERR_REPLAY', async () => {
    const s = await session();
    const { text } = s.seal('/probe', {});
    expect((await s.send('/probe', text)).status).to.equal(200);
    const replay = await s.send('/probe', text);
    expect([replay.status, replay.code]).to.deep.equal([409, 'ERR_REPLAY']);
  });

  it('reordered messages: taken within the window, refused outside it (ERR_REPLAY), and nothing runs for those', async () => {
    const s = await session();
    const path = '/apply/Probe/touch';
    const sealed = Array.from({ length: SEQ_WINDOW + 10 }, (_, i) => s.seal(path, codec.encode([i + 1])));
    const newest = await s.send(path, sealed.at(-1)!.text);
    expect(newest.status).to.equal(200);
    const inside = await s.send(path, sealed[sealed.length - 5]!.text);
    expect(inside.status).to.equal(200);
    const outside = await s.send(path, sealed[2]!.text);
    expect([outside.status, outside.code]).to.deep.equal([409, 'ERR_REPLAY']);
    expect(probeRuns.count).to.equal(2);
  });

  it('a stale session id is ERR_SESSION_UNKNOWN, and one sealed for another path is ERR_WRONG_PATH', async () => {
    const s = await session();
    const { text } = s.seal('/apply/Probe/touch', codec.encode([1]));
    const forged = text.replace(/^[^.]+/, (h) => {
      const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { sid: string };
      return Buffer.from(JSON.stringify({ ...header, sid: 'B'.repeat(22) })).toString('base64url');
    });
    const unknown = await s.send('/apply/Probe/touch', forged);
    expect([unknown.status, unknown.code]).to.deep.equal([401, 'ERR_SESSION_UNKNOWN']);
    const moved = await s.send('/apply/Probe/slow', text);
    expect([moved.status, moved.code]).to.deep.equal([401, 'ERR_WRONG_PATH']);
    expect(probeRuns.count).to.equal(0);
  });

  it('a session of another grant, or its key used for another session, opens nothing', async () => {
    const other = await nodes.alice.grant({ missions: ['probe'], rate: '100/s' });
    const mine = await session();
    const theirs = await handMade(nodes.alice.address!, nodes.alice.id, other, nodes.bob.id, nodes.clock);
    const path = '/apply/Probe/touch';
    // Sealed with my keys, but naming their session: it does not authenticate there.
    const { text } = mine.seal(path, codec.encode([1]));
    const swapped = text.replace(/^[^.]+/, (h) => {
      const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
      return Buffer.from(JSON.stringify({ ...header, sid: theirs.session.sid, kid: other.kid })).toString('base64url');
    });
    const refused = await mine.send(path, swapped);
    expect([refused.status, refused.code]).to.deep.equal([401, 'ERR_BAD_SIGNATURE']);
    // Naming their session under my grant's key id: not a session of that key.
    const wrongKid = text.replace(/^[^.]+/, (h) => {
      const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
      return Buffer.from(JSON.stringify({ ...header, sid: theirs.session.sid })).toString('base64url');
    });
    expect((await mine.send(path, wrongKid)).code).to.equal('ERR_SESSION_UNKNOWN');
    // A changed byte of the sealed body.
    const parts = text.split('.');
    const body = Buffer.from(parts[3]!, 'base64url');
    body[0]! ^= 1;
    parts[3] = body.toString('base64url');
    expect((await mine.send(path, parts.join('.'))).code).to.equal('ERR_BAD_SIGNATURE');
    expect(probeRuns.count).to.equal(0);
  });

  it('a session with another node is unknown here (and so is its key: ERR_UNKNOWN_KEY)', async () => {
    const carol = await WtdNode.start({ name: 'carol', dataDir: ':memory:' });
    try {
      carol.load(Probe);
      await carol.listen({ port: 0 });
      const s = await session();
      const { text } = s.seal('/apply/Probe/touch', codec.encode([1]));
      const res = await put(`${carol.address!}/apply/Probe/touch`, text);
      // Carol holds no such session, and no grant of that key: she says the second.
      expect([res.status, res.code]).to.deep.equal([401, 'ERR_UNKNOWN_KEY']);
    } finally {
      await carol.close();
    }
  });

  it('a session is bound to the node that made it: a grant bound to Bob opens none for Mallory (ERR_WRONG_ISSUER)', async () => {
    // An issued grant file is bound to the first node that used it.
    await (await nodes.bob.connect(nodes.grant)).call('Probe', 'touch', [0]);
    const err = await rejection(session('mallory'));
    expect(String(err)).to.include('403');
    expect(nodes.alice.sessionStats().server).to.equal(1);
    expect(probeRuns.count).to.equal(1);
  });

  it('after a revoke, the session is refused at its next request (ERR_GRANT_REVOKED), and is gone', async () => {
    const s = await session();
    const path = '/apply/Probe/touch';
    expect((await s.send(path, s.seal(path, codec.encode([1])).text)).status).to.equal(200);
    nodes.alice.revoke(nodes.grant.kid);
    const revoked = await s.send(path, s.seal(path, codec.encode([2])).text);
    expect([revoked.status, revoked.code]).to.deep.equal([403, 'ERR_GRANT_REVOKED']);
    // The session is gone, and the key says why: its grant was revoked.
    const gone = await s.send(path, s.seal(path, codec.encode([3])).text);
    expect([gone.status, gone.code]).to.deep.equal([403, 'ERR_GRANT_REVOKED']);
    expect(probeRuns.count).to.equal(1);
    expect(nodes.alice.sessionStats().server).to.equal(0);
  });

  it('missions, arguments and arity are checked in a session as outside one, before any user code', async () => {
    const s = await session();
    const secret = await s.send('/apply/Probe/secret', s.seal('/apply/Probe/secret', codec.encode([])).text);
    expect([secret.status, secret.code]).to.deep.equal([403, 'ERR_MISSION_NOT_GRANTED']);
    const bad = await s.send('/apply/Probe/touch', s.seal('/apply/Probe/touch', { nope: 1 }).text);
    expect([bad.status, bad.code]).to.deep.equal([400, 'ERR_BAD_ARGUMENTS']);
    const claimed = await s.send(
      '/apply/Probe/touch',
      s.seal('/apply/Probe/touch', codec.encode([1]), { mission: 'other' }).text,
    );
    expect([claimed.status, claimed.code]).to.deep.equal([403, 'ERR_MISSION_NOT_GRANTED']);
    expect(probeRuns.count).to.equal(0);
  });

  it('a request outside a session (a downgrade) is refused with ERR_SESSION_REQUIRED once authenticated', async () => {
    const path = '/apply/Probe/touch';
    const claims = newClaims<'call'>(nodes.clock, {
      aud: nodes.alice.id,
      iss: nodes.bob.id,
      method: 'PUT',
      path,
      body: codec.encode([1]),
    });
    const jws = await signRaw(nodes.grant.privateJwk, { typ: 'wtd-call+jws', kid: nodes.grant.kid }, claims as never);
    const res = await put(nodes.alice.address + path, jws);
    expect([res.status, res.code]).to.deep.equal([426, 'ERR_SESSION_REQUIRED']);
    expect(probeRuns.count).to.equal(0);
    expect(nodes.alice.grants()[0]!.uses).to.equal(0);
  });

  it('a session carries its budget, then is refused (ERR_SESSION_EXPIRED)', async () => {
    await nodes.alice.close();
    const alice = await WtdNode.start({
      name: 'alice',
      dataDir: ':memory:',
      wallClock: nodes.clock,
      sessions: { budget: 3 },
    });
    try {
      alice.load(Probe);
      await alice.listen({ port: 0 });
      const grant = await alice.grant({ missions: ['probe'], rate: '100/s' });
      const s = await handMade(alice.address!, alice.id, grant, nodes.bob.id, nodes.clock);
      const path = '/apply/Probe/touch';
      const codes = [];
      for (let i = 0; i < 4; i++) codes.push((await s.send(path, s.seal(path, codec.encode([i])).text)).code);
      expect(codes).to.deep.equal([undefined, undefined, undefined, 'ERR_SESSION_EXPIRED']);
      expect(probeRuns.count).to.equal(3);
      // The client of a node does not notice: it makes new sessions as it goes.
      const remote = await nodes.bob.connect(grant);
      for (let i = 0; i < 10; i++) expect(await remote.call('Probe', 'touch', [i])).to.equal(i);
      expect(probeRuns.count).to.equal(13);
      expect(alice.sessionStats().server).to.be.at.most(4);
    } finally {
      await alice.close();
    }
  });

  it('a grant holds at most 4 sessions (a newer one ends the oldest), and opens them at a bounded rate', async () => {
    const first = await session();
    for (let i = 0; i < 4; i++) await session();
    expect(nodes.alice.sessionStats().server).to.equal(4);
    const path = '/apply/Probe/touch';
    expect((await first.send(path, first.seal(path, codec.encode([1])).text)).code).to.equal('ERR_SESSION_UNKNOWN');
    let refused: unknown;
    for (let i = 0; i < 20 && refused === undefined; i++) await session().catch((err: unknown) => (refused = err));
    expect(String(refused)).to.include('429');
    // Time gives them back.
    nodes.clock.advance(60_000);
    await session();
  });

  it('the first request of a session needs a usable X25519 key: ERR_BAD_ARGUMENTS otherwise', async () => {
    for (const epk of ['short', 'A'.repeat(43), 7]) {
      const claims = newClaims<'call'>(nodes.clock, {
        aud: nodes.alice.id,
        iss: nodes.bob.id,
        method: 'PUT',
        path: '/session',
        body: { epk } as never,
      });
      const jws = await signRaw(nodes.grant.privateJwk, { typ: 'wtd-call+jws', kid: nodes.grant.kid }, claims as never);
      const res = await put(`${nodes.alice.address!}/session`, jws);
      expect([res.status, res.code]).to.deep.equal([400, 'ERR_BAD_ARGUMENTS']);
    }
    expect(nodes.alice.sessionStats().server).to.equal(0);
  });
});

describe('Sessions: the caller re-keys without failing the call', () => {
  it('after the callee restarts (its sessions are gone), and past a session’s lifetime', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wtd-session-'));
    const clock = new ManualClock(Date.now());
    const start = async (port = 0) => {
      const node = await WtdNode.start({
        name: 'alice',
        dataDir: dir,
        wallClock: clock,
        sessions: { lifetimeMs: 60_000 },
      });
      node.load(Probe);
      await node.listen({ port, host: '127.0.0.1' });
      return node;
    };
    let alice = await start();
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', wallClock: clock });
    try {
      const grant = await alice.grant({ missions: ['probe'], rate: '100/s' });
      const remote = await bob.connect(grant);
      expect(await remote.call('Probe', 'touch', [1])).to.equal(1);
      const port = Number(new URL(alice.address!).port);
      await alice.close();
      alice = await start(port);
      probeRuns.count = 0;
      expect(await remote.call('Probe', 'touch', [2])).to.equal(2);
      expect(probeRuns.count).to.equal(1);
      clock.advance(61_000);
      expect(await remote.call('Probe', 'touch', [3])).to.equal(3);
      expect(probeRuns.count).to.equal(2);
      // The spent one is forgotten: Alice holds the new one only.
      expect(alice.sessionStats().server).to.equal(1);
    } finally {
      await bob.close();
      await alice.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * An HTTP forwarder to `target` that keeps every request body it saw and
 * every answer it forwarded, and may answer a path itself.
 */
async function forwarder(
  target: string,
  answer?: (path: string, answered: Map<string, string>) => { status: number; type: string; body: string } | undefined,
) {
  const seen: { path: string; body: string }[] = [];
  const answered = new Map<string, string>();
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ path: req.url!, body });
      const own = answer?.(req.url!, answered);
      if (own !== undefined) {
        res.writeHead(own.status, { 'content-type': own.type });
        res.end(own.body);
        return;
      }
      const out = httpRequest(`${target}${req.url!}`, { method: 'PUT', headers: req.headers }, (back) => {
        const parts: Buffer[] = [];
        back.on('data', (c: Buffer) => parts.push(c));
        back.on('end', () => {
          const text = Buffer.concat(parts).toString();
          answered.set(req.url!, text);
          res.writeHead(back.statusCode!, { 'content-type': String(back.headers['content-type'] ?? '') });
          res.end(text);
        });
      });
      out.end(body);
    });
  });
  // A call stream is passed on byte for byte, both ways, and noted as one entry.
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const noted = { path: req.url!, body: '' };
    seen.push(noted);
    const url = new URL(target);
    const out = netConnect(Number(url.port), url.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      out.write(`${lines.join('\r\n')}\r\n\r\n`);
      out.write(head);
    });
    const pass = (from: Socket, to: Socket): void => {
      from.on('data', (c: Buffer) => {
        noted.body += c.toString('latin1');
        to.write(c);
      });
      from.on('end', () => to.end());
      from.on('error', () => to.destroy());
    };
    pass(socket, out);
    pass(out, socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

describe('Sessions: no downgrade, and nothing in the clear on the way', () => {
  const nodes = withTwoNodes();

  it('what travels between two nodes holds no argument or result in the clear', async () => {
    const tap = await forwarder(nodes.alice.address!);
    try {
      const remote = await nodes.bob.connect({ ...nodes.grant, node: { ...nodes.grant.node, address: tap.url } });
      expect(await remote.call('Probe', 'touch', ['plain-marker-1234'])).to.equal('plain-marker-1234');
      expect(tap.seen.map((s) => s.path)).to.deep.equal(['/session', '/apply/Probe/touch', '/stream']);
      // The next calls go on the stream once it is open: until one did (at most 50 calls).
      const onStream = (): boolean => tap.seen[2]!.body.includes('/apply/Probe/touch ');
      for (let i = 0; i < 50 && !onStream(); i++) {
        expect(await remote.call('Probe', 'touch', ['plain-marker-1234'])).to.equal('plain-marker-1234');
      }
      expect(onStream()).to.equal(true);
      expect(JSON.stringify(tap.seen)).to.not.include('plain-marker-1234');
      expect(JSON.stringify(tap.seen)).to.not.include(
        Buffer.from('plain-marker-1234').toString('base64url').slice(0, 12),
      );
    } finally {
      tap.close();
    }
  });

  it('a first request answered without a session fails the call (it did not run); nothing is sent in the clear', async () => {
    const refusal = JSON.stringify({ error: { code: 'ERR_NOT_FOUND', message: 'no such route' } });
    const tap = await forwarder(nodes.alice.address!, (path) =>
      path === '/session' ? { status: 404, type: 'application/json', body: refusal } : undefined,
    );
    try {
      const remote = await nodes.bob.connect({ ...nodes.grant, node: { ...nodes.grant.node, address: tap.url } });
      const err = await rejection(remote.call('Probe', 'touch', ['x']));
      expect([err.constructor, err.code, outcomeOf(err)]).to.deep.equal([WireError, 'ERR_NOT_FOUND', 'not_run']);
      expect(tap.seen.map((s) => s.path)).to.deep.equal(['/session']);
      expect(probeRuns.count).to.equal(0);
    } finally {
      tap.close();
    }
  });

  it('a sealed call answered with a signed message of the node (a downgrade on the way) is refused: ERR_BAD_REPLY', async () => {
    // The answer to the first request is signed by Alice: played back as the answer to the call.
    const tap = await forwarder(nodes.alice.address!, (path, answered) =>
      path === '/apply/Probe/touch'
        ? { status: 200, type: 'application/jose', body: answered.get('/session')! }
        : undefined,
    );
    try {
      const remote = await nodes.bob.connect({ ...nodes.grant, node: { ...nodes.grant.node, address: tap.url } });
      const err = await rejection(remote.call('Probe', 'touch', ['x']));
      expect([err.constructor, err.code]).to.deep.equal([WireError, 'ERR_BAD_REPLY']);
    } finally {
      tap.close();
    }
  });
});

describe('Sessions: what the other side says cannot make a call run twice or the node hang', () => {
  const nodes = withTwoNodes();

  it('a “session lost” answer with no signed word of the node is not believed: ERR_MAYBE_RAN, not sent again', async () => {
    // A dishonest relay lets the call through, then answers for the node that the session is gone.
    const forged = JSON.stringify({ error: { code: 'ERR_SESSION_UNKNOWN', message: 'gone' } });
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const out = httpRequest(
          `${nodes.alice.address!}${req.url!}`,
          { method: 'PUT', headers: req.headers },
          (back) => {
            const parts: Buffer[] = [];
            back.on('data', (c: Buffer) => parts.push(c));
            back.on('end', () => {
              const call = req.url!.startsWith('/apply/');
              res.writeHead(call ? 401 : back.statusCode!, {
                'content-type': call ? 'application/json' : String(back.headers['content-type']),
              });
              res.end(call ? forged : Buffer.concat(parts));
            });
          },
        );
        out.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const remote = await nodes.bob.connect({ ...nodes.grant, node: { ...nodes.grant.node, address: url } });
      const err = await rejection(remote.call('Probe', 'touch', ['once']));
      expect([err.code, outcomeOf(err)]).to.deep.equal(['ERR_MAYBE_RAN', 'maybe_ran']);
      expect(probeRuns.count).to.equal(1);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('a session id the other node offers that this node holds already is refused (ERR_BAD_REPLY), and nothing is displaced', () => {
    const sessions = new Sessions(nodes.clock, { perGrant: 1 });
    const keys = { clientToServer: Buffer.alloc(32, 1), serverToClient: Buffer.alloc(32, 2) };
    const make = (sid: string, role: 'client' | 'server') =>
      new Session({
        sid,
        role,
        grantKid: 'g',
        peerNodeId: 'p',
        peerKid: 'k',
        ownKid: 'o',
        keys,
        expiresAt: nodes.clock.now() + 60_000,
        budget: 10,
        clock: nodes.clock,
      });
    const held = make('A'.repeat(22), 'server');
    sessions.addServer(held);
    const err = (() => {
      try {
        sessions.addClient(make('A'.repeat(22), 'client'));
      } catch (e) {
        return e as WireError;
      }
      return undefined;
    })();
    expect([err?.constructor, err?.code]).to.deep.equal([WireError, 'ERR_BAD_REPLY']);
    expect(sessions.get('A'.repeat(22))).to.equal(held);
    // A newer session of the grant still ends the oldest (this returns: no endless loop).
    sessions.addServer(make('B'.repeat(22), 'server'));
    expect([sessions.get('A'.repeat(22)), sessions.size.server]).to.deep.equal([undefined, 1]);
  });
});

describe('Sessions through the proxy: it relays what it cannot read', () => {
  it('the proxy’s stored queue holds no argument in the clear, and the call still completes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wtd-proxy-'));
    const proxy = await WtdProxy.start({ dataDir: dir, port: 0, logger: new MemoryLogger() });
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger: new MemoryLogger() });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger: new MemoryLogger() });
    try {
      alice.load(Probe);
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org' });
      const grant = await alice.grant({ missions: ['probe'], rate: '10/s' });
      const remote = await bob.connect(grant);
      expect(await remote.call('Probe', 'touch', ['first'])).to.equal('first');
      await alice.leaveProxy(); // so the next call waits in her queue
      const call = remote.call('Probe', 'touch', ['queued-marker-5678'], { timeout: 8000 });
      await proxy.until((s) => s.nodes.find((n) => n.id === alice.id)!.queued === 1);
      // Every byte the proxy keeps (its database and journal), and the queued message itself: sealed.
      const stored = readdirSync(dir)
        .map((f) => readFileSync(join(dir, f)).toString('latin1'))
        .join('');
      expect(stored).to.not.include('queued-marker-5678');
      const db = new Database(join(dir, 'proxy.db'), { readonly: true });
      const row = db.prepare('SELECT body FROM messages WHERE acked = 0').get() as { body: string };
      db.close();
      expect((JSON.parse(row.body) as { jws: string }).jws.split('.')).to.have.length(5);
      expect(JSON.stringify(row)).to.not.include('queued-marker-5678');
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      expect(await call).to.equal('queued-marker-5678');
    } finally {
      await bob.close();
      await alice.close();
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Sessions off (encryption: false): for debugging, and loudly', () => {
  it('the node says so in its log, its observer and its proxy’s status page; what it relays is in the clear', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wtd-proxy-'));
    const logger = new MemoryLogger();
    const proxy = await WtdProxy.start({ dataDir: dir, port: 0, logger: new MemoryLogger() });
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger, encryption: false });
    const bob = await WtdNode.start({
      name: 'bob',
      dataDir: ':memory:',
      logger: new MemoryLogger(),
      encryption: false,
    });
    const observer = await Observer.start(alice, { port: 0 });
    try {
      expect(logger.lines.some((l) => l.includes('encryption is off'))).to.equal(true);
      expect((await observer.snapshot()).node.encryption).to.equal(false);
      alice.load(Probe);
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org' });
      expect(proxy.status().nodes.map((n) => n.plaintext)).to.deep.equal([true, true]);
      const grant = await alice.grant({ missions: ['probe'], rate: '10/s' });
      const remote = await bob.connect(grant);
      await alice.leaveProxy();
      const call = remote.call('Probe', 'touch', ['clear-marker-9012'], { timeout: 8000 });
      await proxy.until((st) => st.nodes.find((n) => n.id === alice.id)!.queued === 1);
      const db = new Database(join(dir, 'proxy.db'), { readonly: true });
      const row = db.prepare('SELECT body FROM messages WHERE acked = 0').get() as { body: string };
      db.close();
      const jws = (JSON.parse(row.body) as { jws: string }).jws;
      expect(Buffer.from(jws.split('.')[1]!, 'base64url').toString()).to.include('clear-marker-9012');
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      expect(await call).to.equal('clear-marker-9012');
      // In the clear, nothing is sealed: no call streams either (they carry sealed calls only).
      // (Its stream to the proxy, open or not yet, carries what polls would: it is no call stream.)
      const { proxyStream: _, ...stats } = alice.sessionStats();
      expect(stats).to.deep.equal({ encryption: false, server: 0, client: 0, streams: 0 });
    } finally {
      await observer.close();
      await bob.close();
      await alice.close();
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a node with encryption on, by default, says nothing of the kind', async () => {
    const logger = new MemoryLogger();
    const node = await WtdNode.start({ name: 'quiet', dataDir: ':memory:', logger });
    try {
      expect(logger.lines).to.deep.equal([]);
      expect(node.sessionStats().encryption).to.equal(true);
    } finally {
      await node.close();
    }
  });
});
