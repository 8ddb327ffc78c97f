import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { ManualClock, WtdProxy, type ProxyOptions } from '../../lib/index.js';
import { newKeyPair, shortId } from '../../lib/security/keys.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { fakeJws, RawClient } from '../fixtures/proxy.js';

describe('WtdProxy store: expiry in batches, a file that shrinks back, older files brought up to date', () => {
  let dir: string;
  let proxy: WtdProxy | undefined;
  let clock: ManualClock;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wtd-proxy-'));
    clock = new ManualClock(Date.now());
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(options: Partial<ProxyOptions> = {}): Promise<WtdProxy> {
    proxy = await WtdProxy.start({
      dataDir: dir,
      port: 0,
      logger: new MemoryLogger(),
      wallClock: clock,
      pollHoldMs: 100,
      messageTtlMs: 2000,
      ...options,
    });
    return proxy;
  }

  const fileBytes = (): number =>
    ['proxy.db', 'proxy.db-wal'].reduce((sum, f) => {
      try {
        return sum + statSync(join(dir, f)).size;
      } catch {
        return sum;
      }
    }, 0);

  it('drops expired messages sweepBatch at a time, never reading their bodies, and tells every sender', async () => {
    const p = await start({ sweepBatch: 2 });
    const ann = await RawClient.register(p, 'ann@example.org', clock);
    const tess = await RawClient.register(p, 'tess@example.org', clock);
    await tess.accept(ann.kid);
    const ids = Array.from({ length: 40 }, (_, i) => `m${i}`);
    await ann.poll({ messages: ids.map((id) => RawClient.request(id, tess.id, ann.kid)) });
    // Bodies the sweep cannot parse: had it read them, it would throw.
    const db = new Database(join(dir, 'proxy.db'));
    db.prepare("UPDATE messages SET body = 'not json'").run();
    db.close();
    clock.advance(2000); // all expire at once, at this sweep
    // A few batches now; the rest on the next turns of the event loop, the proxy answering meanwhile.
    expect(p.status().nodes.find((n) => n.id === tess.id)!.queued).to.be.within(1, 39);
    await p.until((s) => s.nodes.find((n) => n.id === tess.id)!.queued === 0);
    const told = (await ann.poll()).json.messages;
    expect(told.map((m) => m.re).sort()).to.deep.equal([...ids].sort());
    expect(new Set(told.map((m) => JSON.parse(m.text).error.code))).to.deep.equal(new Set(['ERR_PROXY_EXPIRED']));
  });

  it('returns the pages a flood used to the file system once it expired (incremental vacuum)', async () => {
    const p = await start({ senderShare: 1 });
    const ann = await RawClient.register(p, 'ann@example.org', clock);
    const tess = await RawClient.register(p, 'tess@example.org', clock);
    await tess.accept(ann.kid);
    const flood = (n: number, tag: string) =>
      Array.from({ length: n }, (_, i) =>
        RawClient.request(`${tag}${i}`, tess.id, ann.kid, { path: 'x'.repeat(60_000) }),
      );
    // Once round, so that every table and index has its pages, then the size to come back to.
    await ann.poll({ messages: flood(1, 'warm') });
    clock.advance(3000);
    await p.until((s) => s.queuedBytes < 1000);
    await ann.poll();
    clock.advance(3000);
    await p.until((s) => s.queuedBytes === 0);
    const before = fileBytes();
    // Ten a poll: a poll's body is at most 1 MiB.
    for (let i = 0; i < 12; i++) await ann.poll({ messages: flood(10, `f${i}.`) });
    expect(p.status().nodes.find((n) => n.id === tess.id)!.queued).to.equal(120);
    expect(fileBytes()).to.be.above(before + 6_000_000);
    clock.advance(3000);
    await p.until((s) => s.nodes.find((n) => n.id === tess.id)!.queued === 0);
    await ann.poll(); // the expiry notices, collected
    clock.advance(3000); // and expired
    await p.until((s) => s.queuedBytes === 0);
    expect(fileBytes()).to.be.at.most(before * 1.1);
  });

  it('brings a proxy.db of the first schema up to date: incremental vacuum, accepted ids, what waits and its cost', async () => {
    const keys = await newKeyPair();
    const id = shortId(keys.thumbprint);
    const sender = await newKeyPair();
    mkdirSync(dir, { recursive: true });
    const old = new Database(join(dir, 'proxy.db'));
    old.pragma('journal_mode = WAL');
    old.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE nodes (
        id TEXT PRIMARY KEY, kid TEXT NOT NULL UNIQUE, email TEXT NOT NULL, name TEXT NOT NULL,
        public_jwk TEXT NOT NULL, registered_at INTEGER NOT NULL, offers TEXT NOT NULL, last_seen INTEGER NOT NULL);
      CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, to_node TEXT NOT NULL, id TEXT NOT NULL, body TEXT,
        expires_at INTEGER NOT NULL, acked INTEGER NOT NULL DEFAULT 0, UNIQUE (to_node, id));
      CREATE INDEX waiting ON messages (to_node, acked, seq);
    `);
    const now = clock.now();
    old
      .prepare('INSERT INTO nodes VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(
        id,
        keys.thumbprint,
        'Old@Example.org',
        'old',
        JSON.stringify(keys.publicJwk),
        now,
        JSON.stringify({ missions: ['greetings'], grants: [sender.thumbprint], address: null }),
        now,
      );
    const body = JSON.stringify({
      id: 'w1',
      kind: 'request',
      path: '/pid/1',
      jws: fakeJws(sender.thumbprint),
      from: 'someone',
    });
    old
      .prepare('INSERT INTO messages (to_node, id, body, expires_at) VALUES (?, ?, ?, ?)')
      .run(id, 'w1', body, now + 60_000);
    expect(old.pragma('auto_vacuum', { simple: true })).to.equal(0);
    old.close();

    const p = await start();
    expect(p.status().nodes[0]).to.deep.include({ id, accepts: 1, queued: 1, missions: ['greetings'] });
    expect(p.status().queuedBytes).to.be.above(Buffer.byteLength(body));
    // The e-mail is taken, whatever its case.
    const other = new RawClient(p, await newKeyPair(), clock, 100);
    const res = await other.put('/register', { email: 'old@example.org', publicJwk: other.keys.publicJwk });
    expect(res.code).to.equal('ERR_PROXY_EMAIL_TAKEN');
    // The node registered there collects what waited for it.
    const raw = new RawClient(p, keys, clock, 100);
    expect((await raw.poll()).json.messages.map((m) => m.id)).to.deep.equal(['w1']);
    await p.close();
    proxy = undefined;
    const db = new Database(join(dir, 'proxy.db'));
    expect(db.pragma('auto_vacuum', { simple: true })).to.equal(2);
    db.close();
  });
});
