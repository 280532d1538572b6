/**
 * Carriers (docs/PROTOCOL.md §7.5, protocol version 2): one downstream stream that carries the
 * streams of several sessions, so that the tabs of one browser hold one HTTP connection between them
 * instead of one each (a browser opens at most six per host over HTTP/1.1). Pure: the line format and
 * its limits, shared by client and server.
 *
 * A carrier's stream is a sequence of lines, `<channel> <batch>`: the channel names the session's
 * connection on the carrier, the batch is the text batch of §4.1 that connection would have had on a
 * stream of its own. JSON text holds no raw line break, so a line break always ends a line. The
 * channel `*` is the carrier's own: `{"k":…,"hb":…}` first (its id and heartbeat interval), `{}` as
 * its heartbeat, `{"code":…,"message":…}` when it is refused or ends.
 */

/** Header naming the carrier on its polls; its id is a secret, never in a URL (§3.4). */
export const CARRIER_HEADER = 'X-Unbroken-Carrier';

/** The channel of the carrier's own lines. */
export const CARRIER_CHANNEL = '*';

/** A channel id: chosen by the client, unique on its carrier. */
export const CHANNEL_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** A carrier id: 128 random bits or more, base64url, as the server's other secrets (§3.4). */
export const CARRIER_ID_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

/** What the carrier says on its own channel. */
export type CarrierNotice =
  | { readonly kind: 'open'; readonly id: string; readonly hb: number }
  | { readonly kind: 'hb' }
  | { readonly kind: 'end'; readonly code: string; readonly message: string };

/** One line of a carrier: a session's batch, or a notice of the carrier. */
export type CarrierLine = { readonly channel: string; readonly batch: string } | { readonly channel: typeof CARRIER_CHANNEL; readonly notice: CarrierNotice };

/** The line that carries `batch` for `channel`. */
export const carrierLine = (channel: string, batch: string): string => `${channel} ${batch}`;

/** The text of a carrier notice, for the carrier's own channel. */
export function noticeLine(notice: CarrierNotice): string {
  const body = notice.kind === 'open' ? { k: notice.id, hb: notice.hb } : notice.kind === 'end' ? { code: notice.code, message: notice.message } : {};
  return carrierLine(CARRIER_CHANNEL, JSON.stringify(body));
}

/**
 * Splits a carrier unit (an SSE event's data, a poll answer) into its lines. A line whose channel is
 * malformed, or a notice that does not read as one, throws: the carrier is broken, not one session.
 * Batches are not parsed here: each goes to its own session's client, which validates it (§4.1).
 */
export function parseCarrierLines(text: string): CarrierLine[] {
  const lines: CarrierLine[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const space = line.indexOf(' ');
    const channel = space < 0 ? line : line.slice(0, space);
    const rest = space < 0 ? '' : line.slice(space + 1);
    if (channel === CARRIER_CHANNEL) lines.push({ channel, notice: readNotice(rest) });
    else if (CHANNEL_PATTERN.test(channel)) lines.push({ channel, batch: rest });
    else throw new TypeError(`expects a carrier line to start with a channel, got ${JSON.stringify(line.slice(0, 70))}`);
  }
  return lines;
}

function readNotice(text: string): CarrierNotice {
  const body = JSON.parse(text) as Record<string, unknown>;
  if (typeof body !== 'object' || body === null) throw new TypeError('expects a carrier notice to be an object');
  if (typeof body.k === 'string' && CARRIER_ID_PATTERN.test(body.k) && typeof body.hb === 'number') return { kind: 'open', id: body.k, hb: body.hb };
  if (typeof body.code === 'string') return { kind: 'end', code: body.code, message: String(body.message ?? '') };
  return { kind: 'hb' };
}
