import { expect } from 'chai';
import { CompactSign, compactVerify, importJWK } from 'jose';
import { exportPrivate, newKeyPair } from '../../lib/security/keys.js';
import { checkClaims, newMessageId, readKid, sign, verify, type Claims } from '../../lib/wire/envelope.js';
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

  it('checkClaims binds audience, method and path, and the time window', () => {
    const nowS = Math.floor(Date.now() / 1000);
    const ok = { aud: 'alice', method: 'PUT', path: '/x', nowS };
    expect(() => checkClaims(claims(), ok)).not.to.throw();
    expect(thrown(() => checkClaims(claims({ aud: 'carol' }), ok)).code).to.equal('ERR_WRONG_AUDIENCE');
    expect(thrown(() => checkClaims(claims({ path: '/y' }), ok)).code).to.equal('ERR_WRONG_PATH');
    expect(thrown(() => checkClaims(claims({ iat: nowS - 600, exp: nowS - 570 }), ok)).code).to.equal('ERR_STALE');
    expect(thrown(() => checkClaims(claims({ iat: nowS + 600, exp: nowS + 630 }), ok)).code).to.equal('ERR_STALE');
    // within the skew either way is fine
    expect(() => checkClaims(claims({ iat: nowS + 10, exp: nowS + 40 }), ok)).not.to.throw();
  });
});
