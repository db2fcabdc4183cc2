# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_etcd_snap_global_optspecs
    string join \n pretty q/quiet v/verbose input= h/help V/version
end

function __fish_etcd_snap_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_etcd_snap_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_etcd_snap_using_subcommand
    set -l cmd (__fish_etcd_snap_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c etcd-snap -n "__fish_etcd_snap_needs_command" -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-snap -n "__fish_etcd_snap_needs_command" -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-snap -n "__fish_etcd_snap_needs_command" -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-snap -n "__fish_etcd_snap_needs_command" -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-snap -n "__fish_etcd_snap_needs_command" -s h -l help -d 'Print help'
complete -c etcd-snap -n "__fish_etcd_snap_needs_command" -s V -l version -d 'Print version'
complete -c etcd-snap -n "__fish_etcd_snap_needs_command" -f -a "save" -d 'Stream a snapshot from the leader (or the most advanced voter) to FILE, checking its sha256 trailer on the way, or on a member\'s host copy it from its data dir (--data-dir); FILE.part until complete'
complete -c etcd-snap -n "__fish_etcd_snap_needs_command" -f -a "status" -d 'What `etcdctl snapshot status -w json` prints for FILE, plus what operators need'
complete -c etcd-snap -n "__fish_etcd_snap_needs_command" -f -a "verify" -d 'Check FILE: sha256 trailer and bbolt consistency; exit 3 naming the offset if corrupt'
complete -c etcd-snap -n "__fish_etcd_snap_needs_command" -f -a "restore" -d 'Build a member\'s data dir from a snapshot, as `etcdutl snapshot restore` does'
complete -c etcd-snap -n "__fish_etcd_snap_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l stall-timeout -d 'Give up when no bytes arrived for this long' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l data-dir -d 'On the member\'s host: copy the db from this data dir (lock-free, checked to be one bbolt commit) when its member is a caught-up voter, else stream it (see --require-local). The endpoints default to the client URLs the data dir last published. A DIR that is not a member\'s data dir is exit 3; not with --compress' -r -F
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l wal-dir -d 'The member\'s WAL dir when etcd runs with --wal-dir (default DATA_DIR/member/wal)' -r -F
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l env-file -d 'etcd\'s settings file (/etc/etcd.env): ETCD_DATA_DIR (as --data-dir), ETCD_WAL_DIR, ETCD_ADVERTISE_CLIENT_URLS (the member\'s endpoint)' -r -F
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l endpoints -d 'gRPC endpoints, comma separated [env: ETCDCTL_ENDPOINTS] [default: 127.0.0.1:2379]' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l cacert -d 'Verify the servers\' TLS certificates with this CA bundle [env: ETCDCTL_CACERT]' -r -F
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l cert -d 'Client TLS certificate [env: ETCDCTL_CERT]' -r -F
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l key -d 'Client TLS key [env: ETCDCTL_KEY]' -r -F
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l user -d 'User name, or `name:password` [env: ETCDCTL_USER]' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l password -d 'Password of --user; prefer ETCDCTL_PASSWORD, which `ps` does not show [env: ETCDCTL_PASSWORD]' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l dial-timeout -d 'Time to establish a connection [env: ETCDCTL_DIAL_TIMEOUT] [default: 2s]' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l command-timeout -d 'Time for one request to complete [env: ETCDCTL_COMMAND_TIMEOUT] [default: 5s]' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l compress -d 'gzip the snapshot (level 1) and write FILE.gz (FILE if it already ends in .gz)'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l force -d 'Move an existing FILE aside to FILE.prev (replacing an older FILE.prev) instead of refusing (exit 7); a FILE that is not a regular file is refused even so'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l require-local -d 'With --data-dir: fail (exit 5) instead of streaming when the local copy cannot be taken (member lagging, a learner, no leader, or the db never held still)'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand save" -s h -l help -d 'Print help'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand status" -l tmp-dir -d 'Where a .gz is decompressed (an unnamed file, gone when we exit) [default: $TMPDIR]' -r -F
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand status" -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand status" -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand status" -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand status" -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand status" -s h -l help -d 'Print help'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand verify" -l tmp-dir -d 'Where a .gz is decompressed (an unnamed file, gone when we exit) [default: $TMPDIR]' -r -F
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand verify" -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand verify" -l skip-hash-check -d 'Accept a file without sha256 trailer (a raw member/snap/db) and check only its bbolt structure'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand verify" -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand verify" -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand verify" -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand verify" -s h -l help -d 'Print help'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -l name -d 'Member name [env file: ETCD_NAME] [default: default]' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -l initial-cluster -d 'All members, name=peer-url,... [env file: ETCD_INITIAL_CLUSTER] [default: default=http://localhost:2380, as etcdctl]' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -l initial-cluster-token -d 'Token of the new cluster; use a new one, so that stray old members cannot join [env file: ETCD_INITIAL_CLUSTER_TOKEN] [default: etcd-cluster]' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -l initial-advertise-peer-urls -d 'This member\'s peer URLs [env file: ETCD_INITIAL_ADVERTISE_PEER_URLS] [default: http://localhost:2380]' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -l data-dir -d 'Data dir to create [env file: ETCD_DATA_DIR] [default: <name>.etcd]' -r -F
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -l wal-dir -d 'Separate WAL dir [env file: ETCD_WAL_DIR] [default: <data-dir>/member/wal]' -r -F
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -l env-file -d 'etcd\'s settings file (/etc/etcd.env); explicit flags win' -r -F
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -l bump-revision -d 'Raise the revision by N so that watchers never see it go back (with --mark-compacted)' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -l skip-hash-check -d 'Do not check the snapshot\'s sha256 trailer (needed for a raw member/snap/db)'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -l mark-compacted -d 'Mark every revision up to the bumped one as compacted (with --bump-revision)'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -l dry-run -d 'Print the plan (IDs, paths) and change nothing'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand restore" -s h -l help -d 'Print help'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand help; and not __fish_seen_subcommand_from save status verify restore help" -f -a "save" -d 'Stream a snapshot from the leader (or the most advanced voter) to FILE, checking its sha256 trailer on the way, or on a member\'s host copy it from its data dir (--data-dir); FILE.part until complete'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand help; and not __fish_seen_subcommand_from save status verify restore help" -f -a "status" -d 'What `etcdctl snapshot status -w json` prints for FILE, plus what operators need'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand help; and not __fish_seen_subcommand_from save status verify restore help" -f -a "verify" -d 'Check FILE: sha256 trailer and bbolt consistency; exit 3 naming the offset if corrupt'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand help; and not __fish_seen_subcommand_from save status verify restore help" -f -a "restore" -d 'Build a member\'s data dir from a snapshot, as `etcdutl snapshot restore` does'
complete -c etcd-snap -n "__fish_etcd_snap_using_subcommand help; and not __fish_seen_subcommand_from save status verify restore help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
