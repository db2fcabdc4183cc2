complete -c etcd-detect-version -l data-dir -d 'Read this data dir (offline; safe while etcd runs on it: read-only, no lock taken)' -r -F
complete -c etcd-detect-version -l wal-dir -d 'The WAL dir when etcd runs with --wal-dir (default DATA_DIR/member/wal)' -r -F
complete -c etcd-detect-version -l env-file -d 'etcd\'s settings file (/etc/etcd.env): ETCD_DATA_DIR, ETCD_WAL_DIR (offline) and ETCD_ADVERTISE_CLIENT_URLS' -r -F
complete -c etcd-detect-version -l require -d 'Exit 5 when the answer is not this method (for scripts)' -r -f -a "v2\t''
v3\t''"
complete -c etcd-detect-version -l examples -d 'How many example v2 keys and WAL writes to list' -r
complete -c etcd-detect-version -l endpoints -d 'gRPC endpoints, comma separated [env: ETCDCTL_ENDPOINTS] [default: 127.0.0.1:2379]' -r
complete -c etcd-detect-version -l cacert -d 'Verify the servers\' TLS certificates with this CA bundle [env: ETCDCTL_CACERT]' -r -F
complete -c etcd-detect-version -l cert -d 'Client TLS certificate [env: ETCDCTL_CERT]' -r -F
complete -c etcd-detect-version -l key -d 'Client TLS key [env: ETCDCTL_KEY]' -r -F
complete -c etcd-detect-version -l user -d 'User name, or `name:password` [env: ETCDCTL_USER]' -r
complete -c etcd-detect-version -l password -d 'Password of --user; prefer ETCDCTL_PASSWORD, which `ps` does not show [env: ETCDCTL_PASSWORD]' -r
complete -c etcd-detect-version -l dial-timeout -d 'Time to establish a connection [env: ETCDCTL_DIAL_TIMEOUT] [default: 2s]' -r
complete -c etcd-detect-version -l command-timeout -d 'Time for one request to complete [env: ETCDCTL_COMMAND_TIMEOUT] [default: 5s]' -r
complete -c etcd-detect-version -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-detect-version -l no-key-count -d 'Offline: do not walk the db\'s key bucket to count live v3 keys (the revision is still read)'
complete -c etcd-detect-version -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-detect-version -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-detect-version -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-detect-version -s h -l help -d 'Print help'
complete -c etcd-detect-version -s V -l version -d 'Print version'
