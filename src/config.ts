// One typed configuration, parsed once (flags > environment > config file > defaults)
// and passed down. No other module reads process.env.
import { readFileSync } from 'node:fs'
import path from 'node:path'

export type DriverName = 'simulated' | 'qemu'
export const DRIVERS: DriverName[] = ['simulated', 'qemu']
export type ImageStoreChoice = 'auto' | 'file' | 'database'
export const IMAGE_STORES: ImageStoreChoice[] = ['auto', 'file', 'database']

export interface Config {
  host: string
  identityPort: number
  computePort: number
  imagePort: number
  /** Block storage (Cinder v3) port. */
  volumePort: number
  /** The web dashboard's port (0: any free port). */
  dashboardPort: number
  serialProxyPort: number
  serialProxy: boolean
  /** Serve the web dashboard (`--no-dashboard`: not). */
  dashboard: boolean
  dataDir: string
  databaseUrl: string
  /** Where image data lives: `auto` (the database on PostgreSQL, else files), `file` or `database`. */
  imageStore: ImageStoreChoice
  /** Cap of an agent's image cache (`<data-dir>/image-cache`), MiB; 0: no cap. */
  imageCacheSizeMb: number
  driver: DriverName
  adminPassword: string | undefined
  agent: boolean
  agentHost: string
  tokenTtlSeconds: number
  simulatedDelayMs: number
  enableInstancePassword: boolean
  logLevel: string
  /** The deployment's sealing key: this file instead of `<data-dir>/secret.key`. */
  secretKeyFile: string | undefined
  /** Clients keep connections alive longer than Node's 5 s default; never close them first. */
  keepAliveTimeoutMs: number
  /** Time a client has to send a request's headers (a connection that sends nothing is closed after it too), ms. */
  headersTimeoutMs: number
  /** Time a client has to send a JSON request body once its headers are in, ms; image uploads are exempt (only an idle upload is closed). */
  requestTimeoutMs: number
  /** Open connections per listener; more are refused at once. 0: a quarter of the process's open-file limit. */
  maxConnections: number
  /** Largest JSON body accepted by the API listeners (bytes); larger answers 413. */
  bodyLimitBytes: number
  /** Time between two reads of the server change feed while event streams are open, ms. */
  serverEventsIntervalMs: number
  /** Interval of the `: keep-alive` comment on event streams, ms. */
  serverEventsKeepAliveMs: number
  /** Default lifetime of a rescue before Skiff unrescues it; 0 = never (Nova's default). */
  rescueTimeoutSeconds: number
  /** Nova's resize_confirm_window: a resize or cold migration waiting this long is confirmed by Skiff; 0 = never. */
  resizeConfirmWindowSeconds: number
  /** Nova's allow_resize_to_same_host: a resize may stay on the server's host (default false, as Nova). */
  allowResizeToSameHost: boolean
  /** The in-process agent runs this many simulated hosts, NAME-1 ... NAME-N (0: one host, NAME). */
  simulatedHosts: number
  /** Nova's shelved_offload_time: seconds a shelved server keeps its host; 0 offloads at once (Nova's default), -1 never. */
  shelvedOffloadTimeSeconds: number
  /** A host whose agent has not heartbeaten for this long is down: actions on its servers get 503. */
  hostDownAfterSeconds: number
  /** A running task whose agent has not renewed its lease for this long goes back to the queue. */
  taskLeaseSeconds: number
  /** What an agent's host offers to servers: the scheduler places a server where its flavor fits. */
  hostVcpus: number
  hostRamMb: number
  hostDiskGb: number
  quotaInstances: number
  quotaCores: number
  quotaRamMb: number
  /** Server actions per minute per project (one token bucket per project: in the database on PostgreSQL); 0 = no limit. */
  actionRateLimit: number
  /** qemu driver: VM directories, built guest, cached accelerator (default <data-dir>/qemu). */
  qemuDir: string
  /** qemu driver: `auto` (probe KVM once, else TCG), `kvm` or `tcg`. */
  qemuAccel: string
  /** qemu driver: range of 127.0.0.1 ports forwarded to the guests' SSH, `MIN-MAX`. */
  qemuSshPorts: string
  /** qemu driver: how long a guest may take to boot, seconds. */
  qemuBootTimeoutSeconds: number
  /** qemu driver: the address of this host that other hosts' agents reach for live migration (Nova's live_migration_inbound_addr). */
  migrationAddress: string
  /** `skiff agent` with the qemu driver: the port of its serial relay on migrationAddress (0: any free port). */
  serialRelayPort: number
  /** qemu driver: seconds a live migration may take per GiB of memory and disk (Nova's live_migration_completion_timeout; 0: no limit). */
  liveMigrationCompletionTimeoutSeconds: number
  /** qemu driver: a live migration's memory copy at most this fast, MiB/s (Nova's live_migration_bandwidth; 0: the network's). */
  liveMigrationBandwidthMiB: number
  /** qemu driver: restore rescue systems from a saved warm state instead of booting them. */
  qemuWarmRescue: boolean
  /** qemu driver: how long the server's clean (ACPI) shutdown may take when it is rescued, seconds (0: none, QEMU quits). */
  qemuRescueStopTimeoutSeconds: number
}

interface OptionSpec {
  key: keyof Config
  flag: string
  env: string
  kind: 'string' | 'int' | 'bool'
  /** Smallest int accepted (default 0). */
  min?: number
  default: (partial: Partial<Config>) => Config[keyof Config]
  help: string
}

/** Every option, once: the CLI flags, the environment variables and the README table come from here. */
export const OPTIONS: OptionSpec[] = [
  {
    key: 'host',
    flag: '--host',
    env: 'SKIFF_HOST',
    kind: 'string',
    default: () => '127.0.0.1',
    help: 'address the three API listeners and the dashboard bind to',
  },
  { key: 'identityPort', flag: '--identity-port', env: 'SKIFF_IDENTITY_PORT', kind: 'int', default: () => 5000, help: 'Keystone v3 port' },
  { key: 'computePort', flag: '--compute-port', env: 'SKIFF_COMPUTE_PORT', kind: 'int', default: () => 8774, help: 'Nova v2.1 port' },
  { key: 'imagePort', flag: '--image-port', env: 'SKIFF_IMAGE_PORT', kind: 'int', default: () => 9292, help: 'Glance v2 port' },
  {
    key: 'volumePort',
    flag: '--volume-port',
    env: 'SKIFF_VOLUME_PORT',
    kind: 'int',
    default: () => 8776,
    help: 'Cinder v3 (block storage) port',
  },
  {
    key: 'dashboardPort',
    flag: '--dashboard-port',
    env: 'SKIFF_DASHBOARD_PORT',
    kind: 'int',
    default: () => 8000,
    help: 'web dashboard port (0: any free port)',
  },
  {
    key: 'dashboard',
    flag: '--dashboard',
    env: 'SKIFF_DASHBOARD',
    kind: 'bool',
    default: () => true,
    help: 'serve the web dashboard (`--no-dashboard`: no dashboard listener)',
  },
  {
    key: 'serialProxyPort',
    flag: '--serial-proxy-port',
    env: 'SKIFF_SERIAL_PROXY_PORT',
    kind: 'int',
    default: () => 6083,
    help: 'serial console proxy port, WebSocket (nova-serialproxy; 0: any free port)',
  },
  {
    key: 'serialProxy',
    flag: '--serial-proxy',
    env: 'SKIFF_SERIAL_PROXY',
    kind: 'bool',
    default: () => true,
    help: 'serve the serial console proxy (`--no-serial-proxy`: none; serial consoles are then "Unavailable console type")',
  },
  {
    key: 'dataDir',
    flag: '--data-dir',
    env: 'SKIFF_DATA_DIR',
    kind: 'string',
    default: () => './data',
    help: 'database, image files, clouds.yaml and openrc files',
  },
  {
    key: 'databaseUrl',
    flag: '--database-url',
    env: 'SKIFF_DATABASE_URL',
    kind: 'string',
    default: (p) => `sqlite:${path.join(p.dataDir ?? './data', 'skiff.sqlite')}`,
    help: '`sqlite:PATH` (default `sqlite:<data-dir>/skiff.sqlite`), `sqlite::memory:` or `postgres://USER@HOST/DB` (to scale out)',
  },
  {
    key: 'imageStore',
    flag: '--image-store',
    env: 'SKIFF_IMAGE_STORE',
    kind: 'string',
    default: () => 'auto',
    help: "where image data lives: `file` (`<data-dir>/images`, one process's own), `database` (chunks in PostgreSQL, shared by every process and agent) or `auto` (`database` on PostgreSQL, else `file`)",
  },
  {
    key: 'imageCacheSizeMb',
    flag: '--image-cache-size',
    env: 'SKIFF_IMAGE_CACHE_SIZE',
    kind: 'int',
    default: () => 20_480,
    help: "cap of an agent's image cache (`<data-dir>/image-cache`, qemu driver), MiB: the least recently used images go first, never one a server of the host boots from; 0: no cap",
  },
  {
    key: 'driver',
    flag: '--driver',
    env: 'SKIFF_DRIVER',
    kind: 'string',
    default: () => 'simulated',
    help: 'hypervisor driver: `simulated` or `qemu` (real VMs; see "The qemu driver")',
  },
  {
    key: 'adminPassword',
    flag: '--admin-password',
    env: 'SKIFF_ADMIN_PASSWORD',
    kind: 'string',
    default: () => undefined,
    help: 'password of the `admin` user, set at start when given; generated at first start when absent (then kept)',
  },
  {
    key: 'agent',
    flag: '--agent',
    env: 'SKIFF_AGENT',
    kind: 'bool',
    default: () => true,
    help: 'run the in-process agent (`--no-agent` to run the API only)',
  },
  {
    key: 'agentHost',
    flag: '--agent-host',
    env: 'SKIFF_AGENT_HOST',
    kind: 'string',
    default: () => 'skiff-1',
    help: 'host name of the in-process agent (shown as `OS-EXT-SRV-ATTR:host`)',
  },
  {
    key: 'tokenTtlSeconds',
    flag: '--token-ttl',
    env: 'SKIFF_TOKEN_TTL',
    kind: 'int',
    default: () => 3600,
    help: 'lifetime of identity tokens, seconds',
  },
  {
    key: 'simulatedDelayMs',
    flag: '--simulated-delay',
    env: 'SKIFF_SIMULATED_DELAY',
    kind: 'int',
    default: () => 100,
    help: 'time each simulated hypervisor operation takes, ms (clients see the task state)',
  },
  {
    key: 'enableInstancePassword',
    flag: '--instance-password',
    env: 'SKIFF_INSTANCE_PASSWORD',
    kind: 'bool',
    default: () => true,
    help: 'return `adminPass` on create and rescue (Nova `[api] enable_instance_password`)',
  },
  {
    key: 'secretKeyFile',
    flag: '--secret-key-file',
    env: 'SKIFF_SECRET_KEY_FILE',
    kind: 'string',
    default: () => undefined,
    help: "the deployment's sealing key (default `<data-dir>/secret.key`, made by the first start): every API process and agent needs the same one, so copy that file to each new host (0600) and name it here or put it in its data dir",
  },
  {
    key: 'logLevel',
    flag: '--log-level',
    env: 'SKIFF_LOG_LEVEL',
    kind: 'string',
    default: () => 'info',
    help: 'fatal, error, warn, info, debug, trace or silent',
  },
  {
    key: 'keepAliveTimeoutMs',
    flag: '--keep-alive-timeout',
    env: 'SKIFF_KEEP_ALIVE_TIMEOUT',
    kind: 'int',
    default: () => 75_000,
    help: 'idle keep-alive timeout of the listeners, ms',
  },
  {
    key: 'headersTimeoutMs',
    flag: '--headers-timeout',
    env: 'SKIFF_HEADERS_TIMEOUT',
    kind: 'int',
    default: () => 20_000,
    help: "time a client has to send a request's headers, ms; a connection that sends nothing is closed after it too",
  },
  {
    key: 'requestTimeoutMs',
    flag: '--request-timeout',
    env: 'SKIFF_REQUEST_TIMEOUT',
    kind: 'int',
    default: () => 60_000,
    help: 'time a client has to send a JSON request body once its headers are in, ms (image uploads: closed only when idle for the keep-alive timeout)',
  },
  {
    key: 'maxConnections',
    flag: '--max-connections',
    env: 'SKIFF_MAX_CONNECTIONS',
    kind: 'int',
    default: () => 0,
    help: 'open connections per listener, more are refused (0: a quarter of the open-file limit)',
  },
  {
    key: 'rescueTimeoutSeconds',
    flag: '--rescue-timeout',
    env: 'SKIFF_RESCUE_TIMEOUT',
    kind: 'int',
    default: () => 0,
    help: 'seconds a rescue lasts before Skiff unrescues it (0: never, as Nova)',
  },
  {
    key: 'resizeConfirmWindowSeconds',
    flag: '--resize-confirm-window',
    env: 'SKIFF_RESIZE_CONFIRM_WINDOW',
    kind: 'int',
    default: () => 0,
    help: "seconds a resize or cold migration waits in VERIFY_RESIZE before Skiff confirms it (0: never, as Nova's resize_confirm_window)",
  },
  {
    key: 'allowResizeToSameHost',
    flag: '--allow-resize-to-same-host',
    env: 'SKIFF_ALLOW_RESIZE_TO_SAME_HOST',
    kind: 'bool',
    default: () => false,
    help: "a resize may stay on the server's host (Nova's allow_resize_to_same_host; off by default, as Nova)",
  },
  {
    key: 'simulatedHosts',
    flag: '--simulated-hosts',
    env: 'SKIFF_SIMULATED_HOSTS',
    kind: 'int',
    default: () => 0,
    help: 'the in-process agent runs N simulated hosts NAME-1 ... NAME-N (0: one host, NAME)',
  },
  {
    key: 'shelvedOffloadTimeSeconds',
    flag: '--shelved-offload-time',
    env: 'SKIFF_SHELVED_OFFLOAD_TIME',
    kind: 'int',
    min: -1,
    default: () => 0,
    help: 'seconds a shelved server keeps its host before it is offloaded (0: at once, as Nova; -1: never)',
  },
  {
    key: 'hostDownAfterSeconds',
    flag: '--host-down-after',
    env: 'SKIFF_HOST_DOWN_AFTER',
    kind: 'int',
    default: () => 30,
    help: 'seconds without an agent heartbeat before its host is down (actions answer 503)',
  },
  {
    key: 'taskLeaseSeconds',
    flag: '--task-lease',
    env: 'SKIFF_TASK_LEASE',
    kind: 'int',
    default: () => 60,
    help: 'seconds a running task stays claimed without its agent renewing the lease; then it runs again',
  },
  {
    key: 'hostVcpus',
    flag: '--host-vcpus',
    env: 'SKIFF_HOST_VCPUS',
    kind: 'int',
    default: () => 512,
    help: "vCPUs an agent's host offers to servers (the scheduler places a server where its flavor fits)",
  },
  {
    key: 'hostRamMb',
    flag: '--host-ram',
    env: 'SKIFF_HOST_RAM',
    kind: 'int',
    default: () => 2_097_152,
    help: "RAM an agent's host offers to servers, MB",
  },
  {
    key: 'hostDiskGb',
    flag: '--host-disk',
    env: 'SKIFF_HOST_DISK',
    kind: 'int',
    default: () => 65_536,
    help: "disk an agent's host offers to servers, GB",
  },
  {
    key: 'quotaInstances',
    flag: '--quota-instances',
    env: 'SKIFF_QUOTA_INSTANCES',
    kind: 'int',
    default: () => 1000,
    help: 'servers per project',
  },
  { key: 'quotaCores', flag: '--quota-cores', env: 'SKIFF_QUOTA_CORES', kind: 'int', default: () => 2000, help: 'vCPUs per project' },
  { key: 'quotaRamMb', flag: '--quota-ram', env: 'SKIFF_QUOTA_RAM', kind: 'int', default: () => 4_096_000, help: 'RAM per project, MB' },
  {
    key: 'bodyLimitBytes',
    flag: '--body-limit',
    env: 'SKIFF_BODY_LIMIT',
    kind: 'int',
    default: () => 1_048_576,
    help: 'largest JSON request body, bytes (413 above)',
  },
  {
    key: 'serverEventsIntervalMs',
    flag: '--server-events-interval',
    env: 'SKIFF_SERVER_EVENTS_INTERVAL',
    kind: 'int',
    default: () => 100,
    help: 'time between two reads of the server change feed while event streams are open, ms',
  },
  {
    key: 'serverEventsKeepAliveMs',
    flag: '--server-events-keep-alive',
    env: 'SKIFF_SERVER_EVENTS_KEEP_ALIVE',
    kind: 'int',
    default: () => 15_000,
    help: 'interval of the keep-alive comment on server event streams, ms',
  },
  {
    key: 'actionRateLimit',
    flag: '--action-rate-limit',
    env: 'SKIFF_ACTION_RATE_LIMIT',
    kind: 'int',
    default: () => 1200,
    help: 'server actions per minute per project, counted in the database on PostgreSQL (shared by all API processes), in memory on SQLite (413 above; 0: no limit)',
  },
  {
    key: 'qemuDir',
    flag: '--qemu-dir',
    env: 'SKIFF_QEMU_DIR',
    kind: 'string',
    default: (p) => path.join(p.dataDir ?? './data', 'qemu'),
    help: 'qemu driver: VM directories and the built guest image',
  },
  {
    key: 'qemuAccel',
    flag: '--qemu-accel',
    env: 'SKIFF_QEMU_ACCEL',
    kind: 'string',
    default: () => 'auto',
    help: 'qemu driver: `auto` (probe KVM once, else TCG), `kvm` or `tcg`',
  },
  {
    key: 'qemuSshPorts',
    flag: '--qemu-ssh-ports',
    env: 'SKIFF_QEMU_SSH_PORTS',
    kind: 'string',
    default: () => '22200-22999',
    help: "qemu driver: 127.0.0.1 ports forwarded to the guests' SSH, `MIN-MAX`",
  },
  {
    key: 'qemuBootTimeoutSeconds',
    flag: '--qemu-boot-timeout',
    env: 'SKIFF_QEMU_BOOT_TIMEOUT',
    kind: 'int',
    default: () => 180,
    help: 'qemu driver: seconds a guest may take to boot',
  },
  {
    key: 'migrationAddress',
    flag: '--migration-address',
    env: 'SKIFF_MIGRATION_ADDRESS',
    kind: 'string',
    default: () => '127.0.0.1',
    help: "qemu driver: this host's address where a live migration's destination QEMU listens (the other hosts' agents must reach it)",
  },
  {
    key: 'serialRelayPort',
    flag: '--serial-relay-port',
    env: 'SKIFF_SERIAL_RELAY_PORT',
    kind: 'int',
    default: () => 6084,
    help: "`skiff agent`, qemu driver: the port on --migration-address where the serial console proxies reach this host's consoles (0: any free port)",
  },
  {
    key: 'liveMigrationCompletionTimeoutSeconds',
    flag: '--live-migration-completion-timeout',
    env: 'SKIFF_LIVE_MIGRATION_COMPLETION_TIMEOUT',
    kind: 'int',
    default: () => 800,
    help: 'qemu driver: seconds a live migration may take per GiB of memory and disk before it is cancelled (the server runs on where it was); 0: no limit',
  },
  {
    key: 'liveMigrationBandwidthMiB',
    flag: '--live-migration-bandwidth',
    env: 'SKIFF_LIVE_MIGRATION_BANDWIDTH',
    kind: 'int',
    default: () => 0,
    help: "qemu driver: a live migration's memory copy at most this many MiB/s (Nova's live_migration_bandwidth); 0: no limit but the network's",
  },
  {
    key: 'qemuWarmRescue',
    flag: '--qemu-warm-rescue',
    env: 'SKIFF_QEMU_WARM_RESCUE',
    kind: 'bool',
    default: () => true,
    help: 'qemu driver: restore each rescue system from a saved warm state of its image instead of booting it (`--no-qemu-warm-rescue`: always boot)',
  },
  {
    key: 'qemuRescueStopTimeoutSeconds',
    flag: '--qemu-rescue-stop-timeout',
    env: 'SKIFF_QEMU_RESCUE_STOP_TIMEOUT',
    kind: 'int',
    default: () => 30,
    help: "qemu driver: seconds the server's clean (ACPI) shutdown may take when it is rescued, then QEMU quits; 0: no clean shutdown (faster; what the guest had not written to its disk is lost)",
  },
]

export class ConfigError extends Error {}

function coerce(spec: OptionSpec, raw: unknown, source: string): Config[keyof Config] {
  if (raw === undefined) return undefined
  if (spec.kind === 'bool') {
    if (typeof raw === 'boolean') return raw
    const s = String(raw).toLowerCase()
    if (['1', 'true', 'yes', 'on'].includes(s)) return true
    if (['0', 'false', 'no', 'off'].includes(s)) return false
    throw new ConfigError(`${source}: ${spec.flag} expects true or false, got '${String(raw)}'`)
  }
  if (spec.kind === 'int') {
    const n = typeof raw === 'number' ? raw : Number(String(raw))
    const min = spec.min ?? 0
    if (!Number.isInteger(n) || n < min)
      throw new ConfigError(
        `${source}: ${spec.flag} expects ${min === 0 ? 'a non-negative integer' : `an integer from ${min}`}, got '${String(raw)}'`,
      )
    return n
  }
  return String(raw)
}

/**
 * Merge the sources. `flags` holds only options given on the command line (keys of Config);
 * `file` is an optional JSON file whose keys are Config keys.
 */
export function loadConfig(flags: Partial<Record<keyof Config, unknown>>, env: NodeJS.ProcessEnv, configFile?: string): Config {
  let fileValues: Record<string, unknown> = {}
  if (configFile) {
    try {
      fileValues = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>
    } catch (e) {
      throw new ConfigError(`cannot read config file ${configFile}: ${(e as Error).message}`)
    }
  }
  const out: Partial<Config> = {}
  for (const spec of OPTIONS) {
    const value =
      coerce(spec, flags[spec.key], 'command line') ??
      coerce(spec, env[spec.env], `environment ${spec.env}`) ??
      coerce(spec, fileValues[spec.key], `config file ${configFile}`)
    ;(out as Record<string, unknown>)[spec.key] = value
  }
  for (const spec of OPTIONS) {
    if ((out as Record<string, unknown>)[spec.key] === undefined) (out as Record<string, unknown>)[spec.key] = spec.default(out)
  }
  const config = out as Config
  if (!DRIVERS.includes(config.driver)) throw new ConfigError(`unknown driver '${config.driver}' (available: ${DRIVERS.join(', ')})`)
  if (!IMAGE_STORES.includes(config.imageStore))
    throw new ConfigError(`--image-store expects auto, file or database, got '${config.imageStore}'`)
  // On SQLite an upload's transaction would hold the one connection: every request would wait for it.
  if (config.imageStore === 'database' && config.databaseUrl.startsWith('sqlite:'))
    throw new ConfigError('--image-store database needs a PostgreSQL --database-url (with SQLite, use file)')
  if (!['auto', 'kvm', 'tcg'].includes(config.qemuAccel))
    throw new ConfigError(`--qemu-accel expects auto, kvm or tcg, got '${config.qemuAccel}'`)
  sshPortRange(config)
  checkValues(config)
  return config
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/**
 * Upper bounds, so that a bad value is refused here, before anything listens, rather than at
 * its first use: a port above 65535 fails after another listener is up, and Node fires a timer
 * longer than 2^31-1 ms after 1 ms (a keep-alive of "forever" would close at once).
 */
const MAX: Partial<Record<keyof Config, number>> = {
  identityPort: 65535,
  computePort: 65535,
  imagePort: 65535,
  dashboardPort: 65535,
  volumePort: 65535,
  serialProxyPort: 65535,
  serialRelayPort: 65535,
  keepAliveTimeoutMs: 2 ** 31 - 1,
  headersTimeoutMs: 2 ** 31 - 1,
  requestTimeoutMs: 2 ** 31 - 1,
  serverEventsIntervalMs: 2 ** 31 - 1,
  serverEventsKeepAliveMs: 2 ** 31 - 1,
  simulatedDelayMs: 2 ** 31 - 1,
  hostDownAfterSeconds: 2_147_483,
  taskLeaseSeconds: 2_147_483,
  qemuBootTimeoutSeconds: 2_147_483,
  liveMigrationCompletionTimeoutSeconds: 2_147_483,
  liveMigrationBandwidthMiB: 1_048_576,
  qemuRescueStopTimeoutSeconds: 2_147_483,
  // As the API's auto_unrescue_after; a token lifetime of ten years is already more than enough.
  rescueTimeoutSeconds: 7 * 24 * 3600,
  resizeConfirmWindowSeconds: 2_147_483,
  simulatedHosts: 10_000,
  shelvedOffloadTimeSeconds: 2_147_483,
  tokenTtlSeconds: 10 * 365 * 24 * 3600,
}

function checkValues(config: Config) {
  for (const spec of OPTIONS) {
    const max = MAX[spec.key]
    const v = config[spec.key]
    if (max !== undefined && typeof v === 'number' && v > max)
      throw new ConfigError(`${spec.flag} expects an integer from 0 to ${max}, got '${v}'`)
  }
  if (!LOG_LEVELS.includes(config.logLevel))
    throw new ConfigError(`--log-level expects ${LOG_LEVELS.slice(0, -1).join(', ')} or silent, got '${config.logLevel}'`)
  if (config.dataDir === '') throw new ConfigError('--data-dir must not be empty')
  const url = config.databaseUrl
  if (url === 'sqlite:' || !/^(sqlite:|postgres:\/\/|postgresql:\/\/)/.test(url)) {
    throw new ConfigError(
      `--database-url expects sqlite:PATH, sqlite::memory: or postgres://USER@HOST/DB, got '${describeDatabaseUrl(url)}'`,
    )
  }
}

/** The URL without the password it may hold (for messages and the start banner). */
export function describeDatabaseUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@')
}

/** `--qemu-ssh-ports` as numbers. */
export function sshPortRange(config: Pick<Config, 'qemuSshPorts'>): { min: number; max: number } {
  const m = /^(\d+)-(\d+)$/.exec(config.qemuSshPorts)
  const min = Number(m?.[1]),
    max = Number(m?.[2])
  if (!m || min < 1024 || max > 65535 || min > max)
    throw new ConfigError(`--qemu-ssh-ports expects MIN-MAX within 1024-65535, got '${config.qemuSshPorts}'`)
  return { min, max }
}

/** Address clients use to reach a listener bound to `host`. */
export function publicHost(config: Config): string {
  return config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
}
