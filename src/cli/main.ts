// The `skiff` command: serve (everything in one process, or the API alone with --no-agent) and
// agent (the agent of one hypervisor host, beside API processes on one PostgreSQL).
import { Command, Option } from 'commander'
import pino from 'pino'
import { ConfigError, loadConfig, OPTIONS, type Config } from '../config.ts'
import { describeDatabaseUrl } from '../store/db.ts'
import { startAgent, startSkiff } from '../main.ts'
import path from 'node:path'
import { registerGuest } from '../bootstrap.ts'
import { systemClock } from '../clock.ts'
import { buildGuestImage, guestFiles, MissingPackages } from '../drivers/qemu/guest-image.ts'
import { ImageService } from '../images/image-service.ts'
import { openStore } from '../store/db.ts'

// Secrets never reach the logs, whatever logs them.
const REDACT = [
  'password', '*.password', 'adminPass', '*.adminPass', 'admin_pass', '*.admin_pass',
  'req.headers["x-auth-token"]', 'req.headers["x-subject-token"]', 'res.headers["x-subject-token"]',
  'headers["x-auth-token"]', 'headers["x-subject-token"]',
  // The Idempotency-Key unseals the adminPass stored with a replayable answer.
  'req.headers["idempotency-key"]', 'headers["idempotency-key"]',
]

function makeLogger(level: string) {
  return pino({ level, redact: { paths: REDACT, censor: '***' } })
}

const program = new Command('skiff')
  .description('A small, fast cloud control plane that speaks the OpenStack APIs.')

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
    if (err instanceof ConfigError) {
      console.error(`skiff: ${err.message}`)
      process.exit(2)
    }
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
    const e = err as NodeJS.ErrnoException
    if (err instanceof MissingPackages) {
      console.error(`skiff: --driver qemu needs Debian packages that are not installed.\n${err.message}`)
      process.exit(1)
    }
    if (e.code === 'EADDRINUSE') {
      console.error(`skiff: cannot listen: ${e.message} (another service on that port? choose others with --identity-port, --compute-port, --image-port)`)
      process.exit(1)
    }
    throw err
  }
  const generated = config.adminPassword === undefined
  process.stdout.write([
    'Skiff is running.',
    `  identity  ${skiff.urls.identity}/v3`,
    `  compute   ${skiff.urls.compute}/v2.1`,
    `  image     ${skiff.urls.image}`,
    `  database  ${describeDatabaseUrl(config.databaseUrl)}`,
    `  driver    ${config.driver}${config.agent ? ` (agent ${config.agentHost})` : ' (no agent)'}`,
    'Credentials (mode 0600):',
    ...skiff.files.map((f) => `  ${f}`),
    generated ? '  (admin password generated at first start; it is in admin-openrc)' : '',
    `Try: OS_CLIENT_CONFIG_FILE=${skiff.files[0]} openstack --os-cloud skiff-demo server list`,
    '',
  ].filter((l) => l !== '').join('\n') + '\n')

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
})

/** Parse only the options `skiff images build` shares with serve (data dir, database, qemu dir). */
function sharedConfig(opts: Record<string, unknown>): Config {
  const flags: Partial<Record<keyof Config, unknown>> = {}
  if (opts.dataDir !== undefined) flags.dataDir = opts.dataDir
  if (opts.databaseUrl !== undefined) flags.databaseUrl = opts.databaseUrl
  if (opts.qemuDir !== undefined) flags.qemuDir = opts.qemuDir
  return loadConfig(flags, process.env, opts.config as string | undefined)
}

const images = program.command('images').description('guest images for the qemu driver')
images.command('build')
  .description('build the guest (kernel, initrd, qcow2 with busybox and dropbear) from Debian packages and register skiff-base and skiff-rescue')
  .option('--config <file>', 'JSON file with configuration keys')
  .option('--data-dir <dir>', 'data dir (as for serve)')
  .option('--database-url <url>', 'database (as for serve)')
  .option('--qemu-dir <dir>', 'qemu dir (as for serve); the guest goes to <qemu-dir>/guest')
  .action(async (opts: Record<string, unknown>) => {
    let config: Config
    try {
      config = sharedConfig(opts)
    } catch (err) {
      if (err instanceof ConfigError) { console.error(`skiff: ${err.message}`); process.exit(2) }
      throw err
    }
    const outDir = path.join(config.qemuDir, 'guest')
    try {
      const built = await buildGuestImage({ outDir, progress: (line) => console.log(`  ${line}`) })
      console.log(`built ${built.kernel}, ${built.initrd}, ${built.disk} in ${built.seconds.toFixed(1)} s`)
    } catch (err) {
      if (err instanceof MissingPackages) { console.error(`skiff: ${err.message}`); process.exit(1) }
      throw err
    }
    const store = await openStore(config.databaseUrl)
    try {
      const { kept } = await registerGuest(store.db, new ImageService(store.db, systemClock, path.join(config.dataDir, 'images')), guestFiles(outDir))
      console.log(kept
        ? `kept the images already registered in ${describeDatabaseUrl(config.databaseUrl)} (images are immutable); to register this build, first: openstack image delete skiff-base skiff-rescue skiff-guest-kernel skiff-guest-ramdisk`
        : `registered skiff-base and skiff-rescue (qcow2) in ${describeDatabaseUrl(config.databaseUrl)}`)
    } finally {
      await store.close()
    }
  })

// The agent takes the options that concern a host; `--host` names the host (the API's bind
// address means nothing to an agent).
const AGENT_KEYS: (keyof Config)[] = ['dataDir', 'databaseUrl', 'driver', 'simulatedDelayMs', 'logLevel', 'hostDownAfterSeconds', 'taskLeaseSeconds', 'hostVcpus', 'hostRamMb', 'hostDiskGb', 'rescueTimeoutSeconds', 'enableInstancePassword']
const agentCmd = program.command('agent').description('run the agent of one hypervisor host against a shared database (PostgreSQL)')
agentCmd.option('--config <file>', 'JSON file with configuration keys (below flags and environment)')
agentCmd.addOption(new Option('--host <name>', 'name of this hypervisor host [env SKIFF_AGENT_HOST]'))
agentCmd.addOption(new Option('--simulated-hosts <n>', 'run N simulated hosts NAME-1 ... NAME-N in this process (load tests)').argParser((v) => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) { console.error(`skiff: --simulated-hosts expects a positive integer, got '${v}'`); process.exit(2) }
  return n
}))
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
  const agent = await startAgent(config, logger, undefined, (opts.simulatedHosts as number | undefined) ?? 0)
  const names = agent.hosts.length === 1 ? `host ${agent.hosts[0]}` : `${agent.hosts.length} hosts ${agent.hosts[0]} ... ${agent.hosts.at(-1)}`
  process.stdout.write([
    `Skiff agent of ${names} is running.`,
    `  database  ${describeDatabaseUrl(config.databaseUrl)}`,
    `  driver    ${config.driver}`,
    '',
  ].join('\n'))
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
})

await program.parseAsync(process.argv)
