import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WtdError } from '../errors.js';
import type { LogThrottle } from '../runtime/log-throttle.js';
import { checkConnectionLimits } from '../security/connection-guard.js';
import type { StreamServer } from './call-stream.js';
import { buildServer, type Dispatcher, type ServerLimits } from './server.js';

/** How long close() lets requests being answered finish. */
const CLOSE_GRACE_MS = 1000;

/** A node's HTTP server: started by `listen`, stopped by `close`, with `ERR_LISTEN` when its port cannot be had. */
export class Listener {
  readonly #dispatcher: Dispatcher;
  readonly #limits: ServerLimits;
  readonly #name: string;
  readonly #log: LogThrottle;
  #server: Server | undefined;
  #streams: StreamServer | undefined;
  #address: string | undefined;

  constructor(dispatcher: Dispatcher, limits: ServerLimits, name: string, log: LogThrottle) {
    checkConnectionLimits(limits);
    this.#dispatcher = dispatcher;
    this.#limits = limits;
    this.#name = name;
    this.#log = log;
  }

  /** Call streams open to this node now. */
  get streams(): number {
    return this.#streams?.size ?? 0;
  }

  get address(): string | undefined {
    return this.#address;
  }

  async listen(host: string, wanted: number): Promise<{ port: number; address: string }> {
    if (this.#server !== undefined)
      throw new WtdError('ERR_ALREADY_LISTENING', `node ${this.#name} is already listening at ${this.#address}`);
    const { server, streams } = await buildServer(this.#dispatcher, this.#limits, this.#log, this.#name);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new WtdError('ERR_LISTEN', `node ${this.#name} could not listen on ${host}:${wanted}: ${err.message}`, {
            cause: err,
          }),
        ),
      );
      server.listen(wanted, host, () => resolve());
    });
    server.removeAllListeners('error');
    const { port } = server.address() as AddressInfo;
    this.#server = server;
    this.#streams = streams;
    this.#address = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    return { port, address: this.#address };
  }

  /**
   * Stops serving: requests being answered finish (a message delivered is
   * acknowledged), for at most a second; idle connections close at once.
   */
  async close(): Promise<void> {
    const server = this.#server;
    const streams = this.#streams;
    this.#server = undefined;
    this.#streams = undefined;
    if (server === undefined) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    // Streams say bye (their callers send what was not answered again, elsewhere or later); cut with the rest.
    streams?.close();
    const force = setTimeout(() => {
      server.closeAllConnections();
      streams?.close(true);
    }, CLOSE_GRACE_MS);
    await closed;
    clearTimeout(force);
    this.#log.flush();
  }
}
