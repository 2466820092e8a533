#!/usr/bin/python3
# Validates compute answers against Tempest's response schemas for their microversion, as
# Tempest's ServersClient does (schema_versions_info picks the module; validate_response checks
# the status and the body with jsonschema). Reads a JSON list of
#   {"microversion": "2.47", "call": "get_server", "status": 200, "body": {...}}
# on stdin; prints a JSON list of error strings (empty when every answer holds).
# `call` names a schema in the servers module (get_server, list_servers_detail, update_server,
# rebuild_server_with_admin_pass, create_server_with_admin_pass, list_tags, update_all_tags, ...).
import json
import sys

from tempest.lib.common import rest_client
from tempest.lib import exceptions
from tempest.lib.services.compute import servers_client


def version_tuple(v):
    major, minor = v.split('.')
    return (int(major), int(minor))


def module_for(version):
    v = version_tuple(version)
    for info in servers_client.ServersClient.schema_versions_info:
        lo = version_tuple(info['min']) if info['min'] else (0, 0)
        hi = version_tuple(info['max']) if info['max'] else (99, 99)
        if lo <= v <= hi:
            return info['schema']
    raise LookupError(version)


class Resp(dict):
    def __init__(self, status, headers):
        super().__init__(headers)
        self.status = status


errors = []
for i, item in enumerate(json.load(sys.stdin)):
    schema = getattr(module_for(item['microversion']), item['call'])
    try:
        rest_client.RestClient.validate_response(schema, Resp(item['status'], item.get('headers', {})), item['body'])
    except (exceptions.InvalidHTTPResponseBody, exceptions.InvalidHttpSuccessCode, exceptions.InvalidHTTPResponseHeader) as e:
        errors.append('%s at %s (%s): %s' % (item['call'], item['microversion'], item.get('label', i), str(e)[:600]))
print(json.dumps(errors))
