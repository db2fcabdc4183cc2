#!/usr/bin/env bash
# backup.sh: back up an etcd cluster with the method its data needs (procedure.md, "Choosing the
# backup method"). Run it on an etcd host (the v2 method reads the member's data dir):
#   detect   etcd-detect-version: any user v2 data -> v2 (WAL backup), else v3 (snapshot)
#   save     v3: etcd-snap save BACKUP_DIR/snapshot.db (with --data-dir when this host holds the
#            member's data dir and --compress is not given: the db is copied from disk)
#            v2: etcd-wal-backup backup --backup-dir BACKUP_DIR/wal-backup (v3 db included)
#   verify   v3: etcd-snap verify; v2: the manifest (sha256 of every file), every WAL record and
#            the .snap read back offline (etcd-detect-version --data-dir), the db checked
#            (etcd-snap verify --skip-hash-check)
#   record   BACKUP_DIR/backup.json: method, file, etcd version, cluster, revision (written last:
#            its presence means the backup is complete)
# Every step's facts are kept in BACKUP_DIR/run.jsonl (one JSON line per step event).
set -euo pipefail

SCRIPT_NAME=backup
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	cat <<'EOF'
usage: backup.sh [options] BACKUP_DIR

Writes BACKUP_DIR (created, 0700) with snapshot.db (v3) or wal-backup/ (v2), backup.json and
run.jsonl. A rerun on a complete BACKUP_DIR changes nothing; on an incomplete one it moves the
unverified output aside and continues.

  --env-file FILE       etcd's env file on this host [/etc/etcd.env when it exists]: the data
                        dir (v2) and ETCD_ADVERTISE_CLIENT_URLS (the endpoint)
  --endpoints URLS      etcd's client URL(s) [env file's ETCD_ADVERTISE_CLIENT_URLS, then
                        $ETCDCTL_ENDPOINTS]; TLS and credentials from ETCDCTL_* as etcdctl
  --data-dir DIR        the member's data dir [env file's ETCD_DATA_DIR]: read by the v2
                        method; v3 copies the db from it when it is on this host
  --method auto|v2|v3   force a method [auto]; v3 is refused (exit 5) when there is v2 data
  --compress            v3: gzip the snapshot (snapshot.db.gz)
  --bin-dir DIR         where the etcd-rescue tools are [PATH]
  --dry-run             print the commands; change nothing
  -q, --quiet           less on stderr

Exit status: 0 backed up and verified; otherwise the failing tool's code (4 unreachable, 3 a
corrupt backup, 5 v3 forced on v2 data, ...).
EOF
}

ENV_FILE="" ENDPOINTS="" DATA_DIR="" METHOD=auto COMPRESS=0 OUT=""
while (($#)); do
	case $1 in
	--env-file) ENV_FILE=${2:?--env-file needs a value} && shift ;;
	--endpoints) ENDPOINTS=${2:?--endpoints needs a value} && shift ;;
	--data-dir) DATA_DIR=${2:?--data-dir needs a value} && shift ;;
	--method) METHOD=${2:?--method needs a value} && shift ;;
	--compress) COMPRESS=1 ;;
	--bin-dir) BIN_DIR=${2:?--bin-dir needs a value} && shift ;;
	--dry-run) DRY_RUN=1 ;;
	-q | --quiet) QUIET=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	-*) die 2 "unknown option $1 (see --help)" ;;
	*)
		[[ -z $OUT ]] || die 2 "one BACKUP_DIR only (see --help)"
		OUT=$1
		;;
	esac
	shift
done
[[ -n $OUT ]] || die 2 "no BACKUP_DIR given (see --help)"
case $METHOD in auto | v2 | v3) ;; *) die 2 "--method is auto, v2 or v3, not '$METHOD'" ;; esac
need jq
[[ -z $ENV_FILE && -r /etc/etcd.env ]] && ENV_FILE=/etc/etcd.env
if [[ -n $ENV_FILE ]]; then
	[[ -r $ENV_FILE ]] || die 3 "cannot read the env file $ENV_FILE"
	if [[ -z $ENDPOINTS ]]; then
		ENDPOINTS=$(sed -n 's/^[[:space:]]*\(export \)\{0,1\}ETCD_ADVERTISE_CLIENT_URLS=//p' "$ENV_FILE" | tail -n 1 | tr -d "\"'")
	fi
fi
ENDPOINTS=${ENDPOINTS:-${ETCDCTL_ENDPOINTS:-}}
[[ -n $ENDPOINTS ]] || die 2 "no endpoint: give --endpoints or --env-file (or set ETCDCTL_ENDPOINTS)"
CONN=(--endpoints "$ENDPOINTS" --input none)

# Local steps: the runner is this machine.
RUNNER=local
run_here() {
	if [[ $DRY_RUN == 1 ]]; then
		printf '[%s] %s\n' "$(hostname)" "$(q "$@")"
		return 0
	fi
	"$@" </dev/null
}
HERE=$(hostname)

if [[ -f $OUT/backup.json ]]; then
	log "$OUT is a complete backup already ($(jq -r '.method + " method, " + .created_at' "$OUT/backup.json")): nothing to do"
	exit 0
fi
if [[ $DRY_RUN != 1 ]]; then
	mkdir -p "$OUT" && chmod 0700 "$OUT"
	RUN_LOG="$OUT/run.jsonl"
fi
RUN_ID=$(new_run_id)
OUT=$(cd "$OUT" 2>/dev/null && pwd || printf '%s' "$OUT")

# ---- detect
if [[ $DRY_RUN == 1 ]]; then
	# Detection only reads: the dry run runs it too, so that it names the method the real run
	# would use (it printed "v3" on v2 data before).
	printf '[%s] %s (run: it only reads)\n' "$HERE" "$(q "$(tool etcd-detect-version)" "${CONN[@]}")"
	drc=0
	DETECT=$("$(tool etcd-detect-version)" "${CONN[@]}" </dev/null) || drc=$?
	if ((drc != 0)); then
		die "$drc" "detect failed: $(jq -r '.error.message // empty' 2>/dev/null <<<"$DETECT" || true)"
	fi
else
	step detect "$HERE" run_here "$(tool etcd-detect-version)" "${CONN[@]}"
	DETECT=$STEP_OUT
fi
detected=$(jq -r '.facts.backup_method // empty' <<<"$DETECT")
[[ $detected == v2 || $detected == v3 ]] || die 1 "etcd-detect-version gave no backup_method"
method=$detected
case $METHOD in
v2) method=v2 ;;
v3) [[ $detected == v3 ]] || die 5 "the store holds v2 data: a v3 snapshot would lose it (--method v3 refused; use the v2 method)" ;;
esac
log "method: $method (detected $detected)"

# Output of an interrupted run that was not verified: moved aside, never trusted.
aside() {
	local p=$1
	[[ -e $p && $DRY_RUN != 1 ]] || return 0
	local to
	to="$p.unverified-$(date -u +%Y%m%dT%H%M%SZ)"
	warn "$p was left unverified by an interrupted run: moved to $to"
	mv "$p" "$to"
}

if [[ $method == v3 ]]; then
	FILE=snapshot.db
	save=("$(tool etcd-snap)" save --endpoints "$ENDPOINTS")
	# On a member's host, the db is copied from its data dir (etcd-snap save --data-dir: a
	# consistent lock-free copy when the member is a caught-up voter, else the stream).
	LOCAL_DIR=$DATA_DIR
	if [[ -z $LOCAL_DIR && -n $ENV_FILE ]]; then
		LOCAL_DIR=$(sed -n 's/^[[:space:]]*\(export \)\{0,1\}ETCD_DATA_DIR=//p' "$ENV_FILE" | tail -n 1 | tr -d "\"'")
	fi
	if [[ $COMPRESS == 1 ]]; then
		FILE=snapshot.db.gz
		save+=(--compress)
	elif [[ -n $LOCAL_DIR && -f $LOCAL_DIR/member/snap/db ]]; then
		[[ -n $ENV_FILE ]] && save+=(--env-file "$ENV_FILE")
		save+=(--data-dir "$LOCAL_DIR")
	fi
	aside "$OUT/$FILE"
	step save "$HERE" run_here "${save[@]}" "$OUT/$FILE"
	SAVE=$STEP_OUT
	step verify "$HERE" run_here "$(tool etcd-snap)" verify "$OUT/$FILE"
	VERIFY=$STEP_OUT
else
	FILE=wal-backup
	args=("$(tool etcd-wal-backup)" backup "${CONN[@]}" --backup-dir "$OUT/$FILE")
	[[ -n $ENV_FILE ]] && args+=(--env-file "$ENV_FILE")
	[[ -n $DATA_DIR ]] && args+=(--data-dir "$DATA_DIR")
	aside "$OUT/$FILE"
	step save "$HERE" run_here "${args[@]}"
	SAVE=$STEP_OUT
	if [[ $DRY_RUN != 1 ]]; then
		(cd "$OUT/$FILE" && jq -r '.files[] | "\(.sha256)  \(.path)"' manifest.json | sha256sum --quiet -c -) ||
			die 3 "$OUT/$FILE: a file does not match its sha256 in manifest.json"
	fi
	step verify "$HERE" run_here "$(tool etcd-detect-version)" --data-dir "$OUT/$FILE" --input none
	VERIFY=$STEP_OUT
	step verify-db "$HERE" run_here "$(tool etcd-snap)" verify --skip-hash-check "$OUT/$FILE/member/snap/db"
fi

[[ $DRY_RUN == 1 ]] && exit 0
# ---- record: backup.json, written last (atomically).
jq -n --arg method "$method" --arg file "$FILE" --arg detected "$detected" \
	--arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg host "$HERE" --arg endpoints "$ENDPOINTS" \
	--argjson detect "$DETECT" --argjson save "$SAVE" --argjson verify "$VERIFY" '{
	  method: $method, file: $file, detected_method: $detected, created_at: $at, host: $host,
	  endpoints: $endpoints,
	  etcd_version: ($detect.facts.etcd_version // null),
	  cluster_id: ($detect.facts.cluster_id // $save.facts.cluster_id // null),
	  v2: ($detect.data.v2 // null),
	  revision: ($save.facts.snapshot.revision // $save.facts.backup.revision // $verify.facts.snapshot.revision // null),
	  save: $save.facts, verify: $verify.facts
	}' >"$OUT/backup.json.part"
sync "$OUT/backup.json.part" 2>/dev/null || true
mv -f "$OUT/backup.json.part" "$OUT/backup.json"
runlog_event record "$HERE" "done" 0 0 "$(cat "$OUT/backup.json")"
log "backup complete: $OUT/$FILE ($method method); run log $OUT/run.jsonl"
print_summary
