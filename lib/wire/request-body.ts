import type { IncomingMessage } from 'node:http';
import { WireError } from '../errors.js';

/**
 * Reads a signed request's body, for node and proxy alike: no compression
 * at most `limit` bytes (413: refused from the declared length before
 * anything else, and as soon as the body passes it), no compression (415),
 * content type `application/jose` (415). Returns the body as text.
 */
export async function readJwsBody(req: IncomingMessage, limit: number): Promise<string> {
  const tooLarge = (): WireError => new WireError('ERR_TOO_LARGE', 413, `the body is over ${limit} bytes`);
  if (Number(req.headers['content-length'] ?? '0') > limit) throw tooLarge();
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') {
    throw new WireError('ERR_UNSUPPORTED_MEDIA', 415, 'compressed bodies are not accepted');
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/jose') {
    throw new WireError(
      'ERR_UNSUPPORTED_MEDIA',
      415,
      'the body must be a compact JWS with content type application/jose',
    );
  }
  return await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      done();
      reject(tooLarge());
    };
    const onEnd = (): void => {
      done();
      resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    // A request cut off before its end (closed with no end): the caller logs it as one.
    const onClose = (): void => onError(new Error('the request was cut off before its body was in'));
    const done = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
