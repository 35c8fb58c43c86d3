#!/bin/sh
# Entrypoint of the homer-ops offline PostgreSQL image, run by busybox sh.
#
# Behaves like the official postgres image's docker-entrypoint.sh, for what the harness needs:
#   - as root: create PGDATA and the socket directory, hand them to `postgres` (uid 999), then
#     re-run this script as that user (busybox `su`, which sets uid/gid/groups and execs: no
#     process stays behind as root);
#   - on first start (no PGDATA/PG_VERSION): a copy of the image's pristine cluster (made at build
#     time by the same initdb with the same options, see ops/image/pristine.py) when the settings match
#     it, then in one single-user backend the bootstrap superuser renamed to POSTGRES_USER, its
#     password set and the placeholder database renamed to POSTGRES_DB, then everything flushed
#     to disk; otherwise initdb with the superuser's password read from a temporary file, then
#     CREATE DATABASE in single-user mode. Either way the result is the same cluster, files and
#     catalogues (tests/docker/test_offline_image.py compares them; the copy lacks only the
#     free-space and visibility-map forks, which PostgreSQL makes when needed, and shares the
#     image's system identifier, see ops/image/pristine.py). No server listens during the initialisation,
#     neither on TCP nor on the unix socket. As root, the cluster is built in $PGDATA.initdb
#     beside PGDATA and renamed into place only once complete, so a container killed half-way
#     through leaves no half-made cluster: the next start discards the unfinished copy (which no
#     server ever ran on, so it holds no data) and initialises again;
#   - then exec postgres (PID 1, logging to stderr), listening on all interfaces with password
#     authentication for host connections. `docker stop` sends SIGINT (STOPSIGNAL): fast shutdown.
#
# Environment: POSTGRES_USER (default postgres), POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE
# (required for a new cluster unless POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default
# POSTGRES_USER), POSTGRES_HOST_AUTH_METHOD (default scram-sha-256), POSTGRES_INITDB_ARGS (any
# option but --no-sync and --sync-method=... makes the first start run initdb), PGDATA.
set -eu

RUN_AS=postgres # the unix account (uid 999, baked into /etc/passwd) that owns PGDATA
SOCKET_DIR=/var/run/postgresql
LEGACY_DATA=/var/lib/postgresql/data # the volume path of images before PostgreSQL 18
PRISTINE_MANIFEST=/usr/share/homer-ops/pristine-cluster.env # written by ops/image/pristine.py; may be absent
NEWLINE='
'

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

# ops/image/pristine.py's pristine_initdb_args() makes the pristine cluster with these same options.
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

# What initdb --pwfile takes from the password: its first line, without trailing CRs.
first_line_of_password() {
	printf '%s\n' "$POSTGRES_PASSWORD" | sed -n '1{s/\r*$//;p;}'
}

# POSTGRES_INITDB_ARGS the copy honours as initdb would, since they do not shape the cluster:
# --no-sync (-N) and --sync-method=fsync|syncfs. Sets SYNC_METHOD (none, fsync, syncfs or auto);
# false for any other option.
sync_args_only() {
	SYNC_METHOD=auto
	set -f # the words are options, never globs
	# shellcheck disable=SC2086 # word splitting intended, as in run_initdb
	set -- $POSTGRES_INITDB_ARGS
	set +f
	for word in "$@"; do
		case "$word" in
		--no-sync | -N) SYNC_METHOD=none ;;
		--sync-method=fsync | --sync-method=syncfs) [ "$SYNC_METHOD" = none ] || SYNC_METHOD=${word#*=} ;;
		*) return 1 ;;
		esac
	done
}

# True when the image's pristine cluster is exactly what run_initdb would make here: the same
# options (authentication, locale, no POSTGRES_INITDB_ARGS but the sync ones), the same time zone,
# and values the single-user statements below can carry. Otherwise initdb runs, as in every
# other image.
pristine_fits() {
	[ -r "$PRISTINE_MANIFEST" ] || return 1
	# shellcheck disable=SC1090 # the image's own file
	. "$PRISTINE_MANIFEST"
	[ -r "$PRISTINE_DIR/PG_VERSION" ] || return 1
	[ -d "$PRISTINE_DIR/base/${PRISTINE_SESSION_DATABASE_OID:-}" ] || return 1
	sync_args_only || return 1
	[ "$POSTGRES_HOST_AUTH_METHOD" = "$PRISTINE_AUTH_HOST" ] || return 1
	[ "$(initdb_locale_args)" = "$PRISTINE_LOCALE_ARGS" ] || return 1
	[ -z "${TZ:-}" ] || [ "$TZ" = "$PRISTINE_TZ" ] || return 1 # initdb writes TZ into postgresql.conf
	[ -n "$(first_line_of_password)" ] || return 1             # initdb refuses an empty password file
	case "$POSTGRES_USER" in pg_*) return 1 ;; esac                # initdb refuses the name: let it say so
	case "$POSTGRES_USER$POSTGRES_DB" in *"$NEWLINE"*) return 1 ;; esac
	[ ! -e "$PGDATA" ] || [ -z "$(ls -A "$PGDATA")" ] || return 1 # initdb says what is wrong
	return 0
}

quote_literal() {
	printf "E'%s'" "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/''/g")"
}

# Copy the pristine cluster into the empty PGDATA: PG_VERSION first, as initdb writes it first,
# then all but the databases (creating their ~1,000 files is what costs here), then the database
# the single-user backend connects to (postgres). The other databases are copied meanwhile, one
# child each, and go on while apply_settings runs: it reads and writes only the shared catalogs,
# the WAL and its own database (renaming a database touches pg_database, not its directory);
# wait_for_copies collects them. Every file of a cluster is 0600 and every directory 0700
# (ops/image/pristine.py checks it), which umask 077 gives the copies without the chmod and utime per file
# that `cp -a` would add.
copy_pristine_cluster() {
	umask 077
	mkdir -p "$PGDATA"
	chmod 700 "$PGDATA"
	cp "$PRISTINE_DIR/PG_VERSION" "$PGDATA/"
	mkdir "$PGDATA/base"
	COPY_PIDS=""
	for database in "$PRISTINE_DIR"/base/*; do
		[ "${database##*/}" != "$PRISTINE_SESSION_DATABASE_OID" ] || continue
		cp -R "$database" "$PGDATA/base/" &
		COPY_PIDS="$COPY_PIDS $!"
	done
	for entry in "$PRISTINE_DIR"/*; do
		case "${entry##*/}" in
		PG_VERSION | base) ;;
		*) cp -R "$entry" "$PGDATA/" || die "copying the pristine cluster into $PGDATA failed" ;;
		esac
	done
	cp -R "$PRISTINE_DIR/base/$PRISTINE_SESSION_DATABASE_OID" "$PGDATA/base/" ||
		die "copying the pristine cluster into $PGDATA failed"
}

wait_for_copies() {
	for pid in $COPY_PIDS; do
		wait "$pid" || die "copying the pristine cluster into $PGDATA failed"
	done
	COPY_PIDS=""
}

# In one single-user backend (no listener): what initdb's --username and --pwfile and the other
# path's CREATE DATABASE do. ALTER ROLE ... RENAME refuses to rename the session user, and a
# single-user backend always runs as the bootstrap superuser (OID 10), so its row is renamed
# directly, which is what RenameRole does past that check (the role has no MD5 password to
# clear). log_min_error_statement=panic keeps the password out of the log if a statement fails.
# fsync is off, as in initdb's own backends: the whole cluster is flushed afterwards.
apply_settings() {
	password=$(first_line_of_password)
	{
		if [ "$POSTGRES_USER" != "$PRISTINE_SUPERUSER" ]; then
			printf 'UPDATE pg_catalog.pg_authid SET rolname = %s WHERE oid = 10;\n' \
				"$(quote_literal "$POSTGRES_USER")"
		fi
		printf 'ALTER ROLE %s PASSWORD %s;\n' "$(quote_ident "$POSTGRES_USER")" "$(quote_literal "$password")"
		if [ "$POSTGRES_DB" = postgres ]; then
			printf 'DROP DATABASE %s;\n' "$(quote_ident "$PRISTINE_DATABASE")"
		elif [ "$POSTGRES_DB" != "$PRISTINE_DATABASE" ]; then
			printf 'ALTER DATABASE %s RENAME TO %s;\n' "$(quote_ident "$PRISTINE_DATABASE")" \
				"$(quote_ident "$POSTGRES_DB")"
		fi
	} | run_single_user -c log_min_error_statement=panic -c fsync=off
	unset password
}

# Flush the cluster to disk, as initdb does at its end (unless --no-sync), with initdb's own code.
# By default: syncfs, one call for the volume's filesystem, when the machine has little data
# waiting to be written (it then costs about what our ~40 MB cost; it writes out other programs'
# data too); otherwise fsync file by file, initdb's default, which waits for our files only.
SYNCFS_MAX_UNWRITTEN_KB=98304 # 96 MiB: about twice the copied cluster
sync_cluster() {
	method=$SYNC_METHOD
	[ "$method" != none ] || return 0
	if [ "$method" = auto ]; then
		unwritten=$(awk '$1 == "Dirty:" || $1 == "Writeback:" { kb += $2 } END { print kb + 0 }' /proc/meminfo)
		method=fsync
		[ "$unwritten" -gt "$SYNCFS_MAX_UNWRITTEN_KB" ] || method=syncfs
	fi
	initdb --sync-only --sync-method="$method" -D "$PGDATA" >/dev/null
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
	postgres --single -D "$PGDATA" -c exit_on_error=on -c log_checkpoints=off "$@" postgres >/dev/null
}

create_database() {
	[ "$POSTGRES_DB" = postgres ] && return 0
	log "creating database $POSTGRES_DB"
	printf 'CREATE DATABASE %s;\n' "$(quote_ident "$POSTGRES_DB")" | run_single_user
}

init_cluster() {
	refuse_missing_password
	if pristine_fits; then
		log "initialising a new cluster in $PGDATA from the image's pristine cluster (superuser $POSTGRES_USER)"
		copy_pristine_cluster
		[ "$POSTGRES_DB" != postgres ] || wait_for_copies # DROP DATABASE needs the placeholder whole
		apply_settings
		wait_for_copies
		configure_cluster
		sync_cluster
	else
		init_cluster_with_initdb
	fi
	if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
		log "warning: POSTGRES_HOST_AUTH_METHOD=trust: anyone who reaches the port connects without a password"
	fi
	log "initialisation complete"
}

init_cluster_with_initdb() {
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
