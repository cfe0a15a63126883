complete -c rwait -s e -l event -d 'Listen for specific event(s), comma-separated; repeatable. Default: all.' -r -f -a "access\t''
modify\t''
attrib\t''
close_write\t''
close_nowrite\t''
close\t''
open\t''
moved_to\t''
moved_from\t''
move\t''
move_self\t''
create\t''
delete\t''
delete_self\t''
unmount\t''"
complete -c rwait -s t -l timeout -d 'Exit with status 2 after SECONDS without any event (0: never).' -r
complete -c rwait -l format -d 'Print using a printf-like format (%w %f %e %Xe %c %T %0 %n %%).' -r
complete -c rwait -l timefmt -d 'strftime(3) format for %T in --format.' -r
complete -c rwait -l fromfile -d 'Read files to watch from FILE, one per line (\'-\' for stdin; @path excludes).' -r -F
complete -c rwait -s o -l outfile -d 'Print events to FILE (appended, mode 0600) rather than stdout.' -r -F
complete -c rwait -l exclude -d 'Drop events whose path matches the POSIX extended regex.' -r
complete -c rwait -l excludei -d 'Like --exclude but case-insensitive.' -r
complete -c rwait -l include -d 'Drop events whose path does not match the POSIX extended regex.' -r
complete -c rwait -l includei -d 'Like --include but case-insensitive.' -r
complete -c rwait -s h -l help -d 'Show this help text (on stdout; exit status 1, as inotifywait).'
complete -c rwait -s m -l monitor -d 'Keep listening for events forever or until --timeout expires.'
complete -c rwait -s q -l quiet -d 'Print less (only print events); twice: print nothing, not even events.'
complete -c rwait -s f -l filename -d 'Obsolete; exits with an explanation.'
complete -c rwait -s r -l recursive -d 'Watch directories recursively.'
complete -c rwait -s I -l inotify -d 'Watch through inotify (the default backend).'
complete -c rwait -s F -l fanotify -d 'Watch the operands\' trees through one fanotify mark per filesystem (root, kernel >= 5.9; implies -r).'
complete -c rwait -s S -l filesystem -d 'Watch the whole filesystem of each operand through fanotify, unfiltered (root).'
complete -c rwait -s c -l csv -d 'Print events in CSV format.'
complete -c rwait -s d -l daemon -d 'Like --monitor, but run in the background logging to --outfile; implies --syslog.'
complete -c rwait -s s -l syslog -d 'Send errors to syslog rather than stderr.'
complete -c rwait -s P -l no-dereference -d 'Do not follow symlinks.'
complete -c rwait -l no-newline -d 'Do not print a newline after the --format string.'
