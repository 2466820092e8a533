#!/usr/bin/python3
"""openstacksdk against a running Skiff: the checks behind test/e2e/openstacksdk.test.ts and
test/e2e/rescue-clients.test.ts.

    /usr/bin/python3 openstacksdk_checks.py SCENARIO [options]

SCENARIO is `lifecycle` (servers, images, flavors, key pairs) or `rescue`. The clouds come from the
clouds.yaml named by OS_CLIENT_CONFIG_FILE (--cloud, --alt-cloud). Each check prints one line:

    {"check": NAME, "value": <what the sdk answered>}   or   {"check": NAME, "error": {type, status, message}}

The script observes and reports; the TypeScript tests decide what is right. A failing check does not
stop the others (later ones may then report errors too). Run it with Debian's /usr/bin/python3.
"""
import argparse
import hashlib
import json
import sys
import traceback
import uuid

import openstack
from openstack import exceptions as osexc

WAIT = 60
INTERVAL = 0.2  # seconds between polls; the simulated hypervisor takes milliseconds


def emit(record):
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


def describe_error(e):
    status = getattr(e, "status_code", None)
    if status is None and getattr(e, "response", None) is not None:
        status = getattr(e.response, "status_code", None)
    # The classes a caller would catch (ConflictException, NotFoundException, ...), most specific first.
    # Names from openstack.exceptions, aliases included (NotFoundException is ResourceNotFound).
    classes = sorted(n for n, c in vars(osexc).items() if isinstance(c, type) and isinstance(e, c))
    return {"type": type(e).__name__, "classes": classes, "status": status, "message": str(e)[:1000],
            "traceback": traceback.format_exc()[-1500:]}


def check(name, fn, view=None):
    """Run one check; report its value (through `view`, if given) or its error.
    Returns the value (None on error)."""
    try:
        value = fn()
        shown = view(value) if view else value
    except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
        emit({"check": name, "error": describe_error(e)})
        return None
    emit({"check": name, "value": shown})
    return value


def server_view(s):
    image = s.image.id if s.image is not None and hasattr(s.image, "id") else (s.image or {}).get("id")
    flavor = s.flavor.id if s.flavor is not None and hasattr(s.flavor, "id") else (s.flavor or {}).get("id")
    return {"id": s.id, "name": s.name, "status": s.status, "vm_state": s.vm_state,
            "task_state": s.task_state, "image_id": image, "flavor_id": flavor,
            "networks": sorted((s.addresses or {}).keys()), "admin_pass": getattr(s, "admin_password", None)}


def raw_action(conn, server_id, body):
    r = conn.compute.post("/servers/%s/action" % server_id, json=body, raise_exc=False)
    try:
        parsed = r.json()
    except ValueError:
        parsed = None
    return {"status": r.status_code, "body": parsed, "text": r.text[:1000]}


def wait_status(conn, server_id, status):
    """wait_for_server until `status`, then the server as get_server shows it."""
    s = conn.compute.wait_for_server(conn.compute.get_server(server_id), status=status, failures=["ERROR"],
                                     interval=INTERVAL, wait=WAIT)
    return server_view(conn.compute.get_server(s.id))


def lifecycle(conn, alt, args):
    name = args.name
    check("authorize", lambda: {"token": bool(conn.authorize()), "project_id": conn.current_project_id})
    check("flavors", lambda: [{"id": f.id, "name": f.name, "ram": f.ram, "vcpus": f.vcpus, "disk": f.disk}
                              for f in conn.compute.flavors()])
    flavor = check("find_flavor m1.tiny", lambda: (lambda f: {"id": f.id, "name": f.name, "ram": f.ram})(
        conn.compute.find_flavor("m1.tiny", ignore_missing=False)))
    image = check("find_image skiff-base", lambda: (lambda i: {"id": i.id, "name": i.name, "status": i.status})(
        conn.image.find_image("skiff-base", ignore_missing=False)))
    if not flavor or not image:
        return

    # ---------------------------------------------------------------- servers
    # The SDK negotiates the highest microversion (Skiff's is 2.93): from 2.37 `networks` is
    # required, on real Nova too.
    server = check("create_server", lambda: conn.compute.create_server(
        name=name, image_id=image["id"], flavor_id=flavor["id"], networks="auto"), view=server_view)
    if not server:
        return
    sid = server.id
    check("wait_for_server ACTIVE", lambda: wait_status(conn, sid, "ACTIVE"))
    check("get_server", lambda: server_view(conn.compute.get_server(sid)))
    check("servers(name=)", lambda: [s.id for s in conn.compute.servers(name="^%s$" % name)])
    check("servers(status=ACTIVE)", lambda: [s.id for s in conn.compute.servers(status="ACTIVE")])
    check("servers(status=SHUTOFF)", lambda: [s.id for s in conn.compute.servers(status="SHUTOFF")])
    check("servers(image=, flavor=)", lambda: [s.id for s in conn.compute.servers(image=image["id"], flavor=flavor["id"])])
    check("servers(details=False)", lambda: [{"id": s.id, "name": s.name} for s in conn.compute.servers(details=False)])
    check("find_server by name", lambda: conn.compute.find_server(name, ignore_missing=False).id)
    check("alt: get_server", lambda: server_view(alt.compute.get_server(sid)))
    check("alt: servers()", lambda: [s.id for s in alt.compute.servers()])

    check("stop_server", lambda: conn.compute.stop_server(sid))
    check("wait_for_server SHUTOFF", lambda: wait_status(conn, sid, "SHUTOFF"))
    check("start_server", lambda: conn.compute.start_server(sid))
    check("wait_for_server ACTIVE after start", lambda: wait_status(conn, sid, "ACTIVE"))
    check("reboot_server SOFT", lambda: conn.compute.reboot_server(sid, "SOFT"))
    check("wait_for_server ACTIVE after soft reboot", lambda: wait_status(conn, sid, "ACTIVE"))
    check("reboot_server HARD", lambda: conn.compute.reboot_server(sid, "HARD"))
    check("wait_for_server ACTIVE after hard reboot", lambda: wait_status(conn, sid, "ACTIVE"))

    # ---------------------------------------------------------------- key pairs
    gen, imp = "sdk-gen-" + name, "sdk-imp-" + name
    check("create_keypair (generated)", lambda: (lambda k: {"name": k.name, "fingerprint": k.fingerprint,
                                                             "public_key": k.public_key, "private_key": k.private_key})(
        conn.compute.create_keypair(name=gen)))
    check("create_keypair (public_key)", lambda: (lambda k: {"name": k.name, "fingerprint": k.fingerprint,
                                                              "private_key": k.private_key})(
        conn.compute.create_keypair(name=imp, public_key=args.public_key)))
    check("keypairs", lambda: [{"name": k.name, "fingerprint": k.fingerprint} for k in conn.compute.keypairs()])
    check("get_keypair", lambda: (lambda k: {"name": k.name, "public_key": k.public_key})(conn.compute.get_keypair(imp)))
    check("delete_keypair", lambda: [conn.compute.delete_keypair(k, ignore_missing=False) for k in (gen, imp)] and None)
    check("get_keypair after delete", lambda: conn.compute.get_keypair(gen).name)

    # ---------------------------------------------------------------- images
    with open(args.image_file, "rb") as f:
        data = f.read()
    img_name = "sdk-image-" + name
    img = check("create_image (data)", lambda: (lambda i: {"id": i.id, "name": i.name, "status": i.status})(
        conn.image.create_image(name=img_name, data=data, disk_format="raw", container_format="bare",
                                wait=True, timeout=WAIT)))
    if img:
        iid = img["id"]
        check("get_image", lambda: (lambda i: {"id": i.id, "status": i.status, "size": i.size, "checksum": i.checksum,
                                               "visibility": i.visibility, "owner": i.owner})(conn.image.get_image(iid)))
        check("download_image", lambda: (lambda c: {"size": len(c), "md5": hashlib.md5(c).hexdigest(),
                                                    "sha256": hashlib.sha256(c).hexdigest()})(
            conn.image.download_image(iid).content))
        check("images() lists it", lambda: [i.id for i in conn.image.images()])
        # Glance's list semantics, served: the sdk follows `next` page by page (limit=1).
        check("images(sort=name:asc, limit=1)", lambda: [i.name for i in conn.image.images(sort="name:asc", limit=1)])
        check("images(sort_key=name, sort_dir=desc)",
              lambda: [i.name for i in conn.image.images(sort_key="name", sort_dir="desc")])
        check("images(name=in:...)", lambda: sorted(i.name for i in conn.image.images(name="in:skiff-base," + img_name)))
        check("images(size_min=, size_max=)", lambda: [i.id for i in conn.image.images(size_min=len(data), size_max=len(data))])
        check("images(sort=bogus)", lambda: [i.id for i in conn.image.images(sort="bogus:asc")])
        check("update_image (property)", lambda: conn.image.update_image(iid, e2e_key="sdk value").id)
        check("get_image after update", lambda: (lambda i: {"properties": i.properties, "e2e_key": getattr(i, "e2e_key", None)})(
            conn.image.get_image(iid)))
        check("delete_image", lambda: conn.image.delete_image(iid, ignore_missing=False))
        check("get_image after delete", lambda: conn.image.get_image(iid).status)
        check("find_image after delete", lambda: conn.image.find_image(iid, ignore_missing=True))

    # ---------------------------------------------------------------- delete
    check("delete_server", lambda: conn.compute.delete_server(sid, ignore_missing=False))
    check("wait_for_delete", lambda: conn.compute.wait_for_delete(server, interval=INTERVAL, wait=WAIT).id)
    check("get_server after delete", lambda: server_view(conn.compute.get_server(sid)))


def rescue(conn, alt, args):
    admin = openstack.connect(cloud=args.admin_cloud)
    name, password = args.name, args.password
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    base = conn.image.find_image("skiff-base", ignore_missing=False)
    rescue_image = conn.image.find_image("skiff-rescue", ignore_missing=False)
    server = check("create_server", lambda: conn.compute.create_server(
        name=name, image_id=base.id, flavor_id=flavor.id, networks="auto"), view=server_view)
    if not server:
        return
    sid = server.id
    emit({"check": "images", "value": {"base": base.id, "rescue": rescue_image.id}})
    check("wait_for_server ACTIVE", lambda: wait_status(conn, sid, "ACTIVE"))

    check("rescue_server (default image)", lambda: conn.compute.rescue_server(sid))
    check("wait_for_server RESCUE", lambda: wait_status(conn, sid, "RESCUE"))
    check("unrescue_server", lambda: conn.compute.unrescue_server(sid))
    check("wait_for_server ACTIVE after unrescue", lambda: wait_status(conn, sid, "ACTIVE"))

    check("rescue_server (admin_pass, image_ref)", lambda: conn.compute.rescue_server(
        sid, admin_pass=password, image_ref=rescue_image.id))
    check("wait_for_server RESCUE (rescue image)", lambda: wait_status(conn, sid, "RESCUE"))
    check("unrescue_server (after rescue image)", lambda: conn.compute.unrescue_server(sid))
    check("wait_for_server ACTIVE after second unrescue", lambda: wait_status(conn, sid, "ACTIVE"))

    check("raw rescue {adminPass}", lambda: raw_action(conn, sid, {"rescue": {"adminPass": password}}))
    check("wait_for_server RESCUE (raw)", lambda: wait_status(conn, sid, "RESCUE"))
    check("rescue_server while RESCUE", lambda: conn.compute.rescue_server(sid))
    check("get_server after refused rescue", lambda: server_view(conn.compute.get_server(sid)))
    check("alt: rescue_server", lambda: alt.compute.rescue_server(sid))
    check("alt: unrescue_server", lambda: alt.compute.unrescue_server(sid))
    check("unrescue_server (raw rescue)", lambda: conn.compute.unrescue_server(sid))
    check("wait_for_server ACTIVE (raw)", lambda: wait_status(conn, sid, "ACTIVE"))
    check("unrescue_server while ACTIVE", lambda: conn.compute.unrescue_server(sid))
    check("get_server after refused unrescue", lambda: server_view(conn.compute.get_server(sid)))

    nosuch = str(uuid.uuid4())
    emit({"check": "nosuch", "value": nosuch})
    check("raw rescue with unknown rescue_image_ref", lambda: raw_action(conn, sid, {"rescue": {"rescue_image_ref": nosuch}}))
    check("get_server after refused bad-image rescue", lambda: server_view(conn.compute.get_server(sid)))
    check("rescue_server nonexistent", lambda: conn.compute.rescue_server(nosuch))
    check("unrescue_server nonexistent", lambda: conn.compute.unrescue_server(nosuch))

    # A double click: two rescues back to back; one wins, the other is refused (409).
    check("raw rescue, twice back to back", lambda: [raw_action(conn, sid, {"rescue": None}),
                                                     raw_action(conn, sid, {"rescue": None})])
    check("wait_for_server RESCUE (double click)", lambda: wait_status(conn, sid, "RESCUE"))
    check("raw reboot HARD while RESCUE", lambda: raw_action(conn, sid, {"reboot": {"type": "HARD"}}))
    check("unrescue_server (double click)", lambda: conn.compute.unrescue_server(sid))
    check("wait_for_server ACTIVE (double click)", lambda: wait_status(conn, sid, "ACTIVE"))

    # Locked: the owner may not rescue; an admin may.
    check("lock_server", lambda: conn.compute.lock_server(sid))
    check("rescue_server while locked", lambda: conn.compute.rescue_server(sid))
    check("get_server after refused locked rescue", lambda: server_view(conn.compute.get_server(sid)))
    check("admin: rescue_server while locked", lambda: admin.compute.rescue_server(sid))
    check("wait_for_server RESCUE (admin, locked)", lambda: wait_status(conn, sid, "RESCUE"))
    check("unrescue_server while locked", lambda: conn.compute.unrescue_server(sid))
    check("admin: unrescue_server while locked", lambda: admin.compute.unrescue_server(sid))
    check("wait_for_server ACTIVE (admin, locked)", lambda: wait_status(conn, sid, "ACTIVE"))
    check("unlock_server", lambda: conn.compute.unlock_server(sid))

    # Paused: rescue refused. Stopped: rescue allowed, and unrescue ends ACTIVE (as Nova).
    check("pause_server", lambda: conn.compute.pause_server(sid))
    check("wait_for_server PAUSED", lambda: wait_status(conn, sid, "PAUSED"))
    check("rescue_server while PAUSED", lambda: conn.compute.rescue_server(sid))
    check("get_server after refused paused rescue", lambda: server_view(conn.compute.get_server(sid)))
    check("unpause_server", lambda: conn.compute.unpause_server(sid))
    check("wait_for_server ACTIVE (unpaused)", lambda: wait_status(conn, sid, "ACTIVE"))
    check("stop_server", lambda: conn.compute.stop_server(sid))
    check("wait_for_server SHUTOFF", lambda: wait_status(conn, sid, "SHUTOFF"))
    check("rescue_server while SHUTOFF", lambda: conn.compute.rescue_server(sid))
    check("wait_for_server RESCUE (from SHUTOFF)", lambda: wait_status(conn, sid, "RESCUE"))
    check("unrescue_server (stopped before)", lambda: conn.compute.unrescue_server(sid))
    check("wait_for_server ACTIVE (stopped before)", lambda: wait_status(conn, sid, "ACTIVE"))

    check("delete_server", lambda: conn.compute.delete_server(sid, ignore_missing=False))
    check("wait_for_delete", lambda: conn.compute.wait_for_delete(server, interval=INTERVAL, wait=WAIT).id)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=["lifecycle", "rescue"])
    p.add_argument("--cloud", default="skiff-demo")
    p.add_argument("--alt-cloud", default="skiff-alt")
    p.add_argument("--admin-cloud", default="skiff-admin")
    p.add_argument("--name", default="sdk-" + uuid.uuid4().hex[:8])
    p.add_argument("--image-file", help="lifecycle: file whose bytes become an image")
    p.add_argument("--public-key", help="lifecycle: an OpenSSH public key line to import")
    p.add_argument("--password", default="Sdk-Pw-" + uuid.uuid4().hex[:12], help="rescue: the rescue password")
    args = p.parse_args()
    conn = openstack.connect(cloud=args.cloud)
    alt = openstack.connect(cloud=args.alt_cloud)
    emit({"check": "start", "value": {"scenario": args.scenario, "sdk": openstack.version.__version__}})
    (lifecycle if args.scenario == "lifecycle" else rescue)(conn, alt, args)
    emit({"check": "done", "value": True})


if __name__ == "__main__":
    main()
