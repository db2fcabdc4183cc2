complete -c etcd-purge -l data-dir -d 'The etcd data dir [default: facts.data_dir, then --env-file\'s ETCD_DATA_DIR]' -r -F
complete -c etcd-purge -l wal-dir -d 'A separate WAL dir (etcd\'s --wal-dir) [default: --env-file\'s ETCD_WAL_DIR]' -r -F
complete -c etcd-purge -l env-file -d 'etcd\'s settings file (/etc/etcd.env): ETCD_DATA_DIR, ETCD_WAL_DIR' -r -F
complete -c etcd-purge -l stop -d 'How to stop etcd first: systemd:UNIT, service:NAME, docker:CONTAINER, pid:FILE or none' -r
complete -c etcd-purge -l stop-timeout -d 'How long to wait for etcd to exit and release its locks' -r
complete -c etcd-purge -l to -d 'Put the purged copies in this dir instead of next to what is purged (same filesystem)' -r -F
complete -c etcd-purge -l cross-fs -d 'When the move would cross filesystems: refuse (exit 7), or copy then remove the original' -r -f -a "refuse\t''
copy\t''"
complete -c etcd-purge -l keep -d 'Keep only the newest N purged copies (older ones are deleted) [default: keep all]' -r
complete -c etcd-purge -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-purge -l delete -d 'Delete instead of moving aside (needs --yes)'
complete -c etcd-purge -l yes -d 'Confirm --delete'
complete -c etcd-purge -l dry-run -d 'Print the plan; stop nothing, move nothing'
complete -c etcd-purge -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-purge -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-purge -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-purge -s h -l help -d 'Print help'
complete -c etcd-purge -s V -l version -d 'Print version'
