// The demo page's logic: everything shown is computed from what the client really receives.
/* global Unbroken */
(function () {
  const $ = (id) => document.getElementById(id);
  const client = Unbroken.connect('/realtime');
  window.demoClient = client;

  // Page state, also exposed for the browser tests.
  const stats = { received: 0, sent: 0, acked: 0, lost: 0, duplicated: 0, gaps: 0, lastTick: null, ticks: 0 };
  window.demoStats = stats;

  function item(list, text) {
    const li = document.createElement('li');
    const time = document.createElement('time');
    time.textContent = new Date().toLocaleTimeString();
    li.append(time, text);
    list.prepend(li);
    while (list.children.length > 200) list.lastChild.remove();
  }
  const log = (text) => item($('log'), text);
  const timeline = (text) => item($('timeline'), text);

  function render() {
    $('state').textContent = client.state;
    $('state').dataset.state = client.state;
    $('last-event-id').textContent = client.lastEventId ?? '—';
    for (const key of ['received', 'sent', 'acked', 'lost', 'duplicated', 'gaps']) $(key).textContent = String(stats[key]);
    $('lost-tile').className = `tile ${stats.lost ? 'bad' : 'good'}`;
    $('duplicated-tile').className = `tile ${stats.duplicated ? 'bad' : 'good'}`;
  }

  client.on('state', ({ from, to, cause }) => {
    timeline(`${from} → ${to} (${cause})`);
    render();
  });
  client.on('transport', ({ transport, previous, reason }) => {
    $('transport').textContent = transport;
    $('transport-reason').textContent = reason;
    timeline(`transport ${previous ?? '—'} → ${transport} (${reason})`);
  });
  client.on('gap', ({ reason, lastEventId, resumeEventId }) => {
    stats.gaps += 1;
    timeline(`gap: ${reason}, lost after ${lastEventId} up to ${resumeEventId}`);
    // After a gap the ticker's numbering starts afresh on the server side of the gap: re-base on the next tick.
    stats.lastTick = null;
    render();
  });
  client.on('error', (error) => log(`error ${error.code}: ${error.message}`));
  client.on('message', ({ event }) => {
    stats.received += 1;
    if (event !== 'tick') render();
  });
  client.on('message:tick', ({ data }) => {
    const n = data.n;
    if (stats.lastTick !== null) {
      if (n <= stats.lastTick) stats.duplicated += 1;
      else if (n > stats.lastTick + 1) stats.lost += n - stats.lastTick - 1;
    }
    if (stats.lastTick === null || n > stats.lastTick) stats.lastTick = n;
    stats.ticks += 1;
    render();
  });
  client.on('message:greeting', ({ data }) => log(`server says: ${JSON.stringify(data)}`));
  client.on('message:echo', ({ data }) => log(`echo: ${JSON.stringify(data)}`));

  $('send-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = $('send-input').value;
    stats.sent += 1;
    render();
    client.send(text).then(
      () => {
        stats.acked += 1;
        render();
      },
      (error) => log(`send failed ${error.code}: ${error.message}`),
    );
  });

  setInterval(() => {
    if (client.state !== 'open') return;
    client.ping().then((ms) => ($('rtt').textContent = `${ms.toFixed(1)} ms`), () => {});
  }, 2000);

  render();
})();
