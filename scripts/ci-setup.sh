#!/usr/bin/env bash
# Prepares a Debian machine for the full test suite: a running Docker engine and the local test image
# flotilla/testbox:latest (busybox, imported from Debian's busybox-static; no registry is needed).
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail

need_pkgs=()
command -v docker >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
# The Service data path (nftables), stale-flow cleanup (conntrack) and DNS checks from the tests (dig).
command -v nft >/dev/null 2>&1 || need_pkgs+=(nftables)
command -v conntrack >/dev/null 2>&1 || need_pkgs+=(conntrack)
command -v dig >/dev/null 2>&1 || need_pkgs+=(dnsutils)
# The registries the image pull tests start on loopback (docker-registry) and their htpasswd files (apache2-utils).
command -v docker-registry >/dev/null 2>&1 || need_pkgs+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_pkgs+=(apache2-utils)
# LoadBalancer addresses: duplicate address detection and gratuitous ARP (arping), IPv6 neighbour discovery (ndisc6, ndsend).
command -v arping >/dev/null 2>&1 || need_pkgs+=(iputils-arping)
command -v ndsend >/dev/null 2>&1 || need_pkgs+=(ndisc6)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "ci-setup: installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "ci-setup: starting dockerd"
  mkdir -p /var/log
  # setsid: the daemon must outlive this script and any process group the caller kills.
  setsid dockerd >/var/log/flotilla-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "ci-setup: dockerd did not start; see /var/log/flotilla-dockerd.log" >&2; tail -20 /var/log/flotilla-dockerd.log >&2; exit 1; }
fi

if ! docker image inspect flotilla/testbox:latest >/dev/null 2>&1; then
  echo "ci-setup: building flotilla/testbox:latest from busybox-static"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/proc" "$root/sys" "$root/dev" "$root/www"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  echo 'flotilla testbox' >"$root/www/index.html"
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/bin' \
    --change 'CMD ["/bin/sh"]' \
    - flotilla/testbox:latest >/dev/null
fi
echo "ci-setup: docker $(docker version --format '{{.Server.Version}}') ready, image flotilla/testbox:latest present"
