# shellcheck shell=bash
# lib.sh: what backup.sh, restore-v3.sh and restore-v2.sh share. Sourced, never run.
#
#  - logging (stderr, "<script>: ..."), die with an exit code
#  - the run log: one JSON line per step event, next to the backup (RUN_LOG)
#  - the resume state: one line per completed step (STATE_FILE); a rerun skips them
#  - ETCD_INITIAL_CLUSTER parsing (name1=https://ip1:2380,...) into HOST_NAMES / HOST_PEERS /
#    HOST_ADDRS
#  - on_host: THE function that runs a command on a host (ssh | local | exec:PROG), with
#    --dry-run printing every command host by host
#  - reading the hosts' env files (HOSTENV[name:KEY])
#  - starting / stopping etcd on a host (systemd:UNIT | pidfile:PATH)
#
# Exit codes follow the tools': 2 usage, 3 bad input, 4 unreachable, 5 check failed,
# 6 local I/O, 7 refused; a failed step exits with the tool's code.

# ---------------------------------------------------------------- logging

SCRIPT_NAME=${SCRIPT_NAME:-$(basename "$0" .sh)}
DRY_RUN=${DRY_RUN:-0}
QUIET=${QUIET:-0}

log() {
	[[ $QUIET == 1 ]] && return 0
	printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
}

warn() {
	printf '%s: warning: %s\n' "$SCRIPT_NAME" "$*" >&2
}

# die CODE MESSAGE: one error line on stderr, exit CODE.
die() {
	local code=$1
	shift
	printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
	if [[ -n ${RUN_LOG:-} && $DRY_RUN != 1 ]]; then
		runlog_event "${CUR_STEP:-script}" "${CUR_HOST:-}" failed "$code" 0 null "$*" || true
	fi
	exit "$code"
}

need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || die 6 "$c is needed on this machine and is not in PATH"
	done
}

now_ms() {
	local t
	t=$(date +%s%N)
	printf '%s\n' $((t / 1000000))
}

# q ARGS...: the arguments as one shell-quoted command string.
q() {
	local out="" a
	for a in "$@"; do
		out+=$(printf '%q' "$a")" "
	done
	printf '%s' "${out% }"
}

# ---------------------------------------------------------------- run log and resume state

RUN_LOG=${RUN_LOG:-}
STATE_FILE=${STATE_FILE:-}
RUN_ID=${RUN_ID:-}

# runlog_event STEP HOST EVENT RC MS ENVELOPE_JSON|null [MESSAGE]
runlog_event() {
	[[ -z $RUN_LOG || $DRY_RUN == 1 ]] && return 0
	local env=${6:-null}
	[[ -z $env ]] && env=null
	# A tool's stdout that is not one JSON object is kept as a string.
	if ! jq -e 'type == "object"' >/dev/null 2>&1 <<<"$env"; then
		env=$(jq -Rn --arg s "$env" '$s')
	fi
	jq -cn --arg run "$RUN_ID" --arg script "$SCRIPT_NAME" --arg step "$1" --arg host "$2" \
		--arg event "$3" --argjson rc "$4" --argjson ms "$5" --argjson envelope "$env" \
		--arg message "${7:-}" --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		'{at: $at, run: $run, script: $script, step: $step, host: $host, event: $event, rc: $rc,
		  ms: $ms, message: (if $message == "" then null else $message end), envelope: $envelope}' \
		>>"$RUN_LOG"
}

# state_done KEY: whether a previous (interrupted) run completed step KEY.
state_done() {
	[[ -n $STATE_FILE && -f $STATE_FILE ]] && grep -qxF -- "$1" "$STATE_FILE"
}

state_mark() {
	[[ -z $STATE_FILE || $DRY_RUN == 1 ]] && return 0
	printf '%s\n' "$1" >>"$STATE_FILE"
}

# ---------------------------------------------------------------- hosts

declare -a HOST_NAMES=() HOST_PEERS=() HOST_ADDRS=()
declare -A HOSTENV=()

# parse_initial_cluster 'n1=https://10.0.0.1:2380,n2=...': fills HOST_NAMES, HOST_PEERS (the
# first peer URL of each member) and HOST_ADDRS (its host part: what ssh connects to).
parse_initial_cluster() {
	local ic=$1 item name url rest addr
	HOST_NAMES=() HOST_PEERS=() HOST_ADDRS=()
	[[ -n $ic ]] || die 2 "no initial cluster: give --initial-cluster or set ETCD_INITIAL_CLUSTER"
	local -a items
	IFS=',' read -r -a items <<<"$ic"
	for item in "${items[@]}"; do
		item=${item//[[:space:]]/}
		[[ -z $item ]] && continue
		[[ $item == *=* ]] || die 2 "initial cluster entry '$item' is not name=peer-url"
		name=${item%%=*}
		url=${item#*=}
		[[ -n $name && $url == *://* ]] || die 2 "initial cluster entry '$item' is not name=peer-url"
		# A member with several peer URLs appears once per URL: keep the first.
		local seen=0 n
		for n in "${HOST_NAMES[@]}"; do [[ $n == "$name" ]] && seen=1; done
		[[ $seen == 1 ]] && continue
		rest=${url#*://}
		rest=${rest%%/*}
		if [[ $rest == \[* ]]; then
			addr=${rest%%]*}
			addr=${addr#[}
		else
			addr=${rest%%:*}
		fi
		HOST_NAMES+=("$name")
		HOST_PEERS+=("$url")
		HOST_ADDRS+=("$addr")
	done
	((${#HOST_NAMES[@]} > 0)) || die 2 "initial cluster '$ic' names no member"
}

host_index() {
	local i
	for i in "${!HOST_NAMES[@]}"; do
		[[ ${HOST_NAMES[$i]} == "$1" ]] && {
			printf '%s\n' "$i"
			return 0
		}
	done
	die 1 "unknown host $1"
}

host_addr() { printf '%s\n' "${HOST_ADDRS[$(host_index "$1")]}"; }
host_peer() { printf '%s\n' "${HOST_PEERS[$(host_index "$1")]}"; }

# A path on a host: {name} in it becomes the member name (several "hosts" on one machine).
host_path() {
	local p=$2
	printf '%s\n' "${p//\{name\}/$1}"
}

# ---------------------------------------------------------------- running commands on hosts

# RUNNER: ssh (default) | local | exec:PROG. exec:PROG runs `PROG ADDR COMMAND` and must behave
# like ssh (exit 255 when the host cannot be reached); tests use it to make a host unreachable.
RUNNER=${ETCD_RESCUE_RUNNER:-ssh}
SSH_USER=${ETCD_RESCUE_SSH_USER:-}
declare -a SSH_OPTS=(-o BatchMode=yes -o ConnectTimeout=10)
# Where the tools are on the hosts (empty: their PATH).
BIN_DIR=${ETCD_RESCUE_BIN_DIR:-}

tool() {
	if [[ -n $BIN_DIR ]]; then printf '%s/%s\n' "$BIN_DIR" "$1"; else printf '%s\n' "$1"; fi
}

# The ETCDCTL_* connection settings of this shell travel with every command (ssh does not
# forward the environment). The non-secret ones go on the command line; the user and password
# never do (a command line is visible to every user of the host in ps): they are written to the
# command's stdin and read into the environment by a short prefix (see on_host).
connection_env() {
	local v out=()
	for v in ETCDCTL_CACERT ETCDCTL_CERT ETCDCTL_KEY ETCDCTL_DIAL_TIMEOUT ETCDCTL_COMMAND_TIMEOUT; do
		[[ -n ${!v:-} ]] && out+=("$v=${!v}")
	done
	((${#out[@]})) && q env "${out[@]}"
	return 0
}

# What a remote shell runs first when credentials are sent: read them from stdin, export the
# ones given, and give the command an empty stdin.
# shellcheck disable=SC2016 # expanded by the remote shell, not here
SECRET_PREFIX='IFS= read -r ETCDCTL_USER; IFS= read -r ETCDCTL_PASSWORD; [ -n "$ETCDCTL_USER" ] && export ETCDCTL_USER; [ -n "$ETCDCTL_PASSWORD" ] && export ETCDCTL_PASSWORD; exec </dev/null; '

has_secrets() { [[ -n ${ETCDCTL_USER:-} || -n ${ETCDCTL_PASSWORD:-} ]]; }
secrets() { printf '%s\n%s\n' "${ETCDCTL_USER:-}" "${ETCDCTL_PASSWORD:-}"; }

# on_host [--ro] HOST ARGV...: run ARGV on HOST (stdout and stderr pass through; exit status
# returned; ssh's 255 means unreachable). --ro marks a read-only command: it runs even with
# --dry-run; every other command is only printed then, host by host.
on_host() {
	local ro=0
	if [[ $1 == --ro ]]; then
		ro=1
		shift
	fi
	local host=$1
	shift
	local cmd
	cmd=$(q "$@")
	local cenv
	cenv=$(connection_env)
	[[ -n $cenv ]] && cmd="$cenv $cmd"
	if [[ $DRY_RUN == 1 && $ro == 0 ]]; then
		if has_secrets; then
			printf '[%s] %s (user and password on stdin)\n' "$host" "$cmd"
		else
			printf '[%s] %s\n' "$host" "$cmd"
		fi
		return 0
	fi
	local addr
	addr=$(host_addr "$host")
	if has_secrets; then
		cmd="$SECRET_PREFIX$cmd"
	fi
	case $RUNNER in
	ssh)
		local dest=$addr
		[[ -n $SSH_USER ]] && dest="$SSH_USER@$addr"
		if has_secrets; then
			secrets | ssh "${SSH_OPTS[@]}" "$dest" -- "$cmd"
		else
			ssh "${SSH_OPTS[@]}" -n "$dest" -- "$cmd"
		fi
		;;
	local)
		if has_secrets; then
			secrets | bash -c "$cmd"
		else
			bash -c "$cmd" </dev/null
		fi
		;;
	exec:*)
		if has_secrets; then
			secrets | "${RUNNER#exec:}" "$addr" "$cmd"
		else
			"${RUNNER#exec:}" "$addr" "$cmd" </dev/null
		fi
		;;
	*) die 2 "unknown runner '$RUNNER' (ssh, local or exec:PROG)" ;;
	esac
}

# copy_to_host HOST SRC DEST: put a local file or dir on HOST (scp with ssh; nothing to do with
# the local runner, where the hosts share this filesystem and DEST == SRC).
COPY=${ETCD_RESCUE_COPY:-}
copy_to_host() {
	local host=$1 src=$2 dest=$3
	local mode=$COPY
	[[ -z $mode ]] && { [[ $RUNNER == ssh ]] && mode=scp || mode=none; }
	[[ $mode == none || $src == "$dest" ]] && return 0
	if [[ $DRY_RUN == 1 ]]; then
		printf '[%s] scp -r %s %s:%s\n' "$host" "$src" "$(host_addr "$host")" "$dest"
		return 0
	fi
	local addr
	addr=$(host_addr "$host")
	[[ -n $SSH_USER ]] && addr="$SSH_USER@$addr"
	on_host "$host" mkdir -p -m 0700 "$(dirname "$dest")"
	on_host "$host" rm -rf "$dest.part"
	scp -q -r -p "${SSH_OPTS[@]}" "$src" "$addr:$dest.part"
	on_host "$host" mv -T "$dest.part" "$dest"
}

# check_hosts STEP: every host answers and its env file is readable, before anything changes.
# An unreachable host: exit 4 naming the host and the step; nothing was changed anywhere.
check_hosts() {
	local step=$1 h out rc
	for h in "${HOST_NAMES[@]}"; do
		rc=0
		out=$(on_host --ro "$h" true 2>&1) || rc=$?
		if ((rc != 0)); then
			CUR_STEP=$step CUR_HOST=$h die 4 "host $h ($(host_addr "$h")) is unreachable at step $step (runner $RUNNER, exit $rc${out:+: ${out//$'\n'/ }}); nothing was changed on any host"
		fi
	done
	for h in "${HOST_NAMES[@]}"; do
		read_host_env "$h" "$step"
	done
}

# ---------------------------------------------------------------- env files

# ENV_FILE: the env file's path on every host ({name} = the member name).
ENV_FILE=${ETCD_RESCUE_ENV_FILE:-/etc/etcd.env}

env_file_of() { host_path "$1" "$ENV_FILE"; }

# read_host_env HOST STEP: HOSTENV[HOST:KEY] = VALUE for every KEY=VALUE line of its env file.
read_host_env() {
	local h=$1 step=${2:-read-env} f text rc=0 line k v
	f=$(env_file_of "$h")
	text=$(on_host --ro "$h" cat -- "$f" 2>&1) || rc=$?
	if ((rc != 0)); then
		[[ $rc == 255 ]] && CUR_STEP=$step CUR_HOST=$h die 4 "host $h ($(host_addr "$h")) is unreachable at step $step: ${text//$'\n'/ }; nothing was changed on any host"
		CUR_STEP=$step CUR_HOST=$h die 3 "host $h: cannot read its env file $f at step $step: ${text//$'\n'/ }"
	fi
	while IFS= read -r line || [[ -n $line ]]; do
		line=${line#"${line%%[![:space:]]*}"}
		[[ -z $line || $line == \#* ]] && continue
		line=${line#export }
		[[ $line == *=* ]] || continue
		k=${line%%=*}
		v=${line#*=}
		if [[ $v == \"*\" || $v == \'*\' ]]; then
			v=${v:1:${#v}-2}
		fi
		HOSTENV["$h:$k"]=$v
	done <<<"$text"
	[[ -n ${HOSTENV["$h:ETCD_DATA_DIR"]:-} ]] || die 3 "host $h: $f has no ETCD_DATA_DIR"
}

# Where etcd-purge moves HOST's member dir: DATA_DIR.purged/, next to the data dir (same
# filesystem), not inside it: etcd-snap restore (like etcdutl) refuses a non-empty data dir.
purge_dir() {
	local dd
	dd=$(henv "$1" ETCD_DATA_DIR)
	printf '%s.purged\n' "${dd%/}"
}

henv() { printf '%s\n' "${HOSTENV["$1:$2"]:-${3:-}}"; }

# The client URLs to reach HOST's etcd (ETCD_ADVERTISE_CLIENT_URLS of its env file).
client_urls() {
	local u
	u=$(henv "$1" ETCD_ADVERTISE_CLIENT_URLS)
	[[ -n $u ]] || die 3 "host $1: $(env_file_of "$1") has no ETCD_ADVERTISE_CLIENT_URLS"
	printf '%s\n' "$u"
}

all_client_urls() {
	local h out=()
	for h in "${HOST_NAMES[@]}"; do out+=("$(client_urls "$h")"); done
	local IFS=,
	printf '%s\n' "${out[*]}"
}

# ---------------------------------------------------------------- etcd control on a host

# CONTROL: systemd:UNIT (default systemd:etcd) | pidfile:PATH ({name} allowed). With pidfile,
# etcd is started from the host's env file (etcd reads its ETCD_* variables) as a daemon in its
# own session, its pid in PATH and its output appended to PATH with .pid replaced by .log.
# Overrides (KEY=VALUE: ETCD_FORCE_NEW_CLUSTER=true, ETCD_INITIAL_CLUSTER=...) win over the env
# file; with systemd they go to /run/etcd-rescue/UNIT.env, read after the unit's own files
# through a runtime drop-in, removed again by a normal start.
CONTROL=${ETCD_RESCUE_CONTROL:-systemd:etcd}
ETCD_BIN=${ETCD_RESCUE_ETCD_BIN:-etcd}

# The --stop argument of etcd-purge for HOST.
stop_method() {
	case $CONTROL in
	systemd:*) printf 'systemd:%s\n' "${CONTROL#systemd:}" ;;
	pidfile:*) printf 'pid:%s\n' "$(host_path "$1" "${CONTROL#pidfile:}")" ;;
	*) die 2 "unknown etcd control '$CONTROL' (systemd:UNIT or pidfile:PATH)" ;;
	esac
}

# Runs on the host: start etcd from an env file + overrides unless it already runs.
# shellcheck disable=SC2016
PIDFILE_START='set -euo pipefail
env_file=$1 pid_file=$2 log_file=$3 etcd=$4
shift 4
if [[ -s $pid_file ]]; then
	pid=$(<"$pid_file")
	if [[ -r /proc/$pid/cmdline ]] && tr "\0" " " <"/proc/$pid/cmdline" | grep -q etcd; then
		echo "etcd already runs (pid $pid)" >&2
		exit 0
	fi
fi
mkdir -p "$(dirname "$pid_file")" "$(dirname "$log_file")"
(
	# etcd gets the env file and the overrides, nothing of this shell: ETCD_RESCUE_* would be
	# "unrecognized environment variable"s, ETCDCTL_* (a password) has no business there.
	while IFS= read -r v; do
		case $v in PATH | HOME) ;; *) unset "$v" 2>/dev/null || true ;; esac
	done < <(compgen -e)
	set -a
	# shellcheck disable=SC1090
	. "$env_file"
	set +a
	for kv in "$@"; do export "${kv?}"; done
	printf "=== %s: etcd started by etcd-rescue %s\n" "$(date -u +%FT%TZ)" "$*" >>"$log_file"
	exec setsid "$etcd"
) </dev/null >>"$log_file" 2>&1 &
printf "%s\n" "$!" >"$pid_file.tmp"
mv -f "$pid_file.tmp" "$pid_file"
echo "etcd started (pid $!)" >&2'

# Runs on the host: stop the etcd of a pid file (SIGTERM, wait for it to exit, SIGKILL after 60 s).
# shellcheck disable=SC2016
PIDFILE_STOP='set -euo pipefail
pid_file=$1
[[ -s $pid_file ]] || exit 0
pid=$(<"$pid_file")
is_etcd() { [[ -r /proc/$pid/cmdline ]] && tr "\0" " " <"/proc/$pid/cmdline" | grep -q etcd; }
is_etcd || exit 0
kill -TERM "$pid" 2>/dev/null || exit 0
for _ in $(seq 600); do
	is_etcd || { echo "etcd stopped (pid $pid)" >&2; exit 0; }
	sleep 0.1
done
kill -KILL "$pid" 2>/dev/null || true
echo "etcd killed after 60 s (pid $pid)" >&2'

# shellcheck disable=SC2016
SYSTEMD_START='set -euo pipefail
unit=$1
shift
dropin=/run/systemd/system/$unit.service.d
if (($#)); then
	mkdir -p /run/etcd-rescue "$dropin"
	printf "%s\n" "$@" >/run/etcd-rescue/$unit.env
	printf "[Service]\nEnvironmentFile=/run/etcd-rescue/%s.env\n" "$unit" >"$dropin/etcd-rescue.conf"
	systemctl daemon-reload
	systemctl restart "$unit"
else
	if [[ -e $dropin/etcd-rescue.conf ]]; then
		rm -f "$dropin/etcd-rescue.conf" "/run/etcd-rescue/$unit.env"
		systemctl daemon-reload
		systemctl restart "$unit"
	else
		systemctl start "$unit"
	fi
fi'

# etcd_start HOST [KEY=VALUE...]: start etcd on HOST (normal settings when no overrides).
etcd_start() {
	local h=$1
	shift
	case $CONTROL in
	systemd:*) on_host "$h" bash -c "$SYSTEMD_START" etcd-start "${CONTROL#systemd:}" "$@" ;;
	pidfile:*)
		local pf
		pf=$(host_path "$h" "${CONTROL#pidfile:}")
		on_host "$h" bash -c "$PIDFILE_START" etcd-start "$(env_file_of "$h")" "$pf" "${pf%.pid}.log" "$ETCD_BIN" "$@"
		;;
	*) die 2 "unknown etcd control '$CONTROL' (systemd:UNIT or pidfile:PATH)" ;;
	esac
}

etcd_stop() {
	local h=$1
	case $CONTROL in
	systemd:*) on_host "$h" systemctl stop "${CONTROL#systemd:}" ;;
	pidfile:*) on_host "$h" bash -c "$PIDFILE_STOP" etcd-stop "$(host_path "$h" "${CONTROL#pidfile:}")" ;;
	*) die 2 "unknown etcd control '$CONTROL'" ;;
	esac
}

# ---------------------------------------------------------------- steps

# STEP_OUT: stdout (the envelope) of the last tool step.
STEP_OUT=

# state_set KEY VALUE / state_get KEY: values a resumed run needs (an initial cluster).
state_set() {
	[[ -z $STATE_FILE || $DRY_RUN == 1 ]] && return 0
	printf '%s=%s\n' "$1" "$2" >>"$STATE_FILE"
}

state_get() {
	[[ -n $STATE_FILE && -f $STATE_FILE ]] || return 0
	grep -F -- "$1=" "$STATE_FILE" | sed -n "s|^$1=||p" | tail -n 1
}

# step KEY HOST CMD...: run CMD (on_host HOST ARGV for a tool on a host) as step KEY unless a previous run completed it
# (with STEP_AFTER=FUNCTION in its environment, FUNCTION runs after CMD succeeds and before the step is marked done); the
# run log gets a "start" line and a "done"/"failed" line with the tool's envelope and the time
# taken. A failure exits with the tool's code, naming the step and the host.
step() {
	local key=$1 host=$2
	shift 2
	CUR_STEP=$key CUR_HOST=$host
	STEP_OUT=
	if state_done "$key@$host"; then
		log "$key on $host: done by a previous run, skipped"
		runlog_event "$key" "$host" skipped 0 0 null
		return 0
	fi
	[[ $DRY_RUN == 1 ]] || log "$key on $host"
	runlog_event "$key" "$host" start 0 0 null
	local t0 rc=0 out
	t0=$(now_ms)
	out=$("$@") || rc=$?
	local ms=$(($(now_ms) - t0))
	if [[ $DRY_RUN == 1 ]]; then
		printf '%s\n' "$out"
		return 0
	fi
	STEP_OUT=$out
	if ((rc != 0)); then
		local msg
		msg=$(jq -r '.error.message // empty' 2>/dev/null <<<"$out" || true)
		runlog_event "$key" "$host" failed "$rc" "$ms" "$out" "${msg:-exit $rc}"
		CUR_STEP='' die "$rc" "step $key on host $host failed (exit $rc)${msg:+: $msg}"
	fi
	runlog_event "$key" "$host" "done" 0 "$ms" "$out"
	# What a resumed run needs from this step is saved before the step counts as done: a kill
	# between the two then reruns the step (the tools are idempotent) instead of resuming
	# without it.
	if [[ -n ${STEP_AFTER:-} ]]; then
		"$STEP_AFTER"
	fi
	state_mark "$key@$host"
}

# fact FILTER: a value from the last step's envelope (jq filter), empty when absent.
fact() {
	jq -r "$1 // empty" <<<"$STEP_OUT"
}

# wait_health HOST KEY ENDPOINTS TIMEOUT [--cluster]: etcd-health --wait run on HOST.
wait_health() {
	local host=$1 key=$2 eps=$3 timeout=$4
	shift 4
	step "$key" "$host" on_host "$host" "$(tool etcd-health)" --endpoints "$eps" "$@" --wait "$timeout" \
		--retry-interval 500ms --input none
}

# summary: the steps of this run with their times, from the run log.
print_summary() {
	[[ -z $RUN_LOG || $DRY_RUN == 1 || ! -f $RUN_LOG ]] && return 0
	[[ $QUIET == 1 ]] && return 0
	jq -r --arg run "$RUN_ID" 'select(.run == $run and (.event == "done" or .event == "skipped"))
		| "  \(.step)\t\(.host)\t\(.event)\t\(.ms) ms"' "$RUN_LOG" >&2 || true
}

new_run_id() {
	printf '%s-%s\n' "$(date -u +%Y%m%dT%H%M%SZ)" "$$"
}

# ---------------------------------------------------------------- options every restore script takes

# shellcheck disable=SC2034
COMMON_USAGE="Hosts and how to reach them:
  --initial-cluster N=URL,...  the members (default: \$ETCD_INITIAL_CLUSTER); ssh goes to each
                               peer URL's host
  --env-file PATH              etcd's env file on every host [/etc/etcd.env]; {name} in PATH
                               becomes the member name (several members on one machine)
  --runner ssh|local|exec:PROG how commands reach a host [ssh; env ETCD_RESCUE_RUNNER]. local:
                               this machine (tests, single-machine use); exec:PROG runs
                               'PROG ADDR COMMAND' like ssh (255 = unreachable)
  --ssh-user USER, --ssh-option OPT
  --control systemd:UNIT|pidfile:PATH
                               how etcd is started and stopped on a host [systemd:etcd; env
                               ETCD_RESCUE_CONTROL]. pidfile: etcd started from the env file as
                               a daemon, pid in PATH ({name} allowed), log next to it (.log)
  --etcd-bin PATH              etcd on the hosts, for pidfile control [etcd]
  --bin-dir DIR                where the etcd-rescue tools are on the hosts [their PATH]
  --dry-run                    print every command, host by host; change nothing (the hosts
                               are still probed, their env files read, the backup verified)
  --yes                        restore even when the cluster is healthy right now (a restore
                               stops and purges every member; without --yes that is refused, 7)
  -q, --quiet                  less on stderr"

# common_opt ARGS...: parse one common option at the head of ARGS; sets OPT_SHIFT (0 = not one).
# shellcheck disable=SC2034
common_opt() {
	OPT_SHIFT=0
	local need_val=1
	case $1 in
	--dry-run) DRY_RUN=1 need_val=0 ;;
	--yes) YES=1 need_val=0 ;;
	-q | --quiet) QUIET=1 need_val=0 ;;
	--initial-cluster | --env-file | --runner | --ssh-user | --ssh-option | --control | --etcd-bin | --bin-dir) ;;
	*) return 0 ;;
	esac
	if ((need_val)); then
		(($# >= 2)) || die 2 "$1 needs a value"
		case $1 in
		--initial-cluster) OPT_INITIAL_CLUSTER=$2 ;;
		--env-file) ENV_FILE=$2 ;;
		--runner) RUNNER=$2 ;;
		--ssh-user) SSH_USER=$2 ;;
		--ssh-option) SSH_OPTS+=(-o "$2") ;;
		--control) CONTROL=$2 ;;
		--etcd-bin) ETCD_BIN=$2 ;;
		--bin-dir) BIN_DIR=$2 ;;
		esac
		OPT_SHIFT=2
	else
		OPT_SHIFT=1
	fi
}

OPT_INITIAL_CLUSTER=${OPT_INITIAL_CLUSTER:-}

# setup_hosts: parse the initial cluster (flag, else $ETCD_INITIAL_CLUSTER) and check the
# runner and control settings.
setup_hosts() {
	case $RUNNER in ssh | local | exec:?*) ;; *) die 2 "unknown runner '$RUNNER' (ssh, local or exec:PROG)" ;; esac
	case $CONTROL in systemd:?* | pidfile:?*) ;; *) die 2 "unknown etcd control '$CONTROL' (systemd:UNIT or pidfile:PATH)" ;; esac
	parse_initial_cluster "${OPT_INITIAL_CLUSTER:-${ETCD_INITIAL_CLUSTER:-}}"
}

# begin_restore KIND BACKUP_PATH: RUN_LOG / STATE_FILE next to the backup, the done marker
# refused unless AGAIN=1 (then the old state is moved aside), resume announced.
# guard_healthy HOST: before the first purge of a new run (not a resumed one), ask the cluster
# how it is (etcd-health on every member's client URL, run on HOST). Healthy right now: refused
# (7) unless --yes, since the restore would stop and purge every member; the dry run says a real
# run would refuse. Degraded, unhealthy or unreachable: the restore goes on.
guard_healthy() {
	local host=$1 rc=0
	[[ $DRY_RUN != 1 && -s $STATE_FILE ]] && return 0
	on_host --ro "$host" "$(tool etcd-health)" --endpoints "$(all_client_urls)" --input none -q \
		>/dev/null 2>&1 || rc=$?
	((rc == 0)) || return 0
	if [[ ${YES:-0} == 1 ]]; then
		warn "the cluster is healthy right now; restoring anyway (--yes): every member will be stopped and purged"
	elif [[ $DRY_RUN == 1 ]]; then
		warn "the cluster is healthy right now: a real run would refuse (exit 7) without --yes"
	else
		CUR_STEP=guard CUR_HOST=$host die 7 "the cluster is healthy right now ($(all_client_urls)): a restore would stop and purge every member; nothing was changed. Add --yes to restore anyway"
	fi
}

begin_restore() {
	local kind=$1 b=$2 base
	if [[ -d $b ]]; then base="$b/restore-$kind"; else base="$b.restore-$kind"; fi
	RUN_LOG="$base.jsonl"
	STATE_FILE="$base.state"
	DONE_FILE="$base.done"
	RUN_ID=$(new_run_id)
	[[ $DRY_RUN == 1 ]] && return 0
	if [[ -e $DONE_FILE ]]; then
		if [[ ${AGAIN:-0} != 1 ]]; then
			die 7 "$b was already restored ($(<"$DONE_FILE")); --again restores it again (purging the running cluster)"
		fi
		local ts
		ts=$(date -u +%Y%m%dT%H%M%SZ)
		mv -f "$DONE_FILE" "$DONE_FILE.$ts"
		[[ -e $STATE_FILE ]] && mv -f "$STATE_FILE" "$STATE_FILE.$ts"
	fi
	if [[ -s $STATE_FILE ]]; then
		log "resuming an interrupted restore: $(grep -cv = "$STATE_FILE") steps done ($STATE_FILE)"
	fi
	runlog_event begin "" start 0 0 null "$SCRIPT_NAME $b"
}

finish_restore() {
	[[ $DRY_RUN == 1 ]] && return 0
	printf 'run %s at %s\n' "$RUN_ID" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$DONE_FILE.tmp"
	mv -f "$DONE_FILE.tmp" "$DONE_FILE"
	runlog_event end "" "done" 0 0 null "restored"
}
