import { expect } from 'chai';
import { SqliteGrantStore, parseRate } from '../../lib/index.js';
import { RateLimiter } from '../../lib/security/rate-limiter.js';
import { thrown } from '../fixtures/helpers.js';

describe('RateLimiter.take(kid, rate, nowMs) and parseRate(text)', () => {
  it('allows a burst, then one call per interval/count, and says how long to wait', () => {
    const limiter = new RateLimiter();
    const rate = { count: 2, intervalMs: 1000, burst: 3 };
    expect([0, 1, 2].map(() => limiter.take('k', rate, 0))).to.deep.equal([0, 0, 0]);
    expect(limiter.take('k', rate, 0)).to.equal(500);
    expect(limiter.take('k', rate, 499)).to.be.greaterThan(0);
    expect(limiter.take('k', rate, 500)).to.equal(0);
    expect(limiter.take('other', rate, 500)).to.equal(0);
  });

  it('reads rates and refuses nonsense', () => {
    expect(parseRate('10/s')).to.deep.equal({ count: 10, intervalMs: 1000, burst: 10 });
    expect(parseRate('100/min', 5)).to.deep.equal({ count: 100, intervalMs: 60_000, burst: 5 });
    expect(parseRate(' 5 / h ')).to.deep.equal({ count: 5, intervalMs: 3_600_000, burst: 5 });
    for (const bad of ['', 'fast', '10', '0/s', '-1/s', '10/week'])
      expect(thrown(() => parseRate(bad))).to.be.instanceOf(RangeError);
  });
});

describe('SqliteGrantStore', () => {
  it('remembers message ids until they expire (the replay window)', () => {
    const store = new SqliteGrantStore(':memory:');
    expect(store.remember('a', 100)).to.equal(true);
    expect(store.remember('a', 100)).to.equal(false);
    store.prune(50);
    expect(store.remember('a', 100)).to.equal(false);
    store.prune(101);
    expect(store.remember('a', 200)).to.equal(true);
    store.close();
  });

  it('refuses a second grant for the same key with ERR_GRANT_EXISTS', () => {
    const store = new SqliteGrantStore(':memory:');
    const g = {
      kid: 'k',
      label: '',
      missions: ['m'],
      publicJwk: {},
      rate: { count: 1, intervalMs: 1000, burst: 1 },
      expiresAt: null,
      createdAt: 0,
      revokedAt: null,
      uses: 0,
      lastUsedAt: null,
      iss: null,
      messageRate: null,
    };
    store.addGrant(g);
    expect(thrown(() => store.addGrant(g)).code).to.equal('ERR_GRANT_EXISTS');
    expect(store.revoke('k', 5)).to.equal(true);
    expect(store.revoke('missing', 5)).to.equal(false);
    expect(store.getGrant('k')!.revokedAt).to.equal(5);
    store.close();
  });
});
