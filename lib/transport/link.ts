import { send, type HttpResponse, type StreamReader } from './http-client.js';

/**
 * How signed requests reach another node: straight over HTTP to its
 * address, or relayed through a proxy both nodes joined. Either way the
 * request and its answer are the same bytes.
 */
export interface Link {
  /** Names the route, for the per-destination queues and for messages. */
  readonly key: string;
  /**
   * PUTs `jws` to `path` on the other node and returns its answer (`signal`
   * abandons it). `stream` reads a streamed answer as it comes (a direct
   * link only: a relayed answer comes whole, and is read whole).
   */
  request(
    path: string,
    jws: string,
    timeoutMs: number,
    signal?: AbortSignal,
    stream?: StreamReader,
  ): Promise<HttpResponse>;
  /** Lets go of what the link holds open (a stream of calls), once what is on its way on it is answered. */
  close?(): void;
}

/** A link straight to a node's HTTP address. */
export function directLink(address: string): Link {
  const base = address.replace(/\/+$/, '');
  return {
    key: base,
    request: (path, jws, timeoutMs, signal, stream) =>
      send(`${base}${path}`, jws, timeoutMs, { signal, atMostOnce: true, ...(stream === undefined ? {} : { stream }) }),
  };
}
