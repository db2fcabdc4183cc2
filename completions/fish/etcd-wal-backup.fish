# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_etcd_wal_backup_global_optspecs
    string join \n pretty q/quiet v/verbose input= h/help V/version
end

function __fish_etcd_wal_backup_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_etcd_wal_backup_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_etcd_wal_backup_using_subcommand
    set -l cmd (__fish_etcd_wal_backup_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_needs_command" -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_needs_command" -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_needs_command" -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_needs_command" -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_needs_command" -s h -l help -d 'Print help'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_needs_command" -s V -l version -d 'Print version'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_needs_command" -f -a "backup" -d 'Back up a member\'s data dir while etcd runs: the newest usable .snap, one rewritten WAL complete up to the cluster\'s committed index (membership entries neutralised, new node and cluster IDs), and the v3 db (a lock-free consistent copy, or the member\'s snapshot stream); manifest with sha256'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_needs_command" -f -a "restore" -d 'Put a backup (dir or .tar.gz) in place as DATA_DIR/member with etcd\'s modes; refuses (exit 7) when a member dir exists. Start etcd next with --force-new-cluster'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l data-dir -d 'etcd\'s data dir (default: ETCD_DATA_DIR of --env-file, or the upstream data_dir fact)' -r -F
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l wal-dir -d 'The WAL dir when etcd runs with --wal-dir (default DATA_DIR/member/wal)' -r -F
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l env-file -d 'etcd\'s settings file (/etc/etcd.env): ETCD_DATA_DIR, ETCD_WAL_DIR, ETCD_ADVERTISE_CLIENT_URLS' -r -F
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l backup-dir -d 'Where to write the backup (must not exist; built in BACKUP_DIR.part)' -r -F
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l wal-wait -d 'How long to wait for the member\'s WAL to hold the committed index' -r
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l db-source -d 'Where the v3 db comes from while etcd runs: disk (a lock-free copy of member/snap/db, kept only if no bbolt commit landed during it; after 3 tries, the stream) or stream (the member\'s snapshot stream, as etcdctl snapshot save)' -r -f -a "disk\t'A lock-free copy of member/snap/db checked against bbolt\'s commit counter'
stream\t'The member\'s snapshot stream (Maintenance.Snapshot)'"
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l endpoints -d 'gRPC endpoints, comma separated [env: ETCDCTL_ENDPOINTS] [default: 127.0.0.1:2379]' -r
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l cacert -d 'Verify the servers\' TLS certificates with this CA bundle [env: ETCDCTL_CACERT]' -r -F
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l cert -d 'Client TLS certificate [env: ETCDCTL_CERT]' -r -F
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l key -d 'Client TLS key [env: ETCDCTL_KEY]' -r -F
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l user -d 'User name, or `name:password` [env: ETCDCTL_USER]' -r
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l password -d 'Password of --user; prefer ETCDCTL_PASSWORD, which `ps` does not show [env: ETCDCTL_PASSWORD]' -r
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l dial-timeout -d 'Time to establish a connection [env: ETCDCTL_DIAL_TIMEOUT] [default: 2s]' -r
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l command-timeout -d 'Time for one request to complete [env: ETCDCTL_COMMAND_TIMEOUT] [default: 5s]' -r
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l without-v3 -d 'Leave the v3 data out (by default the db is carried, consistent with the WAL)'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l archive -d 'Write one BACKUP_DIR.tar.gz instead of a directory'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand backup" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand restore" -l backup-dir -d 'The backup: a directory or a .tar.gz written by `backup` (default: facts.backup.path)' -r -F
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand restore" -l data-dir -d 'The data dir to put it in (default: ETCD_DATA_DIR of --env-file)' -r -F
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand restore" -l wal-dir -d 'Put the WAL in this separate dir (etcd\'s --wal-dir; default DATA_DIR/member/wal)' -r -F
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand restore" -l env-file -d 'etcd\'s settings file: ETCD_DATA_DIR, ETCD_WAL_DIR, ETCD_NAME' -r -F
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand restore" -l name -d 'The member name etcd will be started with (for the next-step facts; default ETCD_NAME)' -r
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand restore" -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand restore" -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand restore" -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand restore" -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand restore" -s h -l help -d 'Print help'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand help; and not __fish_seen_subcommand_from backup restore help" -f -a "backup" -d 'Back up a member\'s data dir while etcd runs: the newest usable .snap, one rewritten WAL complete up to the cluster\'s committed index (membership entries neutralised, new node and cluster IDs), and the v3 db (a lock-free consistent copy, or the member\'s snapshot stream); manifest with sha256'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand help; and not __fish_seen_subcommand_from backup restore help" -f -a "restore" -d 'Put a backup (dir or .tar.gz) in place as DATA_DIR/member with etcd\'s modes; refuses (exit 7) when a member dir exists. Start etcd next with --force-new-cluster'
complete -c etcd-wal-backup -n "__fish_etcd_wal_backup_using_subcommand help; and not __fish_seen_subcommand_from backup restore help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
