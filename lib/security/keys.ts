import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { WtdError } from '../errors.js';

/** An Ed25519 key pair, with its public half as a JWK and its RFC 7638 thumbprint. */
export interface KeyPair {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
  /** The RFC 7638 thumbprint of the public key (base64url SHA-256). */
  thumbprint: string;
}

/** A node id: the first 16 characters of its key's thumbprint (96 bits), stable for the key's life. */
export function shortId(thumbprint: string): string {
  return thumbprint.slice(0, 16);
}

/** Makes a new Ed25519 key pair. */
export async function newKeyPair(): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  return fromKeys(privateKey, publicKey);
}

async function fromKeys(privateKey: CryptoKey, publicKey: CryptoKey): Promise<KeyPair> {
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicKey, publicJwk, thumbprint: await calculateJwkThumbprint(publicJwk) };
}

/** The private key as a JWK, to store or hand over in a grant file. */
export async function exportPrivate(pair: KeyPair): Promise<JWK> {
  return exportJWK(pair.privateKey);
}

/** Reads a key pair back from its private JWK. */
export async function importPrivate(jwk: JWK): Promise<KeyPair> {
  checkOkp(jwk, true);
  const privateKey = (await importJWK({ ...jwk, alg: 'EdDSA' }, 'EdDSA', { extractable: true })) as CryptoKey;
  const { d: _d, ...pub } = jwk;
  const publicKey = (await importJWK({ ...pub, alg: 'EdDSA' }, 'EdDSA')) as CryptoKey;
  return fromKeys(privateKey, publicKey);
}

/** Reads a public key from its JWK, checking that it is an Ed25519 public key. */
export async function importPublic(jwk: JWK): Promise<{ key: CryptoKey; thumbprint: string }> {
  checkOkp(jwk, false);
  const pub: JWK = { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
  const key = (await importJWK({ ...pub, alg: 'EdDSA' }, 'EdDSA')) as CryptoKey;
  return { key, thumbprint: await calculateJwkThumbprint(pub) };
}

function checkOkp(jwk: JWK, needPrivate: boolean): void {
  if (
    jwk === null ||
    typeof jwk !== 'object' ||
    jwk.kty !== 'OKP' ||
    jwk.crv !== 'Ed25519' ||
    typeof jwk.x !== 'string'
  ) {
    throw new WtdError('ERR_BAD_KEY', 'expected an Ed25519 key as a JWK ({ kty: "OKP", crv: "Ed25519", x, ... })');
  }
  if (needPrivate && typeof jwk.d !== 'string') throw new WtdError('ERR_BAD_KEY', 'expected a private key (with d)');
  if (!needPrivate && 'd' in jwk) {
    throw new WtdError('ERR_BAD_KEY', 'this is a private key; send only the public half (without d)');
  }
}
