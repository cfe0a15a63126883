complete -c rpush -s H -l hosts -d 'File of targets, one per line (\'#\' comments and blank lines skipped); repeatable' -r -F
complete -c rpush -s t -l target -d 'A target on the command line (same forms as a hosts-file line); repeatable' -r
complete -c rpush -s d -l dest -d 'Turn bare hosts into destinations: \'{}\' is replaced by the host (e.g. \'rsync@{}::www\')' -r
complete -c rpush -s C -l base -d 'Source root: each path is sent relative to it [default: /]' -r -F
complete -c rpush -s j -l jobs -d 'At most N rsyncs at once, over all hosts' -r
complete -c rpush -l password-file -d 'Password file for rsync-daemon targets (passed to rsync; must be mode 600)' -r -F
complete -c rpush -s e -l rsh -d 'Remote shell for host:path targets [default: ssh -o BatchMode=yes -o ConnectTimeout=CONTIMEOUT]' -r
complete -c rpush -l rsync -d 'The rsync program to run' -r -F
complete -c rpush -l timeout -d 'rsync\'s --timeout (I/O inactivity); 0 disables it' -r
complete -c rpush -l contimeout -d 'rsync\'s --contimeout for daemon targets, ssh\'s ConnectTimeout for the default --rsh' -r
complete -c rpush -l watchdog -d 'Kill an rsync (and its ssh) that makes no progress for this long' -r
complete -c rpush -l retry-min -d 'First retry delay after a temporary failure; doubles per consecutive failure' -r
complete -c rpush -l retry-max -d 'Longest retry delay; permanent failures (wrong password, unknown module) wait this' -r
complete -c rpush -l drain-timeout -d 'At end of input, keep retrying for at most this long, then exit 1 if a host still lacks paths' -r
complete -c rpush -l on-push -d 'After a push that changed something, run CMD [ARGS...] (no shell; ends at \';\' or \'--\')' -r
complete -c rpush -l on-push-timeout -d 'Kill an --on-push command still running after DURATION' -r
complete -c rpush -l state-dir -d 'Keep each host\'s pending paths in a journal in DIR; replay it at start' -r -F
complete -c rpush -l status -d 'Keep a JSON status (per host: pending, last success, last error, failures) in FILE' -r -F
complete -c rpush -s 0 -s z -l null -d 'Input paths are NUL-terminated (an empty record ends a batch), as from rbatch -z'
complete -c rpush -l initial -d 'Start with a full sync of the base to every host (needs an explicit -C)'
complete -c rpush -s v -l verbose -d 'Also log each rsync command line and each batch (-vv: quiet repeats too)'
complete -c rpush -s q -l quiet -d 'Log errors only'
complete -c rpush -s h -l help -d 'Print help (see more with \'--help\')'
complete -c rpush -s V -l version -d 'Print version'
