#!/bin/sh
# Backup of the bot's database: PostgreSQL (pg_dump, custom format) or SQLite (online .backup).
# Reads DATABASE_URL; writes to BACKUP_DIR (default ./backups); deletes backups older than
# KEEP_DAYS days (default 14): backups hold personal data too, and an erased draft must not
# live on in them for long. Needs pg_dump (postgresql-client) or the sqlite3 command.
# Restore: pg_restore --clean --if-exists -d "$DATABASE_URL" FILE.dump
#          or stop the bot and copy FILE.sqlite3 over the database file.
set -eu

: "${DATABASE_URL:?DATABASE_URL is not set}"
BACKUP_DIR="${BACKUP_DIR:-./backups}"
KEEP_DAYS="${KEEP_DAYS:-14}"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
umask 077
mkdir -p "$BACKUP_DIR"

case "$DATABASE_URL" in
    postgresql://*|postgres://*|postgresql+psycopg://*)
        url="$(printf '%s' "$DATABASE_URL" | sed 's#^postgresql+psycopg://#postgresql://#')"
        out="$BACKUP_DIR/esp-cpts-bot-$STAMP.dump"
        pg_dump --format=custom --no-owner --file="$out.part" "$url"
        ;;
    sqlite:///*)
        db="${DATABASE_URL#sqlite:///}"
        out="$BACKUP_DIR/esp-cpts-bot-$STAMP.sqlite3"
        # .backup is consistent while the bot runs (WAL mode); a plain cp is not.
        sqlite3 "$db" ".backup '$out.part'"
        sqlite3 "$out.part" "PRAGMA integrity_check;" | grep -qx ok
        ;;
    *)
        echo "unsupported DATABASE_URL scheme" >&2
        exit 2
        ;;
esac
mv "$out.part" "$out"
find "$BACKUP_DIR" -name 'esp-cpts-bot-*' -type f -mtime +"$KEEP_DAYS" -delete
echo "backup written: $out"
