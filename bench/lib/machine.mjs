// @ts-check
/** The description of the machine every report and document of a run carries. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { CHROMIUM_PATH } from './processes.mjs';
import { REDIS_SERVER } from './redis-server.mjs';
import { num } from './stats.mjs';

/**
 * The machine a run measured: CPUs, memory, OS, Node, and the Chromium and redis-server of the
 * sections that use them.
 * @param {Set<string>} sections
 */
export function machine(sections) {
  let openFiles = 'unknown';
  try {
    openFiles = readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+)/)?.[1] ?? 'unknown';
  } catch {}
  let chromium = 'Chromium not run';
  if (sections.has('browser') || sections.has('fallback')) {
    try {
      chromium = execFileSync(CHROMIUM_PATH, ['--version'], { encoding: 'utf8' }).trim();
    } catch {
      chromium = `not found at ${CHROMIUM_PATH}`;
    }
  }
  let redisServer = 'Redis not run';
  if (sections.has('redis')) {
    try {
      // `Redis server v=7.0.15 sha=… malloc=jemalloc-5.3.0 bits=64 build=…`: the version and the allocator matter here.
      const version = execFileSync(REDIS_SERVER, ['--version'], { encoding: 'utf8' });
      redisServer = `Redis ${/v=(\S+)/.exec(version)?.[1] ?? '?'} (${/malloc=(\S+)/.exec(version)?.[1] ?? '?'})`;
    } catch {
      redisServer = `not found at ${REDIS_SERVER}`;
    }
  }
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    chromium,
    redisServer,
    openFilesLimit: openFiles,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/**
 * One line: `2 CPUs (…), 23.5 GiB, Linux … x64, Node v20.20.2, Chromium …, load average at start …, at end …`.
 * @param {ReturnType<typeof machine>} host
 * @param {boolean} withRedis
 */
export function machineLine(host, withRedis) {
  return (
    `${host.cpus} CPUs (${host.cpuModel}), ${host.memoryGiB} GiB, ${host.os}, Node ${host.node}, ${host.chromium}, ` +
    (withRedis ? `${host.redisServer}, ` : '') +
    `open files limit ${host.openFilesLimit}, load average at start ${host.loadAverageAtStart.join(' ')}, at end ${os
      .loadavg()
      .map((x) => num(x, 2))
      .join(' ')}`
  );
}
