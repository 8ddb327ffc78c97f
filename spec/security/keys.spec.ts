import { expect } from 'chai';
import { calculateJwkThumbprint } from 'jose';
import { importPrivate, importPublic, newKeyPair, thumbprintOf } from '../../lib/security/keys.js';

describe('thumbprintOf(jwk): the RFC 7638 thumbprint of an Ed25519 public key', () => {
  it('gives the thumbprint of RFC 8037, appendix A.3', () => {
    const jwk = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };
    expect(thumbprintOf(jwk)).to.equal('kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
  });

  it('is what jose computes for new keys, and what importPublic and importPrivate give back', async () => {
    for (let i = 0; i < 20; i++) {
      const pair = await newKeyPair();
      expect(pair.thumbprint).to.equal(await calculateJwkThumbprint(pair.publicJwk));
      expect((await importPublic(pair.publicJwk)).thumbprint).to.equal(pair.thumbprint);
      expect((await importPrivate(pair.privateKey.export({ format: 'jwk' }))).thumbprint).to.equal(pair.thumbprint);
    }
  });

  it('reads only the required members, in their order: extra members and their order change nothing', () => {
    const x = '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo';
    expect(thumbprintOf({ x, kid: 'k1', use: 'sig', crv: 'Ed25519', kty: 'OKP' })).to.equal(
      'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k',
    );
  });
});
