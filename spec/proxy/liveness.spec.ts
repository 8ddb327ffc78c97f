import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { ManualClock, WtdNode, WtdProxy, type DirectoryEntry, type ProxyOptions } from '../../lib/index.js';
import { DirectoryView } from '../../lib/transport/proxy-directory.js';
import type { PingAnswer } from '../../lib/wire/relay.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { closeAll, listed, RawClient, unlisted, manualProxy } from '../fixtures/proxy.js';

describe('Proxy liveness: suspect, down, and a restart told by its incarnation', () => {
  let proxy: WtdProxy;
  let clock: ManualClock;
  async function start(options: Partial<ProxyOptions> = {}): Promise<void> {
    ({ proxy, clock } = await manualProxy({ ...options }));
  }
  afterEach(() => proxy?.close());

  /** A node's view of the directory, fed by the pings of `raw` (the node side of the protocol). */
  function viewer(raw: RawClient) {
    const view = new DirectoryView(new MemoryLogger());
    const downs: DirectoryEntry[] = [];
    const ups: DirectoryEntry[] = [];
    view.on('nodedown', (e) => downs.push(e));
    view.on('nodeup', (e) => ups.push(e));
    const ping = async (extra: Record<string, unknown> = {}): Promise<void> => {
      for (;;) {
        const body = { incarnation: 'viewer', ...extra, ...(view.cursor === undefined ? {} : { since: view.cursor }) };
        const res = await raw.put(`/nodes/${raw.id}/ping`, body);
        expect(res.status, res.text).to.equal(200);
        const answer = JSON.parse(res.text) as PingAnswer;
        view.apply(answer);
        if (!answer.more) return;
      }
    };
    return { view, downs, ups, ping };
  }

  it('pings 2.5 s apart for 60 s: suspect now and then, never down (0 false nodedown)', async () => {
    await start();
    const member = await RawClient.register(proxy, 'member@example.org', clock);
    const watcher = viewer(await RawClient.register(proxy, 'watcher@example.org', clock));
    const pingMember = async (): Promise<void> => {
      const res = await member.put(`/nodes/${member.id}/ping`, { incarnation: 'one' });
      expect(res.status, res.text).to.equal(200);
    };
    await pingMember();
    await watcher.ping();
    expect(watcher.view.entries().find((e) => e.id === member.id)).to.deep.include({ online: true, status: 'up' });
    const statuses = new Set<string | undefined>();
    // 60 s in steps of 250 ms: the member pings every 2.5 s, the watcher every second.
    for (let t = 250; t <= 60_000; t += 250) {
      clock.advance(250);
      if (t % 1000 === 0) {
        await watcher.ping();
        statuses.add(watcher.view.entries().find((e) => e.id === member.id)?.status);
      }
      if (t % 2500 === 0) await pingMember();
    }
    expect(watcher.downs.filter((e) => e.id === member.id)).to.deep.equal([]);
    expect([...statuses].sort()).to.deep.equal(['suspect', 'up']);
    expect(proxy.status().nodes.find((n) => n.id === member.id)).to.deep.include({ online: true });
    // Silent past downAfterMs (3 s): down at once, told once.
    clock.advance(3250);
    await watcher.ping();
    expect(watcher.downs.map((e) => e.id)).to.deep.equal([member.id]);
    expect(proxy.status().nodes.find((n) => n.id === member.id)).to.deep.include({ online: false, suspect: false });
  });

  it('suspectAfterMs and downAfterMs are options (offlineAfterMs, the old name, still reads as downAfterMs)', async () => {
    await start({ suspectAfterMs: 500, downAfterMs: 1000 });
    const member = await RawClient.register(proxy, 'member@example.org', clock);
    await member.put(`/nodes/${member.id}/ping`, {});
    clock.advance(600);
    expect(proxy.status().nodes[0]).to.deep.include({ online: true, suspect: true });
    clock.advance(500);
    expect(proxy.status().nodes[0]).to.deep.include({ online: false });
    await proxy.close();
    await start({ offlineAfterMs: 700 });
    const other = await RawClient.register(proxy, 'other@example.org', clock);
    await other.put(`/nodes/${other.id}/ping`, {});
    clock.advance(800);
    expect(proxy.status().nodes[0]).to.deep.include({ online: false });
    for (const bad of [{ suspectAfterMs: 0 }, { downAfterMs: -1 }]) {
      let err: unknown;
      await WtdProxy.start({ dataDir: ':memory:', port: 0, ...bad }).catch((e: unknown) => (err = e));
      expect(err).to.be.instanceOf(RangeError);
    }
  });

  it('a ping with another incarnation is a restart: nodedown then nodeup, before any silence', async () => {
    await start();
    const member = await RawClient.register(proxy, 'member@example.org', clock);
    const watcher = viewer(await RawClient.register(proxy, 'watcher@example.org', clock));
    await member.put(`/nodes/${member.id}/ping`, { incarnation: 'first' });
    await watcher.ping();
    await member.put(`/nodes/${member.id}/ping`, { incarnation: 'first' });
    await watcher.ping();
    expect(watcher.downs).to.deep.equal([]);
    await member.put(`/nodes/${member.id}/ping`, { incarnation: 'second' });
    await watcher.ping();
    expect(watcher.downs.map((e) => [e.id, e.incarnation])).to.deep.equal([[member.id, 'first']]);
    expect(watcher.ups.filter((e) => e.id === member.id).map((e) => e.incarnation)).to.deep.equal(['first', 'second']);
  });

  it('an incarnation that is not 1-64 letters, digits, _ or - is refused: ERR_PROXY_BAD_REQUEST (400)', async () => {
    await start();
    const member = await RawClient.register(proxy, 'member@example.org', clock);
    for (const incarnation of ['', 'x'.repeat(65), 'a b', 7, null]) {
      const res = await member.put(`/nodes/${member.id}/ping`, { incarnation });
      expect([res.status, res.code], JSON.stringify(incarnation)).to.deep.equal([400, 'ERR_PROXY_BAD_REQUEST']);
    }
  });

  it('a WtdNode pings with its incarnation; another node sees its restart as nodedown then nodeup', async () => {
    await proxy?.close();
    proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger: new MemoryLogger() });
    const dir = mkdtempSync(join(tmpdir(), 'wtd-liveness-'));
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
    let carol = await WtdNode.start({ name: 'carol', dataDir: dir });
    try {
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org', pingIntervalMs: 50 });
      await carol.joinProxy({ url: proxy.url, email: 'carol@example.org', pingIntervalMs: 50 });
      const seen = await listed(bob, carol.id);
      expect(seen.incarnation).to.equal(carol.incarnation);
      // Carol's program restarts (same key, new incarnation) well within the down time: Bob hears her go and come.
      const before = carol.incarnation;
      const down = unlisted(bob, carol.id);
      await carol.close();
      carol = await WtdNode.start({ name: 'carol', dataDir: dir });
      await carol.joinProxy({ url: proxy.url, email: 'carol@example.org', pingIntervalMs: 50 });
      expect((await down).incarnation).to.equal(before);
      const back = await listed(bob, carol.id);
      expect(back.incarnation).to.equal(carol.incarnation).and.not.equal(before);
    } finally {
      await closeAll(carol, bob);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a SIGKILLed node is down in the directory within 4 s', async function () {
    this.timeout(15_000);
    await proxy?.close();
    proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger: new MemoryLogger() });
    const script = fileURLToPath(new URL('../fixtures/joined-process.js', import.meta.url));
    const child = spawn(process.execPath, [script, proxy.url], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const { id } = JSON.parse(line) as { id: string };
      await proxy.until((s) => s.nodes.some((n) => n.id === id && n.online));
      const killedAt = Date.now();
      child.kill('SIGKILL');
      await proxy.until((s) => s.nodes.some((n) => n.id === id && !n.online));
      const lastSeen = proxy.status().nodes.find((n) => n.id === id)!.lastSeen;
      expect(Date.now() - killedAt, `last seen ${killedAt - lastSeen} ms before the kill`).to.be.below(4000);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    }
  });
});
