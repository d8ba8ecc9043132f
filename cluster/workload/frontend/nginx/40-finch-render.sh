#!/bin/sh
# Run by the nginx image's /docker-entrypoint.sh before nginx starts. Renders the nginx config
# and /config.js into FINCH_RUN_DIR (an emptyDir: the root filesystem is read-only).
set -eu
: "${FINCH_LISTEN_ADDRESS:=0.0.0.0}"
: "${FINCH_LISTEN_PORT:=8080}"
: "${FINCH_STATIC_ROOT:=/usr/share/nginx/html}"
: "${FINCH_RUN_DIR:=/tmp/nginx}"
: "${FINCH_API_BASE_URL:=}"
export FINCH_LISTEN_ADDRESS FINCH_LISTEN_PORT FINCH_STATIC_ROOT FINCH_RUN_DIR FINCH_API_BASE_URL
mkdir -p "$FINCH_RUN_DIR"
vars='${FINCH_LISTEN_ADDRESS} ${FINCH_LISTEN_PORT} ${FINCH_STATIC_ROOT} ${FINCH_RUN_DIR} ${FINCH_API_BASE_URL}'
envsubst "$vars" < /etc/finch/nginx.conf.template > "$FINCH_RUN_DIR/nginx.conf"
envsubst "$vars" < /etc/finch/config.js.template > "$FINCH_RUN_DIR/config.js"
