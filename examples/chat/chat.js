// @ts-check
// The chat page. All it knows comes from the server's events: `welcome` (who you are, which rooms
// there are), `history` (the room you are in and its last lines), `chat` (one new line) and `refused`
// (a request turned down). It sends `{ type: 'join', room }` and `{ type: 'say', room, text }`.
// Who the user is, the server reads from a cookie this script cannot see; without a valid one the
// client closes with UNAUTHORIZED, and the page shows the sign-in form.
import { connect } from 'unbroken-realtime';

/** @typedef {{ room: string, n: number, from: string, text: string, at: number }} Line */

/** Lines kept on screen, and `chat` events kept in `chat.received`: a page open for days stays small. */
const MAX_SHOWN = 200;
const MAX_RECEIVED = 1000;

/**
 * What the page shows and what it received, for the console and for the browser test
 * (test/browser/chat.test.ts).
 */
const chat = {
  /** @type {'loading' | 'sign-in' | 'chat' | 'ended'} */
  view: 'loading',
  /** @type {import('unbroken-realtime').ConnectionState} */
  state: 'connecting',
  /** @type {string | null} */
  name: null,
  /** @type {string | null} the room the server last put this page in */
  room: null,
  /** @type {Line[]} the room's lines on screen, each once, in order */
  lines: [],
  /** @type {Line[]} every `chat` event as it arrived, before the page drops a line it already shows */
  received: [],
  /** @type {import('unbroken-realtime').OpenEvent[]} every connection that opened */
  opens: [],
};
Object.assign(window, { chat });

/**
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} selector
 * @returns {T}
 */
function $(selector) {
  const element = document.querySelector(selector);
  if (!element) throw new Error(`chat: ${selector} is missing`);
  return /** @type {T} */ (element);
}

/** @param {'loading' | 'sign-in' | 'chat' | 'ended'} view */
function show(view) {
  chat.view = view;
  document.body.dataset.view = view;
  $('#sign-in').hidden = view !== 'sign-in';
  $('#chat').hidden = view !== 'chat';
  $('#ended').hidden = view !== 'ended';
}

/** @param {string} text */
function notice(text) {
  $('#notice').textContent = text;
}

/** Draws the room's lines. textContent only: a line is someone else's input, never markup. */
function render() {
  const list = $('#lines');
  list.replaceChildren(
    ...chat.lines.map((line) => {
      const item = document.createElement('li');
      const time = document.createElement('time');
      time.dateTime = new Date(line.at).toISOString();
      time.textContent = new Date(line.at).toLocaleTimeString();
      const from = document.createElement('strong');
      from.textContent = `${line.from}: `;
      item.append(time, from, line.text);
      return item;
    }),
  );
  list.scrollTop = list.scrollHeight;
  for (const button of document.querySelectorAll('#rooms button')) {
    button.setAttribute('aria-pressed', String(button.textContent === chat.room));
  }
}

if (new URLSearchParams(location.search).get('sign-in') === 'invalid') $('#sign-in-error').hidden = false;

const client = connect('/realtime');

client.on('state', ({ to }) => {
  chat.state = to;
  document.body.dataset.state = to;
  $('#status').textContent = to === 'open' ? `connected over ${client.transport}` : to === 'closed' ? 'offline' : `${to}…`;
});

client.on('open', (event) => {
  chat.opens.push(event);
});

client.on('close', ({ error }) => {
  // The server refused the cookie, or there is none: sign in first. The form reloads the page,
  // which connects again.
  show(error?.code === 'UNAUTHORIZED' ? 'sign-in' : 'ended');
});

client.on('message:welcome', ({ data }) => {
  const { name, rooms } = /** @type {{ name: string, rooms: string[] }} */ (data);
  chat.name = name;
  $('#name').textContent = name;
  $('#rooms').replaceChildren(
    ...rooms.map((room) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = room;
      // The server moves the session: it joins the room and answers with its history.
      button.addEventListener('click', () => void client.send({ type: 'join', room }).catch(failed));
      return button;
    }),
  );
  show('chat');
});

client.on('message:history', ({ data }) => {
  const { room, lines } = /** @type {{ room: string, lines: Line[] }} */ (data);
  chat.room = room;
  chat.lines = lines.slice(-MAX_SHOWN);
  notice('');
  render();
});

client.on('message:chat', ({ data }) => {
  const line = /** @type {Line} */ (data);
  chat.received.push(line);
  if (chat.received.length > MAX_RECEIVED) chat.received.shift();
  // A line of the room just left, still on its way, or one the history already held.
  const last = chat.lines.at(-1);
  if (line.room !== chat.room || (last && line.n <= last.n)) return;
  chat.lines.push(line);
  if (chat.lines.length > MAX_SHOWN) chat.lines.shift();
  render();
});

client.on('message:refused', ({ data }) => {
  notice(/** @type {{ reason: string }} */ (data).reason);
});

// Within a session the stream resumes after a dropped connection; when the server no longer holds
// what was missed (away too long), it says so instead.
client.on('gap', () => {
  notice('Some lines were missed while the connection was down.');
});

$('#say').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('#say input'));
  const text = input.value.trim();
  if (!text || !chat.room) return;
  input.value = '';
  // Resolves once the server has processed it; while the connection is down it waits in the
  // client's outbox and goes out on reconnection, once.
  client.send({ type: 'say', room: chat.room, text }).catch(failed);
});

/** @param {unknown} error */
function failed(error) {
  notice(`Not sent: ${error instanceof Error ? error.message : String(error)}`);
}
