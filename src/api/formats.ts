// String formats shared by every schema validator (Nova's and oslo's meanings).

// oslo is_uuid_like: hex with or without dashes, any case.
export const UUID_LIKE = /^(?:[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})$/

export const FORMATS = {
  uuid: UUID_LIKE,
  ipv4: /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/,
  ipv6: /^(?=.*:)[0-9a-fA-F:.]{2,45}$/,
  // Nova's 'name' format: printable, no leading or trailing whitespace.
  name: /^(?!\s)[^\p{Cc}]*(?<!\s)$/u,
  'date-time': /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/,
}
