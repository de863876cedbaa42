#!/usr/bin/env bash
# Makes sure this machine can run backlight's demo and tests; quick and silent when it already can.
#
#   System (Debian): libvulkan1 (the Vulkan loader Dawn opens) and chromium, whose package ships
#   SwiftShader's Vulkan driver (/usr/lib/chromium/vk_swiftshader_icd.json: WebGPU in Node falls
#   back to it when the system has no usable GPU driver) and is the browser of the browser test.
#   Installed with apt-get when missing and running as root; otherwise it says what to install.
#   Node packages: `npm ci` when node_modules is missing or older than package-lock.json.
#
# BACKLIGHT_SKIP_SYSTEM_SETUP=1 skips the system check (e.g. a machine with its own Vulkan or
# Metal driver that is not Debian; then set BACKLIGHT_SKIP_BROWSER=1 too if it has no chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

SWIFTSHADER_ICD=/usr/lib/chromium/vk_swiftshader_icd.json
CHROMIUM=/usr/bin/chromium

have_vulkan_loader() {
  local f
  for f in /usr/lib/*-linux-gnu/libvulkan.so.1 /usr/lib64/libvulkan.so.1 /usr/lib/libvulkan.so.1; do
    [ -e "$f" ] && return 0
  done
  return 1
}

if [ "${BACKLIGHT_SKIP_SYSTEM_SETUP:-}" != 1 ]; then
  missing=()
  have_vulkan_loader || missing+=(libvulkan1)
  { [ -f "$SWIFTSHADER_ICD" ] && [ -x "$CHROMIUM" ]; } || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "setup: missing Debian packages ${missing[*]}, and this is not a Debian system (no apt-get)." >&2
      echo "setup: WebGPU in Node needs the Vulkan loader (libvulkan.so.1) and a Vulkan driver (a GPU's, or SwiftShader's:" >&2
      echo "setup: $SWIFTSHADER_ICD from Debian's chromium); the browser test needs $CHROMIUM." >&2
      echo "setup: install the equivalents, or set BACKLIGHT_SKIP_SYSTEM_SETUP=1 (and BACKLIGHT_SKIP_BROWSER=1) if this" >&2
      echo "setup: machine has its own WebGPU-capable driver." >&2
      exit 1
    fi
    if [ "$(id -u)" != 0 ]; then
      echo "setup: missing Debian packages: ${missing[*]}. Install them with:" >&2
      echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
      exit 1
    fi
    echo "setup: installing ${missing[*]} with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    have_vulkan_loader || { echo "setup: libvulkan.so.1 still missing after installing libvulkan1" >&2; exit 1; }
    [ -f "$SWIFTSHADER_ICD" ] || { echo "setup: $SWIFTSHADER_ICD still missing after installing chromium" >&2; exit 1; }
  fi
fi

# node_modules/.package-lock.json is written by npm at every install: older than the lock file
# means the lock changed since (a pull, a branch switch).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund
fi
