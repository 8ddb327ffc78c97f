import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { expect } from 'chai';
import { NodeDownError, WireError } from '../../lib/index.js';
import { send } from '../../lib/transport/http-client.js';
import { rejection } from '../fixtures/helpers.js';

/** A server that answers `ok`, except that it drops the sockets of the requests `drop` picks, unanswered. */
async function server(
  drop: (n: number) => boolean,
): Promise<{ url: string; requests: number; sockets: Set<Socket>; close(): Promise<void> }> {
  const state = { requests: 0, sockets: new Set<Socket>() };
  const s: Server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    state.requests++;
    req.resume();
    if (drop(state.requests)) req.socket.destroy();
    else res.end('ok');
  });
  s.on('connection', (c) => state.sockets.add(c));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/x`,
    get requests() {
      return state.requests;
    },
    sockets: state.sockets,
    close: async () => {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    },
  };
}

describe('send(url, body, timeoutMs): a kept-alive socket the other side closed', () => {
  it('a request that fails on a reused socket before any answer is sent again once, on a fresh connection', async () => {
    // The second request finds its kept-alive socket dropped, as after a restart of the other side.
    const srv = await server((n) => n === 2);
    try {
      expect((await send(srv.url, 'one', 5000)).text).to.equal('ok');
      expect((await send(srv.url, 'two', 5000)).text).to.equal('ok');
      expect(srv.requests).to.equal(3);
      expect(srv.sockets.size).to.equal(2);
    } finally {
      await srv.close();
    }
  });

  it('is not sent a third time, and a failure on a fresh connection is not retried: ERR_NODE_DOWN', async () => {
    const srv = await server((n) => n >= 2);
    try {
      expect((await send(srv.url, 'one', 5000)).text).to.equal('ok');
      const err = await rejection(send(srv.url, 'two', 5000));
      expect(err).to.be.instanceOf(NodeDownError);
      expect(err.code).to.equal('ERR_NODE_DOWN');
      expect(srv.requests).to.equal(3);
    } finally {
      await srv.close();
    }
    const fresh = await server(() => true);
    try {
      const err = await rejection(send(fresh.url, 'only', 5000));
      expect(err.code).to.equal('ERR_NODE_DOWN');
      expect(fresh.requests).to.equal(1);
    } finally {
      await fresh.close();
    }
  });
});

describe('send(url, body, timeoutMs, { maxBytes }): an answer too large to be honest', () => {
  it('is not read into memory: ERR_BAD_REPLY once it passes maxBytes (16 MiB by default)', async () => {
    const big: Server = createServer((req, res) => {
      req.resume();
      res.end(Buffer.alloc(2 * 1024 * 1024, 120));
    });
    await new Promise<void>((r) => big.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(big.address() as AddressInfo).port}/`;
      const err = await rejection(send(url, 'x', 5000, { maxBytes: 1024 * 1024 }));
      expect(err).to.be.instanceOf(WireError);
      expect(err.code).to.equal('ERR_BAD_REPLY');
      expect((await send(url, 'x', 5000)).text).to.have.length(2 * 1024 * 1024);
    } finally {
      big.closeAllConnections();
      await new Promise<void>((r) => big.close(() => r()));
    }
  });
});
