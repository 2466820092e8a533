import assert from 'node:assert/strict'
import { test } from 'node:test'
import { statesForStatus, statusOf } from '../../src/compute/states.ts'

test('status is derived from vm_state and task_state as Nova derives it', () => {
  assert.equal(statusOf('active', null), 'ACTIVE')
  // While rescuing the old status shows; only task_state reveals the transition.
  assert.equal(statusOf('active', 'rescuing'), 'ACTIVE')
  assert.equal(statusOf('rescued', 'unrescuing'), 'RESCUE')
  assert.equal(statusOf('stopped', 'rescuing'), 'SHUTOFF')
  assert.equal(statusOf('active', 'rebooting'), 'REBOOT')
  assert.equal(statusOf('active', 'rebooting_hard'), 'HARD_REBOOT')
  assert.equal(statusOf('building', 'spawning'), 'BUILD')
  assert.equal(statusOf('error', 'rebuilding'), 'REBUILD')
  assert.equal(statusOf('paused', null), 'PAUSED')
  assert.equal(statusOf('nonsense', null), 'UNKNOWN')
})

test('a status filter maps back to the states that show it', () => {
  assert.deepEqual(statesForStatus('rescue'), { vmStates: ['rescued'], taskStates: 'any' })
  assert.deepEqual(statesForStatus('REBOOT'), { vmStates: ['active'], taskStates: ['rebooting', 'reboot_pending', 'reboot_started'] })
  assert.equal(statesForStatus('NOPE'), null)
})
