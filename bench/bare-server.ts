// The physical ceiling: node:http answering a fixed, pre-serialized JSON body (the bytes of a
// real Skiff answer) with no routing, auth, database or serialization. Run by api-read.ts in its
// own process, as Skiff is, so both share the machine with the load generator the same way.
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'

const body = readFileSync(process.argv[2]!)
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
  res.end(body)
})
// The same idle keep-alive as Skiff's listeners, so the clients' connections stay open alike.
server.keepAliveTimeout = 75_000
server.listen(0, '127.0.0.1', () => {
  const a = server.address()
  if (typeof a !== 'object' || !a) throw new Error('no address')
  process.stdout.write(`listening http://127.0.0.1:${a.port}\n`)
})
process.on('SIGTERM', () => {
  server.close(() => process.exit(0))
  server.closeAllConnections()
})
