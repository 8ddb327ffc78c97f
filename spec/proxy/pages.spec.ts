import { expect } from 'chai';
import { Observer } from '../../lib/cli/observer.js';
import { WtdNode, WtdProxy } from '../../lib/index.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { RawClient } from '../fixtures/proxy.js';

describe('the proxy status page and the observer: not to be framed, paths matched exactly', () => {
  it('GET / forbids framing (CSP frame-ancestors and X-Frame-Options), on both', async () => {
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger: new MemoryLogger() });
    const node = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger: new MemoryLogger() });
    const observer = await Observer.start(node, { port: 0 });
    try {
      for (const url of [proxy.url, observer.url]) {
        const res = await fetch(new URL('/', url));
        expect(res.status, url).to.equal(200);
        expect(res.headers.get('x-frame-options')).to.equal('DENY');
        expect(res.headers.get('content-security-policy')).to.include("frame-ancestors 'none'");
      }
    } finally {
      await observer.close();
      await node.close();
      await proxy.close();
    }
  });

  it('a route in other letters or with a trailing slash is not a route: ERR_NOT_FOUND', async () => {
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger: new MemoryLogger() });
    try {
      const raw = await RawClient.register(proxy);
      for (const path of [`/NODES/${raw.id}/ping`, `/nodes/${raw.id}/PING`, `/nodes/${raw.id}/ping/`, '/Register']) {
        const res = await raw.put(path, {});
        expect([res.status, res.code], path).to.deep.equal([404, 'ERR_NOT_FOUND']);
      }
      expect((await raw.put(`/nodes/${raw.id}/ping`, {})).status).to.equal(200);
    } finally {
      await proxy.close();
    }
  });
});
