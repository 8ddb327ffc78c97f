import { CallTimeoutError, MaybeRanError, NodeDownError, WireError, WtdError } from '../errors.js';
import { every, type ClockTimer, type WallClock } from '../runtime/clock.js';
import type { Logger } from '../runtime/node.js';
import { MESSAGE_TTL_S, newClaims, newMessageId } from '../wire/claims.js';
import type {
  DeliveredRelay,
  DirectoryEntry,
  OutgoingRelay,
  PingAnswer,
  PingBody,
  PollAnswer,
  PingLimits,
  PollBody,
  RegisterAnswer,
  RegisterBody,
  RelayResult,
} from '../wire/relay.js';
import { ACK_BATCH, SEND_BATCH } from '../wire/relay.js';
import { relayStreamPath, type StreamOpenBody } from '../wire/relay-stream.js';
import { send, type HttpResponse } from './http-client.js';
import type { NodeIdentity } from './identity.js';
import type { Link } from './link.js';
import { DirectoryView, withinLimits, type DirectoryListener } from './proxy-directory.js';
import { refusalFrom } from './refusals.js';
import { RelayStreamClient } from './relay-stream-client.js';
import type { Arrival } from './server.js';

/**
 * Options for {@link WtdNode.joinProxy}.
 *
 * @example
 * ```ts
 * await bob.joinProxy({ url: 'http://proxy.example.org:14152', email: 'bob@example.org' });
 * ```
 */
export interface JoinOptions {
  /** The proxy's URL, e.g. `http://proxy.example.org:14152`. */
  url: string;
  /** The e-mail this node registers with. */
  email: string;
  /** How often to ping, in ms. Default 1000. */
  pingIntervalMs?: number;
  /**
   * Relay on one stream to the proxy (lines with a MAC, after one signed
   * opening) instead of one signed long poll after another. Default true;
   * a proxy that does not stream is polled.
   */
  stream?: boolean;
}

/** What a proxy client needs of its node. */
export interface ProxyClientDeps {
  identity: NodeIdentity;
  name: string;
  /** The node's incarnation: a random id picked when it started, sent with every ping (the proxy tells a restart by it). */
  incarnation?: string;
  /** Set when the node runs with encryption off: its pings say so, and the proxy's status page shows it. */
  plaintext?: boolean;
  clock: WallClock;
  logger: Logger;
  /**
   * What the node offers now, for the ping: its missions, and the key ids
   * it accepts messages under, most wanted first (what is past the proxy's
   * bounds is left out).
   */
  offers: () => Omit<PingBody, 'name' | 'since'>;
  /** Runs a request relayed to the node (through the same checks as a direct one). */
  dispatch: (method: string, path: string, jws: string, arrival: Arrival) => Promise<HttpResponse>;
}

interface Pending {
  resolve(res: HttpResponse): void;
  reject(err: Error): void;
}

interface Outgoing {
  message: OutgoingRelay;
  /** Epoch ms after which it is no longer worth sending. */
  deadline: number;
  /** How many times the proxy said its receiver does not accept it (yet). */
  refusals: number;
  /** Whether it went out in a poll once (the proxy may have it, even if that poll failed). */
  sent: boolean;
  resolve(): void;
  reject(err: Error): void;
}

/** Largest batch of relay messages in one request to the proxy, in bytes of JSON. */
const BATCH_BYTES = 256 * 1024;
/** Polls in flight at once: one held by the proxy, and new ones carrying messages. */
const POLLS_IN_FLIGHT = 3;
/** How long a poll may be held by the proxy, plus a margin: the client's timeout for it. */
const POLL_TIMEOUT_MS = 30_000;
/** How long a node with nothing to send waits before polling again after a poll came back. */
const REPOLL_AFTER_MS = 1;
/** How long to wait before opening a stream again after one ended, and after the proxy refused one, in ms. */
const STREAM_REOPEN_MS = 1000;
const STREAM_REFUSED_MS = 60_000;
/** How long a line on the stream may wait for its results before the stream is given up (they come within ms). */
const STREAM_RESULTS_MS = 2000;
/** How long acknowledgements wait on a stream for a line to go with (the next call, an answer). */
const STREAM_ACK_AFTER_MS = 20;
/** How many relayed message ids are kept to drop repeats (a repeat of an older one is caught by the replay window). */
const HANDLED_KEPT = 10_000;
/** How long to wait before polling again after the proxy could not be reached. */
const RETRY_MS = 1000;
/**
 * A request the proxy refused because its receiver does not accept its key
 * is sent again this many times, this far apart: a grant made a moment ago
 * (by another program on the receiver's machine) is accepted at the
 * receiver's next ping.
 */
const NOT_ACCEPTED_RETRIES = 2;
const NOT_ACCEPTED_RETRY_MS = 1000;
/** How long a caller waits for the proxy to say whether it took back a request, in ms. */
const CANCEL_TIMEOUT_MS = 2000;
/** Most pages of directory changes read at one ping (the rest are read at the next ones). */
const DIRECTORY_PAGES = 20;

/**
 * A node's membership of a proxy: registration, the ping that publishes
 * what the node offers and reads the directory, the long poll that brings
 * relayed requests and answers, and the outbox that sends them in batches.
 * Every request to the proxy is signed by the node key; the requests and
 * replies it relays are signed end to end by their senders, so the proxy
 * can delay or drop them but not forge or alter them.
 * @internal Made by {@link WtdNode.joinProxy}.
 */
export class ProxyClient {
  readonly url: string;
  readonly #deps: ProxyClientDeps;
  #proxyId = '';
  readonly #pending = new Map<string, Pending>();
  readonly #outbox: Outgoing[] = [];
  #inFlight = 0;
  readonly #exchanges = new Set<Promise<void>>();
  #acks: string[] = [];
  // Relayed requests already handled, by relay id, with when they can be forgotten.
  readonly #handled = new Map<string, number>();
  readonly #directory: DirectoryView;
  // The proxy's bounds of a ping, and the key ids the last ping said this node accepts.
  #limits: PingLimits | undefined;
  #published = new Set<string>();
  #trimmed = false;
  // The ping on its way, and the one to send after it (pings go one at a time, in order).
  #pingNow: Promise<DirectoryEntry[]> | undefined;
  #pingNext: Promise<DirectoryEntry[]> | undefined;
  // Requests waiting to be sent again after their receiver did not accept them.
  readonly #later = new Set<{ timer: NodeJS.Timeout; outgoing: Outgoing }>();
  #pinger: ClockTimer | undefined;
  readonly #abort = new AbortController();
  #stopped = false;
  // The stream to the proxy, when one is open; what was written on it waits for its results, in order.
  #useStream = false;
  #stream: RelayStreamClient | undefined;
  #streamOpening = false;
  #streamAt = 0;
  #reopen: ClockTimer | undefined;
  readonly #awaiting: { batch: Outgoing[]; ack: string[]; at: number }[] = [];
  // Ends the stream when the oldest line waits for its results longer than STREAM_RESULTS_MS.
  #resultsDue: ClockTimer | undefined;
  #ackTimer: NodeJS.Timeout | undefined;
  // Polls carrying messages on their way: the stream waits for them, so that what leaves stays in order.
  #sending = 0;

  readonly #email: string;

  private constructor(deps: ProxyClientDeps, url: string, email: string) {
    this.#deps = deps;
    this.#directory = new DirectoryView(deps.logger);
    this.url = url.replace(/\/+$/, '');
    this.#email = email;
  }

  /** Learns the proxy's id (the audience of every request to it) and registers this node's key. */
  async #register(): Promise<void> {
    let info: unknown;
    try {
      info = await this.#call('GET', '/id', undefined);
    } catch (err) {
      if (!(err instanceof NodeDownError)) throw err;
      throw new NodeDownError(this.url, { cause: err }, 'proxy');
    }
    this.#proxyId = String((info as { id?: unknown }).id ?? '');
    const body: RegisterBody = { email: this.#email, name: this.#deps.name, publicJwk: this.#deps.identity.publicJwk };
    const answer = (await this.#signed('/register', body)) as RegisterAnswer;
    this.#limits = answer.limits;
  }

  #rejoining: Promise<void> | undefined;

  /**
   * A proxy that no longer knows this node (it lost its store, or it is a
   * new proxy at the same address, with another id) refuses with 401: this
   * node registers again, once at a time.
   */
  #rejoin(): Promise<void> {
    this.#rejoining ??= this.#register()
      .catch(() => undefined)
      .finally(() => {
        this.#rejoining = undefined;
      });
    return this.#rejoining;
  }

  /** Registers the node with the proxy at `options.url`, pings once, and starts pinging and polling. */
  static async join(deps: ProxyClientDeps, options: JoinOptions): Promise<ProxyClient> {
    if (typeof options?.url !== 'string' || !/^https?:\/\/[^/]+/.test(options.url)) {
      throw new TypeError(`joinProxy({ url }) expects the proxy's http(s) URL, got ${JSON.stringify(options?.url)}`);
    }
    if (typeof options.email !== 'string' || !options.email.includes('@')) {
      throw new TypeError(`joinProxy({ email }) expects an e-mail address, got ${JSON.stringify(options.email)}`);
    }
    const client = new ProxyClient(deps, options.url, options.email);
    await client.#register();
    await client.ping();
    client.#pinger = every(deps.clock, options.pingIntervalMs ?? 1000, () => {
      client.ping().then(
        () => client.#recovered('ping'),
        (err: unknown) => {
          client.#failed('ping', err);
          if ((err as WireError).status === 401) void client.#rejoin();
        },
      );
    });
    client.#pinger.unref?.();
    client.#useStream = options.stream !== false;
    client.#kick();
    return client;
  }

  /** Whether the node relays on a stream to the proxy now (else it polls). */
  get streaming(): boolean {
    return this.#stream !== undefined;
  }

  /** The online nodes the proxy listed at the last ping, this node included. */
  directory(): DirectoryEntry[] {
    return this.#directory.entries();
  }

  /** Listens for nodes coming online (`nodeup`) or going offline (`nodedown`). */
  on(event: 'nodeup' | 'nodedown', listener: DirectoryListener): void {
    this.#directory.on(event, listener);
  }

  off(event: 'nodeup' | 'nodedown', listener: DirectoryListener): void {
    this.#directory.off(event, listener);
  }

  /**
   * Publishes what this node offers and reads the directory's changes since
   * the last ping (all its pages); resolves with the directory. Pings go one
   * at a time: one asked for while another is on its way is sent after it
   * (with what the node offers then), and asks made meanwhile share it.
   */
  ping(): Promise<DirectoryEntry[]> {
    if (this.#pingNext !== undefined) return this.#pingNext;
    if (this.#pingNow === undefined) {
      this.#pingNow = this.#pingPages().finally(() => (this.#pingNow = undefined));
      return this.#pingNow;
    }
    this.#pingNext = this.#pingNow
      .catch(() => undefined)
      .then(() => {
        this.#pingNext = undefined;
        return this.ping();
      });
    return this.#pingNext;
  }

  /** Whether the last ping told the proxy this node accepts messages signed under `kid`. */
  publishes(kid: string): boolean {
    return this.#published.has(kid);
  }

  async #pingPages(): Promise<DirectoryEntry[]> {
    const path = `/nodes/${this.#deps.identity.id}/ping`;
    for (let page = 0; page < DIRECTORY_PAGES; page++) {
      const offers = this.#offers();
      const body: PingBody = {
        name: this.#deps.name,
        ...offers,
        ...(this.#deps.incarnation === undefined ? {} : { incarnation: this.#deps.incarnation }),
        ...(this.#deps.plaintext === true ? { plaintext: true } : {}),
        ...(this.#directory.cursor === undefined ? {} : { since: this.#directory.cursor }),
      };
      const answer = (await this.#signed(path, body)) as PingAnswer;
      if (!Array.isArray(answer.changes) || typeof answer.cursor !== 'string') {
        throw new WireError('ERR_BAD_PROXY', 502, `the proxy at ${this.url} answered a ping with no directory changes`);
      }
      this.#published = new Set(offers.accepts);
      if (this.#stopped) break;
      this.#directory.apply(answer);
      if (answer.more !== true) break;
    }
    return this.directory();
  }

  /** What the node offers, within the proxy's bounds: what does not fit is left out (and said once). */
  #offers(): Omit<PingBody, 'name' | 'since'> {
    const offers = this.#deps.offers();
    const kept = this.#limits === undefined ? offers : withinLimits(offers, this.#limits);
    if (
      !this.#trimmed &&
      (kept.missions.length < offers.missions.length || kept.accepts.length < offers.accepts.length)
    ) {
      this.#trimmed = true;
      this.#deps.logger.error(
        `the proxy at ${this.url} takes ${this.#limits!.missions} missions and ${this.#limits!.accepts} accepted keys ` +
          `a ping: ${offers.missions.length - kept.missions.length} missions and ` +
          `${offers.accepts.length - kept.accepts.length} keys were left out`,
      );
    }
    return kept;
  }

  /** A link to node `nodeId` through this proxy. */
  link(nodeId: string): Link {
    return {
      key: `${this.url}#${nodeId}`,
      request: (path, jws, timeoutMs, signal) => this.request(nodeId, path, jws, timeoutMs, signal),
    };
  }

  /**
   * Relays `PUT path` with `jws` to `to` and waits for its answer, relayed
   * back. At `timeoutMs`, or when `signal` aborts, the request is taken
   * back: still here, or still queued at the proxy and not yet handed to
   * `to`, it did not run (`ERR_CALL_TIMEOUT`, `ERR_CALL_CANCELLED`);
   * handed over already, or if the proxy cannot say, it may have
   * (`ERR_MAYBE_RAN`).
   */
  request(to: string, path: string, jws: string, timeoutMs: number, signal?: AbortSignal): Promise<HttpResponse> {
    if (this.#stopped) return Promise.reject(new WtdError('ERR_NO_PROXY', 'this node has left the proxy'));
    const id = newMessageId();
    const target = `node ${to} through ${this.url}`;
    if (signal?.aborted === true) return Promise.reject(callCancelled(target));
    return new Promise<HttpResponse>((resolve, reject) => {
      const settle = (): void => {
        timer.cancel();
        signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
      };
      const giveUp = (notRun: Error, why: string): void => {
        timer.cancel();
        signal?.removeEventListener('abort', onAbort);
        const pending = this.#pending.get(id);
        if (pending === undefined) return;
        // Not yet given to the proxy: taken back here.
        if (this.#takeBack(outgoing)) {
          pending.reject(notRun);
          return;
        }
        this.#cancel(to, id).then(
          (cancelled) =>
            this.#pending
              .get(id)
              ?.reject(cancelled ? notRun : new MaybeRanError(target, `${why}, after the proxy had handed it over`)),
          (err: unknown) =>
            this.#pending
              .get(id)
              ?.reject(new MaybeRanError(target, `${why}, and the proxy could not take it back`, { cause: err })),
        );
      };
      const timer = this.#deps.clock.setTimer(
        () => giveUp(new CallTimeoutError(target, timeoutMs), `no answer came within ${timeoutMs} ms`),
        timeoutMs,
      );
      const onAbort = (): void => giveUp(callCancelled(target), 'the caller gave it up');
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        resolve: (res) => {
          settle();
          resolve(res);
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      });
      // Given up later than this, on a timer: by then it is defined.
      const outgoing = this.#enqueue(
        { id, kind: 'request', to, path, jws },
        this.#deps.clock.now() + timeoutMs,
        (err) => this.#pending.get(id)?.reject(err),
      );
    });
  }

  /** Takes back a message not yet given to the proxy (in the outbox, or waiting to be sent again); true if it was. */
  #takeBack(o: Outgoing): boolean {
    const at = this.#outbox.indexOf(o);
    if (at >= 0) {
      // Waiting to go out again after a poll that failed: the proxy may have it from that poll.
      this.#outbox.splice(at, 1);
      return !o.sent;
    }
    for (const later of this.#later) {
      if (later.outgoing !== o) continue;
      clearTimeout(later.timer);
      this.#later.delete(later);
      return true;
    }
    return false;
  }

  /**
   * Asks the proxy to drop request `re` to `to` if it has not handed it
   * over yet: true if it did (the request never reaches `to`).
   */
  #cancel(to: string, re: string): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.#enqueue(
        { id: newMessageId(), kind: 'cancel', to, re },
        this.#deps.clock.now() + CANCEL_TIMEOUT_MS,
        (err) => (err instanceof WireError && err.code === 'ERR_MAYBE_RAN' ? resolve(false) : reject(err)),
        () => resolve(true),
      );
    });
  }

  /** Stops pinging and polling; calls waiting for answers fail with `ERR_NO_PROXY`. */
  async leave(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#pinger?.cancel();
    clearTimeout(this.#ackTimer);
    this.#reopen?.cancel();
    this.#resultsDue?.cancel();
    this.#stream?.close();
    this.#abort.abort(new WtdError('ERR_NO_PROXY', 'this node has left the proxy'));
    await Promise.all(this.#exchanges);
    for (const later of this.#later) {
      clearTimeout(later.timer);
      later.outgoing.reject(new WtdError('ERR_NO_PROXY', 'this node has left the proxy'));
    }
    this.#later.clear();
    for (const p of this.#pending.values()) p.reject(new WtdError('ERR_NO_PROXY', 'this node has left the proxy'));
    for (const o of this.#outbox.splice(0)) o.reject(new WtdError('ERR_NO_PROXY', 'this node has left the proxy'));
  }

  // Failures are logged once per outage, not once a second.
  readonly #down = new Set<string>();

  #failed(what: string, err: unknown): void {
    if (this.#stopped || this.#down.has(what)) return;
    this.#down.add(what);
    this.#deps.logger.error(`proxy ${what} to ${this.url} failed, retrying: ${(err as Error).message}`);
  }

  #recovered(what: string): void {
    this.#down.delete(what);
  }

  /**
   * Keeps one poll outstanding, and starts another at once when there is
   * something to send: a poll carries the node's outgoing messages and the
   * acknowledgement of what the last one brought, and the proxy answers the
   * one it held with nothing (a new poll releases the old). A relayed call
   * thus costs each side one signed request.
   */
  #kick(): void {
    if (this.#stopped) return;
    if (this.#stream === undefined) this.#openStream();
    if (this.#stream !== undefined) {
      // What polls carry goes first; the stream takes over once they are answered.
      if (this.#sending === 0) this.#streamOut();
      return;
    }
    while (this.#inFlight === 0 || (this.#outbox.length > 0 && this.#inFlight < POLLS_IN_FLIGHT)) {
      const batch = this.#nextBatch();
      const ack = this.#acks.splice(0, ACK_BATCH);
      this.#inFlight++;
      const carries = batch.length > 0;
      if (carries) this.#sending++;
      const exchange = this.#exchange(ack, batch).finally(() => {
        this.#exchanges.delete(exchange);
        this.#inFlight--;
        if (carries) this.#sending--;
        // Poll again after a moment, not at once: the answers to the
        // requests it brought, or this node's next call, are usually ready
        // by then and leave with that poll (which also acknowledges), so a
        // call costs each side one signed request rather than two.
        setTimeout(() => this.#kick(), REPOLL_AFTER_MS);
      });
      this.#exchanges.add(exchange);
    }
  }

  /** The next batch of the outbox, marked sent: what one poll or line carries. */
  #nextBatch(): Outgoing[] {
    let bytes = 0;
    let n = 0;
    while (n < this.#outbox.length && n < SEND_BATCH && (n === 0 || bytes < BATCH_BYTES)) {
      const m = this.#outbox[n]!.message;
      bytes += (m.kind === 'request' ? m.jws.length : m.kind === 'response' ? m.text.length : 0) + 200;
      n++;
    }
    const batch = this.#outbox.splice(0, n);
    for (const o of batch) o.sent = true;
    return batch;
  }

  /** Opens the stream to the proxy, unless one is open or opening, or it is not time to try again. */
  #openStream(): void {
    if (!this.#useStream || this.#streamOpening || this.#stopped || this.#deps.clock.now() < this.#streamAt) return;
    this.#streamOpening = true;
    const { identity, clock } = this.#deps;
    const path = relayStreamPath(identity.id);
    const key = RelayStreamClient.newKey();
    const body: StreamOpenBody = { key: key.publicKey };
    const claims = newClaims<'proxy'>(clock, { aud: this.#proxyId, iss: identity.id, method: 'PUT', path, body });
    let stream: RelayStreamClient | undefined;
    void identity
      .sign('proxy', claims)
      .then((jws) =>
        RelayStreamClient.open(
          { url: this.url, path, key, jws, id: claims.id, proxy: this.#proxyId, node: identity.id, clock },
          {
            line: (json) => this.#streamLine(json),
            idle: () => this.#streamOut(true),
            closed: () => {
              if (stream !== undefined && this.#stream === stream) this.#streamLost();
            },
          },
        ),
      )
      .then(
        (opened) => {
          this.#streamOpening = false;
          if (opened instanceof RelayStreamClient) {
            if (this.#stopped || opened.closed) return opened.close();
            stream = opened;
            this.#stream = opened;
            this.#kick();
            return;
          }
          // Refused, or not reached: polls carry on; a proxy that does not stream is asked again much later.
          this.#openLater(opened.status === 0 ? 5 * STREAM_REOPEN_MS : STREAM_REFUSED_MS);
          if (opened.status === 401) void this.#rejoin();
        },
        () => {
          this.#streamOpening = false;
          this.#openLater(STREAM_REFUSED_MS);
        },
      );
  }

  /** Writes what the outbox holds on the stream, with the acknowledgements; `idle`: an empty line even if nothing. */
  #streamOut(idle = false): void {
    const stream = this.#stream;
    if (stream === undefined) return;
    // While polls carrying messages are on their way, what follows them waits (it leaves in order).
    while (this.#outbox.length > 0 && this.#sending === 0) this.#writeLine(stream, this.#nextBatch());
    if (idle) this.#writeLine(stream, []);
    else if (this.#acks.length > 0 && this.#ackTimer === undefined) {
      // Acknowledgements alone wait a moment: an answer about to leave takes them along.
      this.#ackTimer = setTimeout(() => {
        this.#ackTimer = undefined;
        if (this.#stream !== undefined && this.#acks.length > 0 && this.#sending === 0) {
          this.#writeLine(this.#stream, []);
        }
      }, STREAM_ACK_AFTER_MS);
    }
  }

  #writeLine(stream: RelayStreamClient, batch: Outgoing[]): void {
    const ack = this.#acks.splice(0, ACK_BATCH);
    // A line with no message is not answered. Its acknowledgements, if the stream is lost, are not said
    // again: what they acknowledged comes again on the next stream, and is dropped as a repeat.
    if (batch.length > 0) {
      this.#awaiting.push({ batch, ack, at: this.#deps.clock.now() });
      if (this.#awaiting.length === 1) this.#armResults();
    }
    const body: PollBody = { ack, messages: batch.map((o) => o.message) };
    stream.write(JSON.stringify(body));
  }

  /** A line of the proxy's: the results of the oldest line not yet answered, or messages for this node. */
  #streamLine(json: string): void {
    let line: { results?: unknown; messages?: unknown };
    try {
      line = JSON.parse(json) as typeof line;
    } catch {
      this.#stream?.close('the proxy sent a line that is not JSON');
      return;
    }
    if (Array.isArray(line.results)) {
      for (const results of line.results as unknown[]) {
        const sent = this.#awaiting.shift();
        if (sent === undefined || !Array.isArray(results)) {
          this.#stream?.close('the proxy sent results for no line');
          return;
        }
        this.#settle(sent.batch, results as RelayResult[]);
      }
      this.#armResults();
    }
    if (Array.isArray(line.messages)) {
      for (const m of line.messages as DeliveredRelay[]) {
        this.#acks.push(m.id);
        this.#receive(m);
      }
      this.#kick();
    }
  }

  /**
   * The stream ended: what was written on it and not answered is sent again
   * (the proxy drops repeats of what it took), while it is still wanted; the
   * node polls until a new stream is open.
   */
  #streamLost(): void {
    this.#stream = undefined;
    this.#resultsDue?.cancel();
    this.#resultsDue = undefined;
    const now = this.#deps.clock.now();
    const again: Outgoing[] = [];
    for (const { batch, ack } of this.#awaiting.splice(0)) {
      this.#acks.push(...ack);
      for (const o of batch) {
        if (o.deadline > now) again.push(o);
        // Written, and no longer wanted: the proxy may have taken it (a request may have run).
        else o.reject(new MaybeRanError(`node ${o.message.to} through ${this.url}`, 'the stream to the proxy broke'));
      }
    }
    this.#outbox.unshift(...again);
    if (this.#stopped) return;
    this.#openLater(STREAM_REOPEN_MS);
    this.#kick();
  }

  /** Watches the oldest line waiting for its results: a proxy that does not answer it in time ends the stream. */
  #armResults(): void {
    this.#resultsDue?.cancel();
    this.#resultsDue = undefined;
    const oldest = this.#awaiting[0];
    if (oldest === undefined || this.#stream === undefined) return;
    const stream = this.#stream;
    this.#resultsDue = this.#deps.clock.setTimer(
      () => {
        this.#resultsDue = undefined;
        if (this.#stream === stream && this.#awaiting[0] === oldest) {
          stream.close(`the proxy did not answer a line in ${STREAM_RESULTS_MS} ms`);
        }
      },
      oldest.at + STREAM_RESULTS_MS - this.#deps.clock.now(),
    );
    this.#resultsDue.unref?.();
  }

  /** Tries to open a stream again in `ms` (polls carry what there is meanwhile). */
  #openLater(ms: number): void {
    this.#streamAt = this.#deps.clock.now() + ms;
    this.#reopen?.cancel();
    this.#reopen = this.#deps.clock.setTimer(() => {
      this.#reopen = undefined;
      // Its time has come, whatever the wall clock says (a timer may fire a millisecond early by it).
      this.#streamAt = 0;
      this.#kick();
    }, ms);
    this.#reopen.unref?.();
  }

  async #exchange(ack: string[], batch: Outgoing[]): Promise<void> {
    let res: PollAnswer;
    try {
      const body: PollBody = { ack, messages: batch.map((o) => o.message) };
      res = (await this.#signed(`/nodes/${this.#deps.identity.id}/poll`, body, POLL_TIMEOUT_MS)) as PollAnswer;
      this.#recovered('poll');
    } catch (err) {
      // Refused outright: those messages fail. Not reached, not known (401: registered again below), or
      // this very poll taken already (a resend after its answer was lost; its messages went in with it):
      // sent again in a new poll, whose repeats the proxy drops.
      if (this.#stopped || (err instanceof WireError && err.status !== 401 && err.code !== 'ERR_REPLAY')) {
        for (const o of batch) o.reject(err as Error);
      } else {
        // The proxy may or may not have taken them: send them again with the
        // same ids (it drops repeats), while they are still wanted.
        const now = this.#deps.clock.now();
        const again = batch.filter((o) => o.deadline > now);
        for (const o of batch) if (o.deadline <= now) o.reject(err as Error);
        this.#outbox.unshift(...again);
      }
      // Not acknowledged: say so again on the next poll (the proxy ignores ids it already let go).
      this.#acks = ack.concat(this.#acks);
      if (this.#stopped) return;
      this.#failed('poll', err);
      if ((err as WireError).status === 401) await this.#rejoin();
      await new Promise((r) => setTimeout(r, RETRY_MS));
      return;
    }
    this.#settle(batch, res.results);
    for (const m of res.messages) {
      this.#acks.push(m.id);
      this.#receive(m);
    }
    if (res.retryMs !== undefined && !this.#stopped) await new Promise((r) => setTimeout(r, res.retryMs));
  }

  /** Each message of a batch taken or refused, as the proxy's results say. */
  #settle(batch: Outgoing[], results: RelayResult[]): void {
    batch.forEach((o, i) => {
      const r = results[i];
      if (r?.error === undefined) o.resolve();
      else if (r.error.code === 'ERR_PROXY_NOT_ACCEPTED' && this.#again(o)) return;
      else
        o.reject(
          refusalFrom({
            status: r.error.status,
            contentType: 'application/json',
            retryAfter: undefined,
            text: JSON.stringify({ error: r.error }),
          }),
        );
    });
  }

  /**
   * Sends a request its receiver did not accept again in a moment, a few
   * times, while it is still wanted: its key may be a grant made just now.
   */
  #again(o: Outgoing): boolean {
    if (o.message.kind !== 'request' || o.refusals >= NOT_ACCEPTED_RETRIES || this.#stopped) return false;
    if (o.deadline <= this.#deps.clock.now() + NOT_ACCEPTED_RETRY_MS) return false;
    o.refusals++;
    const later = {
      outgoing: o,
      timer: setTimeout(() => {
        this.#later.delete(later);
        this.#outbox.push(o);
        this.#kick();
      }, NOT_ACCEPTED_RETRY_MS),
    };
    this.#later.add(later);
    return true;
  }

  #receive(m: DeliveredRelay): void {
    if (m.kind === 'response') {
      this.#pending.get(m.re)?.resolve({
        status: Number(m.status),
        contentType: String(m.contentType ?? ''),
        retryAfter: m.retryAfter,
        text: String(m.text ?? ''),
      });
      return;
    }
    const now = this.#deps.clock.now();
    if ((this.#handled.get(m.id) ?? 0) > now) return; // delivered again after a lost acknowledgement
    this.#handled.delete(m.id);
    this.#handled.set(m.id, now + 2 * MESSAGE_TTL_S * 1000);
    // The map is in the order of expiry: what expired is at its front. Past its bound the oldest go
    // too (a repeat of one of them is still caught by the replay window).
    for (const [id, until] of this.#handled) {
      if (until > now && this.#handled.size <= HANDLED_KEPT) break;
      this.#handled.delete(id);
    }
    const from = String(m.from);
    const work = this.#deps
      .dispatch('PUT', String(m.path), String(m.jws), {
        relayed: { from, link: this.link(from) },
        source: `proxy:${from}`,
      })
      .then((answer) => {
        // A repeat that the replay window caught (after a restart of this node) was answered already.
        if (answer.status === 409 && codeOf(answer.text) === 'ERR_REPLAY') return;
        // Handed to the outbox: it leaves with the next poll (and is sent again until the proxy takes it).
        this.#enqueue(
          {
            id: newMessageId(),
            kind: 'response',
            to: from,
            re: m.id,
            status: answer.status,
            contentType: answer.contentType,
            text: answer.text,
            ...(answer.retryAfter === undefined ? {} : { retryAfter: answer.retryAfter }),
          },
          undefined,
          (err: unknown) => this.#unanswered(from, err),
        );
      })
      .catch((err: unknown) => this.#unanswered(from, err))
      .finally(() => this.#work.delete(work));
    this.#work.add(work);
  }

  #unanswered(from: string, err: unknown): void {
    if (!this.#stopped) {
      this.#deps.logger.error(`could not answer a relayed request from ${from}: ${(err as Error).message}`);
    }
  }

  // Relayed requests being handled, until their answers are in the outbox.
  readonly #work = new Set<Promise<void>>();

  /** Resolves once every relayed request that arrived has been handled and its answer is on its way. */
  async onIdle(): Promise<void> {
    while (this.#work.size > 0) await Promise.allSettled([...this.#work]);
  }

  /** How many relayed requests are being handled. */
  get size(): number {
    return this.#work.size;
  }

  /**
   * Puts `message` in the outbox; `failed` is told if it cannot be sent
   * (refused, or no longer wanted by `deadline`), `taken` once the proxy
   * took it.
   */
  #enqueue(
    message: OutgoingRelay,
    deadline: number | undefined,
    failed: (err: Error) => void,
    taken: () => void = () => undefined,
  ): Outgoing {
    const outgoing: Outgoing = {
      message,
      refusals: 0,
      sent: false,
      resolve: taken,
      reject: failed,
      deadline: deadline ?? this.#deps.clock.now() + MESSAGE_TTL_S * 1000,
    };
    this.#outbox.push(outgoing);
    this.#kick();
    return outgoing;
  }

  /** A request to the proxy signed by the node key, with its own typ, id and time. */
  async #signed(path: string, body: unknown, timeoutMs = 10_000): Promise<unknown> {
    const { identity, clock } = this.#deps;
    const claims = newClaims<'proxy'>(clock, { aud: this.#proxyId, iss: identity.id, method: 'PUT', path, body });
    return this.#call('PUT', path, await identity.sign('proxy', claims), timeoutMs);
  }

  async #call(method: 'GET' | 'PUT', path: string, jws: string | undefined, timeoutMs = 10_000): Promise<unknown> {
    const res = await send(`${this.url}${path}`, jws ?? '', timeoutMs, { method, signal: this.#abort.signal });
    let parsed: { error?: { code?: string; message?: string } } & Record<string, unknown>;
    try {
      parsed = JSON.parse(res.text) as typeof parsed;
    } catch {
      throw new WireError('ERR_BAD_PROXY', 502, `the proxy at ${this.url} answered ${res.status} with no JSON`);
    }
    if (res.status >= 400 || parsed.error !== undefined) throw refusalFrom(res);
    return parsed;
  }
}

function callCancelled(target: string): WtdError {
  return new WtdError(
    'ERR_CALL_CANCELLED',
    `the call to ${target} was given up before it was handed over; it did not run`,
  );
}

/** The code of a JSON refusal's text, if it has one. */
function codeOf(text: string): unknown {
  try {
    return (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
  } catch {
    return undefined;
  }
}
