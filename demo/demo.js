// @ts-check
// The demo page's logic: everything shown is computed from what the client really receives.
//
// Client options can be overridden from the page's query (README "Demo" lists them), e.g.
//   /?connectTimeout=1000&upgradeInterval=2000&reconnectDelay=100&transports=sse,long-polling
// Numbers: connectTimeout, upgradeInterval, reconnectDelay, maxReconnectDelay, minUptime (ms);
// transports: a comma-separated list; `share=0` keeps this tab's connection its own; and `autosend=1`
// starts with "send one every second" on.
//
// The page's own state is exposed for tests and the curious: `window.demoStats` (see DemoStats),
// `window.demoClient`, and data attributes on <body> (state, transport, sharing, conditions, lost,
// duplicated).
(function () {
  'use strict';

  /** @typedef {import('../src/client/index.js').ClientOptions} ClientOptions */
  /** @typedef {import('../src/client/index.js').TransportName} TransportName */
  /** @typedef {import('../src/client/index.js').ConnectionState} ConnectionState */
  /** @typedef {'normal' | 'slow' | 'ws-blocked' | 'ws-hanging' | 'ws-silent' | 'sse-buffered' | 'offline'} Condition */
  /** @typedef {'state' | 'transport' | 'tabs' | 'network' | 'gap' | 'error'} EntryKind */
  /**
   * Who holds this tab's connection while open: this tab for the others (`holder`), another tab
   * (`follower`), or nobody else (`own`: WebSocket, `share=0`, or no tab group to be had).
   * @typedef {'holder' | 'follower' | 'own'} Sharing
   */

  /**
   * @typedef {object} DemoStats
   * @property {ConnectionState} state
   * @property {string | null} cause the cause of the last state change
   * @property {TransportName | null} transport
   * @property {string | null} transportReason why the transport in use was chosen
   * @property {Sharing | null} sharing who holds the connection, `null` while not open
   * @property {string | null} lastEventId
   * @property {string | null} sessionId
   * @property {number} opens connections opened
   * @property {boolean | null} resumed whether the last connection resumed the session
   * @property {number} received every message
   * @property {number} ticks ticker messages
   * @property {number | null} lastTick the highest ticker number seen since the last gap
   * @property {number} sent
   * @property {number} acked
   * @property {number} failed sends that were rejected
   * @property {number} echoes distinct echoes of this page's sends
   * @property {number} lost ticker numbers skipped
   * @property {number} duplicated ticker numbers or echoes that arrived again
   * @property {number} gaps gaps the server reported
   * @property {number | null} rtt the last round trip, ms
   * @property {Condition[]} conditions the active network conditions; empty when normal
   * @property {Record<string, unknown>} options the client options taken from the query
   * @property {{ at: number, kind: EntryKind, text: string }[]} timeline newest last
   * @property {{ at: number, from: ConnectionState, to: ConnectionState, cause: string }[]} states
   * @property {{ at: number, transport: TransportName, previous: TransportName | null, reason: string }[]} transports
   * @property {{ at: number, code: string, message: string }[]} errors
   * @property {{ reconnect: number | null, probe: number | null }} scheduled when the client said its
   *   next connection attempt and its next WebSocket probe happen (its `schedule` event), ms since the epoch
   * @property {{ reconnect: string, probe: string }} countdown the countdown texts the page shows now
   *   (empty when there is none), e.g. `next attempt in 1.4 s`, `WebSocket probe in 3.0 s`
   * @property {number | null} lastMessageAt when the last message arrived
   * @property {number | null} heartbeatInterval the server's heartbeat, ms, from /demo-config.json
   */

  const { connect } = /** @type {{ Unbroken: typeof import('../src/client/index.js') }} */ (/** @type {unknown} */ (window)).Unbroken;

  /** @param {string} id */
  function $(id) {
    const element = document.getElementById(id);
    if (!element) throw new Error(`demo: #${id} is missing`);
    return element;
  }

  const CONTROL = '/__network';
  /** @type {readonly Condition[]} */
  const WEBSOCKET_CONDITIONS = ['ws-blocked', 'ws-hanging', 'ws-silent'];
  const NUMERIC_OPTIONS = ['connectTimeout', 'upgradeInterval', 'reconnectDelay', 'maxReconnectDelay', 'minUptime'];
  const PING_EVERY = 2000;
  const COUNTDOWN_EVERY = 100;
  const SPARK_POINTS = 30;
  const MAX_ENTRIES = 200;

  /** What the tabs tile says under each role. */
  const SHARING_TEXT = /** @type {Record<Sharing, string>} */ ({
    holder: 'this tab holds the shared connection',
    follower: 'another tab holds it, this tab talks through it',
    own: 'own connection',
  });

  const REASONS = /** @type {Record<string, string>} */ ({
    initial: 'the first that worked',
    refused: 'the previous one was refused',
    timeout: 'the previous one never said hello',
    silent: 'the previous one went silent',
    buffered: 'a proxy held the previous one back',
    upgrade: 'upgraded: a better one works again',
  });

  /** A plain sentence per error code (src/protocol/codes.ts), shown in the log instead of the raw message. */
  const ERROR_TEXT = /** @type {Record<string, string>} */ ({
    TRANSPORT_ERROR: 'The connection failed or dropped (network, proxy or server gone).',
    CONNECT_TIMEOUT: 'The server did not say hello within the connect deadline.',
    HEARTBEAT_TIMEOUT: 'Nothing arrived for twice the heartbeat interval: the link was dead, so the client dropped it.',
    PROTOCOL_ERROR: 'Something malformed crossed the connection.',
    MESSAGE_TOO_LARGE: 'A message was larger than the server accepts.',
    SUPERSEDED: 'A newer connection of this session replaced this one.',
    BACKPRESSURE: 'This page read too slowly; the server dropped the connection and kept the messages.',
    UNKNOWN_SESSION: 'The server no longer knew this session.',
    SERVER_RESTART: 'The server is restarting and asked the client to come back shortly.',
    INTERNAL_ERROR: 'The server failed.',
    FORBIDDEN: "The server does not allow this page's origin; the client stopped.",
    UNSUPPORTED_VERSION: "The server does not speak this client's protocol version; the client stopped.",
    NO_TRANSPORT: 'No transport can run in this browser; the client stopped.',
    OUTBOX_FULL: 'Too many messages are waiting for acknowledgement.',
    INVALID_DATA: 'The message is neither JSON nor bytes.',
    CLIENT_CLOSED: 'The client was closed before the message was acknowledged.',
  });

  const query = new URLSearchParams(location.search);
  /** @type {Record<string, unknown>} */
  const options = {};
  for (const name of NUMERIC_OPTIONS) {
    const value = query.get(name);
    // What the client takes (a number ≥ 0, ≥ 1 for connectTimeout); anything else keeps the default.
    const least = name === 'connectTimeout' ? 1 : 0;
    if (value !== null && value !== '' && Number.isFinite(Number(value)) && Number(value) >= least) options[name] = Number(value);
  }
  const transportList = query.get('transports');
  if (transportList) options.transports = transportList.split(',').map((name) => name.trim()).filter(Boolean);
  if (query.get('share') === '0') options.share = false;

  const client = connect('/realtime', /** @type {ClientOptions} */ (options));

  /** @type {DemoStats} */
  const stats = {
    state: client.state,
    cause: null,
    transport: null,
    transportReason: null,
    sharing: null,
    lastEventId: null,
    sessionId: null,
    opens: 0,
    resumed: null,
    received: 0,
    ticks: 0,
    lastTick: null,
    sent: 0,
    acked: 0,
    failed: 0,
    echoes: 0,
    lost: 0,
    duplicated: 0,
    gaps: 0,
    rtt: null,
    conditions: [],
    options,
    timeline: [],
    states: [],
    transports: [],
    errors: [],
    scheduled: { reconnect: null, probe: null },
    countdown: { reconnect: '', probe: '' },
    lastMessageAt: null,
    heartbeatInterval: null,
  };
  Object.assign(window, { demoStats: stats, demoClient: client });

  /** @param {number} at */
  const clock = (at) => new Date(at).toLocaleTimeString([], { hour12: false });

  /**
   * @param {HTMLElement} list
   * @param {string} text
   * @param {string} [kind]
   */
  function item(list, text, kind) {
    const at = Date.now();
    const li = document.createElement('li');
    if (kind) li.className = kind;
    const time = document.createElement('time');
    time.dateTime = new Date(at).toISOString();
    time.textContent = clock(at);
    li.append(time, text);
    list.prepend(li);
    while (list.children.length > MAX_ENTRIES) list.lastElementChild?.remove();
    return at;
  }
  /** @param {string} text */
  const log = (text) => item($('log'), text);

  /**
   * A failure in the log: its code and a plain sentence; the raw message is the line's tooltip.
   * @param {string} prefix
   * @param {{ code: string, message: string }} error
   */
  function logError(prefix, error) {
    const list = $('log');
    item(list, `${prefix}${error.code} — ${ERROR_TEXT[error.code] ?? error.message}`, 'error');
    const line = /** @type {HTMLElement} */ (list.firstElementChild);
    line.title = error.message;
  }
  /** @param {EntryKind} kind @param {string} text */
  function timeline(kind, text) {
    const at = item($('timeline'), text, kind);
    stats.timeline.push({ at, kind, text });
    if (stats.timeline.length > MAX_ENTRIES) stats.timeline.shift();
  }

  // ---- rendering -------------------------------------------------------------------------------

  /** @type {number[]} */
  const rtts = [];

  /** A sparkline of the last round trips, newest on the right, scaled to the largest one shown. */
  function renderSpark() {
    const svg = $('rtt-spark');
    const line = svg.querySelector('polyline');
    const area = svg.querySelector('polygon');
    if (!line || !area || rtts.length < 2) return;
    const max = Math.max(...rtts, 1);
    const step = 100 / (rtts.length - 1);
    const points = rtts.map((ms, i) => `${(i * step).toFixed(1)},${(23 - (ms / max) * 21).toFixed(1)}`).join(' ');
    line.setAttribute('points', points);
    area.setAttribute('points', `0,24 ${points} 100,24`);
  }

  /** @param {number} ms */
  const seconds = (ms) => (ms < 10_000 ? (ms / 1000).toFixed(1) : String(Math.ceil(ms / 1000)));

  /** The countdowns to the client's next attempt and next upgrade probe, and the age of the last message. */
  function renderClock() {
    const now = Date.now();
    const { reconnect, probe } = stats.scheduled;
    const waiting = stats.state === 'connecting' || stats.state === 'reconnecting';
    stats.countdown.reconnect =
      waiting && reconnect !== null ? (reconnect > now ? `next attempt in ${seconds(reconnect - now)} s` : 'attempting now…') : '';
    stats.countdown.probe =
      stats.state === 'open' && probe !== null ? (probe > now ? `WebSocket probe in ${seconds(probe - now)} s` : 'probing WebSocket…') : '';
    $('next-attempt').textContent = stats.countdown.reconnect;
    $('next-probe').textContent = stats.countdown.probe;
    const last = $('last-message');
    if (stats.lastMessageAt === null) last.textContent = 'no message yet';
    else {
      const age = now - stats.lastMessageAt;
      last.textContent = age < 1000 ? 'last message < 1 s ago' : `last message ${Math.floor(age / 1000)} s ago`;
      last.classList.toggle('stale', stats.heartbeatInterval !== null && age > stats.heartbeatInterval);
    }
  }

  /** The role of the last open connection: the timeline notes a change, not every reconnection. @type {Sharing | null} */
  let lastSharing = null;
  /**
   * The tabs tile. The role is read from the client, never guessed: it can change only with a new
   * connection (the holder tab went away, another took over), which always brings state and open
   * events, and each of them renders.
   */
  function renderSharing() {
    /** @type {Sharing | null} */
    const sharing = client.state !== 'open' ? null : client.sharing ?? 'own';
    if (sharing !== null && sharing !== lastSharing) timeline('tabs', `tabs: ${SHARING_TEXT[sharing]}`);
    if (sharing !== null) lastSharing = sharing;
    stats.sharing = sharing;
    const tile = $('sharing');
    tile.textContent = sharing ?? '—';
    tile.dataset.sharing = sharing ?? '';
    $('sharing-text').textContent = sharing ? SHARING_TEXT[sharing] : 'not connected';
    document.body.dataset.sharing = sharing ?? '';
  }

  function render() {
    stats.state = client.state;
    stats.lastEventId = client.lastEventId;
    stats.sessionId = client.sessionId;
    const transport = stats.transport ?? '—';
    $('state').textContent = stats.state;
    $('state').dataset.state = stats.state;
    $('state-cause').textContent = stats.cause ?? '\u00a0';
    $('transport').textContent = transport;
    $('transport-reason').textContent = stats.transportReason ? REASONS[stats.transportReason] ?? stats.transportReason : '\u00a0';
    $('last-event-id').textContent = stats.lastEventId ?? '—';
    $('session').textContent = stats.sessionId ? `session ${stats.sessionId.slice(0, 8)}…` : '\u00a0';
    $('pill').dataset.state = stats.state;
    $('pill-text').textContent = stats.state === 'open' ? `open · ${transport}` : stats.state;
    for (const key of /** @type {const} */ (['received', 'sent', 'acked', 'echoes', 'lost', 'duplicated', 'gaps'])) {
      $(key).textContent = String(stats[key]);
    }
    $('pending').textContent = String(stats.sent - stats.acked - stats.failed);
    $('lost-tile').className = `tile ${stats.lost ? 'bad' : 'good'}`;
    $('duplicated-tile').className = `tile ${stats.duplicated ? 'bad' : 'good'}`;
    $('gaps-tile').className = `tile ${stats.gaps ? 'warn' : ''}`;
    const body = document.body.dataset;
    body.state = stats.state;
    body.transport = stats.transport ?? '';
    body.conditions = stats.conditions.join(' ') || 'normal';
    body.lost = String(stats.lost);
    body.duplicated = String(stats.duplicated);
    renderSharing();
    renderClock();
  }

  // ---- the client ------------------------------------------------------------------------------

  client.on('state', ({ from, to, cause }) => {
    stats.states.push({ at: Date.now(), from, to, cause });
    // A countdown belongs to the state it was announced in; the client announces the next one anew.
    stats.scheduled = { reconnect: null, probe: null };
    stats.cause = cause;
    timeline('state', `${from} → ${to} (${cause})`);
    render();
  });
  client.on('transport', ({ transport, previous, reason }) => {
    stats.transports.push({ at: Date.now(), transport, previous, reason });
    stats.transport = transport;
    stats.transportReason = reason;
    timeline('transport', `transport ${previous ?? '—'} → ${transport} (${reason})`);
    render();
  });
  client.on('open', ({ transport, resumed }) => {
    stats.opens += 1;
    stats.resumed = resumed;
    // The transport event fires only on a change; keep the tile right after every reconnection too.
    stats.transport = transport;
    log(`open over ${transport}${resumed ? ', session resumed' : ''}`);
    render();
    measure();
  });
  client.on('schedule', ({ kind, at }) => {
    if (kind === 'reconnect') stats.scheduled.reconnect = at;
    else stats.scheduled.probe = at;
    renderClock();
  });
  client.on('gap', ({ reason, lastEventId, resumeEventId }) => {
    stats.gaps += 1;
    timeline('gap', `gap: ${reason}, lost after ${lastEventId} up to ${resumeEventId}`);
    // The server said exactly what was lost: count from the next tick afresh.
    stats.lastTick = null;
    render();
  });
  client.on('error', (error) => {
    stats.errors.push({ at: Date.now(), code: error.code, message: error.message });
    logError('', error);
  });
  client.on('close', ({ error }) => {
    timeline('error', `closed for good${error ? `: ${error.code}` : ''}`);
    render();
  });
  client.on('message', ({ event }) => {
    stats.received += 1;
    stats.lastMessageAt = Date.now();
    if (event !== 'tick') render();
  });
  client.on('message:tick', ({ data }) => {
    const n = /** @type {{ n: number }} */ (data).n;
    if (stats.lastTick !== null) {
      if (n <= stats.lastTick) stats.duplicated += 1;
      else if (n > stats.lastTick + 1) stats.lost += n - stats.lastTick - 1;
    }
    if (stats.lastTick === null || n > stats.lastTick) stats.lastTick = n;
    stats.ticks += 1;
    render();
  });
  client.on('message:greeting', ({ data }) => log(`server says: ${JSON.stringify(data)}`));

  /** Numbers of this page's sends that came back as echoes: an echo seen twice is a duplicate. */
  const echoed = new Set();
  client.on('message:echo', ({ data }) => {
    const echo = /** @type {{ echo?: { n?: unknown, text?: unknown } }} */ (data).echo;
    if (typeof echo?.n === 'number') {
      if (echoed.has(echo.n)) stats.duplicated += 1;
      else {
        echoed.add(echo.n);
        stats.echoes += 1;
      }
    }
    log(typeof echo?.n === 'number' ? `echo of #${echo.n}: ${JSON.stringify(echo.text)}` : `echo: ${JSON.stringify(data)}`);
    render();
  });

  let sendNumber = 0;
  /** @param {string} text */
  function send(text) {
    const n = ++sendNumber;
    stats.sent += 1;
    render();
    client.send({ n, text }).then(
      () => {
        stats.acked += 1;
        render();
      },
      (error) => {
        stats.failed += 1;
        logError(`send #${n} failed: `, error);
        render();
      },
    );
  }

  // The same page with the same options: on SSE or long polling, the new tab joins this one's group.
  $('open-tab').addEventListener('click', () => window.open(location.href, '_blank'));

  $('send-form').addEventListener('submit', (event) => {
    event.preventDefault();
    send(/** @type {HTMLInputElement} */ ($('send-input')).value);
  });

  const autosend = /** @type {HTMLInputElement} */ ($('autosend'));
  autosend.checked = query.get('autosend') === '1';
  let autoNumber = 0;
  setInterval(() => {
    if (autosend.checked) send(`auto ${++autoNumber}`);
  }, 1000);

  let pinging = false;
  function measure() {
    if (client.state !== 'open' || pinging) return;
    pinging = true;
    client
      .ping()
      .then((ms) => {
        stats.rtt = ms;
        rtts.push(ms);
        if (rtts.length > SPARK_POINTS) rtts.shift();
        $('rtt').textContent = `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
        renderSpark();
      })
      .catch(() => {})
      .finally(() => (pinging = false));
  }
  setInterval(measure, PING_EVERY);
  setInterval(renderClock, COUNTDOWN_EVERY);

  // The demo server's settings: its heartbeat is shorter than the server's default, so that a frozen
  // connection is found within seconds.
  fetch('/demo-config.json', { cache: 'no-store' })
    .then((response) => (response.ok ? response.json() : Promise.reject(new Error(`status ${response.status}`))))
    .then((/** @type {{ heartbeatInterval: number, defaultHeartbeatInterval: number }} */ config) => {
      stats.heartbeatInterval = config.heartbeatInterval;
      const hb = config.heartbeatInterval / 1000;
      $('heartbeat').textContent =
        `Server heartbeat here: ${hb} s (the server's default is ${config.defaultHeartbeatInterval / 1000} s), ` +
        `so a frozen connection is found within ${2 * hb} s.`;
    })
    .catch(() => {});

  // ---- the network conditions ------------------------------------------------------------------

  const conditionButtons = /** @type {HTMLButtonElement[]} */ ([...document.querySelectorAll('button[data-condition]')]);

  /** @param {Condition[]} active */
  function applyNetwork(active) {
    const before = stats.conditions.join(' + ') || 'normal';
    const after = active.join(' + ') || 'normal';
    stats.conditions = [...active];
    for (const button of conditionButtons) {
      const name = /** @type {Condition} */ (button.dataset.condition);
      button.setAttribute('aria-pressed', String(name === 'normal' ? active.length === 0 : active.includes(name)));
    }
    if (before !== after) timeline('network', `network: ${after}`);
    render();
  }

  /**
   * Talks to the conditions layer's control endpoint, which no condition ever affects.
   * @param {{ active?: Condition[], drop?: true, freeze?: true }} [command]
   */
  async function control(command) {
    const response = await fetch(
      CONTROL,
      command
        ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(command) }
        : { cache: 'no-store' },
    );
    if (!response.ok) throw new Error(`${CONTROL} answered ${response.status}`);
    const { active } = /** @type {{ active: Condition[] }} */ (await response.json());
    applyNetwork(active);
  }

  const note = $('network-note');
  const noteText = note.textContent;
  /** @param {{ active?: Condition[], drop?: true, freeze?: true }} command */
  function command(command) {
    control(command).then(
      () => (note.textContent = noteText),
      (error) => (note.textContent = `The network control failed: ${error.message}`),
    );
  }

  /**
   * The conditions after pressing `name`: normal lifts them all; the WebSocket ones exclude each other.
   * @param {Condition} name
   * @returns {Condition[]}
   */
  function toggled(name) {
    const active = stats.conditions;
    if (name === 'normal') return [];
    if (active.includes(name)) return active.filter((other) => other !== name);
    const exclusive = WEBSOCKET_CONDITIONS.includes(name);
    return [...active.filter((other) => !(exclusive && WEBSOCKET_CONDITIONS.includes(other))), name];
  }

  for (const button of conditionButtons) {
    button.addEventListener('click', () => command({ active: toggled(/** @type {Condition} */ (button.dataset.condition)) }));
  }
  $('drop').addEventListener('click', () => {
    timeline('network', 'network: connection dropped');
    command({ drop: true });
  });
  $('freeze').addEventListener('click', () => {
    timeline('network', 'network: connection frozen');
    command({ freeze: true });
  });
  // Follow changes made elsewhere (another tab, a test).
  control().catch(() => {});
  setInterval(() => control().catch(() => {}), 3000);

  const overrides = Object.entries(options).map(([name, value]) => `${name}=${value}`);
  if (overrides.length) $('overrides').textContent = `Client options from the address: ${overrides.join(', ')}.`;

  render();
})();
