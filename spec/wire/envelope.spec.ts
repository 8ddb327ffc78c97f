import { expect } from 'chai';
import { CompactSign, compactVerify, importJWK } from 'jose';
import { exportPrivate, newKeyPair } from '../../lib/security/keys.js';
import { ManualClock } from '../../lib/index.js';
import { checkTime } from '../../lib/security/authenticate.js';
import { newMessageId, type CallClaims as Claims } from '../../lib/wire/claims.js';
import { readKid, sign, verify } from '../../lib/wire/envelope.js';
import { thrown, rejection } from '../fixtures/helpers.js';

function claims(over: Partial<Claims> = {}): Claims {
  const nowS = Math.floor(Date.now() / 1000);
  return {
    id: newMessageId(),
    iat: nowS,
    exp: nowS + 30,
    aud: 'alice',
    iss: 'bob',
    method: 'PUT',
    path: '/x',
    body: { json: [] },
    ...over,
  };
}

describe('JWS envelope: sign(kind, claims, key, kid) / readKid(jws, kind) / verify(jws, key)', () => {
  it("makes standard compact JWS: jose verifies ours and we verify jose's", async () => {
    const pair = await newKeyPair();
    const c = claims();
    const ours = await sign('call', c, pair.privateKey, pair.thumbprint);
    const joseKey = await importJWK({ ...pair.publicJwk, alg: 'EdDSA' }, 'EdDSA');
    const { payload, protectedHeader } = await compactVerify(ours, joseKey, { algorithms: ['EdDSA'] });
    expect(JSON.parse(new TextDecoder().decode(payload))).to.deep.equal(c);
    expect(protectedHeader).to.deep.equal({ alg: 'EdDSA', typ: 'wtd-call+jws', kid: pair.thumbprint });
    const josePrivate = await importJWK({ ...(await exportPrivate(pair)), alg: 'EdDSA' }, 'EdDSA');
    const theirs = await new CompactSign(new TextEncoder().encode(JSON.stringify(c)))
      .setProtectedHeader({ alg: 'EdDSA', typ: 'wtd-reply+jws', kid: 'k' })
      .sign(josePrivate);
    expect(readKid(theirs, 'reply')).to.equal('k');
    expect(await verify(theirs, pair.publicKey)).to.deep.equal(c);
  });

  it('refuses another key, a wrong typ and malformed claims', async () => {
    const a = await newKeyPair();
    const b = await newKeyPair();
    const jws = await sign('call', claims(), a.privateKey, 'k');
    expect((await rejection(verify(jws, b.publicKey))).code).to.equal('ERR_BAD_SIGNATURE');
    expect(thrown(() => readKid(jws, 'reply')).code).to.equal('ERR_BAD_JWS');
    expect(thrown(() => readKid('not a jws', 'call')).code).to.equal('ERR_BAD_JWS');
    const bad = await sign('call', { ...claims(), id: 'short' }, a.privateKey, 'k');
    expect((await rejection(verify(bad, a.publicKey))).code).to.equal('ERR_BAD_JWS');
  });

  it('checkTime(claims, clock): not issued in the future, not expired, not long-lived, exp after iat', () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const nowS = Math.floor(clock.now() / 1000);
    const at = (iat: number, exp: number) => () => checkTime({ iat, exp }, clock);
    expect(at(nowS, nowS + 30)).not.to.throw();
    // within the skew either way is fine
    expect(at(nowS + 10, nowS + 40)).not.to.throw();
    expect(at(nowS - 80, nowS - 20)).not.to.throw();
    for (const [iat, exp] of [
      [nowS - 600, nowS - 570],
      [nowS + 600, nowS + 630],
      [nowS, nowS + 86_400],
      [nowS + 20, nowS + 10],
    ] as const) {
      expect(thrown(at(iat, exp)).code, `${iat - nowS}..${exp - nowS}`).to.equal('ERR_STALE');
    }
    // The same message goes stale as the clock moves on.
    clock.advance(61_000);
    expect(thrown(at(nowS, nowS + 30)).code).to.equal('ERR_STALE');
  });
});
