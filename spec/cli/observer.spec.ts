import { request } from 'node:http';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { Observer } from '../../lib/cli/observer.js';
import { Supervisor, WtdNode } from '../../lib/index.js';
import { launchBrowser } from '../fixtures/browser.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { put } from '../fixtures/remote.js';
import { Greeter, Visitors, start as startGreeter } from '../../samples/greeter.js';

/** GET with a chosen Host header (fetch does not let a page or a script set it). */
function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('wtd observer: a live page of the running node, on this machine only', function () {
  this.timeout(30_000);
  let browser: Browser;
  let node: WtdNode;
  let observer: Observer;
  before(async () => {
    browser = await launchBrowser();
  });
  after(() => browser?.close());
  beforeEach(async () => {
    node = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger: new MemoryLogger() });
    node.load(Greeter).load(Visitors);
    await startGreeter(node);
    await node.listen({ port: 0 });
    observer = await Observer.start(node, { port: 0 });
  });
  afterEach(async () => {
    await observer.close();
    await node.close();
  });

  it('shows the supervision tree, processes, missions, grants and refusals, and follows a crash and restart', async () => {
    const grant = await node.grant({ missions: ['greetings'], rate: '5/min', label: 'bob' });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
    try {
      const remote = await bob.connect(grant);
      await remote.call('Greeter', 'hello', ['bob']);
      // Refused requests: one under bob's grant, and a body that is no JWS.
      await remote.call('Greeter', 'secret').catch(() => undefined);
      expect((await put(`${node.address}/apply/Greeter/hello`, 'not-a-jws')).code).to.equal('ERR_BAD_JWS');
    } finally {
      await bob.close();
    }
    const page = await browser.newPage();
    await page.goto(observer.url);
    expect(await page.title()).to.equal('WTD observer');
    const visitors = node.whereis('visitors')!;
    const sup = node.whereis('greeter_sup')!;
    await page.locator(`#tree li[data-pid="${String(visitors)}"]`).waitFor();
    expect(
      await page
        .locator(`#tree li[data-pid="${String(sup)}"] > span`)
        .first()
        .textContent(),
    ).to.equal(`greeter_sup ${String(sup)}`);
    expect(await page.locator(`#tree li[data-pid="${String(visitors)}"]`).textContent())
      .to.include('visitors')
      .and.include('worker · Visitors');
    const procRow = await page.locator(`#processes tr[data-pid="${String(visitors)}"] td`).allTextContents();
    expect(procRow).to.deep.equal([String(visitors), 'visitors', 'waiting', '0', 'gen_server · Visitors']);
    // In the wtd command's words: arities, rates, one time format.
    expect(await page.locator('#missions td').allTextContents()).to.deep.equal([
      'greetings',
      'Greeter/hello/1, Greeter/countdown/2',
      'Visitors (gen_server: call/1)',
    ]);
    const grantRow = await page.locator(`#grants tr[data-kid="${grant.kid}"] td`).allTextContents();
    expect([grantRow[1], grantRow[2], grantRow[3], grantRow[4], grantRow[8]]).to.deep.equal([
      'greetings',
      '5/min',
      '4', // a refusal takes no token
      '1',
      'active',
    ]);
    expect(grantRow[5]).to.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    // What waits for the grantee's pids, and what was dropped: nothing yet.
    expect([grantRow[6], grantRow[7]]).to.deep.equal(['0', '0']);
    // Each refusal says where it came from and which grant it came under.
    const refusals = (await page.locator('#refusals tr').allInnerTexts()).map((r) => r.split('\t'));
    expect(refusals.map((r) => r[1])).to.deep.equal(['127.0.0.1', '127.0.0.1']);
    expect(refusals.map((r) => r.slice(2, 6))).to.deep.equal([
      ['no grant of this node', 'ERR_BAD_JWS', '400', '/apply/Greeter/hello'],
      ['bob', 'ERR_MISSION_NOT_GRANTED', '403', '/apply/Greeter/secret'],
    ]);
    expect(refusals[0]![0]).to.match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);

    // The worker crashes; the supervisor restarts it; the open page follows without a reload.
    node.exit(visitors, new Error('the visitor book fell on the floor'));
    await node.exited(visitors);
    // The supervisor handles the exit before this call (it was signalled first), so the child is back.
    await Supervisor.whichChildren({ node, name: 'greeter_sup' });
    const restarted = node.whereis('visitors')!;
    expect(String(restarted)).to.not.equal(String(visitors));
    await page.locator(`#tree li[data-pid="${String(restarted)}"]`).waitFor({ timeout: 5000 });
    expect(await page.locator(`#tree li[data-pid="${String(visitors)}"]`).count()).to.equal(0);
    // A revocation shows in the grant's state.
    node.revoke(grant.kid);
    await page.locator(`#grants tr[data-kid="${grant.kid}"] td.revoked`).waitFor({ timeout: 5000 });
    await page.close();
  });

  it('listens on 127.0.0.1 only, and refuses requests addressed to any other name', async () => {
    expect(observer.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const url = `${observer.url}observer.json`;
    expect(await getWithHost(url, `127.0.0.1:${new URL(url).port}`)).to.equal(200);
    expect(await getWithHost(url, `localhost:${new URL(url).port}`)).to.equal(200);
    // A page elsewhere that points its own name at 127.0.0.1 (DNS rebinding) gets nothing.
    expect(await getWithHost(url, 'evil.example:80')).to.equal(403);
    const snapshot = (await (await fetch(url)).json()) as { node: { name: string; id: string } };
    expect(snapshot.node).to.include({ name: 'alice', id: node.id });
  });
});
