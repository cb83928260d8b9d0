#!/usr/bin/env bash
# Start GuruConnect on the embedded default: SQLite in $GURUCONNECT_HOME, no Redis.
#
# The database, the JWT secret and the first admin's password live in $GURUCONNECT_HOME
# (default ~/.config/guruconnect), outside the repository; the secrets in files only
# their owner can read (0600). Set JWT_SECRET yourself to use your own.
set -euo pipefail
cd "$(dirname "$0")/.."

home="${GURUCONNECT_HOME:-${XDG_CONFIG_HOME:-$HOME/.config}/guruconnect}"
mkdir -p "$home"
chmod 700 "$home"
export GURUCONNECT_HOME="$home"
bin=.venv/bin/guruconnect

if [ -z "${JWT_SECRET:-}" ] && [ -z "${JWT_SECRET_FILE:-}" ]; then
  secret_file="$home/jwt_secret"
  if [ ! -s "$secret_file" ]; then
    (umask 077 && .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(48))' >"$secret_file")
    echo "Generated a JWT secret in $secret_file (mode 0600)."
  fi
  export JWT_SECRET_FILE="$secret_file"
fi

"$bin" admin bootstrap --password-file "$home/admin_password"

host="${GURUCONNECT_HOST:-127.0.0.1}"
port="${GURUCONNECT_PORT:-3002}"
cat <<TXT

GuruConnect is starting on http://$host:$port
  dashboard: http://$host:$port  (log in as admin)
  password:  $home/admin_password   (for the first admin, created on the first run)
  API:       POST http://$host:$port/api/auth/login  {"username": "admin", "password": "..."}
  health:    http://$host:$port/health     API schema: http://$host:$port/openapi.json
  database:  ${DATABASE_URL:-$home/guruconnect.db}

TXT
exec "$bin" server
