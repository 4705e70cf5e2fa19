#!/usr/bin/env bash
# Apply every migration in sql/migrations with psql, in order.
# Usage: scripts/migrate.sh DATABASE_URL
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: $0 DATABASE_URL" >&2
    exit 2
fi
here="$(cd "$(dirname "$0")/.." && pwd)"
for file in "$here"/sql/migrations/[0-9][0-9][0-9]_*.sql; do
    echo "applying $(basename "$file")"
    psql "$1" -q -X -v ON_ERROR_STOP=1 -f "$file"
done
