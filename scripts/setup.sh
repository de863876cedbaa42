#!/usr/bin/env bash
# Makes sure this machine can run backlight's demo and tests; quick and silent when it already can.
#
#   System (Debian):
#   - libvulkan1: the Vulkan loader Dawn opens.
#   - mesa-vulkan-drivers >= 24: Mesa's lavapipe, the CPU Vulkan driver WebGPU in Node runs on
#     when there is no GPU (~5x faster than SwiftShader on the same cores). Dawn rejects older
#     Mesa, and Debian 12's own is 22.3, so on bookworm it comes from bookworm-backports: the
#     script adds that source when absent and pins it (/etc/apt/preferences.d/backlight-mesa) so
#     that only Mesa's packages (mesa-vulkan-drivers, libdrm*) are taken from there; anything else
#     backports has stays at its default priority (100: never installed unless asked for).
#     Newer distributions (trixie, ...) get it from their main archive.
#   - chromium: its package ships SwiftShader's Vulkan driver
#     (/usr/lib/chromium/vk_swiftshader_icd.json: the fallback adapter, BACKLIGHT_ADAPTER=swiftshader)
#     and is the browser of the browser test.
#   Installed with apt-get when missing and running as root; otherwise it says what to install.
#   Node packages: `npm ci` when node_modules is missing or older than package-lock.json.
#
# BACKLIGHT_SKIP_SYSTEM_SETUP=1 skips the system check (e.g. a machine with its own Vulkan or
# Metal driver that is not Debian; then set BACKLIGHT_SKIP_BROWSER=1 too if it has no chromium).
# .ci/run calls this script too, so CI and a developer's machine install the same things.
set -euo pipefail
cd "$(dirname "$0")/.."

SWIFTSHADER_ICD=/usr/lib/chromium/vk_swiftshader_icd.json
CHROMIUM=/usr/bin/chromium
MESA_MIN_MAJOR=24
BACKPORTS_SOURCE=/etc/apt/sources.list.d/bookworm-backports.sources
MESA_PIN=/etc/apt/preferences.d/backlight-mesa

have_vulkan_loader() {
  local f
  for f in /usr/lib/*-linux-gnu/libvulkan.so.1 /usr/lib64/libvulkan.so.1 /usr/lib/libvulkan.so.1; do
    [ -e "$f" ] && return 0
  done
  return 1
}

# Lavapipe's ICD file is there and the installed Mesa is new enough for Dawn. Only the ICD file
# is checked where there is no dpkg (a non-Debian system manages its own Mesa).
have_new_lavapipe() {
  local f found=
  for f in /usr/share/vulkan/icd.d/lvp_icd*.json; do [ -e "$f" ] && found=1; done
  [ -n "$found" ] || return 1
  [ -f /var/lib/dpkg/status ] || return 0
  local v
  # dpkg's own database, read directly: dpkg-query takes ~70 ms, this a few.
  v=$(awk '/^Package: /{p=($2=="mesa-vulkan-drivers")} p&&/^Status: /{ok=($4=="installed")} p&&ok&&/^Version: /{print $2; exit}' /var/lib/dpkg/status)
  [ -n "$v" ] || return 1
  v=${v#*:}
  [ "${v%%.*}" -ge "$MESA_MIN_MAJOR" ] 2>/dev/null
}

codename() {
  (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
}

# Whether to ask apt for mesa-vulkan-drivers: it is missing, or too old on bookworm (where
# backports has a newer one). Elsewhere an old installed Mesa is left alone: the archive has
# nothing newer, and asking again at every run would make this script slow.
want_mesa() {
  have_new_lavapipe && return 1
  [ "$(codename)" = bookworm ] && return 0
  [ -f /var/lib/dpkg/status ] && awk '/^Package: /{p=($2=="mesa-vulkan-drivers")} p&&/^Status: /&&$4=="installed"{f=1; exit} END{exit !f}' /var/lib/dpkg/status && return 1
  return 0
}

# bookworm: make bookworm-backports available, with Mesa (and only Mesa) pinned to it.
prepare_bookworm_backports() {
  if ! grep -rqs --include='*.list' --include='*.sources' -E '(^|[[:space:]])bookworm-backports([[:space:]]|$)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "setup: adding the bookworm-backports source ($BACKPORTS_SOURCE)" >&2
    cat > "$BACKPORTS_SOURCE" <<'EOF'
# Added by backlight's scripts/setup.sh for Mesa >= 24 (lavapipe, the CPU Vulkan driver Dawn
# accepts). /etc/apt/preferences.d/backlight-mesa pins only Mesa's packages to it.
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  if [ ! -f "$MESA_PIN" ]; then
    cat > "$MESA_PIN" <<'EOF'
# Added by backlight's scripts/setup.sh: Mesa's Vulkan drivers (lavapipe) and the libdrm they
# need from bookworm-backports, at the same priority as the main archive, so the newer version
# wins for these packages only. Everything else in bookworm-backports keeps the default
# priority 100 (installed only when asked for by name).
Package: mesa-vulkan-drivers libdrm2 libdrm-common libdrm-amdgpu1
Pin: release n=bookworm-backports
Pin-Priority: 500
EOF
  fi
}

if [ "${BACKLIGHT_SKIP_SYSTEM_SETUP:-}" != 1 ]; then
  missing=()
  have_vulkan_loader || missing+=(libvulkan1)
  want_mesa && missing+=(mesa-vulkan-drivers)
  { [ -f "$SWIFTSHADER_ICD" ] && [ -x "$CHROMIUM" ]; } || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "setup: missing Debian packages ${missing[*]}, and this is not a Debian system (no apt-get)." >&2
      echo "setup: WebGPU in Node needs the Vulkan loader (libvulkan.so.1) and a Vulkan driver (a GPU's; Mesa >= 24's" >&2
      echo "setup: lavapipe; or SwiftShader: $SWIFTSHADER_ICD from Debian's chromium); the browser test needs $CHROMIUM." >&2
      echo "setup: install the equivalents, or set BACKLIGHT_SKIP_SYSTEM_SETUP=1 (and BACKLIGHT_SKIP_BROWSER=1) if this" >&2
      echo "setup: machine has its own WebGPU-capable driver." >&2
      exit 1
    fi
    cn=$(codename)
    if [ "$(id -u)" != 0 ]; then
      echo "setup: missing Debian packages: ${missing[*]}. As root, run: bash scripts/setup.sh" >&2
      if [ "$cn" = bookworm ] && [[ " ${missing[*]} " == *" mesa-vulkan-drivers "* ]]; then
        echo "setup: (on Debian 12 it adds bookworm-backports, pinned to Mesa's packages, for mesa-vulkan-drivers >= $MESA_MIN_MAJOR)" >&2
      else
        echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
      fi
      exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    [ "$cn" = bookworm ] && prepare_bookworm_backports
    echo "setup: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    have_vulkan_loader || { echo "setup: libvulkan.so.1 still missing after installing libvulkan1" >&2; exit 1; }
    [ -f "$SWIFTSHADER_ICD" ] || { echo "setup: $SWIFTSHADER_ICD still missing after installing chromium" >&2; exit 1; }
    if ! have_new_lavapipe; then
      # Not fatal: WebGPU falls back to SwiftShader, only slower.
      echo "setup: warning: this distribution's mesa-vulkan-drivers is older than $MESA_MIN_MAJOR, which Dawn rejects;" >&2
      echo "setup: WebGPU will run on SwiftShader (about 5x slower on a CPU)." >&2
    fi
  fi

  # python3-torch, python3-torchvision (Debian's, for /usr/bin/python3): the ONNX tests export
  # torchvision models with them at test time (tests/fixtures/make_torchvision_fixtures.py).
  # Optional: without them those tests skip, so only root installs them; others are told how.
  if [ -f /var/lib/dpkg/status ] && command -v apt-get >/dev/null 2>&1; then
    torch_missing=()
    for p in python3-torch python3-torchvision; do
      awk -v p="$p" '/^Package: /{q=($2==p)} q&&/^Status: /&&$4=="installed"{f=1; exit} END{exit !f}' /var/lib/dpkg/status || torch_missing+=("$p")
    done
    if [ ${#torch_missing[@]} -gt 0 ]; then
      if [ "$(id -u)" = 0 ]; then
        echo "setup: installing ${torch_missing[*]} with apt-get (the torchvision ONNX fixtures)" >&2
        export DEBIAN_FRONTEND=noninteractive
        { apt-get install -y -qq --no-install-recommends "${torch_missing[@]}" || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${torch_missing[@]}"; }; } ||
          echo "setup: warning: could not install ${torch_missing[*]}; the torchvision ONNX tests will skip" >&2
      else
        echo "setup: note: ${torch_missing[*]} missing; the torchvision ONNX tests will skip (as root: apt-get install -y ${torch_missing[*]})" >&2
      fi
    fi
  fi
fi

# node_modules/.package-lock.json is written by npm at every install: older than the lock file
# means the lock changed since (a pull, a branch switch).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund
fi
