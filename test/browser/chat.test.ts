/**
 * The chat example (examples/chat) in Chromium. Two browser contexts are two users, each with its own
 * cookie jar: Alice reaches the server through the network conditions proxy, which cuts her network;
 * Bob goes straight to it. Each signs in with the page's form and is put in a room by the page's
 * buttons (the client asks, the server's handler joins). Lines are posted while Alice's network is
 * cut and restored; what each page received as `chat` events — before the page drops anything — shows
 * that every line of a user's room arrives once and in order, no line of another room arrives at all,
 * and Bob never notices Alice's trouble.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HISTORY, startChatServer, type Chat } from '../../examples/chat/server.mjs';
import { startNetworkProxy, type NetworkProxy } from '../helpers/network-proxy.js';
import { launchChromium } from './chromium.js';

interface Line {
  room: string;
  n: number;
  from: string;
  text: string;
  at: number;
}

/** What the page exposes as `window.chat` (examples/chat/chat.js). */
interface ChatState {
  view: 'loading' | 'sign-in' | 'chat' | 'ended';
  state: 'connecting' | 'open' | 'reconnecting' | 'closed';
  name: string | null;
  room: string | null;
  lines: Line[];
  received: Line[];
  opens: { transport: string; sessionId: string; resumed: boolean }[];
}

/** How long to wait for one thing the page should show; well below the test's own timeout. */
const WAIT = 15_000;

/** One tab of the chat page, read through `window.chat`. */
class ChatPage {
  /** Uncaught errors of the page's scripts. */
  readonly errors: string[] = [];

  constructor(readonly page: Page) {
    page.on('pageerror', (error) => this.errors.push(error.message));
  }

  get context(): BrowserContext {
    return this.page.context();
  }

  state(): Promise<ChatState> {
    return this.page.evaluate(() => (window as unknown as { chat: ChatState }).chat);
  }

  /** Waits until the page's `window.chat[key]` is `value`. */
  async until<K extends 'view' | 'state' | 'room'>(key: K, value: ChatState[K]): Promise<void> {
    await this.page.waitForFunction(
      ([k, v]) => (window as unknown as { chat?: Record<string, unknown> }).chat?.[k] === v,
      [key, value] as const,
      { timeout: WAIT },
    );
  }

  /** Waits until a `chat` event with this text has arrived. */
  async untilReceived(text: string): Promise<void> {
    await this.page.waitForFunction(
      (t) => (window as unknown as { chat: ChatState }).chat.received.some((line) => line.text === t),
      text,
      { timeout: WAIT },
    );
  }

  /** Waits until `count` connections have opened. */
  async untilOpens(count: number): Promise<void> {
    await this.page.waitForFunction((c) => (window as unknown as { chat: ChatState }).chat.opens.length >= c, count, { timeout: WAIT });
  }

  /** The texts of the `chat` events received from `from` on (an index into `received`). */
  async receivedSince(from: number): Promise<string[]> {
    return (await this.state()).received.slice(from).map((line) => line.text);
  }

  /** Asks to be moved to `room` with the page's button; waits for the server's answer (the history). */
  async join(room: string): Promise<void> {
    await this.page.click(`#rooms button:text-is("${room}")`);
    await this.until('room', room);
  }

  /** Says a line with the page's form. */
  async say(text: string): Promise<void> {
    await this.page.fill('#say input', text);
    await this.page.press('#say input', 'Enter');
  }
}

/** `count` texts, numbered from `first`: `general #1`, `general #2`… */
const numbered = (prefix: string, first: number, count: number): string[] =>
  Array.from({ length: count }, (_, i) => `${prefix} #${first + i}`);

describe('the chat example', () => {
  let browser: Browser;
  let chat: Chat;
  let proxy: NetworkProxy;
  /** The page, through the proxy (Alice's way in). */
  let proxiedUrl: string;
  let alice: ChatPage;
  let bob: ChatPage;

  /** Opens the page in a fresh context (a fresh cookie jar) and signs in with its form. */
  async function signIn(url: string, name: string): Promise<ChatPage> {
    const tab = new ChatPage(await (await browser.newContext()).newPage());
    await tab.page.goto(url);
    // No cookie yet: the server refused the connection, and the page asks for a name.
    await tab.until('view', 'sign-in');
    await tab.page.fill('#sign-in input[name="name"]', name);
    // The form posts, the server answers with the cookie and a redirect back to the page.
    await Promise.all([tab.page.waitForEvent('load'), tab.page.click('#sign-in button')]);
    await tab.until('view', 'chat');
    await tab.until('room', 'general');
    return tab;
  }

  beforeAll(async () => {
    browser = await launchChromium();
    // A short reconnect floor (the server's default is 1 s): the test waits for four reconnections.
    chat = await startChatServer({ port: 0, realtime: { retry: 100 } });
    proxy = await startNetworkProxy(chat.port);
    proxiedUrl = `http://127.0.0.1:${proxy.port}/`;
    [alice, bob] = await Promise.all([signIn(proxiedUrl, 'Alice'), signIn(chat.url, 'Bob')]);
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await chat?.close();
  });

  it('signs in with an HttpOnly, SameSite=Lax cookie signed by the server, and refuses a forged one', async () => {
    expect((await alice.state()).name).toBe('Alice');
    expect((await bob.state()).name).toBe('Bob');
    const [cookie] = await alice.context.cookies();
    expect(cookie).toMatchObject({ name: 'chat_user', httpOnly: true, sameSite: 'Lax' });
    // HttpOnly: the page's scripts cannot read it.
    expect(await alice.page.evaluate(() => document.cookie)).toBe('');

    // Bob's cookie, its payload rewritten to say Alice: the signature no longer matches.
    const [bobs] = await bob.context.cookies();
    const [payload, signature] = bobs!.value.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { name: string };
    const forged = `${Buffer.from(JSON.stringify({ ...claims, name: 'Alice' })).toString('base64url')}.${signature}`;
    const mallory = new ChatPage(await (await browser.newContext()).newPage());
    try {
      await mallory.context.addCookies([{ ...bobs!, value: forged }]);
      await mallory.page.goto(chat.url);
      await mallory.until('view', 'sign-in');
      expect(await mallory.page.isVisible('#sign-in form')).toBe(true);
      expect(await mallory.page.isVisible('#chat')).toBe(false);
    } finally {
      await mallory.context.close();
    }
  });

  it('Alice in general, Bob in random: through two cuts of her network each gets every line of their room once and in order, none of the other', async () => {
    await bob.join('random');
    expect((await alice.state()).room).toBe('general');
    const fromAlice = (await alice.state()).received.length;
    const fromBob = (await bob.state()).received.length;

    // Random first and last, each random line followed by a general one: every random line was
    // stored before Alice's last general line, and every general line before Bob's last random
    // line. Each stream is in the store's order, so once those last lines have arrived, a line of
    // the other room that was going to arrive would have.
    const LINES = 30;
    const post = async (i: number): Promise<void> => {
      await chat.post('random', 'Carol', `random #${i}`);
      if (i <= LINES) await chat.post('general', 'Carol', `general #${i}`);
    };

    for (let i = 1; i <= 10; i++) await post(i);
    // Alice's network goes down: her connection is cut, and every new one refused.
    proxy.setCondition('offline');
    await alice.until('state', 'reconnecting');
    for (let i = 11; i <= 20; i++) await post(i);
    proxy.setCondition('normal');
    await alice.untilOpens(2);
    for (let i = 21; i <= LINES; i++) {
      // Cut again while lines flow.
      if (i === 25) proxy.dropConnections();
      await post(i);
    }
    await post(LINES + 1);

    await alice.untilReceived(`general #${LINES}`);
    await bob.untilReceived(`random #${LINES + 1}`);
    expect(await alice.receivedSince(fromAlice)).toEqual(numbered('general', 1, LINES));
    expect(await bob.receivedSince(fromBob)).toEqual(numbered('random', 1, LINES + 1));

    const a = await alice.state();
    // Alice's two reconnections resumed her session: the protocol's resume replayed what she missed.
    expect(a.opens.length).toBeGreaterThanOrEqual(3);
    expect(a.opens.slice(1).every(({ resumed, sessionId }) => resumed && sessionId === a.opens[0]!.sessionId)).toBe(true);
    // What she sees: the room's lines, each once.
    expect(a.lines.slice(-LINES).map((line) => line.text)).toEqual(numbered('general', 1, LINES));
    expect(await alice.page.textContent('#lines li:last-child')).toContain(`general #${LINES}`);
    // Bob never noticed: one connection, open throughout.
    const b = await bob.state();
    expect(b.opens).toHaveLength(1);
    expect(b.state).toBe('open');
    expect([...alice.errors, ...bob.errors]).toEqual([]);
  });

  it('Alice and Bob in the same room: what Bob types while Alice is cut off reaches her once and in order', async () => {
    await bob.join('general');
    const fromAlice = (await alice.state()).received.length;
    const fromBob = (await bob.state()).received.length;
    const { opens } = await alice.state();

    for (const text of numbered('Bob', 1, 5)) await bob.say(text);
    await alice.untilReceived('Bob #5');
    proxy.setCondition('offline');
    await alice.until('state', 'reconnecting');
    for (const text of numbered('Bob', 6, 5)) await bob.say(text);
    // Bob's own lines come back to him through the room: once they have, the server has them all.
    await bob.untilReceived('Bob #10');
    proxy.setCondition('normal');
    await alice.untilOpens(opens.length + 1);
    for (const text of numbered('Bob', 11, 5)) await bob.say(text);

    await alice.untilReceived('Bob #15');
    await bob.untilReceived('Bob #15');
    expect(await alice.receivedSince(fromAlice)).toEqual(numbered('Bob', 1, 15));
    expect(await bob.receivedSince(fromBob)).toEqual(numbered('Bob', 1, 15));
    expect((await alice.state()).lines.at(-1)).toMatchObject({ from: 'Bob', text: 'Bob #15' });
  });

  it(`a reload is a new session: it lands in the same room, showing that room's last ${HISTORY} lines`, async () => {
    await alice.join('random');
    const before = await alice.state();
    const posted = numbered('history', 1, HISTORY + 10);
    for (const text of posted) await chat.post('random', 'Carol', text);
    await alice.untilReceived(posted.at(-1)!);

    await alice.page.reload();
    await alice.until('view', 'chat');
    await alice.until('room', 'random');
    const after = await alice.state();
    expect(after.opens[0]!.sessionId).not.toBe(before.opens[0]!.sessionId);
    // The lines come from the example's history, not from the stream: the new session's stream holds
    // no line from before it began.
    expect(after.received).toEqual([]);
    expect(after.lines.map((line) => line.text)).toEqual(posted.slice(-HISTORY));
  });

  it("signing out ends the user's other tabs too, refuses the old cookie from then on, and leaves other users alone", async () => {
    const second = new ChatPage(await bob.context.newPage());
    await second.page.goto(chat.url);
    await second.until('view', 'chat');
    const aliceSession = (await alice.state()).opens.at(-1)!.sessionId;
    const [cookie] = await bob.context.cookies();

    await Promise.all([bob.page.waitForEvent('load'), bob.page.click('#me button')]);
    await bob.until('view', 'sign-in');
    // The server ended the other tab's session, and refused its retry.
    await second.until('view', 'sign-in');
    expect(await bob.context.cookies()).toEqual([]);
    // A copy of the cookie kept from before is still validly signed, but signed out.
    await bob.context.addCookies([cookie!]);
    await bob.page.reload();
    await bob.until('view', 'sign-in');
    const after = await alice.state();
    expect(after).toMatchObject({ view: 'chat', state: 'open' });
    expect(after.opens.at(-1)!.sessionId).toBe(aliceSession);
  });
});
