// The `skiff` command: serve (everything in one process, or the API alone with --no-agent) and
// agent (the agent of one hypervisor host, beside API processes on one PostgreSQL).
import { Command, Option } from 'commander'
import path from 'node:path'
import pino from 'pino'
import { endpointUrls } from '../api/app.ts'
import { BOOTSTRAP_USERS, registerGuest, syncCredentials, type Credentials } from '../bootstrap.ts'
import { systemClock } from '../clock.ts'
import { ConfigError, loadConfig, OPTIONS, publicHost, type Config } from '../config.ts'
import { imageDir, prepareDataDir, privateDir } from '../data-dir.ts'
import { buildGuestImage, guestFiles, MissingPackages } from '../drivers/qemu/guest-image.ts'
import { randomSecret } from '../identity/password-hashing.ts'
import { ImageService } from '../images/image-service.ts'
import { chooseImageStore } from '../images/image-store.ts'
import { startAgent, startSkiff } from '../main.ts'
import { describeDatabaseUrl, openStore } from '../store/db.ts'
import { IdentityRepo } from '../store/identity-repo.ts'
import { ImagesRepo } from '../store/images-repo.ts'

// Everything Skiff writes is its own (database, keys, client files, images, VM disks): no file
// readable by other local users, whatever umask it was started with. The code sets modes
// explicitly too; this covers what it does not name (QEMU's pidfiles and sockets, qemu-img's disks).
process.umask(0o077)

// Secrets never reach the logs, whatever logs them.
const REDACT = [
  'password',
  '*.password',
  'adminPass',
  '*.adminPass',
  'admin_pass',
  '*.admin_pass',
  'req.headers["x-auth-token"]',
  'req.headers["x-subject-token"]',
  'res.headers["x-subject-token"]',
  'headers["x-auth-token"]',
  'headers["x-subject-token"]',
  // The Idempotency-Key unseals the adminPass stored with a replayable answer.
  'req.headers["idempotency-key"]',
  'headers["idempotency-key"]',
]

function makeLogger(level: string) {
  return pino({ level, redact: { paths: REDACT, censor: '***' } })
}

/**
 * A start-up that cannot go on: one line on stderr, exit 1, never a stack trace (the stack is
 * logged at debug level, for a bug).
 */
function fail(message: string): never {
  console.error(`skiff: ${message}`)
  process.exit(1)
}

/** What went wrong at start, in one line: known causes with a hint, others with their message. */
function failStart(err: unknown, logger?: pino.Logger): never {
  const e = err as NodeJS.ErrnoException
  if (err instanceof ConfigError) fail(err.message)
  if (e.code === 'EADDRINUSE')
    fail(
      `cannot listen: ${e.message} (another service on that port? choose others with --identity-port, --compute-port, --image-port, --volume-port, --dashboard-port, --serial-proxy-port)`,
    )
  if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') fail(`cannot listen: ${e.message} (check --host)`)
  logger?.debug({ err }, 'start failed')
  fail((e.message || String(err)).split('\n')[0]!)
}

const program = new Command('skiff')
  .description('A small, fast cloud control plane that speaks the OpenStack APIs.')
  // Commander's own errors (unknown option, missing value) in the same form as Skiff's; exit 1.
  .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'skiff: ')) })

const serve = program.command('serve').description('run identity, compute and image APIs and the agent in one process')
serve.option('--config <file>', 'JSON file with configuration keys (below flags and environment)')
for (const o of OPTIONS) {
  if (o.kind === 'bool') {
    serve.addOption(new Option(o.flag, `${o.help} [env ${o.env}]`))
    serve.addOption(new Option(`--no-${o.flag.slice(2)}`, 'the opposite'))
  } else {
    serve.addOption(new Option(`${o.flag} <value>`, `${o.help} [env ${o.env}]`))
  }
}

/** The Config of a command: its flags (camelCase attributes, mapped back to Config keys) > env > file. */
function configOf(cmd: Command, opts: Record<string, unknown>, rename: Partial<Record<keyof Config, string>> = {}): Config {
  try {
    const flags: Partial<Record<keyof Config, unknown>> = {}
    for (const o of OPTIONS) {
      const attr = rename[o.key] ?? o.flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
      if (opts[attr] !== undefined && cmd.getOptionValueSource(attr) === 'cli') flags[o.key] = opts[attr]
    }
    return loadConfig(flags, process.env, opts.config as string | undefined)
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message)
    throw err
  }
}

serve.action(async (opts: Record<string, unknown>) => {
  const config = configOf(serve, opts)
  const logger = makeLogger(config.logLevel)
  let skiff
  try {
    skiff = await startSkiff(config, logger)
  } catch (err) {
    if (err instanceof MissingPackages) {
      console.error(`skiff: --driver qemu needs Debian packages that are not installed.\n${err.message}`)
      process.exit(1)
    }
    failStart(err, logger)
  }
  const generated = config.adminPassword === undefined && skiff.passwords.admin !== undefined
  const cloud = skiff.passwords.demo !== undefined ? 'skiff-demo' : 'skiff-admin'
  // Handlers first: whoever reads the banner may signal at once, and a signal that comes before
  // a handler is installed ends the process on the spot (no clean stop, a host lease kept).
  let closing = false
  const shutdown = async (signal: string) => {
    if (closing) return
    closing = true
    logger.info({ signal }, 'shutting down')
    await skiff.close()
    process.exit(0)
  }
  process.on('SIGINT', () => void shutdown('SIGINT'))
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.stdout.write(
    [
      'Skiff is running.',
      `  identity  ${skiff.urls.identity}/v3`,
      `  compute   ${skiff.urls.compute}/v2.1`,
      `  image     ${skiff.urls.image}`,
      `  volume    ${skiff.urls.volume}/v3`,
      skiff.urls.dashboard ? `  dashboard ${skiff.urls.dashboard}/` : '',
      skiff.urls.serialProxy ? `  serial    ${skiff.urls.serialProxy}/ (console proxy)` : '',
      `  database  ${describeDatabaseUrl(config.databaseUrl)}`,
      `  driver    ${config.driver}${config.agent ? ` (agent ${config.agentHost})` : ' (no agent)'}`,
      ...credentialLines(skiff, config.dataDir),
      generated ? '  (admin password generated at first start; it is in admin-openrc)' : '',
      skiff.files.length > 0 ? `Try: OS_CLIENT_CONFIG_FILE=${skiff.files[0]} openstack --os-cloud ${cloud} server list` : '',
      '',
    ]
      .filter((l) => l !== '')
      .join('\n') + '\n',
  )
})

/** The client files written, and a line for the accounts whose passwords this data dir does not know. */
function credentialLines(c: Pick<Credentials, 'files' | 'unknown'>, dataDir: string): string[] {
  const lines = c.files.length > 0 ? ['Credentials (mode 0600):', ...c.files.map((f) => `  ${f}`)] : []
  if (c.unknown.length > 0) {
    lines.push(
      `Passwords not known in ${path.resolve(dataDir)} for ${c.unknown.join(', ')}: their accounts were made by another Skiff on this database ` +
        'and only password hashes are stored. Copy clouds.yaml and the openrc files from its data dir, or run ' +
        '`skiff credentials --reset` (same --data-dir and --database-url) to set new passwords (files written before then stop working).',
    )
  }
  return lines
}

/** Parse only the options a command shares with serve (data dir, database, qemu dir; host and identity port). */
function sharedConfig(opts: Record<string, unknown>): Config {
  const flags: Partial<Record<keyof Config, unknown>> = {}
  if (opts.dataDir !== undefined) flags.dataDir = opts.dataDir
  if (opts.databaseUrl !== undefined) flags.databaseUrl = opts.databaseUrl
  if (opts.qemuDir !== undefined) flags.qemuDir = opts.qemuDir
  if (opts.host !== undefined) flags.host = opts.host
  if (opts.identityPort !== undefined) flags.identityPort = opts.identityPort
  try {
    return loadConfig(flags, process.env, opts.config as string | undefined)
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message)
    throw err
  }
}

const images = program.command('images').description('guest images for the qemu driver')
images
  .command('build')
  .description(
    'build the guest (kernel, initrd, qcow2 with busybox and dropbear) from Debian packages and register skiff-base and skiff-rescue',
  )
  .option('--config <file>', 'JSON file with configuration keys')
  .option('--data-dir <dir>', 'data dir (as for serve)')
  .option('--database-url <url>', 'database (as for serve)')
  .option('--qemu-dir <dir>', 'qemu dir (as for serve); the guest goes to <qemu-dir>/guest')
  .action(async (opts: Record<string, unknown>) => {
    const config = sharedConfig(opts)
    const outDir = path.join(config.qemuDir, 'guest')
    let store
    try {
      prepareDataDir(config.dataDir)
      privateDir(config.qemuDir, 'qemu dir')
      store = await openStore(config.databaseUrl)
    } catch (err) {
      failStart(err)
    }
    try {
      const built = await buildGuestImage({ outDir, progress: (line) => console.log(`  ${line}`) })
      console.log(`built ${built.kernel}, ${built.initrd}, ${built.disk} in ${built.seconds.toFixed(1)} s`)
    } catch (err) {
      await store.close()
      if (err instanceof MissingPackages) fail(err.message)
      failStart(err)
    }
    try {
      const { kept } = await registerGuest(
        new ImageService(
          new ImagesRepo(store.db, systemClock),
          systemClock,
          chooseImageStore(config.imageStore, store.db, imageDir(config.dataDir)),
        ),
        guestFiles(outDir),
      )
      console.log(
        kept
          ? `kept the images already registered in ${describeDatabaseUrl(config.databaseUrl)} (images are immutable); to register this build, first: openstack image delete skiff-base skiff-rescue skiff-guest-kernel skiff-guest-ramdisk`
          : `registered skiff-base and skiff-rescue (qcow2) in ${describeDatabaseUrl(config.databaseUrl)}`,
      )
    } finally {
      await store.close()
    }
  })

// The agent takes the options that concern a host; `--host` names the host (the API's bind
// address means nothing to an agent).
const AGENT_KEYS: (keyof Config)[] = [
  'dataDir',
  'databaseUrl',
  'secretKeyFile',
  'driver',
  'simulatedDelayMs',
  'logLevel',
  'hostDownAfterSeconds',
  'taskLeaseSeconds',
  'hostVcpus',
  'hostRamMb',
  'hostDiskGb',
  'rescueTimeoutSeconds',
  'resizeConfirmWindowSeconds',
  'shelvedOffloadTimeSeconds',
  'enableInstancePassword',
  // An agent with --driver qemu: where its VMs live, their accelerator, SSH ports, boot timeout, live migration,
  // instant rescue, the serial relay.
  'qemuDir',
  'qemuAccel',
  'qemuSshPorts',
  'qemuBootTimeoutSeconds',
  'migrationAddress',
  'liveMigrationCompletionTimeoutSeconds',
  'liveMigrationBandwidthMiB',
  'qemuWarmRescue',
  'qemuRescueStopTimeoutSeconds',
  'serialRelayPort',
]
const agentCmd = program.command('agent').description('run the agent of one hypervisor host against a shared database (PostgreSQL)')
agentCmd.option('--config <file>', 'JSON file with configuration keys (below flags and environment)')
agentCmd.addOption(new Option('--host <name>', 'name of this hypervisor host [env SKIFF_AGENT_HOST]'))
agentCmd.addOption(
  new Option('--simulated-hosts <n>', 'run N simulated hosts NAME-1 ... NAME-N in this process (load tests)').argParser((v) => {
    const n = Number(v)
    if (!Number.isInteger(n) || n < 1) fail(`--simulated-hosts expects a positive integer, got '${v}'`)
    return n
  }),
)
for (const o of OPTIONS.filter((x) => AGENT_KEYS.includes(x.key))) {
  if (o.kind === 'bool') {
    agentCmd.addOption(new Option(o.flag, `${o.help} [env ${o.env}]`))
    agentCmd.addOption(new Option(`--no-${o.flag.slice(2)}`, 'the opposite'))
  } else {
    agentCmd.addOption(new Option(`${o.flag} <value>`, `${o.help} [env ${o.env}]`))
  }
}
agentCmd.action(async (opts: Record<string, unknown>) => {
  const config = configOf(agentCmd, opts, { agentHost: 'host', host: '-' })
  const logger = makeLogger(config.logLevel)
  let agent
  try {
    agent = await startAgent(config, logger, undefined, (opts.simulatedHosts as number | undefined) ?? 0)
  } catch (err) {
    if (err instanceof MissingPackages) {
      console.error(`skiff: --driver qemu needs Debian packages that are not installed.\n${err.message}`)
      process.exit(1)
    }
    failStart(err, logger)
  }
  const names =
    agent.hosts.length === 1 ? `host ${agent.hosts[0]}` : `${agent.hosts.length} hosts ${agent.hosts[0]} ... ${agent.hosts.at(-1)}`
  // Handlers first: whoever reads the banner may signal at once, and a signal that comes before
  // a handler is installed ends the process on the spot (no clean stop, a host lease kept).
  let closing = false
  const shutdown = async (signal: string) => {
    if (closing) return
    closing = true
    logger.info({ signal }, 'shutting down')
    await agent.stop()
    process.exit(0)
  }
  process.on('SIGINT', () => void shutdown('SIGINT'))
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.stdout.write(
    [
      `Skiff agent of ${names} is running.`,
      `  database  ${describeDatabaseUrl(config.databaseUrl)}`,
      `  driver    ${config.driver}`,
      '',
    ].join('\n'),
  )
})

program
  .command('credentials')
  .description('write clouds.yaml and the openrc files of the bootstrap accounts into the data dir, for an admin who has the database')
  .argument('[user...]', `accounts to --reset (default: all of ${BOOTSTRAP_USERS.join(', ')})`)
  .option('--reset', 'set new passwords (the files written before for these accounts stop working; their tokens are revoked)')
  .option('--config <file>', 'JSON file with configuration keys')
  .option('--data-dir <dir>', 'data dir (as for serve): where the files go, and what it knows of the passwords')
  .option('--database-url <url>', 'database (as for serve)')
  .option('--host <addr>', 'address identity listens on (as for serve), for the auth URL in the files')
  .option('--identity-port <port>', 'identity port (as for serve), for the auth URL in the files')
  .addHelpText(
    'after',
    `
Only password hashes are in the database: the passwords are known only to the data dir that
generated them (.credentials.json). Without --reset this writes the files of the accounts that
data dir knows and names the others; copy those files from the first host's data dir, or reset.
`,
  )
  .action(async (users: string[], opts: Record<string, unknown>) => {
    const config = sharedConfig(opts)
    const wrong = users.filter((u) => !BOOTSTRAP_USERS.includes(u))
    if (wrong.length > 0) fail(`not a bootstrap account: ${wrong.join(', ')} (these are: ${BOOTSTRAP_USERS.join(', ')})`)
    if (users.length > 0 && !opts.reset) fail('naming accounts needs --reset (without it, every account the data dir knows is written)')
    if (config.identityPort === 0) fail('--identity-port 0 names no port: give the port identity listens on, for the auth URL in the files')
    let store
    try {
      prepareDataDir(config.dataDir)
      store = await openStore(config.databaseUrl)
    } catch (err) {
      failStart(err)
    }
    const set = opts.reset ? Object.fromEntries((users.length > 0 ? users : BOOTSTRAP_USERS).map((u) => [u, randomSecret()])) : {}
    let result: Credentials
    try {
      const accounts = new IdentityRepo(store.db, store.dialect)
      if ((await accounts.userNamesIn(BOOTSTRAP_USERS)).length === 0)
        fail(`no bootstrap accounts in ${describeDatabaseUrl(config.databaseUrl)}: start \`skiff serve\` on it first`)
      const host = publicHost(config)
      const authUrl = endpointUrls({
        identity: `http://${host.includes(':') ? `[${host}]` : host}:${config.identityPort}`,
        compute: '',
        image: '',
        volume: '',
      }).identity
      result = await syncCredentials({ accounts, dataDir: config.dataDir, authUrl, set })
    } finally {
      await store.close()
    }
    if (opts.reset)
      console.log(
        `New passwords for ${Object.keys(set).join(', ')}. Files written before for them no longer work; their tokens are revoked.`,
      )
    const lines = credentialLines(result, config.dataDir)
    if (result.unknown.length > 0) {
      if (result.files.length > 0) console.log(lines.slice(0, -1).join('\n'))
      fail(
        `passwords not known in ${path.resolve(config.dataDir)} for ${result.unknown.join(', ')} (only hashes are stored): copy clouds.yaml and the openrc files from the data dir of the Skiff that made them, or run \`skiff credentials --reset\` to set new ones`,
      )
    }
    console.log(lines.join('\n'))
  })

await program.parseAsync(process.argv)
