// Builds the guest Skiff boots with the qemu driver, from Debian packages only, with no mount
// and no loop device (containers often forbid both):
//   vmlinuz      Debian's kernel (direct kernel boot: no bootloader, no partition table)
//   initrd.img   busybox + the virtio/ext4 modules (and, for a root on another bus, SCSI, USB,
//                IDE and SATA's, and a CD-ROM's, loaded only then); mounts root= (a CD-ROM's
//                read-only, with its writes in memory) and switch_roots (written here as a
//                newc cpio, gzip'd)
//   base.qcow2   ext4 root filled by `mke2fs -d`: busybox, dropbear, and the first-boot script
// Guest contract the driver relies on (rcS below):
//   first boot (no /var/lib/firstboot/done) reads the config drive (label config-2,
//   openstack/latest/meta_data.json): root password (sha512-crypt), authorized keys, hostname,
//   and makes a new dropbear host key. Later boots keep all three, so unrescue gets the original
//   password and host key back, and a fresh rescue overlay gets new ones. User data
//   (openstack/latest/user_data) that is a `#!` script runs once (output: /var/log/user-data.log).
//   A host key on the config drive (skiff/host_key, dropbear's format: a rescue's, made by the
//   host) is installed instead of a new one.
//   Serial markers: `GUEST: hostkey SHA256:...`, then `GUEST-READY` once dropbear listens;
//   `BOOT-FAILED: why` from the initramfs (then it powers off).
//   With the rescue port (a warm rescue system being saved, rescue-channel.ts): its agent
//   (/usr/sbin/skiff-rescue-agent) waits for a rescue's secrets after the restore;
//   `GUEST: rescue channel open` before `GUEST-READY` says it listens.
import { execFile } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'

const run = promisify(execFile)

/** Debian packages the build (and the driver) need, by the command or file that reveals them. */
export const GUEST_PACKAGES: { pkg: string; probe: string }[] = [
  { pkg: 'qemu-system-x86', probe: '/usr/bin/qemu-system-x86_64' },
  { pkg: 'qemu-utils', probe: '/usr/bin/qemu-img' },
  { pkg: 'genisoimage', probe: '/usr/bin/genisoimage' },
  { pkg: 'linux-image-amd64', probe: '/boot' },
  { pkg: 'busybox-static', probe: '/bin/busybox' },
  { pkg: 'dropbear-bin', probe: '/usr/sbin/dropbear' },
  { pkg: 'e2fsprogs', probe: '/usr/sbin/mke2fs' },
  { pkg: 'kmod', probe: '/usr/sbin/modprobe' },
]

/** Every directory under `dir` (and `dir`) mode 0755, except those named (relative to `dir`). */
async function publicDirs(dir: string, except: Record<string, number>, rel = ''): Promise<void> {
  await chmod(dir, except[rel] ?? 0o755)
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) await publicDirs(path.join(dir, e.name), except, rel ? `${rel}/${e.name}` : e.name)
  }
}

export class MissingPackages extends Error {
  constructor(readonly packages: string[]) {
    super(
      `missing Debian packages: ${packages.join(' ')}\n  install them with: apt-get install --no-install-recommends ${packages.join(' ')}`,
    )
  }
}

export interface GuestFiles {
  kernel: string
  initrd: string
  disk: string
}

export const guestFiles = (dir: string): GuestFiles => ({
  kernel: path.join(dir, 'vmlinuz'),
  initrd: path.join(dir, 'initrd.img'),
  disk: path.join(dir, 'base.qcow2'),
})

export const guestBuilt = (dir: string) => Object.values(guestFiles(dir)).every((f: string) => existsSync(f))

function newestKernel(): string | undefined {
  const versions = existsSync('/boot')
    ? readdirSync('/boot')
        .filter((f) => f.startsWith('vmlinuz-'))
        .map((f) => f.slice(8))
    : []
  return versions
    .filter((v) => existsSync(`/lib/modules/${v}`))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))
    .at(-1)
}

/** Names the packages that are missing; installs nothing. */
export function missingPackages(): string[] {
  const missing = GUEST_PACKAGES.filter((p) => !existsSync(p.probe)).map((p) => p.pkg)
  if (!missing.includes('linux-image-amd64') && !newestKernel()) missing.push('linux-image-amd64')
  return missing
}

// ------------------------------------------------------------------ initramfs (newc cpio)
interface CpioEntry {
  name: string
  mode: number
  data?: Buffer
  target?: string
}

function cpio(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = []
  const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4)
  let ino = 1
  const push = (e: CpioEntry) => {
    const body = e.target !== undefined ? Buffer.from(e.target) : (e.data ?? Buffer.alloc(0))
    const name = Buffer.from(e.name + '\0')
    const hex = (n: number) => n.toString(16).padStart(8, '0')
    const fields = [ino++, e.mode, 0, 0, 1, 0, body.length, 0, 0, 0, 0, name.length, 0]
    const header = Buffer.from('070701' + fields.map(hex).join(''))
    parts.push(header, name, pad4(header.length + name.length), body, pad4(body.length))
  }
  for (const e of entries) push(e)
  push({ name: 'TRAILER!!!', mode: 0 })
  return Buffer.concat(parts)
}

const INIT = `#!/bin/sh
export PATH=/bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
for m in $(cat /modules.order); do insmod /lib/modules/$m 2>/dev/null; done
root=/dev/vda
for a in $(cat /proc/cmdline); do case "$a" in root=*) root=\${a#root=} ;; esac; done
# A root on another bus (a stable-device rescue disk, attached last): its controllers' drivers,
# and more time for the bus to find it (USB under TCG).
wait=200
case "$root" in /dev/vd*) ;; *) for m in $(cat /modules.buses); do insmod /lib/modules/$m 2>/dev/null; done; wait=1200 ;; esac
n=0; while [ ! -b "$root" ] && [ $n -lt $wait ]; do sleep 0.05; n=$((n+1)); done
fail() { echo "BOOT-FAILED: $*" > /dev/console; sleep 1; poweroff -f; }
case "$root" in
/dev/sr*)
  # A root on a CD-ROM (a stable-device rescue from hw_rescue_device=cdrom): the disc's file
  # system read-only, through a loop device (its blocks may be smaller than a CD's 2048-byte
  # sectors), and the system's writes in memory on top of it (overlayfs on a tmpfs).
  mkdir -p /ro /rw
  losetup -r /dev/loop0 "$root" && mount -t ext4 -o ro,noload /dev/loop0 /ro || fail "cannot mount root $root"
  mount -t tmpfs -o mode=0755 rw /rw && mkdir /rw/upper /rw/work &&
    mount -t overlay -o lowerdir=/ro,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || fail "cannot lay a writable layer over $root"
  ;;
*) mount -t ext4 -o rw "$root" /newroot || fail "cannot mount root $root" ;;
esac
[ -e /newroot/sbin/init ] || [ -L /newroot/sbin/init ] || { umount /newroot; fail "no /sbin/init on $root"; }
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /sbin/init
`

// ------------------------------------------------------------------ root file system
export const GUEST_RCS = `#!/bin/sh
export PATH=/bin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
[ -e /dev/null ] || mount -t devtmpfs dev /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -o remount,rw /
hostname -F /etc/hostname
ip link set lo up
# slirp's default guest address: no DHCP wait.
ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up
say() { echo "GUEST: $*" > /dev/console; }
# A JSON string value of meta_data.json (written one key per line), with its escapes undone.
field() {
  sed -n "s/^ *\\"$1\\": *\\"\\(.*\\)\\",\\{0,1\\}$/\\1/p" "$2" | head -n 1 |
    awk '{ s = $0; o = ""
      while ((i = index(s, "\\\\")) > 0) {
        c = substr(s, i + 1, 1); r = c
        if (c == "n") r = "\\n"; else if (c == "t") r = "\\t"; else if (c == "r") r = "\\r"
        o = o substr(s, 1, i - 1) r; s = substr(s, i + 2)
      }
      printf "%s", o s }'
}
if [ ! -f /var/lib/firstboot/done ]; then
  cfg=$(findfs LABEL=config-2 2>/dev/null)
  if [ -n "$cfg" ] && mkdir -p /run/cfg && mount -t iso9660 -o ro "$cfg" /run/cfg; then
    md=/run/cfg/openstack/latest/meta_data.json
    pw=$(field admin_pass $md)
    if [ -n "$pw" ]; then
      h=$(printf '%s' "$pw" | mkpasswd -m sha512 -P 0)
      sed -i "s|^root:[^:]*:|root:$h:|" /etc/shadow
      say "root password set from the config drive"
    fi
    unset pw h
    mkdir -p /root/.ssh && chmod 700 /root/.ssh
    sed -n 's/^ *"key-[0-9]*": *"\\(.*\\)",\\{0,1\\}$/\\1/p' $md > /root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
    say "$(grep -c . /root/.ssh/authorized_keys) authorized key(s)"
    hn=$(field hostname $md)
    [ -n "$hn" ] && echo "$hn" > /etc/hostname && hostname "$hn"
    ud=/run/cfg/openstack/latest/user_data
    [ -f $ud ] && cp $ud /var/lib/firstboot/user-data && chmod 700 /var/lib/firstboot/user-data
    # A host key the host made (a rescue: its fingerprint known before this boot ends).
    hk=/run/cfg/skiff/host_key
    [ -f $hk ] && cp $hk /etc/dropbear/dropbear_ed25519_host_key && chmod 600 /etc/dropbear/dropbear_ed25519_host_key && given=1 &&
      say "host key from the config drive"
    umount /run/cfg
  else
    say "no config drive: root stays locked"
  fi
  [ -n "$given" ] || dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key >/dev/null 2>&1
  touch /var/lib/firstboot/done
  sync
fi
acpid
# The host key before the SSH server: whoever sees SSH up can already read which key it presents.
say "hostkey $(dropbearkey -y -f /etc/dropbear/dropbear_ed25519_host_key | sed -n 's/^Fingerprint: //p')"
dropbear -r /etc/dropbear/dropbear_ed25519_host_key -p 22
# User data: a script (#!) runs once, in the background, as cloud-init runs one; its output is
# in /var/log/user-data.log.
ud=/var/lib/firstboot/user-data
if [ -f $ud ] && [ ! -f $ud.ran ]; then
  touch $ud.ran
  if [ "$(head -c 2 $ud)" = "#!" ]; then
    ( $ud > /var/log/user-data.log 2>&1; say "user data script ran, exit $?" ) &
  else
    say "user data kept in $ud (not a #! script)"
  fi
fi
# A warm rescue system in the making (a VM with the rescue port): its agent waits for the
# secrets of each rescue restored from this boot's saved state (rescue-channel.ts).
for p in /sys/class/virtio-ports/*; do
  if [ "$(cat $p/name 2>/dev/null)" = org.skiff.rescue.0 ]; then
    /usr/sbin/skiff-rescue-agent /dev/\${p##*/} &
    say "rescue channel open"
  fi
done
# The host key once more: a kernel message printed into the first line leaves this one whole.
say "hostkey $(dropbearkey -y -f /etc/dropbear/dropbear_ed25519_host_key | sed -n 's/^Fingerprint: //p')"
echo "GUEST-READY $(hostname) $(cut -d' ' -f1 /proc/uptime)" > /dev/console
`

// The warm rescue system's agent (protocol: rescue-channel.ts). Until the host connects to the
// port, a read ends at once (EOF): it tries again shortly. The port opens once, for both ways.
export const RESCUE_AGENT = `#!/bin/sh
export PATH=/bin:/usr/bin:/usr/sbin
say() { echo "GUEST: $*" > /dev/console; }
exec 3<>"$1"
new=/root/.ssh/authorized_keys.new
mkdir -p /root/.ssh && chmod 700 /root/.ssh && : > $new
while :; do
  if ! read -r k v <&3; then sleep 0.05; continue; fi
  case "$k" in
  pass) pw=$(echo "$v" | base64 -d) ;;
  key) { echo "$v" | base64 -d; echo; } >> $new ;;
  hostname) hn=$(echo "$v" | base64 -d) ;;
  hostkey) echo "$v" | base64 -d > /etc/dropbear/new_host_key && chmod 600 /etc/dropbear/new_host_key ;;
  time) date -s "@$v" >/dev/null 2>&1 ;;
  seed) echo "$v" | base64 -d > /dev/urandom ;;
  apply)
    h=$(printf '%s' "$pw" | mkpasswd -m sha512 -P 0)
    unset pw
    sed -i "s|^root:[^:]*:|root:$h:|" /etc/shadow
    grep . $new > /root/.ssh/authorized_keys; rm -f $new; chmod 600 /root/.ssh/authorized_keys
    [ -n "$hn" ] && echo "$hn" > /etc/hostname && hostname "$hn"
    mv /etc/dropbear/new_host_key /etc/dropbear/dropbear_ed25519_host_key
    killall dropbear 2>/dev/null
    n=0; while pidof dropbear >/dev/null && [ $n -lt 200 ]; do sleep 0.02; n=$((n+1)); done
    dropbear -r /etc/dropbear/dropbear_ed25519_host_key -p 22
    sync
    echo applied >&3 ;;
  disk)
    n=0; dev=
    while [ -z "$dev" ] && [ $n -lt 1500 ]; do
      for s in /sys/block/*/serial; do [ "$(cat $s 2>/dev/null)" = "$v" ] && [ -b /dev/$(basename \${s%/serial}) ] && dev=$(basename \${s%/serial}); done
      [ -z "$dev" ] && sleep 0.02; n=$((n+1))
    done
    echo "disk $v $dev" >&3 ;;
  ready)
    say "hostkey $(dropbearkey -y -f /etc/dropbear/dropbear_ed25519_host_key | sed -n 's/^Fingerprint: //p')"
    echo "GUEST-READY $(hostname) $(cut -d' ' -f1 /proc/uptime)" > /dev/console
    echo ready >&3
    exit 0 ;;
  esac
done
`

// The ACPI power button: a clean shutdown without the two fixed seconds busybox init waits
// (`poweroff` sleeps a second after SIGTERM to all and another before powering off; the
// server's stop for a rescue waits for it): every process is asked to end, rcK syncs and
// unmounts (read-only) what is mounted, then the power goes.
const POWER_BUTTON = `#!/bin/sh
echo "GUEST: ACPI power button" > /dev/console
kill -TERM -1 2>/dev/null
sleep 0.2
/etc/init.d/rcK
poweroff -f
`

// busybox init does not unmount at shutdown: without this a mounted vdb is left dirty.
const RCK = `#!/bin/sh
echo "GUEST-SHUTDOWN" > /dev/console
killall dropbear 2>/dev/null
sync
umount -a -r 2>/dev/null
mount -o remount,ro / 2>/dev/null
sync
`

export interface BuildOptions {
  outDir: string
  sizeMb?: number
  progress?: (line: string) => void
}

/** Build vmlinuz, initrd.img and base.qcow2 into `outDir` (replaced only once all three are done). */
export async function buildGuestImage(opts: BuildOptions): Promise<GuestFiles & { kver: string; seconds: number }> {
  const t0 = performance.now()
  const say = opts.progress ?? (() => {})
  const missing = missingPackages()
  if (missing.length) throw new MissingPackages(missing)
  const kver = newestKernel()!
  const work = await mkdtemp(path.join(tmpdir(), 'skiff-guest-'))
  try {
    say(`kernel ${kver}`)
    // ---- initramfs
    // virtio_console: the port a warm rescue system gets its secrets over (rescue-channel.ts).
    const wanted = ['virtio_pci', 'virtio_blk', 'ext4', 'virtio_net', 'isofs', 'button', 'evdev', 'virtio-rng', 'virtio_console']
    // The disk buses a stable-device rescue may boot from, and a CD-ROM's root (loaded only then, see INIT).
    const buses = ['virtio_scsi', 'sd_mod', 'xhci_pci', 'usb-storage', 'ata_piix', 'ahci', 'sr_mod', 'loop', 'overlay']
    const order: string[] = []
    const busOrder: string[] = []
    for (const [list, into] of [
      [wanted, order],
      [buses, busOrder],
    ] as const) {
      for (const m of list) {
        const { stdout } = await run('modprobe', ['-S', kver, '--show-depends', m])
        for (const line of stdout.split('\n')) {
          const [verb, file] = line.trim().split(/\s+/)
          if (verb === 'insmod' && file && !order.includes(file) && !into.includes(file)) into.push(file)
        }
      }
    }
    const entries: CpioEntry[] = []
    const dir = (name: string) => entries.push({ name, mode: 0o40755 })
    for (const d of ['bin', 'dev', 'proc', 'sys', 'newroot', 'lib', 'lib/modules']) dir(d)
    entries.push({ name: 'bin/busybox', mode: 0o100755, data: await readFile('/bin/busybox') })
    for (const a of ['sh', 'mount', 'umount', 'insmod', 'switch_root', 'sleep', 'cat', 'poweroff', 'mkdir', 'echo', 'losetup']) {
      entries.push({ name: `bin/${a}`, mode: 0o120777, target: 'busybox' })
    }
    const names: string[] = []
    const busNames: string[] = []
    for (const f of [...order, ...busOrder]) {
      const base = path.basename(f).replace(/\.(xz|zst)$/, '')
      const data = f.endsWith('.xz')
        ? (await run('xz', ['-dc', f], { encoding: 'buffer', maxBuffer: 64 << 20 })).stdout
        : f.endsWith('.zst')
          ? (await run('zstd', ['-dc', f], { encoding: 'buffer', maxBuffer: 64 << 20 })).stdout
          : await readFile(f)
      entries.push({ name: `lib/modules/${base}`, mode: 0o100644, data })
      ;(order.includes(f) ? names : busNames).push(base)
    }
    entries.push({ name: 'modules.order', mode: 0o100644, data: Buffer.from(names.join('\n') + '\n') })
    entries.push({ name: 'modules.buses', mode: 0o100644, data: Buffer.from(busNames.join('\n') + '\n') })
    entries.push({ name: 'init', mode: 0o100755, data: Buffer.from(INIT) })
    await writeFile(path.join(work, 'initrd.img'), gzipSync(cpio(entries), { level: 1 }))
    say(`initramfs: ${names.length} modules`)

    // ---- root file system
    const r = path.join(work, 'root')
    for (const d of [
      'bin',
      'sbin',
      'usr/bin',
      'usr/sbin',
      'etc/init.d',
      'etc/dropbear',
      'etc/acpi/PWRF',
      'dev',
      'proc',
      'sys',
      'tmp',
      'run',
      'root',
      'mnt',
      'var/lib/firstboot',
      'var/log',
      'var/empty',
    ])
      await mkdir(path.join(r, d), { recursive: true })
    await chmod(path.join(r, 'tmp'), 0o1777)
    await chmod(path.join(r, 'root'), 0o700)
    await copyFile('/bin/busybox', path.join(r, 'bin/busybox'))
    const applets = (await run('/bin/busybox', ['--list'])).stdout.split('\n').filter((a) => a && a !== 'busybox')
    for (const a of applets) await symlink('busybox', path.join(r, 'bin', a))
    await symlink('/bin/busybox', path.join(r, 'sbin/init'))
    await copyFile('/usr/sbin/dropbear', path.join(r, 'usr/sbin/dropbear'))
    await copyFile('/usr/bin/dropbearkey', path.join(r, 'usr/bin/dropbearkey'))
    const ldd = (await run('ldd', ['/usr/sbin/dropbear', '/usr/bin/dropbearkey'])).stdout
    const libs = new Set<string>()
    for (const line of ldd.split('\n')) {
      const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+ld-linux\S*)/.exec(line)
      if (m) libs.add(m[1]!)
    }
    for (const lib of libs) {
      await mkdir(path.join(r, path.dirname(lib)), { recursive: true })
      await copyFile(lib, path.join(r, lib))
    }
    const files: [string, string, number][] = [
      ['etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n', 0o644],
      ['etc/shadow', 'root:*:19000:0:99999:7:::\n', 0o600], // locked until the config drive sets it
      ['etc/group', 'root:x:0:\n', 0o644],
      ['etc/shells', '/bin/sh\n', 0o644],
      ['etc/hostname', 'skiff-guest\n', 0o644],
      [
        'etc/inittab',
        '::sysinit:/etc/init.d/rcS\nttyS0::respawn:/bin/getty -L 115200 ttyS0 vt100\n::ctrlaltdel:/bin/reboot\n::shutdown:/etc/init.d/rcK\n',
        0o644,
      ],
      // QMP system_powerdown → ACPI power button → busybox acpid → this script
      ['etc/acpi/PWRF/00000080', POWER_BUTTON, 0o755],
      ['etc/init.d/rcS', GUEST_RCS, 0o755],
      ['etc/init.d/rcK', RCK, 0o755],
      ['usr/sbin/skiff-rescue-agent', RESCUE_AGENT, 0o755],
    ]
    for (const [f, text, mode] of files) {
      await writeFile(path.join(r, f), text, { mode })
      await chmod(path.join(r, f), mode)
    }
    // mke2fs -d copies the modes of the tree: the guest's directories must not depend on the
    // umask Skiff runs with (0077 from the CLI would make /bin or /etc 0700 in the guest).
    await publicDirs(r, { tmp: 0o1777, root: 0o700 })
    const raw = path.join(work, 'base.raw')
    await run('mke2fs', ['-q', '-t', 'ext4', '-L', 'skiff-root', '-d', r, '-E', 'root_owner=0:0', raw, `${opts.sizeMb ?? 256}M`])
    await run('qemu-img', ['convert', '-O', 'qcow2', raw, path.join(work, 'base.qcow2')])
    await copyFile(`/boot/vmlinuz-${kver}`, path.join(work, 'vmlinuz'))
    say('root file system: busybox, dropbear, first-boot script')

    await mkdir(opts.outDir, { recursive: true })
    const out = guestFiles(opts.outDir)
    for (const [key, name] of [
      ['kernel', 'vmlinuz'],
      ['initrd', 'initrd.img'],
      ['disk', 'base.qcow2'],
    ] as const) {
      await copyFile(path.join(work, name), out[key] + '.tmp')
      await rename(out[key] + '.tmp', out[key])
    }
    return { ...out, kver, seconds: (performance.now() - t0) / 1000 }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}
