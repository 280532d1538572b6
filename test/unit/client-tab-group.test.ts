/**
 * The tab group's takeover from a holder whose page hangs (PROTOCOL.md §13.6), on a fake clock: tabs
 * of one origin simulated with the test lock table and an in-memory BroadcastChannel. The integration
 * suite (test/integration/shared-tabs.test.ts) and Chromium (test/browser/shared-tabs.test.ts) prove
 * the takeover end to end; this pins the rule between tabs that suspect the holder together, and the
 * order in which a tab hears of its carrier's end.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { inboxName, tabLock } from '../../src/client/holder.js';
import { CARRIER_WAIT, QUIET_PATIENCE, QUIET_WAIT, groupFor, type GroupEnvironment } from '../../src/client/tab-group.js';
import type { BroadcastChannelLike } from '../../src/client/transport.js';
import { LockTable, type SimulatedTab } from '../helpers/tab-locks.js';

/** BroadcastChannels in memory: a post reaches every other open channel of its name, a microtask later. */
class Bus implements BroadcastChannelLike {
  static readonly open = new Set<Bus>();
  onmessage: BroadcastChannelLike['onmessage'] = null;
  readonly name: string;
  constructor(name: string) {
    this.name = name;
    Bus.open.add(this);
  }
  postMessage(data: unknown): void {
    for (const other of Bus.open) if (other !== this && other.name === this.name) queueMicrotask(() => other.onmessage?.({ data }));
  }
  close(): void {
    Bus.open.delete(this);
  }
}

const BASE = 'http://tabs.test/realtime';
const NAME = `unbroken|${BASE}|long-polling`;

function environment(tab: SimulatedTab): GroupEnvironment {
  return {
    locks: tab.locks,
    BroadcastChannel: Bus,
    // A carrier a new holder opens never answers: what it opens is not under test here.
    fetch: () => new Promise<Response>(() => {}),
    clock: { now: () => Date.now(), setTimeout: (run, ms) => setTimeout(run, ms), clearTimeout: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>) },
  };
}

/** A tab that holds the group's lock and never lets go: the hung holder. Its request rejects when a tab steals the lock. */
function hangingHolder(table: LockTable): void {
  table
    .tab()
    .locks.request(NAME, {}, () => new Promise<void>(() => {}))
    .catch(() => undefined);
}

/**
 * A holder, which said its carrier `carrier-1` was up, and two tabs in line behind it, by the order
 * of their ids. The holder hangs from the start: it never lets go of its lock, and answers no question
 * unless the test answers for it.
 */
async function twoTabsBehindAHungHolder(): Promise<{ table: LockTable; smaller: TabOf; larger: TabOf }> {
  vi.useFakeTimers();
  const table = new LockTable();
  hangingHolder(table);
  const tabs = [table.tab(), table.tab()].map((tab) => ({ tab, group: groupFor(environment(tab), BASE, 'long-polling') }));
  for (const { group } of tabs) group.join();
  const [smaller, larger] = tabs.sort((a, b) => (a.group.tab < b.group.tab ? -1 : 1));
  new Bus(NAME).postMessage({ t: 'up', id: 'carrier-1', term: 1 });
  await vi.advanceTimersByTimeAsync(0);
  return { table, smaller: smaller!, larger: larger! };
}

type TabOf = { tab: SimulatedTab; group: ReturnType<typeof groupFor> };

afterEach(() => {
  vi.useRealTimers();
  Bus.open.clear();
});

describe('tabs that suspect a hung holder (§13.6)', () => {
  it('a tab that deferred to one with a smaller id asks again, and takes the lock once that one went away', async () => {
    const { table, smaller, larger } = await twoTabsBehindAHungHolder();
    // Both suspect it at once: the larger id defers to the smaller, which closes before it steals.
    smaller.group.suspect('carrier-1');
    larger.group.suspect('carrier-1');
    await vi.advanceTimersByTimeAsync(0);
    smaller.tab.crash();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(larger.group.holding).toBe(false);
    // It asks again each second; once the smaller id's wait (up to QUIET_PATIENCE) is over a second
    // past and nobody answered, it takes the lock.
    await vi.advanceTimersByTimeAsync(QUIET_PATIENCE);
    expect(larger.group.holding).toBe(false);
    await vi.advanceTimersByTimeAsync(CARRIER_WAIT);
    expect(larger.group.holding).toBe(true);
    expect(table.holder(NAME)).toBe(larger.tab);
  });

  it('only the smaller of two tabs that suspect the holder at once takes the lock', async () => {
    const { table, smaller, larger } = await twoTabsBehindAHungHolder();
    larger.group.suspect('carrier-1');
    smaller.group.suspect('carrier-1');
    await vi.advanceTimersByTimeAsync(1_000);
    expect([smaller.group.holding, larger.group.holding]).toEqual([true, false]);
    // The new holder's announcement reached the other: it does not steal later either.
    await vi.advanceTimersByTimeAsync(5_000);
    expect(table.holder(NAME)).toBe(smaller.tab);
  });

  it.each([
    ['both at once', 0],
    ['the larger id 990 ms later', 990],
  ])('only the smaller of two tabs takes the lock when it waits 3 s for its answer and the larger 1 s (%s)', async (_, larger1s) => {
    const { table, smaller, larger } = await twoTabsBehindAHungHolder();
    smaller.group.suspect('carrier-1', QUIET_PATIENCE);
    await vi.advanceTimersByTimeAsync(larger1s);
    larger.group.suspect('carrier-1', CARRIER_WAIT);
    await vi.advanceTimersByTimeAsync(QUIET_PATIENCE);
    expect([smaller.group.holding, larger.group.holding]).toEqual([true, false]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(table.holder(NAME)).toBe(smaller.tab);
  });

  it('a tab on a quiet carrier asks after its holder: a holder that answers keeps the lock, one that stops answering loses it within two quiet spells', async () => {
    const { table, smaller, larger } = await twoTabsBehindAHungHolder();
    const asks: unknown[] = [];
    let answering = true;
    const holderBus = new Bus(NAME);
    holderBus.onmessage = ({ data }) => {
      if ((data as { t?: string }).t !== 'ask') return;
      asks.push(data);
      if (answering) holderBus.postMessage({ t: 'up', id: 'carrier-1', term: 1 });
    };
    // Each tab's channel attached to the carrier, which then stays quiet: no batch is relayed.
    for (const { group } of [smaller, larger]) group.watchHolder('carrier-1', group.heard, () => true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect([smaller.group.holding, larger.group.holding]).toEqual([false, false]);
    // One question at the attach (no hello came), then one per tab at most every other quiet spell:
    // the answer to a question reassures the tabs for the next one.
    expect(asks.length).toBeGreaterThan(2);
    expect(asks.length).toBeLessThanOrEqual(2 * (1 + Math.ceil(60_000 / (2 * QUIET_WAIT))));

    answering = false;
    // At most two quiet spells, then 3 s for the answer (a holder busy for a moment keeps the lock).
    await vi.advanceTimersByTimeAsync(2 * QUIET_WAIT + QUIET_PATIENCE);
    expect([smaller.group.holding, larger.group.holding]).toEqual([true, false]);
    expect(table.holder(NAME)).toBe(smaller.tab);
  });

  it('a holder that answers a quiet spell\'s question 2.5 s late, as a page busy for a moment does, keeps the lock', async () => {
    const { table, smaller, larger } = await twoTabsBehindAHungHolder();
    const holderBus = new Bus(NAME);
    let asks = 0;
    holderBus.onmessage = ({ data }) => {
      if ((data as { t?: string }).t !== 'ask') return;
      asks++;
      setTimeout(() => holderBus.postMessage({ t: 'up', id: 'carrier-1', term: 1 }), asks === 1 ? 0 : 2_500);
    };
    for (const { group } of [smaller, larger]) group.watchHolder('carrier-1', group.heard, () => true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(asks).toBeGreaterThan(2);
    expect([smaller.group.holding, larger.group.holding]).toEqual([false, false]);
    expect(table.holder(NAME)).not.toBe(smaller.tab);
    expect(table.holder(NAME)).not.toBe(larger.tab);
  });
});

describe('the end of a carrier, as a tab hears it (§13.6)', () => {
  const CARRIER = 'c'.repeat(22);

  it('a holder says it on each tab\'s own channel after the last lines it relayed there, and names those tabs to the group', async () => {
    vi.useFakeTimers();
    const table = new LockTable();
    // A follower tab that holds its own lock, as a tab taking part does: the holder watches it.
    const follower = 'f0110e4';
    table
      .tab()
      .locks.request(tabLock(NAME, follower), {}, () => new Promise<void>(() => {}))
      .catch(() => undefined);
    const answers = [`* {"k":"${CARRIER}","hb":15000}`, `${follower}.1 [{"t":"hb"}]`];
    const tab = table.tab();
    const env = environment(tab);
    const group = groupFor({ ...env, fetch: () => (answers.length ? Promise.resolve(new Response(answers.shift())) : new Promise<Response>(() => {})) }, BASE, 'long-polling');
    const heard: unknown[] = [];
    new Bus(NAME).onmessage = ({ data }) => heard.push(data);
    new Bus(inboxName(NAME, follower)).onmessage = ({ data }) => heard.push(data);
    const leave = group.join();
    await vi.advanceTimersByTimeAsync(0);
    expect(group.holding).toBe(true);
    leave();
    await vi.advanceTimersByTimeAsync(0);
    expect(heard.filter((message) => !('t' in (message as object)) || (message as { t: string }).t === 'gone')).toEqual([
      { c: `${follower}.1`, b: '[{"t":"hb"}]' },
      { g: CARRIER },
      { t: 'gone', id: CARRIER, told: [follower], term: expect.any(Number) },
    ]);
  });

  it('ends the channels of a tab the holder named only on the word on its own channel, after their last lines', async () => {
    const { smaller: follower } = await twoTabsBehindAHungHolder();
    const { group } = follower;
    const heard: string[] = [];
    const [relayed, silent] = [group.channel(), group.channel()];
    for (const channel of [relayed, silent]) {
      group.listen(channel, 'carrier-1', { deliver: (batch) => heard.push(`${channel} ${batch}`), gone: () => heard.push(`${channel} gone`) });
    }
    const groupBus = new Bus(NAME);
    const inbox = new Bus(inboxName(NAME, group.tab));
    inbox.postMessage({ c: relayed, b: 'hello' });
    await vi.advanceTimersByTimeAsync(0);
    // The group hears that the carrier is gone before this tab's own channel brought its last line (a
    // restart notice, §10.2): its channels wait for the word on that channel.
    groupBus.postMessage({ t: 'gone', id: 'carrier-1', told: [group.tab], term: 1 });
    await vi.advanceTimersByTimeAsync(0);
    expect(heard).toEqual([`${relayed} hello`]);
    inbox.postMessage({ c: relayed, b: 'notice' });
    inbox.postMessage({ g: 'carrier-1' });
    await vi.advanceTimersByTimeAsync(0);
    expect(heard).toEqual([`${relayed} hello`, `${relayed} notice`, `${relayed} gone`, `${silent} gone`]);
  });

  it('ends the channels of a tab the holder did not name (or a holder of an older version) on the group\'s word', async () => {
    const { smaller: follower } = await twoTabsBehindAHungHolder();
    const { group } = follower;
    const heard: string[] = [];
    const channel = group.channel();
    group.listen(channel, 'carrier-1', { deliver: (batch) => heard.push(batch), gone: () => heard.push('gone') });
    new Bus(NAME).postMessage({ t: 'gone', id: 'carrier-1', told: ['another-tab'], term: 1 });
    await vi.advanceTimersByTimeAsync(0);
    expect(heard).toEqual(['gone']);
  });
});

describe('a tab\'s own lock before it attaches (§7.5)', () => {
  const base = 'http://own-lock.test/realtime';
  const name = `unbroken|${base}|long-polling`;

  it('waits for its own lock, and neither hangs nor keeps it when it leaves and comes back before the lock came', async () => {
    vi.useFakeTimers();
    const table = new LockTable();
    // The holder of carrier-1: another tab, which holds the group's lock.
    void table
      .tab()
      .locks.request(name, {}, () => new Promise<void>(() => {}))
      .catch(() => undefined);
    let lockArrives!: () => void;
    const tab = table.tab({ locksFrom: new Promise<void>((resolve) => (lockArrives = resolve)) });
    const group = groupFor(environment(tab), base, 'long-polling');
    group.join()();
    const stop = group.join();
    new Bus(name).postMessage({ t: 'up', id: 'carrier-1', term: 1 });
    await vi.advanceTimersByTimeAsync(0);
    let answer: string | null | undefined;
    void group.carrier(() => undefined).then((id) => (answer = id));
    await vi.advanceTimersByTimeAsync(CARRIER_WAIT / 2);
    expect(answer).toBeUndefined();
    lockArrives();
    await vi.advanceTimersByTimeAsync(0);
    expect(answer).toBe('carrier-1');
    expect(tab.held()).toContain(tabLock(name, group.tab));
    stop();
    await vi.advanceTimersByTimeAsync(0);
    expect(tab.held()).not.toContain(tabLock(name, group.tab));
  });

  it('connects on its own for now when its lock does not come within CARRIER_WAIT', async () => {
    vi.useFakeTimers();
    const table = new LockTable();
    const tab = table.tab({ locksFrom: new Promise<void>(() => {}) });
    const group = groupFor(environment(tab), `${base}/never`, 'long-polling');
    group.join();
    let answer: string | null | undefined;
    void group.carrier(() => undefined).then((id) => (answer = id));
    await vi.advanceTimersByTimeAsync(CARRIER_WAIT - 1);
    expect(answer).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(answer).toBeNull();
  });
});
