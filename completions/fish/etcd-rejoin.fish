# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_etcd_rejoin_global_optspecs
    string join \n endpoints= cacert= cert= key= user= password= dial-timeout= command-timeout= pretty q/quiet v/verbose input= h/help V/version
end

function __fish_etcd_rejoin_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_etcd_rejoin_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_etcd_rejoin_using_subcommand
    set -l cmd (__fish_etcd_rejoin_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -l endpoints -d 'gRPC endpoints, comma separated [env: ETCDCTL_ENDPOINTS] [default: 127.0.0.1:2379]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -l cacert -d 'Verify the servers\' TLS certificates with this CA bundle [env: ETCDCTL_CACERT]' -r -F
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -l cert -d 'Client TLS certificate [env: ETCDCTL_CERT]' -r -F
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -l key -d 'Client TLS key [env: ETCDCTL_KEY]' -r -F
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -l user -d 'User name, or `name:password` [env: ETCDCTL_USER]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -l password -d 'Password of --user; prefer ETCDCTL_PASSWORD, which `ps` does not show [env: ETCDCTL_PASSWORD]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -l dial-timeout -d 'Time to establish a connection [env: ETCDCTL_DIAL_TIMEOUT] [default: 2s]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -l command-timeout -d 'Time for one request to complete [env: ETCDCTL_COMMAND_TIMEOUT] [default: 5s]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -s h -l help -d 'Print help'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -s V -l version -d 'Print version'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -f -a "add" -d 'Add a member (idempotent) and print its initial cluster, env lines and etcd flags'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -f -a "remove" -d 'Remove a member by name or ID (refuses to remove the last voter)'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l name -d 'The new member\'s name [default: --env-file\'s ETCD_NAME]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l peer-urls -d 'The new member\'s peer URLs, comma separated [default: --env-file\'s ETCD_INITIAL_ADVERTISE_PEER_URLS]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l env-file -d 'The new member\'s settings file (/etc/etcd.env on the joining host): ETCD_NAME, ETCD_INITIAL_ADVERTISE_PEER_URLS (not used for endpoints)' -r -F
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l wait -d 'How long to retry refusals ("unhealthy cluster"), the promotion and --wait-started' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l endpoints -d 'gRPC endpoints, comma separated [env: ETCDCTL_ENDPOINTS] [default: 127.0.0.1:2379]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l cacert -d 'Verify the servers\' TLS certificates with this CA bundle [env: ETCDCTL_CACERT]' -r -F
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l cert -d 'Client TLS certificate [env: ETCDCTL_CERT]' -r -F
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l key -d 'Client TLS key [env: ETCDCTL_KEY]' -r -F
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l user -d 'User name, or `name:password` [env: ETCDCTL_USER]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l password -d 'Password of --user; prefer ETCDCTL_PASSWORD, which `ps` does not show [env: ETCDCTL_PASSWORD]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l dial-timeout -d 'Time to establish a connection [env: ETCDCTL_DIAL_TIMEOUT] [default: 2s]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l command-timeout -d 'Time for one request to complete [env: ETCDCTL_COMMAND_TIMEOUT] [default: 5s]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l learner -d 'Add as a learner; once it has started and caught up, promote it (on a rerun, or with --wait-started)'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l wait-started -d 'Wait until the member has started and serves (and, with --learner, is promoted)'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand add" -s h -l help -d 'Print help'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -l name -d 'The member\'s name' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -l id -d 'The member\'s ID (hex)' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -l wait -d 'How long to retry transient refusals' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -l endpoints -d 'gRPC endpoints, comma separated [env: ETCDCTL_ENDPOINTS] [default: 127.0.0.1:2379]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -l cacert -d 'Verify the servers\' TLS certificates with this CA bundle [env: ETCDCTL_CACERT]' -r -F
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -l cert -d 'Client TLS certificate [env: ETCDCTL_CERT]' -r -F
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -l key -d 'Client TLS key [env: ETCDCTL_KEY]' -r -F
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -l user -d 'User name, or `name:password` [env: ETCDCTL_USER]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -l password -d 'Password of --user; prefer ETCDCTL_PASSWORD, which `ps` does not show [env: ETCDCTL_PASSWORD]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -l dial-timeout -d 'Time to establish a connection [env: ETCDCTL_DIAL_TIMEOUT] [default: 2s]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -l command-timeout -d 'Time for one request to complete [env: ETCDCTL_COMMAND_TIMEOUT] [default: 5s]' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -l input -d 'Upstream envelope: `-` (stdin), a file, or `none`. Default: stdin when it is a pipe, file or socket' -r
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -l pretty -d 'Print the JSON envelope indented (for reading; pipelines want the default one line)'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -s q -l quiet -d 'Say less on stderr (no summary line); errors are always printed'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -s v -l verbose -d 'Say more on stderr (-vv for debug)'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand remove" -s h -l help -d 'Print help'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand help; and not __fish_seen_subcommand_from add remove help" -f -a "add" -d 'Add a member (idempotent) and print its initial cluster, env lines and etcd flags'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand help; and not __fish_seen_subcommand_from add remove help" -f -a "remove" -d 'Remove a member by name or ID (refuses to remove the last voter)'
complete -c etcd-rejoin -n "__fish_etcd_rejoin_using_subcommand help; and not __fish_seen_subcommand_from add remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
