"""Validates answers against Tempest's per-microversion compute response schemas.

Reads a JSON list on stdin: [{"name", "module", "attr", "microversion", "status", "body"}]. For each,
the schema is `attr` of tempest.lib.api_schema.response.compute.v2_X.<module> for the highest
v2_X <= microversion that defines it (as Tempest's clients pick theirs), checked as Tempest's
rest_client.validate_response does (status among status_code, body by Draft 4 with Tempest's
format checker). Prints one line
per failure; exit status 1 if any.
"""
import importlib
import json
import os
import sys

import jsonschema
import tempest.lib.api_schema.response.compute as compute
# Tempest's own validator and format checker (ipv4/ipv6 in oneOf need it, as in Tempest's clients).
from tempest.lib.common.jsonschema_validator import FORMAT_CHECKER, JSONSCHEMA_VALIDATOR

BASE = os.path.dirname(compute.__file__)
VERSIONS = sorted(
    (int(d.split('_')[1]) for d in os.listdir(BASE) if d.startswith('v2_')),
    reverse=True,
)


def schema_for(module, attr, microversion):
    if microversion == 'latest':
        microversion = '2.93'
    minor = int(microversion.split('.')[1]) if microversion else 1
    for v in VERSIONS:
        if v > minor:
            continue
        try:
            mod = importlib.import_module(
                'tempest.lib.api_schema.response.compute.v2_%d.%s' % (v, module))
        except ImportError:
            continue
        if hasattr(mod, attr):
            return 'v2_%d.%s.%s' % (v, module, attr), getattr(mod, attr)
    raise LookupError('%s.%s' % (module, attr))


failures = 0
for case in json.load(sys.stdin):
    where, schema = schema_for(case['module'], case['attr'], case['microversion'])
    if case['status'] not in schema['status_code']:
        print('%s: status %s not in %s (%s)' % (case['name'], case['status'], schema['status_code'], where))
        failures += 1
        continue
    body_schema = schema.get('response_body')
    if body_schema:
        try:
            JSONSCHEMA_VALIDATOR(body_schema, format_checker=FORMAT_CHECKER).validate(case['body'])
        except jsonschema.ValidationError as e:
            print('%s: %s (%s at %s)' % (case['name'], e.message, where, list(e.absolute_path)))
            failures += 1
sys.exit(1 if failures else 0)
