#!/usr/bin/env bash
# Proves the Dockerfile's recipe without a Docker engine (`make test-image`).
#
# 1. debootstrap --variant=minbase bookworm (the content of debian:bookworm-slim)
#    from the mirror apt is configured with;
# 2. build stage: copy the build context (the repository minus .dockerignore)
#    into one copy of it and run deploy/image-build.sh there in a chroot --
#    the script the Dockerfile's build stage RUNs;
# 3. runtime stage: run deploy/image-runtime.sh in a second, fresh copy, add
#    the staged programs as the Dockerfile's COPY does;
# 4. start dsrd in the runtime chroot as the image's user with the image's
#    ENV (DSR_HOST=0.0.0.0, DSR_PORT only moved to a free port) and require
#    GET /health 200, also through the Dockerfile's own HEALTHCHECK command.
#
# Needs root (debootstrap, chroot, mount) and the Debian mirror.  Prints one
# ok/FAIL line per check and "image: N passed, N failed".  DSR_IMAGE_KEEP=1
# keeps the work directory; DSR_IMAGE_WORKDIR sets its parent (default
# /var/tmp).  Takes 5-10 minutes, most of it downloading and building.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
passed=0 failed=0
t0=$(date +%s)

check() { # name, status
    if [ "$2" -eq 0 ]; then
        printf 'ok   %s (%ds)\n' "$1" $(( $(date +%s) - t0 ))
        passed=$((passed + 1))
    else
        printf 'FAIL %s (%ds)\n' "$1" $(( $(date +%s) - t0 ))
        failed=$((failed + 1))
    fi
}

finish() {
    echo "image: $passed passed, $failed failed ($(( $(date +%s) - t0 )) s)"
    [ "$failed" -eq 0 ]
    exit
}

if [ "$(id -u)" -ne 0 ]; then
    echo "test-image needs root (debootstrap, chroot, mount)"
    check "running as root" 1
    finish
fi

export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y --no-install-recommends debootstrap >/dev/null
fi
command -v debootstrap >/dev/null 2>&1
check "debootstrap available" $? || true
command -v debootstrap >/dev/null 2>&1 || finish

# The mirror apt uses for bookworm (deb822 .sources or one-line .list).
mirror=$(
    { cat /etc/apt/sources.list.d/*.sources 2>/dev/null; echo; } | awk '
        /^URIs:/ { uri = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") ok = 1 }
        /^$/ { if (ok && uri != "") { print uri; exit } ok = 0; uri = "" }'
)
if [ -z "$mirror" ]; then
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
             awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }')
fi
mirror=${mirror:-http://deb.debian.org/debian}
echo "mirror: $mirror"

work=$(mktemp -d "${DSR_IMAGE_WORKDIR:-/var/tmp}/dsr-image.XXXXXX")
base=$work/base build=$work/build run=$work/run
dsrd_pid=""

cleanup() {
    [ -n "$dsrd_pid" ] && kill "$dsrd_pid" 2>/dev/null && wait "$dsrd_pid" 2>/dev/null
    for root in "$build" "$run"; do
        for m in dev/pts dev proc; do
            mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
        done
    done
    # Never delete through a mount left behind.
    if grep -q " $work/" /proc/mounts; then
        echo "mounts remain under $work; not deleting it"
    elif [ "${DSR_IMAGE_KEEP:-0}" = 1 ]; then
        echo "kept $work"
    else
        rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT

enter() { # root: mount what apt, the compiler and dsrd expect
    cp /etc/resolv.conf "$1/etc/resolv.conf"
    mount -t proc proc "$1/proc"
    mount --bind /dev "$1/dev"
    mount --bind /dev/pts "$1/dev/pts"
}

echo "== debootstrap"
debootstrap --variant=minbase bookworm "$base" "$mirror" >"$work/debootstrap.log" 2>&1
rc=$?
[ $rc -ne 0 ] && tail -n 20 "$work/debootstrap.log"
check "debootstrap --variant=minbase bookworm" $rc
[ $rc -eq 0 ] || finish
cp -a "$base" "$build" && cp -a "$base" "$run"

# The Dockerfile must run these same scripts, or this test proves nothing.
grep -Eq '^RUN deploy/image-build\.sh /out$' "$repo/Dockerfile" &&
    grep -Eq '^RUN /tmp/image-runtime\.sh' "$repo/Dockerfile" &&
    grep -Eq '^COPY --from=build /out/ /usr/local/bin/$' "$repo/Dockerfile"
check "Dockerfile runs deploy/image-build.sh and deploy/image-runtime.sh" $?

echo "== build stage"
# The build context: files git knows of (tracked or not ignored) minus .dockerignore.
mkdir -p "$build/src"
(cd "$repo" && git ls-files -co --exclude-standard -z |
    python3 -c '
import fnmatch, sys
pats = [l.strip() for l in open(".dockerignore") if l.strip() and not l.startswith("#")]
def ignored(p):
    parts = p.split("/")
    for pat in pats:
        pat = pat.lstrip("/")
        if pat.startswith("**/"):
            if any(fnmatch.fnmatch(x, pat[3:]) for x in parts): return True
        elif any(fnmatch.fnmatch("/".join(parts[:i]), pat) for i in range(1, len(parts) + 1)):
            return True
    return False
names = [n for n in sys.stdin.buffer.read().decode().split("\0") if n]
sys.stdout.write("\0".join(n for n in names if not ignored(n)))' |
    tar --null -T - -cf - | tar -C "$build/src" -xf -)
check "copy build context" $?
enter "$build"
chroot "$build" /bin/sh -c 'cd /src && deploy/image-build.sh /out' >"$work/build.log" 2>&1
rc=$?
[ $rc -ne 0 ] && tail -n 40 "$work/build.log"
check "build stage: deploy/image-build.sh (make deps && make)" $rc
[ -x "$build/out/dsrd" ]
check "build stage produced dsrd" $?
[ -x "$build/out/dsrd" ] || finish

echo "== runtime stage"
enter "$run"
cp "$repo/deploy/image-runtime.sh" "$run/tmp/image-runtime.sh"
chroot "$run" /bin/sh -c '/tmp/image-runtime.sh && rm /tmp/image-runtime.sh' >"$work/runtime.log" 2>&1
rc=$?
[ $rc -ne 0 ] && tail -n 40 "$work/runtime.log"
check "runtime stage: deploy/image-runtime.sh" $rc
cp "$build"/out/* "$run/usr/local/bin/"
missing=$(for b in "$run"/usr/local/bin/*; do chroot "$run" ldd "/usr/local/bin/$(basename "$b")"; done 2>&1 | grep 'not found')
[ -z "$missing" ] || echo "$missing"
check "runtime libraries resolve (ldd: nothing 'not found')" "$([ -z "$missing" ]; echo $?)"
! chroot "$run" dpkg-query -W gcc make libopenblas-openmp-dev >/dev/null 2>&1
check "runtime stage has no compiler or -dev packages" $?

echo "== dsrd in the runtime root"
# The image's ENV lines, as `docker run` would set them; only the port moves.
image_env=$(awk '/^ENV /{on=1; sub(/^ENV /, "")} on { more = ($0 ~ /\\$/); sub(/\\$/, ""); print; on = more }' \
            "$repo/Dockerfile" | tr -s ' \t' '\n' | grep '^DSR_')
chroot_bin=$(command -v chroot)   # env -i's PATH below has no sbin
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "$image_env" | grep -qx 'DSR_HOST=0.0.0.0'
check "image ENV binds DSR_HOST=0.0.0.0" $?
# shellcheck disable=SC2086  # one word per VAR=value
env -i PATH=/usr/local/bin:/usr/bin:/bin $image_env DSR_PORT="$port" \
    "$chroot_bin" --userspec=10001:10001 "$run" /usr/local/bin/dsrd >"$work/dsrd.log" 2>&1 &
dsrd_pid=$!
code=000
for _ in $(seq 1 600); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
    [ "$code" = 200 ] && break
    kill -0 "$dsrd_pid" 2>/dev/null || break
    sleep 0.1
done
[ "$code" = 200 ] || tail -n 20 "$work/dsrd.log"
check "dsrd (user dsr, image ENV) answers GET /health 200" "$([ "$code" = 200 ]; echo $?)"
user=$(ps -o user= -p "$(pgrep -P "$dsrd_pid" -x dsrd || echo "$dsrd_pid")" 2>/dev/null | tr -d ' ')
[ "$user" = dsr ] || [ "$user" = 10001 ]
check "dsrd runs as the non-root user (got '$user')" $?
name=$(curl -s "http://127.0.0.1:$port/model" | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])' 2>/dev/null)
case "$name" in dsr-shapes*) true ;; *) false ;; esac
check "the image serves the embedded default model (got '$name')" $?
hc=$(sed -n 's/^ *CMD \(.*\)$/\1/p' "$repo/Dockerfile" | head -n 1)
env -i PATH=/usr/local/bin:/usr/bin:/bin DSR_PORT="$port" \
    "$chroot_bin" --userspec=10001:10001 "$run" /bin/sh -c "$hc"
check "Dockerfile HEALTHCHECK command succeeds" $?

echo "sizes: runtime root $(du -sh --exclude=proc --exclude=dev "$run" | cut -f1), build root $(du -sh --exclude=proc --exclude=dev "$build" | cut -f1)"
finish
