// os-getConsoleOutput. Only agents hold drivers, so the API asks the server's host for its
// console as Nova's API asks the compute host over RPC: a `server.console` task for the host's
// agent, whose answer comes back through the database (TaskQueue.call).
//
// Why a round-trip and not a console tail the agent records: the answer is the live console, as
// it is now (a QEMU guest writes its serial log all the time; a recorded tail is as old as its
// last copy, and copying it would cost writes on every host for consoles nobody reads: 100,000
// simulated servers, or every guest's boot chatter). A call costs nothing until someone asks; it
// is quick (NOTIFY wakes the agent at once on PostgreSQL; in memory in one process), and its own
// subject keeps it from waiting behind a long rescue queued on the same server. It does count
// toward the agent's concurrency (8 tasks): an agent with eight slow boots running answers when
// one ends, and past the deadline the API answers 503.
import { randomUUID } from 'node:crypto'
import { VmNotFound, type VirtDriver } from '../drivers/driver.ts'
import { ServiceUnavailable } from '../errors.ts'
import type { AuthContext } from '../identity/identity-service.ts'
import type { TaskHandler } from '../tasks/agent.ts'
import { CallTimedOut, type TaskQueue } from '../tasks/queue.ts'
import { InstanceNotReady } from './errors.ts'
import type { ServerActions } from './server-actions.ts'
import type { ServerService } from './server-service.ts'
import type { ConsolePayload, ServerTaskPayloads } from './server-tasks.ts'

/** What the API sends and the agent answers. `output` null: the host has no VM for the server. */
interface ConsoleAnswer {
  output: string | null
}

/** The last `length` lines of a console (all when negative), as Nova's get_console_output cuts it. */
export function lastLines(text: string, length: number): string {
  const lines = text.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  return length < 0 ? lines.join('\n') : lines.slice(Math.max(0, lines.length - length)).join('\n')
}

export interface ServerConsoleDeps {
  servers: ServerService
  actions: ServerActions
  queue: TaskQueue<ServerTaskPayloads>
  /** How long the API waits for the agent's answer. */
  timeoutMs: number
}

export class ServerConsole {
  readonly #d: ServerConsoleDeps

  constructor(deps: ServerConsoleDeps) {
    this.#d = deps
  }

  /** The server's console, its last `length` lines (all when negative), from the agent of its host. */
  async output(ctx: AuthContext, id: string, length: number, requestId: string): Promise<string> {
    const s = await this.#d.servers.checkConsole(ctx, id)
    // Nova's check_instance_host: a server on no host has no console yet.
    if (!s.host) throw new InstanceNotReady(s.id)
    return this.log({ id: s.id, host: s.host }, length, requestId)
  }

  /** The console of a server on `host` (no policy: for the serial proxy, which checked a console token). */
  async log(s: { id: string; host: string }, length = -1, requestId = `req-${randomUUID()}`): Promise<string> {
    // A host that stopped heartbeating would never answer: 503 at once, as for actions.
    await this.#d.actions.assertHostUp(s.host)
    let answer: ConsoleAnswer
    try {
      // A subject of its own: the call runs beside whatever task the server has running.
      answer = await this.#d.queue.call<ConsoleAnswer>(
        {
          kind: 'server.console',
          subjectId: `console-${randomUUID()}`,
          host: s.host,
          payload: { serverId: s.id, length } satisfies ConsolePayload,
          requestId,
        },
        this.#d.timeoutMs,
      )
    } catch (err) {
      if (err instanceof CallTimedOut) throw new ServiceUnavailable(`Compute service of ${s.host} is unavailable at this time.`)
      throw err
    }
    if (answer.output === null) throw new InstanceNotReady(s.id)
    return answer.output
  }
}

/** The agent's side: read the console from the driver. */
export function consoleHandlers(driver: VirtDriver): { 'server.console': TaskHandler<ServerTaskPayloads, 'server.console'> } {
  return {
    'server.console': async (task): Promise<ConsoleAnswer> => {
      const p = task.payload
      try {
        return { output: lastLines(await driver.consoleOutput(p.serverId), p.length) }
      } catch (err) {
        if (err instanceof VmNotFound) return { output: null }
        // A console that cannot be read reads as empty, as it always has.
        return { output: '' }
      }
    },
  }
}
