#!/usr/bin/env bash
# Host tools the tests and the demo use besides Docker: git (with http-backend), an SSH
# client, debootstrap for the base image, curl, iptables, iproute2, nsenter; with --browser also Chromium, which only the
# HTML report test needs (`make test` asks for it, `make demo` does not). Installed from
# Debian's packages when missing and we are root; elsewhere, one line says what to get.
set -euo pipefail

browser=false
for arg in "$@"; do
  case "$arg" in
    --browser) browser=true ;;
    *) echo "ensure-host-tools: unknown option $arg (known: --browser)" >&2; exit 2 ;;
  esac
done

missing=()
command -v git >/dev/null 2>&1 || missing+=(git)
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The sandbox's host filter (iptables) and the swarm tests' nodes (ip netns, nsenter).
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
if $browser; then
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-host-tools: please install: ${missing[*]}" >&2
  exit 3
fi
echo "ensure-host-tools: installing ${missing[*]}…" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
