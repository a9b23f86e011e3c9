#!/usr/bin/env bash
# Installs the system tools that jitstream's tests, benchmarks and players
# need, on Debian/Ubuntu, then the JavaScript player libraries of the browser
# tests (web/players/node_modules, with npm ci). Idempotent: when every tool
# and the libraries are present it only checks and exits (no apt-get, no
# npm).
#
# To add a tool, add a "command:package" line to DEPS below. The command is
# looked up on PATH and in /usr/sbin and /usr/bin (Debian's nginx lives in
# /usr/sbin, which is not on a normal user's PATH).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

DEPS=(
  "ffmpeg:ffmpeg"
  "ffprobe:ffmpeg"
  "nginx:nginx"
  "chromium:chromium"
  "wrk:wrk"
  "strace:strace"
  "node:nodejs"
  "npm:npm"
  "rclone:rclone"
  "redis-server:redis-server"
)

have() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]
}

missing=()
for dep in "${DEPS[@]}"; do
  cmd="${dep%%:*}"
  pkg="${dep#*:}"
  if ! have "$cmd"; then
    case " ${missing[*]-} " in
      *" $pkg "*) ;;
      *) missing+=("$pkg") ;;
    esac
  fi
done

# players installs the player libraries of internal/testutil/players
# (web/players/package.json) with npm ci when one is missing or when
# package.json or package-lock.json changed since the last install: a stamp
# file in node_modules holds their checksum.
players() {
  local dir="$ROOT/web/players"
  local stamp="$dir/node_modules/.jitstream-deps.sha256"
  local sum
  sum="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [ -f "$dir/node_modules/hls.js/package.json" ] &&
    [ -f "$dir/node_modules/dashjs/package.json" ] &&
    [ -f "$dir/node_modules/tus-js-client/package.json" ] &&
    [ "$(cat "$stamp" 2>/dev/null || true)" = "$sum" ]; then
    echo "deps: player libraries present (web/players/node_modules)"
    return
  fi
  echo "deps: installing player libraries (npm ci in web/players)"
  (cd "$dir" && npm ci --no-audit --no-fund)
  echo "$sum" >"$stamp"
}

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps: all present (${DEPS[*]%%:*})"
  players
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "deps: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
  SUDO=(sudo)
fi
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)

echo "deps: installing ${missing[*]}"

# Keep packages from starting their services (Debian's nginx would start on
# port 80): policy-rc.d exit code 101 means "action forbidden". Only if the
# machine has none already; removed again on exit.
POLICY=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
  added_policy=1
fi
cleanup() {
  if [ "$added_policy" -eq 1 ]; then
    "${SUDO[@]}" rm -f "$POLICY"
  fi
}
trap cleanup EXIT

"${APT[@]}" update -q
"${APT[@]}" install -y -q --no-install-recommends "${missing[@]}"

# If nginx got started anyway (e.g. policy-rc.d already existed and allowed
# it), stop it and keep it from starting at boot. The tests run their own
# nginx on a free loopback port.
# The same for redis-server: the tests run their own.
for svc in nginx redis-server; do
  case " ${missing[*]} " in
    *" $svc "*)
      if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
      else
        "${SUDO[@]}" service "$svc" stop >/dev/null 2>&1 || true
        "${SUDO[@]}" update-rc.d "$svc" disable >/dev/null 2>&1 || true
      fi
      ;;
  esac
done

still=()
for dep in "${DEPS[@]}"; do
  have "${dep%%:*}" || still+=("${dep%%:*}")
done
if [ "${#still[@]}" -ne 0 ]; then
  echo "deps: still missing after install: ${still[*]}" >&2
  exit 1
fi
players
echo "deps: done"
