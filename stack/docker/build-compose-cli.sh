#!/usr/bin/env bash
# Build the Docker Compose v2 CLI plugin (version from stack/versions.yaml) from the Go module proxy,
# for machines whose package manager has no compose plugin (Debian 12 ships only compose v1).
# `docker compose config` needs no engine: with it the deploy tests also run compose's own parser.
# Heavy (a few minutes of CPU on two cores, once): the deploy tests run it when the plugin is missing
# (testbed/deploy/gotools.py), so `make test` always runs compose's own loader. By hand:
#   bash stack/docker/build-compose-cli.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v go >/dev/null || { echo "go is required (https://go.dev/dl or apt-get install golang)" >&2; exit 1; }
version=$(python3 -c 'import json,sys; print(json.load(open("stack/versions.json"))["docker_compose"])')
plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
# The plugin also runs standalone (`docker-compose config`): no docker CLI needed to check or use it.
if "$plugins/docker-compose" version 2>/dev/null | grep -q "${version}$"; then
  echo "docker compose ${version} already installed"; exit 0
fi
# `go install pkg@version` refuses modules with replace directives: build inside the module instead.
source_dir=$(go mod download -json "github.com/docker/compose/v2@${version}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
mkdir -p "$plugins"
(cd "$source_dir" && nice -n 19 go build -p 1 -trimpath \
  -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=${version}" \
  -o "$plugins/docker-compose" ./cmd)
"$plugins/docker-compose" version
