/**
 * The network conditions layer (demo/network-conditions.mjs) for tests: a real loopback HTTP proxy
 * in front of the reference server that refuses, hangs, silences or buffers what passes through it.
 */
import { startNetworkConditions } from '../../demo/network-conditions.mjs';

export type NetworkProxy = Awaited<ReturnType<typeof startNetworkConditions>>;
export type Condition = Parameters<NetworkProxy['setCondition']>[0];

/** Starts the proxy in front of the server listening on `port` of 127.0.0.1. */
export function startNetworkProxy(port: number): Promise<NetworkProxy> {
  return startNetworkConditions({ target: { port } });
}
