#!/usr/bin/env bash
# restore-v2.sh: rebuild a cluster from a v2 (WAL) backup one member at a time (procedure.md,
# "Restoring from a v2 backup"). The first member of the initial cluster is restored:
#   preflight     every host reachable, its env file read (nothing changes before this passed)
#   verify        a trial restore here into a scratch dir: sha256 of every file against the
#                 manifest, the WAL's CRC chain, the db's structure (a failure changes nothing)
#   copy          the backup to the first host                      (scp; nothing with --runner local)
#   purge         stop etcd, move the member dir aside              (etcd-purge, every host)
#   wal-restore   the backup in place as DATA_DIR/member            (etcd-wal-backup restore)
#   start-first   etcd on the first host with ETCD_FORCE_NEW_CLUSTER=true, then healthy
#   member-fix    its peer URL from localhost to the real one       (etcd-member-fix)
#   for each other host:
#     rejoin      member add                                        (etcd-rejoin add)
#     start       etcd with ETCD_INITIAL_CLUSTER=<rejoin's> and ETCD_INITIAL_CLUSTER_STATE=existing
#     started     wait until it serves                              (etcd-rejoin add --wait-started)
#   restart       each host in turn with its normal settings, the cluster healthy after each
#   health        etcd-health --cluster --wait
# Rerunnable: a run that was interrupted continues after the last completed step (state in
# BACKUP/restore-v2.state); a finished restore is refused unless --again.
set -euo pipefail

SCRIPT_NAME=restore-v2
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	cat <<EOF
usage: restore-v2.sh [options] BACKUP

BACKUP: a backup dir written by backup.sh (v2 method), or a dir or .tar.gz written by
etcd-wal-backup backup.

Restore:
  --learner           add the other members as learners, promoted once they caught up
  --remote-dir DIR    where the backup is copied on the first host [/var/tmp/etcd-rescue]
  --wait DURATION     how long to wait for each health check and each joiner [2m]
  --again             restore again a backup this script already restored

$COMMON_USAGE

Exit status: 0 restored and healthy; a failed step exits with its tool's code (4 unreachable,
5 unhealthy, 7 refused, ...) after naming the step and the host. Rerun to continue.
EOF
}

LEARNER=0 REMOTE_DIR=/var/tmp/etcd-rescue WAIT=2m AGAIN=0 BACKUP=""
while (($#)); do
	common_opt "$@"
	if ((OPT_SHIFT)); then
		shift "$OPT_SHIFT"
		continue
	fi
	case $1 in
	--learner) LEARNER=1 ;;
	--remote-dir) REMOTE_DIR=${2:?--remote-dir needs a value} && shift ;;
	--wait) WAIT=${2:?--wait needs a value} && shift ;;
	--again) AGAIN=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	-*) die 2 "unknown option $1 (see --help)" ;;
	*)
		[[ -z $BACKUP ]] || die 2 "one BACKUP only (see --help)"
		BACKUP=$1
		;;
	esac
	shift
done
[[ -n $BACKUP ]] || die 2 "no BACKUP given (see --help)"
need jq
setup_hosts

# The etcd-wal-backup backup (dir or archive).
if [[ -d $BACKUP && -f $BACKUP/backup.json ]]; then
	method=$(jq -r '.method' "$BACKUP/backup.json")
	[[ $method == v2 ]] || die 3 "$BACKUP is a $method backup: restore it with restore-$method.sh"
	SRC="$BACKUP/$(jq -r '.file' "$BACKUP/backup.json")"
else
	SRC=$BACKUP
fi
[[ -e $SRC ]] || die 3 "$SRC: no such backup"
SRC=$(cd "$(dirname "$SRC")" && pwd)/$(basename "$SRC")

begin_restore v2 "$BACKUP"
[[ $DRY_RUN == 1 ]] && log "dry run: the hosts are probed, every other command is printed"

# ---- preflight: every host reachable and its env file read before anything changes.
log "preflight: ${#HOST_NAMES[@]} hosts: ${HOST_NAMES[*]}"
check_hosts preflight
FIRST=${HOST_NAMES[0]}
for h in "${HOST_NAMES[@]}"; do
	n=$(henv "$h" ETCD_NAME)
	[[ -z $n || $n == "$h" ]] || die 3 "host $h: its env file names it '$n', the initial cluster '$h'"
done
log "restoring $SRC on $FIRST, then adding ${HOST_NAMES[*]:1}"

# ---- verify before anything changes: a trial restore of the backup here into a scratch dir
# (etcd-wal-backup checks every file against the manifest's sha256), the WAL read record by
# record (etcd-detect-version --data-dir: CRC chain) and the db checked (etcd-snap verify
# --skip-hash-check); also in a dry run, as it changes nothing. Then the copy to the first host.
log "verify: $SRC (a trial restore into a scratch dir)"
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/restore-v2-verify.XXXXXX")
vrc=0 vout=
{
	vout=$("$(tool etcd-wal-backup)" restore --backup-dir "$SRC" --data-dir "$SCRATCH/data" \
		--name "$FIRST" --input none -q </dev/null) &&
		vout=$("$(tool etcd-detect-version)" --data-dir "$SCRATCH/data" --input none -q </dev/null) &&
		vout=$("$(tool etcd-snap)" verify --skip-hash-check --input none -q \
			"$SCRATCH/data/member/snap/db" </dev/null)
} || vrc=$?
rm -rf -- "$SCRATCH"
if ((vrc != 0)); then
	vmsg=$(jq -r '.error.message // empty' 2>/dev/null <<<"$vout" || true)
	die "$vrc" "the backup $SRC failed verification${vmsg:+: $vmsg}; nothing was changed on any host"
fi
REMOTE_SRC=$SRC
if [[ $RUNNER != local && ${COPY:-} != none ]]; then
	REMOTE_SRC="$REMOTE_DIR/$(basename "$SRC")"
	step copy "$FIRST" copy_to_host "$FIRST" "$SRC" "$REMOTE_SRC"
fi

# ---- a healthy cluster is not purged without --yes.
guard_healthy "$FIRST"

# ---- stop and purge every host.
for h in "${HOST_NAMES[@]}"; do
	step purge "$h" on_host "$h" "$(tool etcd-purge)" --env-file "$(env_file_of "$h")" \
		--stop "$(stop_method "$h")" --to "$(purge_dir "$h")" --input none
done

# ---- the backup in place on the first host.
if ! state_done "wal-restore@$FIRST" && [[ $DRY_RUN != 1 ]]; then
	dd=$(henv "$FIRST" ETCD_DATA_DIR)
	if on_host --ro "$FIRST" test -d "$dd/member"; then
		# Killed after etcd-wal-backup renamed member.part into place, before we noted it: the
		# purge of this run moved the old dir away, so this one is the backup (complete).
		log "wal-restore on $FIRST: $dd/member is there (an interrupted run restored it)"
		runlog_event wal-restore "$FIRST" "done" 0 0 null "found restored by an interrupted run"
		state_mark "wal-restore@$FIRST"
	else
		# Left by a SIGKILLed etcd-wal-backup restore (it refuses them): moved aside.
		ts=$(date -u +%Y%m%dT%H%M%SZ)
		for p in "$dd/member.part" "$dd/.etcd-wal-backup.restore.part"; do
			if on_host --ro "$FIRST" test -e "$p"; then
				warn "$FIRST: $p was left by an interrupted restore: moved to $p.interrupted-$ts"
				on_host "$FIRST" mv -T "$p" "$p.interrupted-$ts"
			fi
		done
	fi
fi
step wal-restore "$FIRST" on_host "$FIRST" "$(tool etcd-wal-backup)" restore \
	--backup-dir "$REMOTE_SRC" --env-file "$(env_file_of "$FIRST")" --name "$FIRST" --input none

# ---- the first member alone, with --force-new-cluster; then its real peer URL.
step start-first "$FIRST" etcd_start "$FIRST" ETCD_FORCE_NEW_CLUSTER=true
FIRST_EPS=$(client_urls "$FIRST")
wait_health "$FIRST" health-first "$FIRST_EPS" "$WAIT"
step member-fix "$FIRST" on_host "$FIRST" "$(tool etcd-member-fix)" --endpoints "$FIRST_EPS" \
	--env-file "$(env_file_of "$FIRST")" --name "$FIRST" --peer-urls "$(host_peer "$FIRST")" \
	--input none

# ---- the other members, one at a time.
# After `etcd-rejoin add` succeeds: keep its initial_cluster in the state file (before the step
# is marked done, so that a resumed run always has it).
save_initial_cluster() {
	local ic
	ic=$(fact '.facts.rejoin.initial_cluster')
	[[ -n $ic ]] || die 1 "etcd-rejoin add gave no initial_cluster for $CUR_HOST"
	state_set "initial-cluster@$CUR_HOST" "$ic"
}
EPS=$FIRST_EPS
for h in "${HOST_NAMES[@]:1}"; do
	add=("$(tool etcd-rejoin)" add --endpoints "$EPS" --env-file "$(env_file_of "$h")"
		--name "$h" --peer-urls "$(host_peer "$h")" --wait "$WAIT")
	((LEARNER)) && add+=(--learner)
	STEP_AFTER=save_initial_cluster step rejoin "$h" on_host "$h" "${add[@]}"
	ic=$(state_get "initial-cluster@$h")
	[[ -n $ic || $DRY_RUN == 1 ]] || die 1 "the state file lacks the initial cluster of $h: remove $STATE_FILE's 'rejoin@$h' line and rerun"
	[[ $DRY_RUN == 1 ]] && ic="<initial_cluster printed by etcd-rejoin add>"
	step start "$h" etcd_start "$h" "ETCD_INITIAL_CLUSTER=$ic" ETCD_INITIAL_CLUSTER_STATE=existing
	step started "$h" on_host "$h" "${add[@]}" --wait-started
	EPS="$EPS,$(client_urls "$h")"
done

# ---- every member restarted with its normal settings (the first drops --force-new-cluster).
restart() {
	etcd_stop "$1"
	etcd_start "$1"
}
ALL_EPS=$(all_client_urls)
for h in "${HOST_NAMES[@]}"; do
	step restart "$h" restart "$h"
	wait_health "$FIRST" "healthy-after-restart-$h" "$ALL_EPS" "$WAIT" --cluster
done
wait_health "$FIRST" health "$ALL_EPS" "$WAIT" --cluster
finish_restore
log "restored: ${#HOST_NAMES[@]} members healthy; run log $RUN_LOG"
print_summary
