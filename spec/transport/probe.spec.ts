import { expect } from 'chai';
import { WireError } from '../../lib/index.js';
import { EXECUTIONS_PER_GRANT } from '../../lib/transport/executions.js';
import { rejection } from '../fixtures/helpers.js';
import { Probe, probeRuns, withTwoNodes } from '../fixtures/remote.js';

describe('RemoteNode.probe(): PUT /probe, what a grant covers and how busy its node is', () => {
  const nodes = withTwoNodes();

  it('answers the grant’s missions and the requests running or waiting, and spends one token of the grant’s rate', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    expect(remote.missions).to.deep.equal(['probe']);
    const tokens = nodes.alice.rateState(nodes.grant.kid)!.tokens;
    expect(await remote.probe()).to.deep.equal({ missions: ['probe'], busy: 0 });
    expect(nodes.alice.rateState(nodes.grant.kid)!.tokens).to.equal(tokens - 1);

    let open!: () => void;
    Probe.gate = new Promise<void>((r) => (open = r));
    const calls = Array.from({ length: EXECUTIONS_PER_GRANT + 2 }, () => remote.call('Probe', 'slow'));
    await Probe.atGate(EXECUTIONS_PER_GRANT);
    expect((await remote.probe()).busy).to.be.at.least(EXECUTIONS_PER_GRANT);
    open();
    await Promise.all(calls);
    Probe.gate = Promise.resolve();
    expect(probeRuns.count).to.equal(EXECUTIONS_PER_GRANT + 2);
  });

  it('is refused as a call would be: a revoked grant ERR_GRANT_REVOKED, a key granted nothing ERR_UNKNOWN_KEY', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    nodes.alice.revoke(nodes.grant.kid);
    const revoked = await rejection(remote.probe());
    expect([revoked instanceof WireError, revoked.code]).to.deep.equal([true, 'ERR_GRANT_REVOKED']);
    const stranger = await nodes.bob.connect({ nodeKey: nodes.alice.publicJwk, address: nodes.alice.address! });
    expect(stranger.missions).to.equal(undefined);
    const unknown = await rejection(stranger.probe());
    expect([unknown instanceof WireError, unknown.code]).to.deep.equal([true, 'ERR_UNKNOWN_KEY']);
    expect(probeRuns.count).to.equal(0);
  });
});
