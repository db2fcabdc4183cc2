complete -c etcd-member-fix -l name -d 'The member\'s name [default: --env-file\'s ETCD_NAME, else the only member]' -r
complete -c etcd-member-fix -l id -d 'The member\'s ID (hex)' -r
complete -c etcd-member-fix -l peer-urls -d 'The peer URLs to set, comma separated [default: --env-file\'s ETCD_INITIAL_ADVERTISE_PEER_URLS]' -r
complete -c etcd-member-fix -l env-file -d 'etcd\'s settings file (/etc/etcd.env): ETCD_NAME, ETCD_INITIAL_ADVERTISE_PEER_URLS, ETCD_ADVERTISE_CLIENT_URLS (endpoints)' -r -F
complete -c etcd-member-fix -l wait -d 'How long to retry the update and wait until the member list shows it' -r
complete -c etcd-member-fix -l endpoints -d 'gRPC endpoints, comma separated [env: ETCDCTL_ENDPOINTS] [default: 127.0.0.1:2379]' -r
complete -c etcd-member-fix -l cacert -d 'Verify the servers\' TLS certificates with this CA bundle [env: ETCDCTL_CACERT]' -r -F
complete -c etcd-member-fix -l cert -d 'Client TLS certificate [env: ETCDCTL_CERT]' -r -F
complete -c etcd-member-fix -l key -d 'Client TLS key [env: ETCDCTL_KEY]' -r -F
complete -c etcd-member-fix -l user -d 'User name, or `name:password` [env: ETCDCTL_USER]' -r
complete -c etcd-member-fix -l password -d 'Password of --user; prefer ETCDCTL_PASSWORD, which `ps` does not show [env: ETCDCTL_PASSWORD]' -r
complete -c etcd-member-fix -l dial-timeout -d 'Time to establish a connection [env: ETCDCTL_DIAL_TIMEOUT] [default: 2s]' -r
complete -c etcd-member-fix -l command-timeout -d 'Time for one request to complete [env: ETCDCTL_COMMAND_TIMEOUT] [default: 5s]' -r
complete -c etcd-member-fix -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-member-fix -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-member-fix -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-member-fix -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-member-fix -s h -l help -d 'Print help'
complete -c etcd-member-fix -s V -l version -d 'Print version'
