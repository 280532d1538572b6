/**
 * A real loopback TCP proxy that tests put between a client and the server to break the network in
 * the ways real networks break: drop every connection now, or keep connections open but pass nothing
 * (a NAT that forgot the flow, a laptop that lost Wi-Fi without noticing, Chromium offline).
 */
import net from 'node:net';

export type ProxyMode =
  /** Forward bytes both ways. */
  | 'pass'
  /** Keep every connection open, accept new ones, and forward nothing in either direction. */
  | 'silent';

export interface TcpProxy {
  /** The proxy's port on 127.0.0.1. */
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  setMode(mode: ProxyMode): void;
  /** Calls `listener` for every chunk forwarded from the server to the client. */
  onDownstream(listener: (chunk: Buffer) => void): () => void;
  /** Destroys every open connection at once (both sides see the TCP connection die). */
  dropAll(): void;
  /**
   * Resets every open connection at once: an RST to both sides, as from a middlebox that forgot the
   * flow, so that each peer sees ECONNRESET rather than an orderly close.
   */
  resetAll(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let mode: ProxyMode = 'pass';
  let accepted = 0;
  const pairs = new Set<[net.Socket, net.Socket]>();
  const downstreamListeners = new Set<(chunk: Buffer) => void>();

  const server = net.createServer((downstream) => {
    accepted++;
    const upstream = net.connect(targetPort, targetHost);
    const pair: [net.Socket, net.Socket] = [downstream, upstream];
    pairs.add(pair);
    const forward = (from: net.Socket, to: net.Socket) => {
      from.on('data', (chunk: Buffer) => {
        // In silent mode bytes are swallowed: the sockets stay open and nothing reaches the peer.
        if (mode !== 'pass' || to.destroyed) return;
        to.write(chunk);
        if (to === downstream) for (const listener of downstreamListeners) listener(chunk);
      });
    };
    forward(downstream, upstream);
    forward(upstream, downstream);
    const teardown = () => {
      pairs.delete(pair);
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on('close', teardown).on('error', teardown);
    upstream.on('close', teardown).on('error', teardown);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address');

  const dropAll = () => {
    for (const [downstream, upstream] of pairs) {
      downstream.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  const resetAll = () => {
    for (const [downstream, upstream] of pairs) {
      downstream.resetAndDestroy();
      upstream.resetAndDestroy();
    }
    pairs.clear();
  };
  return {
    port: address.port,
    get accepted() {
      return accepted;
    },
    onDownstream(listener) {
      downstreamListeners.add(listener);
      return () => downstreamListeners.delete(listener);
    },
    setMode(next) {
      mode = next;
    },
    dropAll,
    resetAll,
    close() {
      dropAll();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
