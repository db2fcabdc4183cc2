#!/usr/bin/env bash
# restore-v3.sh: restore every member of a cluster from one v3 snapshot, in parallel style
# (procedure.md, "Restoring from a v3 snapshot"):
#   preflight  every host reachable, its env file read (nothing changes before this passed)
#   verify     the snapshot here (etcd-snap verify: sha256 trailer, bbolt structure), then
#   copy       the snapshot to every host (scp; nothing with --runner local) and
#   verify     the copy there (etcd-snap verify on the host); a failure changes nothing
#   purge      stop etcd, move the member dir aside           (etcd-purge, every host)
#   restore    the member's data dir from the snapshot          (etcd-snap restore --env-file)
#   start      etcd on every host with its normal settings
#   health     etcd-health --cluster --wait
# Rerunnable: a run that was interrupted continues after the last completed step (state in
# BACKUP/restore-v3.state); a finished restore is refused unless --again.
set -euo pipefail

SCRIPT_NAME=restore-v3
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	cat <<EOF
usage: restore-v3.sh [options] BACKUP

BACKUP: a backup dir written by backup.sh (v3 method) or a snapshot file (.db or .db.gz).

Restore:
  --token TOKEN       initial cluster token of the restored cluster [the env file's token
                      + "-r" + a hash of the snapshot: new, so stray old members cannot join]
  --keep-token        use the env file's ETCD_INITIAL_CLUSTER_TOKEN unchanged
  --bump-revision N   raise the revision by N and mark older revisions compacted, so that
                      no client (a Kubernetes informer) sees it go back [1000000000, as
                      etcd's restore guide suggests: above any revision written since the
                      backup]
  --no-bump-revision  keep the snapshot's revision (only when no client saw a later one)
  --remote-dir DIR    where the snapshot is copied on each host [/var/tmp/etcd-rescue]
  --wait DURATION     how long to wait for the cluster to be healthy [2m]
  --again             restore again a backup this script already restored

$COMMON_USAGE

Exit status: 0 restored and healthy; a failed step exits with its tool's code (4 unreachable,
5 unhealthy, 7 refused, ...) after naming the step and the host. Rerun to continue.
EOF
}

TOKEN="" KEEP_TOKEN=0 BUMP=1000000000 REMOTE_DIR=/var/tmp/etcd-rescue WAIT=2m AGAIN=0 BACKUP=""
while (($#)); do
	common_opt "$@"
	if ((OPT_SHIFT)); then
		shift "$OPT_SHIFT"
		continue
	fi
	case $1 in
	--token) TOKEN=${2:?--token needs a value} && shift ;;
	--keep-token) KEEP_TOKEN=1 ;;
	--bump-revision) BUMP=${2:?--bump-revision needs a value} && shift ;;
	--no-bump-revision) BUMP="" ;;
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

# The snapshot file.
if [[ -d $BACKUP ]]; then
	if [[ -f $BACKUP/backup.json ]]; then
		method=$(jq -r '.method' "$BACKUP/backup.json")
		[[ $method == v3 ]] || die 3 "$BACKUP is a $method backup: restore it with restore-$method.sh"
		SNAP="$BACKUP/$(jq -r '.file' "$BACKUP/backup.json")"
	else
		SNAP=$(find "$BACKUP" -maxdepth 1 -name 'snapshot.db*' ! -name '*.part' | head -n 1)
		[[ -n $SNAP ]] || die 3 "$BACKUP holds no backup.json and no snapshot.db"
	fi
else
	SNAP=$BACKUP
fi
[[ -f $SNAP ]] || die 3 "$SNAP: no such snapshot file"
SNAP=$(cd "$(dirname "$SNAP")" && pwd)/$(basename "$SNAP")

begin_restore v3 "$BACKUP"
[[ $DRY_RUN == 1 ]] && log "dry run: the hosts are probed, every other command is printed"

# ---- preflight: every host reachable and its env file read before anything changes.
log "preflight: ${#HOST_NAMES[@]} hosts: ${HOST_NAMES[*]}"
check_hosts preflight
FIRST=${HOST_NAMES[0]}
IC=${OPT_INITIAL_CLUSTER:-${ETCD_INITIAL_CLUSTER:-}}
for h in "${HOST_NAMES[@]}"; do
	n=$(henv "$h" ETCD_NAME)
	[[ -z $n || $n == "$h" ]] || die 3 "host $h: its env file names it '$n', the initial cluster '$h'"
done
if [[ -z $TOKEN ]]; then
	TOKEN=$(henv "$FIRST" ETCD_INITIAL_CLUSTER_TOKEN etcd-cluster)
	if [[ $KEEP_TOKEN != 1 ]]; then
		TOKEN="$TOKEN-r$(printf '%s:%s' "$SNAP" "$(stat -c %s:%Y "$SNAP")" | cksum | cut -d' ' -f1)"
	fi
fi
log "restoring $SNAP to ${HOST_NAMES[*]} (token $TOKEN)"

# ---- verify before anything changes: the snapshot here (even in a dry run: it only reads),
# then its copy on every host (which also proves each host has etcd-snap).
log "verify: $SNAP"
vrc=0
vout=$("$(tool etcd-snap)" verify --input none -q "$SNAP" </dev/null) || vrc=$?
if ((vrc != 0)); then
	vmsg=$(jq -r '.error.message // empty' 2>/dev/null <<<"$vout" || true)
	die "$vrc" "the snapshot $SNAP failed verification${vmsg:+: $vmsg}; nothing was changed on any host"
fi
declare -A REMOTE_SNAP=()
for h in "${HOST_NAMES[@]}"; do
	if [[ $RUNNER == local || ${COPY:-} == none ]]; then
		REMOTE_SNAP[$h]=$SNAP
		continue
	fi
	REMOTE_SNAP[$h]="$REMOTE_DIR/$(basename "$SNAP")"
	step copy "$h" copy_to_host "$h" "$SNAP" "${REMOTE_SNAP[$h]}"
	step verify "$h" on_host "$h" "$(tool etcd-snap)" verify --input none -q "${REMOTE_SNAP[$h]}"
done

# ---- a healthy cluster is not purged without --yes.
guard_healthy "$FIRST"

# ---- stop and purge every host.
for h in "${HOST_NAMES[@]}"; do
	step purge "$h" on_host "$h" "$(tool etcd-purge)" --env-file "$(env_file_of "$h")" \
		--stop "$(stop_method "$h")" --to "$(purge_dir "$h")" --input none
done

# ---- restore every member's data dir.
for h in "${HOST_NAMES[@]}"; do
	if ! state_done "restore@$h" && [[ $DRY_RUN != 1 ]]; then
		# Killed after etcd-snap renamed the new member dir into place but before we noted it:
		# the purge of this run moved the old one away, so this one is ours (complete: renamed).
		dd=$(henv "$h" ETCD_DATA_DIR)
		if on_host --ro "$h" test -d "$dd/member"; then
			log "restore on $h: $dd/member is there (an interrupted run restored it)"
			runlog_event restore "$h" "done" 0 0 null "found restored by an interrupted run"
			state_mark "restore@$h"
		fi
	fi
	args=("$(tool etcd-snap)" restore --env-file "$(env_file_of "$h")" --name "$h"
		--initial-cluster "$IC" --initial-cluster-token "$TOKEN"
		--initial-advertise-peer-urls "$(host_peer "$h")")
	[[ -n $BUMP ]] && args+=(--bump-revision "$BUMP" --mark-compacted)
	step restore "$h" on_host "$h" "${args[@]}" "${REMOTE_SNAP[$h]}"
done

# ---- start etcd everywhere, then wait until the cluster is healthy.
for h in "${HOST_NAMES[@]}"; do
	step start "$h" etcd_start "$h"
done
wait_health "$FIRST" health "$(all_client_urls)" "$WAIT" --cluster
finish_restore
log "restored: ${#HOST_NAMES[@]} members healthy; run log $RUN_LOG"
print_summary
