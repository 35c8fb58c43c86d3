#!/bin/sh
# Entrypoint of the homer-ops offline PostgreSQL image, run by busybox sh.
#
# Behaves like the official postgres image's docker-entrypoint.sh, for what the harness needs:
#   - as root: create PGDATA and the socket directory, hand them to `postgres` (uid 999), then
#     re-run this script as that user (busybox `su`, which sets uid/gid/groups and execs: no
#     process stays behind as root);
#   - on first start (no PGDATA/PG_VERSION): initdb with the superuser's password read from a
#     temporary file, then CREATE DATABASE in single-user mode. No server listens during the
#     initialisation, neither on TCP nor on the unix socket. As root, the cluster is built in
#     $PGDATA.initdb beside PGDATA and renamed into place only once complete, so a container
#     killed half-way through leaves no half-made cluster: the next start discards the unfinished
#     copy (which no server ever ran on, so it holds no data) and initialises again;
#   - then exec postgres (PID 1, logging to stderr), listening on all interfaces with password
#     authentication for host connections. `docker stop` sends SIGINT (STOPSIGNAL): fast shutdown.
#
# Environment: POSTGRES_USER (default postgres), POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE
# (required for a new cluster unless POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default
# POSTGRES_USER), POSTGRES_HOST_AUTH_METHOD (default scram-sha-256), POSTGRES_INITDB_ARGS, PGDATA.
set -eu

RUN_AS=postgres # the unix account (uid 999, baked into /etc/passwd) that owns PGDATA
SOCKET_DIR=/var/run/postgresql
LEGACY_DATA=/var/lib/postgresql/data # the volume path of images before PostgreSQL 18

log() {
	printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2
}

die() {
	log "error: $*"
	exit 1
}

read_settings() {
	if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
		[ -z "${POSTGRES_PASSWORD:-}" ] || die "both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set"
		POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE") || die "cannot read $POSTGRES_PASSWORD_FILE"
	fi
	: "${POSTGRES_USER:=postgres}"
	: "${POSTGRES_PASSWORD:=}"
	: "${POSTGRES_DB:=$POSTGRES_USER}"
	: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
	: "${POSTGRES_INITDB_ARGS:=}"
	: "${PGDATA:=/var/lib/postgresql/18/docker}"
	export PGDATA
}

is_initialised() {
	[ -s "$PGDATA/PG_VERSION" ]
}

staging_dir() {
	printf '%s.initdb' "${PGDATA%/}"
}

is_mount_point() {
	awk -v path="$1" '$5 == path { found = 1 } END { exit !found }' /proc/self/mountinfo 2>/dev/null
}

# A volume mounted where older images kept their data would silently be ignored: refuse instead.
refuse_legacy_volume() {
	case "$PGDATA" in
	"$LEGACY_DATA" | "$LEGACY_DATA"/*) return 0 ;;
	esac
	if is_mount_point "$LEGACY_DATA"; then
		die "a volume is mounted at $LEGACY_DATA but PGDATA is $PGDATA: mount the volume at" \
			"/var/lib/postgresql (this image keeps its data in PGDATA below it) or set PGDATA"
	fi
}

refuse_missing_password() {
	[ -z "$POSTGRES_PASSWORD" ] || return 0
	[ "$POSTGRES_HOST_AUTH_METHOD" = trust ] && return 0
	die "Database is uninitialized and superuser password is not specified." \
		"You must specify POSTGRES_PASSWORD to a non-empty value for the superuser" \
		"(e.g. -e POSTGRES_PASSWORD=password), or POSTGRES_HOST_AUTH_METHOD=trust to allow" \
		"all connections without a password (NOT recommended)."
}

prepare_directories_as_root() {
	mkdir -p "$PGDATA" "$SOCKET_DIR"
	# Only what is not ours yet (a fresh volume, a bind mount): a large cluster is not walked twice.
	find "$PGDATA" \! -user "$RUN_AS" -exec chown "$RUN_AS:$RUN_AS" '{}' +
	chmod 700 "$PGDATA"
	chown "$RUN_AS:$RUN_AS" "$SOCKET_DIR"
	chmod 3775 "$SOCKET_DIR"
}

# Run "$@" as $RUN_AS: busybox su calls initgroups/setgid/setuid (real, effective and saved ids)
# and execs the command; without -p it only resets HOME, SHELL, USER and LOGNAME.
exec_as_postgres() {
	exec su -s /bin/sh -c 'exec "$0" "$@"' "$RUN_AS" -- "$@"
}

initdb_locale_args() {
	if [ -d /usr/lib/locale/C.utf8 ]; then
		echo "--locale=C.UTF-8"
	else # no libc C.UTF-8 in this image: PostgreSQL's own builtin provider
		echo "--locale=C --locale-provider=builtin --builtin-locale=C.UTF-8"
	fi
}

run_initdb() {
	password_file=$1
	set -- --username="$POSTGRES_USER" --encoding=UTF8 --no-instructions \
		--auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD"
	if [ -n "$password_file" ]; then
		set -- "$@" --pwfile="$password_file"
	fi
	# shellcheck disable=SC2046,SC2086 # word splitting intended
	initdb "$@" $(initdb_locale_args) $POSTGRES_INITDB_ARGS >&2
}

configure_cluster() {
	cat >>"$PGDATA/postgresql.conf" <<EOF

# added by the homer-ops offline image's entrypoint
listen_addresses = '*'
unix_socket_directories = '$SOCKET_DIR'
EOF
	printf '\n# added by the homer-ops offline image: password authentication from any address\n' \
		>>"$PGDATA/pg_hba.conf"
	printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"
}

quote_ident() {
	printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"
}

# SQL from stdin in a single-user backend: no listener at all; exit_on_error makes ERROR fatal.
run_single_user() {
	postgres --single -D "$PGDATA" -c exit_on_error=on -c log_checkpoints=off postgres >/dev/null
}

create_database() {
	[ "$POSTGRES_DB" = postgres ] && return 0
	log "creating database $POSTGRES_DB"
	printf 'CREATE DATABASE %s;\n' "$(quote_ident "$POSTGRES_DB")" | run_single_user
}

init_cluster() {
	refuse_missing_password
	log "initialising a new cluster in $PGDATA (superuser $POSTGRES_USER)"
	pwfile=""
	if [ -n "$POSTGRES_PASSWORD" ]; then
		pwfile=$(mktemp) # mode 0600, in /tmp (1777); never on a command line
		trap 'rm -f "$pwfile"' EXIT
		printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	fi
	run_initdb "$pwfile"
	rm -f "$pwfile"
	trap - EXIT
	configure_cluster
	create_database
	if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
		log "warning: POSTGRES_HOST_AUTH_METHOD=trust: anyone who reaches the port connects without a password"
	fi
	log "initialisation complete"
}

# As root: build the cluster in the staging directory (as $RUN_AS, in a child), then rename it
# to PGDATA: rename(2) within the volume is atomic, so PGDATA is either empty or complete.
init_cluster_atomically() {
	staging=$(staging_dir)
	if [ -e "$staging" ]; then
		log "discarding $staging, left by an initialisation that did not finish"
		rm -rf "$staging"
	fi
	[ -z "$(ls -A "$PGDATA")" ] || die "$PGDATA is not empty but holds no cluster (no PG_VERSION):" \
		"empty it or point PGDATA elsewhere"
	mkdir "$staging"
	chown "$RUN_AS:$RUN_AS" "$staging"
	chmod 700 "$staging"
	su -s /bin/sh -c 'exec "$0" "$@"' "$RUN_AS" -- /bin/sh "$0" --init-into "$staging" ||
		die "initialisation failed; $staging is discarded at the next start"
	rmdir "$PGDATA"
	mv "$staging" "$PGDATA"
}

main() {
	if [ "${1:-}" = --init-into ]; then # the child of init_cluster_atomically, as $RUN_AS
		read_settings
		PGDATA=$2
		init_cluster
		exit 0
	fi
	# `docker run IMAGE -c x=y` passes options to postgres; any other command runs as given.
	if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
		set -- postgres "$@"
	fi
	[ "$1" = postgres ] || exec "$@"

	read_settings
	if [ "$(id -u)" = 0 ]; then
		refuse_legacy_volume
		is_initialised || refuse_missing_password
		prepare_directories_as_root
		is_initialised || init_cluster_atomically
		exec_as_postgres /bin/sh "$0" "$@"
	fi
	is_initialised || init_cluster
	unset POSTGRES_PASSWORD
	exec "$@"
}

main "$@"
