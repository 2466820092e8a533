import assert from 'node:assert/strict'
import { test } from 'node:test'
import { validateAction } from '../../src/api/routes/compute/schemas.ts'
import { pyRepr } from '../../src/api/py-repr.ts'
import { MIN_VERSION } from '../../src/api/microversion.ts'

const message = (action: string, body: Record<string, unknown>) => {
  try {
    validateAction(action, body, MIN_VERSION)
    return 'valid'
  } catch (e) {
    return (e as Error).message
  }
}

// Word for word what real Nova answered (anchors/nova/BEHAVIOUR.md §4).
test('rescue validation messages match Nova', () => {
  assert.equal(
    message('rescue', { rescue: 'none' }),
    "Invalid input for field/attribute rescue. Value: none. 'none' is not of type 'object', 'null'",
  )
  assert.equal(message('rescue', { rescue: '' }), "Invalid input for field/attribute rescue. Value: . '' is not of type 'object', 'null'")
  assert.equal(
    message('rescue', { rescue: true }),
    "Invalid input for field/attribute rescue. Value: True. True is not of type 'object', 'null'",
  )
  assert.equal(
    message('rescue', { rescue: { foo: 'bar' } }),
    "Invalid input for field/attribute rescue. Value: {'foo': 'bar'}. Additional properties are not allowed ('foo' was unexpected)",
  )
  assert.equal(
    message('rescue', { rescue: { adminPass: 123 } }),
    "Invalid input for field/attribute adminPass. Value: 123. 123 is not of type 'string'",
  )
  assert.equal(
    message('rescue', { rescue: { rescue_image_ref: 'not-a-uuid' } }),
    "Invalid input for field/attribute rescue_image_ref. Value: not-a-uuid. 'not-a-uuid' is not a 'uuid'",
  )
  assert.equal(message('rescue', { rescue: null }), 'valid')
  assert.equal(message('rescue', { rescue: { adminPass: 'x', rescue_image_ref: '769aced4-1e44-48ef-89c2-f13342871251' } }), 'valid')
})

test('reboot type must be one of the six spellings', () => {
  assert.equal(message('reboot', { reboot: { type: 'hard' } }), 'valid')
  assert.equal(
    message('reboot', { reboot: { type: 'WARM' } }),
    "Invalid input for field/attribute type. Value: WARM. 'WARM' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']",
  )
  assert.equal(message('reboot', { reboot: {} }), "Invalid input for field/attribute reboot. Value: {}. 'type' is a required property")
})

test('pyRepr prints values as Python does', () => {
  assert.equal(pyRepr({ a: [1, true, null], b: "it's" }), `{'a': [1, True, None], 'b': "it's"}`)
})
