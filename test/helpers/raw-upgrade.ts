/**
 * A WebSocket upgrade request made by hand, for tests of refusals that come before any `101`
 * (docs/PROTOCOL.md §3.2): it reports whether the server upgraded, or the HTTP answer it gave instead.
 */
import http from 'node:http';

export type UpgradeOutcome =
  | { readonly upgraded: true }
  | { readonly upgraded: false; readonly status: number; readonly headers: http.IncomingHttpHeaders; readonly body: string };

/** Sends `GET <url>` with the upgrade headers of RFC 6455 and the given extra headers (e.g. Origin, Host). */
export function rawUpgrade(url: string, headers: Readonly<Record<string, string>> = {}): Promise<UpgradeOutcome> {
  return new Promise((resolve, reject) => {
    const request = http.request(url.replace(/^ws/, 'http'), {
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        ...headers,
      },
    });
    request.once('upgrade', (_response, socket) => {
      socket.destroy();
      resolve({ upgraded: true });
    });
    request.once('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('end', () =>
        resolve({ upgraded: false, status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      response.once('error', reject);
    });
    request.once('error', reject);
    request.end();
  });
}
