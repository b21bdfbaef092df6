#!/bin/sh
# Run inside the hub image's build: the venv with the hub's dependencies, and
# configurable-http-proxy. Offline when scripts/hub-image.sh put wheels/ and node/ beside
# this file (the base image then has nodejs); else from Debian, PyPI and npm.
set -eu
here=$(dirname "$0")
python3 -m venv "$VENV"
python3 -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
  "$here/pyproject.toml" >"$here/requirements.txt"
echo "setuptools>=68" >>"$here/requirements.txt"
echo "wheel" >>"$here/requirements.txt"

if [ -d "$here/wheels" ]; then
  pip install --no-cache-dir --no-index --find-links "$here/wheels" -r "$here/requirements.txt"
  # CHP's folder as npm left it on the host; its JavaScript runs on the image's Node.js.
  cp -a "$here/node" /opt/chp
  ln -s /opt/chp/node_modules/configurable-http-proxy/bin/configurable-http-proxy /usr/local/bin/configurable-http-proxy
else
  pip install --no-cache-dir -r "$here/requirements.txt"
  # Bookworm ships Node 18 and CHP 5 wants Node >= 20, so stay on CHP 4 (supported by
  # JupyterHub 5). npm is only needed to install it.
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates nodejs npm
  npm install --global --omit=dev configurable-http-proxy@4
  npm cache clean --force
  DEBIAN_FRONTEND=noninteractive apt-get purge -y --auto-remove npm
  rm -rf /var/lib/apt/lists/* /root/.npm
fi
