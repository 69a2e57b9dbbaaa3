#!/usr/bin/env bash
# Validates proto/openapi.yaml against the OpenAPI 3 schema with
# @apidevtools/swagger-cli, installed from npm into build/node (once).
set -eu
cd "$(dirname "$0")/.."
dir=build/node
if [ ! -x "$dir/node_modules/.bin/swagger-cli" ]; then
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error @apidevtools/swagger-cli@4.0.4 >"$dir/install.log" 2>&1 ||
        { echo "npm install of @apidevtools/swagger-cli failed (see $dir/install.log)"; exit 1; }
fi
"$dir/node_modules/.bin/swagger-cli" validate proto/openapi.yaml
