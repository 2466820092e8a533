// Nova's nova/api/validation/parameter_types.py, the pieces several compute schemas share.

const TRUE_STRINGS = ['True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes']
const FALSE_STRINGS = ['False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO', 'No', 'no']

/** parameter_types.boolean: a JSON boolean or one of the strings oslo's bool_from_string knows. */
export const BOOLEAN = { type: ['boolean', 'string'], enum: [true, ...TRUE_STRINGS, false, ...FALSE_STRINGS] }

/** The same in a query string, where every value is a string. */
export const BOOLEAN_STRING = { type: 'string', enum: [...TRUE_STRINGS, ...FALSE_STRINGS] }
