complete -c etcd-health -l retries -d 'Check again up to N more times while the verdict is not healthy' -r
complete -c etcd-health -l retry-interval -d 'Pause between checks' -r
complete -c etcd-health -l wait -d 'Poll (every --retry-interval) until healthy or until this much time has passed' -r
complete -c etcd-health -l env-file -d 'etcd\'s settings file (/etc/etcd.env): ETCD_ADVERTISE_CLIENT_URLS gives the endpoints' -r -F
complete -c etcd-health -l endpoints -d 'gRPC endpoints, comma separated [env: ETCDCTL_ENDPOINTS] [default: 127.0.0.1:2379]' -r
complete -c etcd-health -l cacert -d 'Verify the servers\' TLS certificates with this CA bundle [env: ETCDCTL_CACERT]' -r -F
complete -c etcd-health -l cert -d 'Client TLS certificate [env: ETCDCTL_CERT]' -r -F
complete -c etcd-health -l key -d 'Client TLS key [env: ETCDCTL_KEY]' -r -F
complete -c etcd-health -l user -d 'User name, or `name:password` [env: ETCDCTL_USER]' -r
complete -c etcd-health -l password -d 'Password of --user; prefer ETCDCTL_PASSWORD, which `ps` does not show [env: ETCDCTL_PASSWORD]' -r
complete -c etcd-health -l dial-timeout -d 'Time to establish a connection [env: ETCDCTL_DIAL_TIMEOUT] [default: 2s]' -r
complete -c etcd-health -l command-timeout -d 'Time for one request to complete [env: ETCDCTL_COMMAND_TIMEOUT] [default: 5s]' -r
complete -c etcd-health -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-health -l cluster -d 'Check every member: discover their client URLs from the member list'
complete -c etcd-health -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-health -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-health -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-health -s h -l help -d 'Print help'
complete -c etcd-health -s V -l version -d 'Print version'
