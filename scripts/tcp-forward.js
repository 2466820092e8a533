// A TCP forwarder for scripts/deployment.sh: listens on each LISTEN address (host:port) and
// joins every connection to TARGET (host:port). It lets the processes in the deployment's
// network namespaces reach a PostgreSQL that listens on the machine's loopback only: they
// connect to the root end of their veth pair, this process (in the root namespace) connects
// to 127.0.0.1. Plain Node, no dependency.
//
//   node scripts/tcp-forward.js TARGET LISTEN...
import { createConnection, createServer } from 'node:net'
import process from 'node:process'

const [target, ...listens] = process.argv.slice(2)
const hostPort = (s) => {
  const i = s.lastIndexOf(':')
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) }
}
if (!target || listens.length === 0) {
  console.error('usage: node scripts/tcp-forward.js TARGET_HOST:PORT LISTEN_HOST:PORT...')
  process.exit(2)
}
const to = hostPort(target)
let ready = 0
for (const l of listens) {
  const at = hostPort(l)
  const server = createServer({ noDelay: true }, (client) => {
    const upstream = createConnection({ ...to, noDelay: true })
    // Either side gone: the other is closed too (a killed process's connections end at the database).
    const close = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  server.on('error', (err) => {
    console.error(`tcp-forward: ${l}: ${err.message}`)
    process.exit(1)
  })
  server.listen(at.port, at.host, () => {
    if (++ready === listens.length) console.log(`forwarding ${listens.join(' ')} to ${target}`)
  })
}
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0))
